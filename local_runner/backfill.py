"""`backfill`: a Cloud Run job's tasks on this machine, each inside an emulated instance.

K processes of `python -m function.backfill BUCKET ...`, each given CLOUD_RUN_TASK_INDEX,
CLOUD_RUN_TASK_COUNT and CLOUD_RUN_TASK_ATTEMPT as the job gives them, and each confined like
`serve`'s instance (its own memory limit, RLIMIT_AS or a cgroup; pinned CPUs; killed if the
runner dies). They read whatever STORAGE_EMULATOR_HOST points at. As on the platform, at most
`parallelism` tasks run at once and a task that exits non-zero is started again, up to
`max_retries` times. Ctrl-C or SIGTERM sends SIGTERM to every task, as Cloud Run does when it
stops an execution, and SIGKILL 10 s later.

Everything runs in the runner's one thread (a selector over the tasks' output), because a
`preexec_fn` is unsafe while other threads exist. Each task's peak resident memory and CPU
time are exact: the kernel's, from wait4(2).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from . import say
from .cgroup import MemoryCgroup
from .confine import MEMORY_FAILURES, confinement
from .processes import describe_exit

STOP_GRACE_SECONDS = 10.0  # what Cloud Run gives a task between SIGTERM and SIGKILL


@dataclass(frozen=True)
class JobSpec:
    bucket: str
    task_args: list[str]  # passed to function.backfill after the bucket
    tasks: int
    parallelism: int
    max_retries: int
    memory_mb: int
    cpus: list[int]
    cgroup: bool


@dataclass
class Task:
    """One task index: its attempts so far and the process of the current one."""

    index: int
    attempt: int = -1
    process: subprocess.Popen | None = None
    cgroup: MemoryCgroup | None = None
    started: float = 0.0
    partial: bytes = b""
    output_closed: bool = False
    memory_failure: str | None = None
    exit_code: int | None = None
    peak_rss_mb: list[float] = field(default_factory=list)  # one per attempt
    cpu_seconds: list[float] = field(default_factory=list)  # user + system, one per attempt


def run(spec: JobSpec) -> int:
    """Run the job's tasks to the end; 0 when every task succeeded."""
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _: stopping.append(signum)) for sig in
                (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    tasks = [Task(index) for index in range(spec.tasks)]
    waiting = list(tasks)
    running: list[Task] = []
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    say(
        f"backfill of gs://{spec.bucket}: {spec.tasks} task(s), parallelism {spec.parallelism}, "
        f"{spec.memory_mb} MiB ({'cgroup' if spec.cgroup else 'RLIMIT_AS'}) and CPUs "
        f"{spec.cpus} each, up to {spec.max_retries} retries per task"
    )
    try:
        while waiting or running:
            if stopping:
                _stop(running, selector)
                say(f"stopped by {signal.Signals(stopping[0]).name}; every task has exited")
                return 128 + stopping[0]
            while waiting and len(running) < spec.parallelism:
                task = waiting.pop(0)
                _start(task, spec, selector)
                running.append(task)
            for key, _ in selector.select(timeout=0.25):
                _relay(key.data, selector)
            for task in list(running):
                if _reap(task):
                    running.remove(task)
                    if task.exit_code != 0 and task.attempt < spec.max_retries:
                        say(f"task {task.index}: retrying (attempt {task.attempt + 1})")
                        waiting.append(task)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        selector.close()
    failed = [task.index for task in tasks if task.exit_code != 0]
    say(
        f"job finished in {time.monotonic() - started:.1f} s: "
        + (f"task(s) {failed} failed" if failed else f"all {spec.tasks} task(s) succeeded")
    )
    return 1 if failed else 0


def _start(task: Task, spec: JobSpec, selector: selectors.BaseSelector) -> None:
    task.attempt += 1
    limit = spec.memory_mb * 1024 * 1024
    task.cgroup = None
    if spec.cgroup:
        task.cgroup = MemoryCgroup(f"local-runner-{os.getpid()}-task{task.index}", limit)
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")  # as `serve`: address space tracks what is used
    env.update(
        PYTHONUNBUFFERED="1",
        CLOUD_RUN_TASK_INDEX=str(task.index),
        CLOUD_RUN_TASK_COUNT=str(spec.tasks),
        CLOUD_RUN_TASK_ATTEMPT=str(task.attempt),
    )
    task.process = subprocess.Popen(
        [sys.executable, "-m", "function.backfill", spec.bucket, *spec.task_args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=confinement(spec.cpus, limit, task.cgroup),
    )
    task.started = time.monotonic()
    task.partial = b""
    task.output_closed = False
    task.memory_failure = None
    os.set_blocking(task.process.stdout.fileno(), False)
    selector.register(task.process.stdout, selectors.EVENT_READ, task)
    say(f"task {task.index} attempt {task.attempt}: pid {task.process.pid}")


def _relay(task: Task, selector: selectors.BaseSelector) -> None:
    """Pass a task's complete output lines through, prefixed with its index."""
    assert task.process is not None and task.process.stdout is not None
    try:
        chunk = os.read(task.process.stdout.fileno(), 65536)
    except BlockingIOError:
        return
    if not chunk:  # every process of the task has closed its output
        selector.unregister(task.process.stdout)
        task.output_closed = True
        chunk = b"\n" if task.partial else b""
    *lines, task.partial = (task.partial + chunk).split(b"\n")
    for raw in lines:
        line = raw.decode(errors="replace")
        sys.stdout.write(f"task {task.index}: {line}\n")
        if task.memory_failure is None and any(sign in line for sign in MEMORY_FAILURES):
            task.memory_failure = line.strip()
    sys.stdout.flush()


def _reap(task: Task) -> bool:
    """If the task's process has exited and all its output is read: record its exit and peak
    memory, report; True."""
    assert task.process is not None
    if not task.output_closed:
        return False
    pid, status, usage = os.wait4(task.process.pid, os.WNOHANG)
    if pid == 0:
        return False
    code = os.waitstatus_to_exitcode(status)
    task.process.returncode = code  # reaped here, with its rusage, not by Popen
    if task.process.stdout is not None:
        task.process.stdout.close()
    task.exit_code = code
    task.peak_rss_mb.append(round(usage.ru_maxrss / 1024, 1))  # Linux: kB
    task.cpu_seconds.append(round(usage.ru_utime + usage.ru_stime, 1))
    oom = task.cgroup is not None and task.cgroup.oom_kills() > 0
    if task.cgroup is not None:
        task.cgroup.remove()
    how = "succeeded" if code == 0 else describe_exit(code)
    say(
        f"task {task.index} attempt {task.attempt} {how} after "
        f"{time.monotonic() - task.started:.1f} s, CPU {task.cpu_seconds[-1]} s, "
        f"peak RSS {task.peak_rss_mb[-1]} MiB"
    )
    if oom or task.memory_failure:
        say(f"task {task.index}: ran out of memory ({task.memory_failure or 'OOM-killed'})")
    return True


def _stop(running: list[Task], selector: selectors.BaseSelector) -> None:
    """SIGTERM every running task, SIGKILL what is left after the grace period; reap them all."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        for task in running:
            if task.process is not None and task.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(task.process.pid, sig)
        deadline = time.monotonic() + grace
        while running and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.05):
                _relay(key.data, selector)
            running[:] = [task for task in running if not _reap(task)]
        if not running:
            return
    for task in running:  # SIGKILLed, output never closed (a grandchild holds it): just reap
        assert task.process is not None
        task.process.wait()
