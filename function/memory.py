"""Resident memory of this process: now, at peak, the instance's limit, and the alert level.

The peak is per invocation, not since start: Linux lets a process reset its own high-water mark
by writing "5" to /proc/self/clear_refs (proc(5)). Where that is not possible (not Linux, or a
sandbox without it) the peak falls back to the process's lifetime peak from getrusage.
"""

from __future__ import annotations

import gc
import resource
import sys
from dataclasses import dataclass

from . import allocator, cgroups
from .settings import Settings

_MB = 1024 * 1024


@dataclass(frozen=True)
class MemoryReport:
    """The `memory` object of every response."""

    peak_rss_mb: float
    rss_mb: float
    level: str
    limit_mb: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "peak_rss_mb": self.peak_rss_mb,
            "rss_mb": self.rss_mb,
            "level": self.level,
            "limit_mb": self.limit_mb,
        }


def status_kb(pid: int | str = "self") -> dict[str, int]:
    """The memory lines of /proc/PID/status (VmRSS, VmHWM, ...) in kB; empty off Linux."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Vm"):
                    key, value = line.split(":", 1)
                    values[key] = int(value.split()[0])
    except OSError:
        pass
    return values


def rss_mb() -> float:
    """Resident memory now, in MiB."""
    status = status_kb()
    if "VmRSS" in status:
        return round(status["VmRSS"] / 1024, 1)
    return _lifetime_peak_mb()


def peak_rss_mb() -> float:
    """Highest resident memory since the last `reset_peak()` (or since start), in MiB."""
    status = status_kb()
    if "VmHWM" in status:
        return round(status["VmHWM"] / 1024, 1)
    return _lifetime_peak_mb()


def _lifetime_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (_MB if sys.platform == "darwin" else 1024), 1)


def reset_peak() -> bool:
    """Start a new high-water mark at the current RSS. False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def limit_mb(pid: int | str = "self") -> float | None:
    """The memory this process may use: the tightest of its cgroup limits and its RLIMIT_AS."""
    limits = [mb for mb in (cgroup_limit_mb(pid), _address_space_limit_mb(pid)) if mb is not None]
    return min(limits) if limits else None


def cgroup_limit_mb(pid: int | str = "self") -> float | None:
    """The tightest memory limit of the cgroup `pid` is in and of its ancestors, in MiB."""
    found = cgroups.ancestry("memory", pid)
    if found is None:
        return None
    directories, version = found
    name = "memory.limit_in_bytes" if version == 1 else "memory.max"
    limits = []
    for directory in directories:
        try:
            raw = (directory / name).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # "max"; v1 says "no limit" with a huge number
            limits.append(int(raw))
    return round(min(limits) / _MB, 1) if limits else None


def _address_space_limit_mb(pid: int | str) -> float | None:
    if pid == "self":
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)  # prlimit is Linux-only
    else:
        soft, _ = resource.prlimit(int(pid), resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else round(soft / _MB, 1)


def level(mb: float, settings: Settings) -> str:
    """The seed service's alert levels: normal < attention < warning."""
    if mb >= settings.memory_warning_mb:
        return "warning"
    if mb >= settings.memory_attention_mb:
        return "attention"
    return "normal"


def report(settings: Settings) -> MemoryReport:
    """Memory as the response reports it; the level is judged on the invocation's peak."""
    peak = peak_rss_mb()
    return MemoryReport(
        peak_rss_mb=peak, rss_mb=rss_mb(), level=level(peak, settings), limit_mb=limit_mb()
    )


def release() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc keeps it otherwise)."""
    gc.collect()
    allocator.trim()
