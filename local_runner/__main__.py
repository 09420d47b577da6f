"""The command line: `python -m local_runner serve|monitor|load|sample|backfill ...`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from . import backfill, load, monitor, sample, say
from .cgroup import CgroupUnavailable
from .instance import InstanceSpec, serve

_UNITS = {"": 1, "m": 1, "mi": 1, "mb": 1, "mib": 1, "g": 1024, "gi": 1024, "gb": 1024, "gib": 1024}


def memory_mb(text: str) -> int:
    """'4GiB', '4Gi', '4096MiB', '512M', '200' (MiB) -> MiB. Units are binary, like the
    platform's memory sizes (4 GiB is 4096 MiB)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a size such as 4GiB or 512MiB")
    mb = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if mb < 16:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 16 MiB")
    return mb


# function.backfill has the same five lines: the runner does not import that module (it loads
# google-cloud-storage and the service) to parse its own command line.
def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer of at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m local_runner", description=__doc__)
    commands = cli.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "serve",
        help="run the function inside an emulated instance",
        description="Run functions-framework inside an emulated instance; arguments after -- "
        "go to functions-framework (e.g. -- --source=other.py --signature-type=cloudevent).",
    )
    run.add_argument("--memory", type=memory_mb, default=4096, help="e.g. 4GiB (default)")
    run.add_argument("--cpus", type=positive_int, default=2, help="CPUs to pin to (default 2)")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--target", default="ocr")
    run.add_argument(
        "--cgroup",
        action="store_true",
        help="limit resident memory with a memory cgroup, as the platform does (root or a "
        "delegated cgroup), instead of RLIMIT_AS",
    )
    run.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        help="give up after this many instances in a row never became ready (default 5)",
    )
    run.add_argument("--start-timeout", type=float, default=120.0, help="seconds (default 120)")
    run.add_argument("framework_args", nargs="*", help=argparse.SUPPRESS)

    mon = commands.add_parser("monitor", help="the instance's memory: a report, or samples")
    mon.add_argument("--pid", type=int, help="the instance's root process")
    mon.add_argument("--url", help="the instance's URL on this machine")
    mon.add_argument("--monitor", action="store_true", help="sample every --interval seconds")
    mon.add_argument("--interval", type=float, default=10.0, help="seconds (default 10)")
    mon.add_argument(
        "--threshold", type=float, default=1024.0, help="alert above this RSS in MiB (1024)"
    )
    mon.add_argument("--count", type=positive_int, help="stop after this many samples")

    drive = commands.add_parser("load", help="a bounded load run against a local instance")
    drive.add_argument("--url", default="http://127.0.0.1:8080/")
    drive.add_argument(
        "--images",
        type=Path,
        required=True,
        help="a directory of images (other files are skipped), or one image file",
    )
    drive.add_argument("--concurrency", type=positive_int, default=4)
    drive.add_argument("--requests", type=positive_int, help="stop after this many (default 100)")
    drive.add_argument("--duration", type=float, help="stop sending after this many seconds")
    drive.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    drive.add_argument("--json", type=Path, help="also write the summary to this file")

    draw = commands.add_parser(
        "sample", help="render a receipt image to try the function with (e.g. receipt.png)"
    )
    draw.add_argument("file", type=Path, help="where to write it; the suffix picks the format")

    job = commands.add_parser(
        "backfill",
        help="OCR what a bucket holds: a Cloud Run job's tasks, each in an emulated instance",
        description="Run --tasks processes of `python -m function.backfill BUCKET`, each with "
        "CLOUD_RUN_TASK_INDEX/COUNT/ATTEMPT set as a Cloud Run job sets them and inside its own "
        "emulated instance, against STORAGE_EMULATOR_HOST (or real Cloud Storage). Arguments "
        "after -- go to function.backfill (e.g. -- --since 2026-11-01 --dry-run).",
    )
    job.add_argument("bucket")
    job.add_argument("--prefix", help="only objects whose name starts with this")
    job.add_argument("--tasks", type=positive_int, default=1, help="task count (default 1)")
    job.add_argument(
        "--parallelism", type=positive_int, help="tasks at once (default: all of them)"
    )
    job.add_argument(
        "--max-retries", type=int, default=3, help="retries of a failed task (default 3)"
    )
    job.add_argument("--memory", type=memory_mb, default=4096, help="per task (default 4GiB)")
    job.add_argument("--cpus", type=positive_int, default=2, help="CPUs each task is pinned to")
    job.add_argument("--cgroup", action="store_true", help="as for serve")
    return cli


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    task_args: list[str] = []
    if argv[:1] == ["backfill"] and "--" in argv:  # argparse cannot follow BUCKET with `-- ARGS`
        argv, task_args = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    args = parser().parse_args(argv)
    args.task_args = task_args
    if args.command == "serve":
        return _serve(args)
    if args.command == "monitor":
        return _monitor(args)
    if args.command == "sample":
        return _sample(args)
    if args.command == "backfill":
        return _backfill(args)
    return _load(args)


def _sample(args: argparse.Namespace) -> int:
    try:
        print(sample.write(args.file), flush=True)
    except (OSError, ValueError) as exc:
        print(f"sample: cannot write {args.file}: {exc}", file=sys.stderr)
        return 2
    return 0


def _pinned(cpus: int) -> list[int] | None:
    """The first `cpus` CPUs the runner may use; None, and why, if it may use fewer."""
    allowed = sorted(os.sched_getaffinity(0))
    if cpus > len(allowed):
        say(f"--cpus {cpus}: this machine lets the runner use only {len(allowed)}")
        return None
    return allowed[:cpus]


def _serve(args: argparse.Namespace) -> int:
    cpus = _pinned(args.cpus)
    if cpus is None:
        return 2
    spec = InstanceSpec(
        memory_mb=args.memory,
        cpus=cpus,
        host=args.host,
        port=args.port,
        target=args.target,
        framework_args=args.framework_args,
        cgroup=args.cgroup,
        start_timeout=args.start_timeout,
    )
    try:
        return serve(spec, args.max_restarts)
    except CgroupUnavailable as exc:
        say(f"--cgroup is not possible here: {exc}")
        return 2


def _backfill(args: argparse.Namespace) -> int:
    cpus = _pinned(args.cpus)
    if cpus is None:
        return 2
    spec = backfill.JobSpec(
        bucket=args.bucket,
        task_args=[*(["--prefix", args.prefix] if args.prefix else []), *args.task_args],
        tasks=args.tasks,
        parallelism=args.parallelism or args.tasks,
        max_retries=max(args.max_retries, 0),
        memory_mb=args.memory,
        cpus=cpus,
        cgroup=args.cgroup,
    )
    try:
        return backfill.run(spec)
    except CgroupUnavailable as exc:
        say(f"--cgroup is not possible here: {exc}")
        return 2


def _monitor(args: argparse.Namespace) -> int:
    try:
        target = monitor.find_target(args.pid, args.url)
        print(monitor.report(target), flush=True)
    except monitor.TargetNotFound as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return 1
    if not args.monitor:
        return 0
    return monitor.watch(target, args.interval, args.threshold, args.count)


def _load(args: argparse.Namespace) -> int:
    requests = args.requests or (None if args.duration else 100)
    try:
        result = load.run(
            args.url, args.images, args.concurrency, requests, args.duration, args.timeout
        )
    except load.LoadError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    print(load.summary(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if result["unanswered"]:
        print(
            f"load: {result['unanswered']} of {result['requests']} requests got no answer "
            "(see 'no answer' above): the instance stopped answering or timed out",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
