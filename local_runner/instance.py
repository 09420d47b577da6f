"""`serve`: the function inside an emulated instance, restarted as the platform would.

The instance is functions-framework in its own session (so Ctrl-C reaches the runner only, and
the runner ends the whole group), confined by `confine` (pinned CPUs; RLIMIT_AS or a memory
cgroup). The runner watches it until it ends, dies of memory or never becomes ready, says how
it ended, and starts a new one (a new cold start), backing off while starts keep failing.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import say, state
from .cgroup import MemoryCgroup
from .confine import MEMORY_FAILURES, confinement
from .processes import TreeMemory, describe_exit, end_group, sample

_POLL_SECONDS = 0.25
_MAX_BACKOFF_SECONDS = 30


@dataclass(frozen=True)
class InstanceSpec:
    """What instance to emulate and what to run in it."""

    memory_mb: int
    cpus: list[int]
    host: str
    port: int
    target: str
    framework_args: list[str]
    cgroup: bool
    start_timeout: float

    @property
    def url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "functions_framework",
            f"--target={self.target}",
            f"--host={self.host}",
            f"--port={self.port}",
            *self.framework_args,
        ]

    def environment(self) -> dict[str, str]:
        """The runner's environment, plus what makes the instance behave like N CPUs."""
        env = dict(os.environ)
        env.setdefault("THREADS", str(4 * len(self.cpus)))  # functions-framework's default rule
        env.setdefault("MALLOC_ARENA_MAX", "2")
        env["PYTHONUNBUFFERED"] = "1"  # memory failures are seen when they happen
        return env


@dataclass
class Ending:
    """How one instance ended."""

    how: str
    memory_mb: float | None = None  # set when it died of memory: the usage to report
    detail: str = ""
    exited: bool = False  # it exited by itself (otherwise the runner stopped it)


