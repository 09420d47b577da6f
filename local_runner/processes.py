"""An instance is a process tree: how much memory it holds, who serves a port, how to end it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from function.memory import status_kb


def tree_status_kb(pid: int) -> dict[int, dict[str, int]]:
    """The Vm* lines (kB) of `pid` and of every descendant, by pid; processes gone are left out.

    A functions-framework instance is two processes, gunicorn's master (which imports the
    function) and the worker it forks to serve; both count against the instance's memory limit.
    """
    found: dict[int, dict[str, int]] = {}
    pending = [pid]
    while pending and len(found) < 1024:  # bounded even if /proc changes under us
        current = pending.pop()
        status = status_kb(current)
        if not status:
            continue
        found[current] = status
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pending.extend(int(child) for child in children.read_text().split())
    return found


@dataclass(frozen=True)
class TreeMemory:
    """One sample of an instance's memory, summed over its processes, in MiB.

    The sum counts pages a forked worker still shares with gunicorn's master twice, so it is
    an upper bound of what the platform charges, never an underestimate.
    """

    rss_mb: dict[int, float]  # per process, root first
    total_rss_mb: float
    peak_mb: float  # sum of each process's VmHWM (each may have peaked at another moment)
    vm_peak_mb: float  # the largest address space any one process reached (what RLIMIT_AS caps)


def sample(pid: int) -> TreeMemory | None:
    """The memory of `pid` and its descendants now; None once `pid` is gone."""
    status = tree_status_kb(pid)
    if pid not in status:
        return None
    return TreeMemory(
        rss_mb={p: round(s.get("VmRSS", 0) / 1024, 1) for p, s in status.items()},
        total_rss_mb=round(sum(s.get("VmRSS", 0) for s in status.values()) / 1024, 1),
        peak_mb=round(sum(s.get("VmHWM", 0) for s in status.values()) / 1024, 1),
        vm_peak_mb=round(max(s.get("VmPeak", 0) for s in status.values()) / 1024, 1),
    )


def reset_peaks(pid: int) -> bool:
    """Start new high-water marks for the whole tree (proc(5) clear_refs); False if refused."""
    try:
        for process in tree_status_kb(pid):
            Path(f"/proc/{process}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def listening_pid(port: int) -> int | None:
    """The root of the processes listening on TCP `port` (gunicorn's master, not its worker)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    owners = {}
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                owners[int(fd_dir.parent.name)] = _parent(int(fd_dir.parent.name))
        except OSError:  # gone, or not ours to read
            continue
    roots = [pid for pid, parent in owners.items() if parent not in owners]
    return min(roots) if roots else None


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def end_group(pgid: int, pids: list[int], grace_seconds: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace_seconds`; return once `pids` are gone."""
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not any(alive(pid) for pid in pids):
            return
