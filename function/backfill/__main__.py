"""The backfill's command line: `python -m function.backfill BUCKET [--prefix P] [--since TIME]
[--limit N] [--dry-run]`. Parses the arguments, reads the settings and this task's place in the
job from the environment, and runs the task (see the package docstring for what it does and
its exit status).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from datetime import datetime, timezone

from .. import logs
from ..service import Service
from ..settings import Settings, SettingsError
from . import PAGE_SIZE, Options, Stop, log, run
from .task import Task


def parse_time(text: str) -> datetime:
    """ISO 8601 date or time; without a zone, UTC."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an ISO 8601 time such as 2026-11-01 or 2026-11-01T12:00:00Z"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer of at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m function.backfill",
        description="OCR the objects a bucket already holds (this task's share of them) into "
        "the result objects the Cloud Storage trigger writes.",
    )
    cli.add_argument("bucket", help="the bucket to read (results go where the trigger's go)")
    cli.add_argument("--prefix", default="", help="only objects whose name starts with this")
    cli.add_argument(
        "--since",
        type=parse_time,
        help="only objects updated at or after this time (ISO 8601; UTC unless a zone is given)",
    )
    cli.add_argument(
        "--limit", type=_positive, help="stop after this many objects of this task's share"
    )
    cli.add_argument(
        "--dry-run",
        action="store_true",
        help="decide and count as a real run would, but download and write nothing",
    )
    cli.add_argument("--page-size", type=_positive, default=PAGE_SIZE, help=argparse.SUPPRESS)
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = Options(
        bucket=args.bucket,
        prefix=args.prefix,
        since=args.since,
        limit=args.limit,
        dry_run=args.dry_run,
        page_size=min(args.page_size, PAGE_SIZE),
    )
    try:
        settings = Settings.from_env()
        task = Task.from_env()
    except SettingsError as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return 2
    if settings.log_format == "auto" and os.environ.get("CLOUD_RUN_JOB"):
        settings = dataclasses.replace(settings, log_format="json")  # a job has no K_SERVICE
    logs.configure(settings)
    log.setLevel(logging.INFO)  # progress is what a task's log is for, whatever LOG_LEVEL says
    stop = Stop()
    service = Service(settings)  # its engine loads on the first object that needs it
    try:
        return run(options, task, service, stop)
    except Exception:  # the listing failed past its retries: the job's retry starts over
        log.exception("backfill task %d failed; exit 1 to be retried", task.index)
        return 1


if __name__ == "__main__":
    sys.exit(main())