@dataclass
class Instance:
    """One running functions-framework process tree and what the runner has seen of it."""

    spec: InstanceSpec
    number: int
    process: subprocess.Popen
    cgroup: MemoryCgroup | None
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    memory_failure: str | None = None
    peak: TreeMemory | None = None
    pids: set[int] = field(default_factory=set)
    _pump: threading.Thread | None = None

    @classmethod
    def start(cls, spec: InstanceSpec, number: int) -> Instance:
        """Spawn the instance. Called with no other runner thread alive (preexec_fn is unsafe
        with threads); the output thread starts after the fork."""
        limit = spec.memory_mb * 1024 * 1024
        cgroup = None
        if spec.cgroup:
            cgroup = MemoryCgroup(f"local-runner-{os.getpid()}-{number}", limit)

        process = subprocess.Popen(
            spec.command(),
            env=spec.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=confinement(spec.cpus, limit, cgroup),
        )
        instance = cls(spec, number, process, cgroup)
        instance._pump = threading.Thread(target=instance._relay_output, daemon=True)
        instance._pump.start()
        return instance

    def _relay_output(self) -> None:
        """Pass the instance's output through, watching it for failed allocations."""
        assert self.process.stdout is not None
        for raw in self.process.stdout:  # ends when every process of the instance has exited
            line = raw.decode(errors="replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            if self.memory_failure is None and any(sign in line for sign in MEMORY_FAILURES):
                self.memory_failure = line.strip()

    def describe(self) -> str:
        how = "cgroup, resident memory" if self.cgroup else "RLIMIT_AS, address space"
        return (
            f"instance {self.number}: pid {self.process.pid}, {self.spec.memory_mb} MiB "
            f"({how}), CPUs {self.spec.cpus}"
        )

    def watch(self) -> Ending:
        """Poll until the instance ends, dies of memory, or never becomes ready."""
        while True:
            self._sample()
            ending = self._memory_death() or self._exit() or self._readiness()
            if ending is not None:
                return ending
            time.sleep(_POLL_SECONDS)

    def _sample(self) -> None:
        now = sample(self.process.pid)
        if now is None:
            return
        self.pids.update(now.rss_mb)
        if self.peak is None:
            self.peak = now
        else:  # the largest of each, over the instance's life
            self.peak = dataclasses.replace(
                now,
                peak_mb=max(self.peak.peak_mb, now.peak_mb),
                vm_peak_mb=max(self.peak.vm_peak_mb, now.vm_peak_mb),
            )

    def _memory_death(self) -> Ending | None:
        if self.cgroup is not None and self.cgroup.oom_kills() > 0:
            used = self.cgroup.peak_mb() or self.spec.memory_mb
            return Ending(
                "was OOM-killed by the kernel (memory cgroup)",
                memory_mb=used,
                detail=f"{self.cgroup.oom_kills()} process(es) OOM-killed",
            )
        if self.memory_failure is None:
            return None
        peak = self.peak
        return Ending(
            "could not allocate memory",
            memory_mb=peak.vm_peak_mb if peak else None,
            detail=(
                f"address space (RLIMIT_AS) of its largest process: "
                f"{peak.vm_peak_mb if peak else '?'} MiB; resident peak "
                f"{peak.peak_mb if peak else '?'} MiB; output: {self.memory_failure}"
            ),
        )

    def _exit(self) -> Ending | None:
        code = self.process.poll()
        if code is None:
            return None
        time.sleep(0.5)  # its last words may still be in the pipe
        if self._pump is not None:
            self._pump.join(timeout=2)
        death = self._memory_death()
        if death is None:
            return Ending(describe_exit(code), exited=True)
        death.how += f" and {describe_exit(code)}"
        death.exited = True
        return death

    def _readiness(self) -> Ending | None:
        if self.ready:
            return None
        if is_ready(self.spec.url):
            self.ready = True
            elapsed = time.monotonic() - self.started
            say(f"instance {self.number} ready in {elapsed:.1f} s at {self.spec.url} (cold start)")
            self.publish()
        elif time.monotonic() - self.started > self.spec.start_timeout:
            return Ending(f"was not ready after {self.spec.start_timeout:.0f} s")
        return None

    def publish(self) -> None:
        state.publish(
            {
                "pid": self.process.pid,
                "url": self.spec.url,
                "instance": self.number,
                "ready": self.ready,
                "memory_mb": self.spec.memory_mb,
                "limited_by": "cgroup" if self.cgroup else "RLIMIT_AS",
                "cpus": self.spec.cpus,
            }
        )

    def stop(self) -> None:
        """End every process of the instance and wait for them; remove its cgroup."""
        end_group(self.process.pid, [self.process.pid, *self.pids])
        self.process.wait()
        if self.cgroup is not None:
            self.cgroup.remove()
        if self._pump is not None:
            self._pump.join(timeout=5)


def is_ready(url: str) -> bool:
    """The instance answers GET, and the OCR function (if that is the target) has its engine.

    The OCR function answers 503 until its engine is loaded; a CloudEvent target answers GET
    with 405, which still means it is up.
    """
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError as error:
        return error.code != 503
    except (OSError, ValueError):
        return False


def serve(spec: InstanceSpec, max_restarts: int) -> int:
    """Run instances one after another until Ctrl-C/SIGTERM or `max_restarts` failed starts."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a background job ignores it
        signal.signal(sig, _interrupt)
    failed_starts = 0
    number = 0
    try:
        while True:
            number += 1
            instance = Instance.start(spec, number)
            try:
                say(instance.describe())
                instance.publish()
                ending = instance.watch()
            finally:
                with _uninterruptible():
                    instance.stop()
            report(instance, ending)
            failed_starts = 0 if instance.ready else failed_starts + 1
            if failed_starts > max_restarts:
                say(f"giving up: {failed_starts} instances in a row never became ready")
                return 1
            backoff = min(2**failed_starts, _MAX_BACKOFF_SECONDS) if failed_starts else 1
            say(f"restarting in {backoff} s: instance {number + 1} will be a new cold start")
            time.sleep(backoff)
    except KeyboardInterrupt:
        say("stopped; every process it started has exited")
        return 130
    finally:
        state.withdraw()


def report(instance: Instance, ending: Ending) -> None:
    if ending.memory_mb is not None:
        say(
            f"Memory limit of {instance.spec.memory_mb} MiB exceeded with "
            f"{ending.memory_mb:.0f} MiB used"
        )
    say(f"instance {instance.number} (pid {instance.process.pid}) {ending.how}")
    if ending.detail:
        say(f"  {ending.detail}")
    if not ending.exited:
        how = describe_exit(instance.process.returncode)
        say(f"  the runner stopped it: functions-framework {how}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def _uninterruptible() -> Iterator[None]:
    """Let the instance be ended completely even if Ctrl-C is pressed again meanwhile."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
