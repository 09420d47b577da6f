"""Resident memory of this process: now, at peak, the instance's limit and headroom, the level.

The peak is per invocation, not since start: Linux lets a process reset its own high-water mark
by writing "5" to /proc/self/clear_refs (proc(5)). psutil reads memory but has no such reset (nor
the high-water mark VmHWM it resets), so the peak is read from /proc/self/status and reset
through clear_refs. Where that is not possible (not Linux, or a sandbox without it) the peak
falls back to the process's lifetime peak from getrusage.
"""

from __future__ import annotations

import gc
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

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
    return round(psutil.Process().memory_info().rss / _MB, 1)


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
    limited = _limited_cgroup(pid)
    return None if limited is None else round(limited[1] / _MB, 1)


def _limited_cgroup(pid: int | str) -> tuple[tuple[Path, int], int] | None:
    """(the group with the tightest memory limit and the cgroup version, that limit in bytes)."""
    found = cgroups.ancestry("memory", pid)
    if found is None:
        return None
    directories, version = found
    name = "memory.limit_in_bytes" if version == 1 else "memory.max"
    tightest = None
    for directory in directories:
        try:
            raw = (directory / name).read_text().strip()
        except OSError:
            continue
        # "max" (v2) or a huge number (v1) means no limit
        limit = int(raw) if raw.isdigit() and int(raw) < 1 << 60 else None
        if limit is not None and (tightest is None or limit < tightest[1]):
            tightest = ((directory, version), limit)
    return tightest


def headroom_mb() -> tuple[float, float, str] | None:
    """(MiB left before the instance's limit, MiB used, how it is counted); None: no limit.

    Used is counted as the limit counts it: for a memory cgroup (the platform's limit), the
    group's charge less the page cache the kernel can reclaim first (the working set, as
    cAdvisor and the kubelet count it); for RLIMIT_AS (the local runner's default), this
    process's address space. With both, the tighter headroom wins.
    """
    found = []
    limited = _limited_cgroup("self")
    if limited is not None:
        (directory, version), limit = limited
        used = _cgroup_working_set(directory, version)
        if used is not None:
            found.append(((limit - used) / _MB, used / _MB, "cgroup working set"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = psutil.Process().memory_info().vms
        found.append(((soft - used) / _MB, used / _MB, "address space (RLIMIT_AS)"))
    if not found:
        return None
    left, used, how = min(found)
    return round(left, 1), round(used, 1), how


def _cgroup_working_set(directory: Path, version: int) -> int | None:
    usage, inactive_file = (
        ("memory.usage_in_bytes", "total_inactive_file")
        if version == 1
        else ("memory.current", "inactive_file")
    )
    try:
        used = int((directory / usage).read_text())
        stat = (directory / "memory.stat").read_text().split("\n")
    except (OSError, ValueError):
        return None
    for line in stat:
        key, _, value = line.partition(" ")
        if key == inactive_file:
            return max(0, used - int(value))
    return used


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
