"""`monitor`: the instance's memory as the platform would count it, once or every few seconds.

It replaces the old service's memory_monitor.py (same flags: --monitor, --interval,
--threshold). The instance's memory is the PSS of its processes summed (pages gunicorn's master
and worker share counted once); levels and alerts use it, with the function's own thresholds
read from the instance's environment. Each sample also shows each process's CPU use.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

from function import memory
from function.settings import Settings, SettingsError

from . import state
from .processes import TreeMemory, cpu_percent, listening_pid, sample

_FRAMEWORK_VARIABLES = ("THREADS", "WORKERS", "MALLOC_ARENA_MAX")


class TargetNotFound(RuntimeError):
    """No instance matches what was asked for; the message says what to do."""


@dataclass(frozen=True)
class Target:
    pid: int
    url: str | None
    from_runner: bool  # found through a running `serve`, so it can be followed across restarts


def find_target(pid: int | None, url: str | None) -> Target:
    """The instance named by --pid or --url, or else the one `serve` is running."""
    if pid is not None:
        return Target(pid, url, from_runner=False)
    if url is not None:
        port = urlsplit(url).port or 80
        found = listening_pid(port)
        if found is None:
            raise TargetNotFound(f"nothing on this machine listens on port {port} ({url})")
        return Target(found, url, from_runner=False)
    running = state.latest()
    if running is None:
        raise TargetNotFound(
            "no instance found: start one with `python -m local_runner serve`, "
            "or name it with --pid or --url"
        )
    return Target(int(running["pid"]), str(running["url"]), from_runner=True)


def report(target: Target) -> str:
    """The one-shot report: memory now and at peak, level, limits, settings in effect."""
    now = sample(target.pid)
    if now is None:
        raise TargetNotFound(f"process {target.pid} is not running")
    env = _environment(target.pid)
    lines = [
        ("instance", f"pid {target.pid}" + (f", {target.url}" if target.url else "")),
        ("memory", f"{now.pss_mb} MiB PSS (shared pages counted once; USS {_uss(now)})"),
        ("rss", f"{now.total_rss_mb} MiB summed ({_per_process(now)})"),
        ("peak rss", f"{now.peak_mb} MiB (sum of each process's high-water mark)"),
    ]
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        lines.append(("settings", f"invalid: {exc}"))
    else:
        lines.append(("level", _level(now.pss_mb, settings)))
        lines.append(("settings", _settings_line(settings, env)))
    lines.append(("limit", _limits(target.pid)))
    lines.append(("system", _system_memory()))
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in lines)


def watch(target: Target, interval: float, threshold_mb: float, count: int | None) -> int:
    """Print a line per sample, and an alert line whenever the instance's memory (PSS summed)
    crosses the threshold.

    Ends when the instance is gone (after following `serve` to a restarted instance), after
    `count` samples, or on Ctrl-C.
    """
    above = False
    taken = 0
    processes: dict[int, psutil.Process] = {}
    cpu_percent(processes, target.pid)  # the first reading only starts the count
    try:
        while count is None or taken < count:
            now = sample(target.pid)
            if now is None:
                target = _restarted(target)
                if target is None:
                    print("instance gone; monitor stops", flush=True)
                    return 0
                print(f"instance restarted: now pid {target.pid}", flush=True)
                continue
            taken += 1
            clock = time.strftime("%H:%M:%S")
            used = now.pss_mb
            cpu = ", ".join(
                f"{pid} {pct:.0f} %" for pid, pct in cpu_percent(processes, target.pid).items()
            )
            print(
                f"{clock}  pss {used} MiB  rss {now.total_rss_mb} MiB  peak {now.peak_mb} MiB  "
                f"cpu {cpu}",
                flush=True,
            )
            if used > threshold_mb and not above:
                print(f"ALERT {clock}  pss {used} MiB is above {threshold_mb:g} MiB", flush=True)
            elif used <= threshold_mb and above:
                print(
                    f"RECOVERED {clock}  pss {used} MiB is under {threshold_mb:g} MiB", flush=True
                )
            above = used > threshold_mb
            if count is None or taken < count:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return 0


def _restarted(target: Target) -> Target | None:
    """The runner's next instance, if `target` came from a runner that restarted it."""
    if not target.from_runner:
        return None
    deadline = time.monotonic() + 60  # the runner backs off up to 30 s between starts
    while time.monotonic() < deadline:
        running = state.latest()
        if running is None:
            return None
        if int(running["pid"]) != target.pid and sample(int(running["pid"])) is not None:
            return Target(int(running["pid"]), str(running["url"]), from_runner=True)
        time.sleep(0.5)
    return None


def _per_process(now: TreeMemory) -> str:
    return ", ".join(f"pid {pid}: {mb}" for pid, mb in now.rss_mb.items())


def _uss(now: TreeMemory) -> str:
    return ", ".join(f"pid {pid}: {mb}" for pid, mb in now.uss_mb.items())


def _level(rss_mb: float, settings: Settings) -> str:
    return (
        f"{memory.level(rss_mb, settings)} (attention from {settings.memory_attention_mb} MiB, "
        f"warning from {settings.memory_warning_mb} MiB)"
    )


def _settings_line(settings: Settings, env: dict[str, str]) -> str:
    shown = [f"{name.upper()}={value}" for name, value in settings.public().items()]
    shown += [f"{name}={env.get(name, '(default)')}" for name in _FRAMEWORK_VARIABLES]
    return " ".join(shown)


def _limits(pid: int) -> str:
    parts = []
    soft, _ = resource.prlimit(pid, resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        parts.append(f"RLIMIT_AS {soft // 2**20} MiB (address space, each process)")
    in_cgroup = memory.cgroup_limit_mb(pid)
    if in_cgroup is not None:
        parts.append(f"cgroup {in_cgroup:g} MiB (resident + tmpfs, whole instance)")
    parts.append(f"CPUs {sorted(os.sched_getaffinity(pid))}")
    return "; ".join(parts) if parts else "none"


def _system_memory() -> str:
    system = psutil.virtual_memory()
    used, total = (system.total - system.available) // 2**20, system.total // 2**20
    return f"{used} of {total} MiB used ({100 * used / total:.1f} %)"


def _environment(pid: int) -> dict[str, str]:
    return psutil.Process(pid).environ()
