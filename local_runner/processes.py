"""An instance is a process tree: how much memory it holds, who serves a port, how to end it.

Processes are read through psutil. The one thing psutil does not give is the kernel's per-process
high-water mark (VmHWM, VmPeak in /proc/PID/status) and its reset (proc(5) clear_refs), which the
peaks below need; those two are read and written by hand.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from function.memory import status_kb

_MB = 1024 * 1024


def tree(pid: int) -> list[psutil.Process]:
    """`pid` and every descendant, root first; empty once `pid` is gone.

    A functions-framework instance is two processes, gunicorn's master (which imports the
    function) and the worker it forks to serve; both count against the instance's memory limit.
    """
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@dataclass(frozen=True)
class TreeMemory:
    """One sample of an instance's memory, summed over its processes, in MiB.

    RSS summed counts the pages a forked worker still shares with gunicorn's master twice, so
    it errs high. PSS (proportional set size) splits each shared page between the processes
    that map it, so the tree's PSS is what the instance really holds, as the platform's memory
    accounting counts it; USS is what each process holds alone (what ending it would free).
    """

    rss_mb: dict[int, float]  # per process, root first
    total_rss_mb: float
    pss_mb: float  # summed over the tree: the instance's memory
    uss_mb: dict[int, float]  # per process
    peak_mb: float  # sum of each process's VmHWM (each may have peaked at another moment)
    vm_peak_mb: float  # the largest address space any one process reached (what RLIMIT_AS caps)


def sample(pid: int) -> TreeMemory | None:
    """The memory of `pid` and its descendants now; None once `pid` is gone."""
    rss, uss, pss, statuses = {}, {}, 0, []
    for process in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            info = process.memory_full_info()  # PSS/USS from /proc/PID/smaps_rollup
            status = status_kb(process.pid)
            rss[process.pid] = round(info.rss / _MB, 1)
            uss[process.pid] = round(info.uss / _MB, 1)
            pss += info.pss
            statuses.append(status)
    if pid not in rss:
        return None
    return TreeMemory(
        rss_mb=rss,
        total_rss_mb=round(sum(rss.values()), 1),
        pss_mb=round(pss / _MB, 1),
        uss_mb=uss,
        peak_mb=tree_peak_mb(statuses),
        vm_peak_mb=round(max(s.get("VmPeak", 0) for s in statuses) / 1024, 1),
    )


def tree_peak_mb(statuses: list[dict[str, int]]) -> float:
    return round(sum(s.get("VmHWM", 0) for s in statuses) / 1024, 1)


def peak_mb(pid: int) -> float | None:
    """The summed high-water marks of the tree alone: cheap enough to sample every 20 ms."""
    statuses = [status_kb(process.pid) for process in tree(pid)]
    statuses = [status for status in statuses if status]
    return tree_peak_mb(statuses) if statuses else None


def cpu_percent(processes: dict[int, psutil.Process], pid: int) -> dict[int, float]:
    """CPU use of each process of the tree since the previous call with the same `processes`
    (100 = one CPU); a process seen for the first time reports from now on."""
    current = [process.pid for process in tree(pid)]  # root first
    for gone in set(processes) - set(current):
        del processes[gone]
    found = {}
    for child in current:
        process = processes.setdefault(child, psutil.Process(child))
        with contextlib.suppress(psutil.NoSuchProcess):
            found[child] = process.cpu_percent(None)
    return found


def reset_peaks(pid: int) -> bool:
    """Start new high-water marks for the whole tree (proc(5) clear_refs); False if refused."""
    try:
        for process in tree(pid):
            Path(f"/proc/{process.pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def listening_pid(port: int) -> int | None:
    """The root of the processes listening on TCP `port` (gunicorn's master, not its worker).

    psutil names one owner per socket, and the master and the worker share theirs, so walk up
    from that owner while the parent listens on the port too.
    """
    owners = [
        connection.pid
        for connection in psutil.net_connections(kind="tcp")
        if connection.status == psutil.CONN_LISTEN
        and connection.laddr
        and connection.laddr.port == port
        and connection.pid is not None
    ]
    roots = []
    for owner in owners:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process = psutil.Process(owner)
            while (parent := process.parent()) is not None and _listens(parent, port):
                process = parent
            roots.append(process.pid)
    return min(roots) if roots else None


def _listens(process: psutil.Process, port: int) -> bool:
    try:
        connections = process.net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def end_group(pgid: int, pids: list[int], grace_seconds: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace_seconds`; return once `pids` are gone.

    Polled rather than psutil.wait_procs: that would reap the runner's own child, whose exit
    code the runner still has to read through its Popen.
    """
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not any(alive(pid) for pid in pids):
            return


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
