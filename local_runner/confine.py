"""What makes a process tree an emulated instance: pinned CPUs, a memory limit, no orphans.

Both `serve` (one instance of functions-framework) and `backfill` (one instance per task) start
their processes through `confinement`: pinned to N CPUs with sched_setaffinity, killed if the
runner dies (PR_SET_PDEATHSIG), and held to the memory limit in one of two ways:

- RLIMIT_AS (default, any Linux, no privileges): each process's address space is capped at the
  limit. Address space is always at least resident memory, so this is stricter than the
  platform's limit on resident memory: an instance that passes here fits there. Nothing is
  killed: an allocation over the limit fails (MemoryError, a 503 from the function, a library
  that cannot load), and the runner treats an unrecoverable failure as the instance's death
  (`MEMORY_FAILURES` in its output).
- a memory cgroup (`--cgroup`, root or a delegated cgroup): the platform's own mechanism,
  resident memory plus /dev/shm and /tmp, enforced by the kernel's OOM killer.

glibc reserves 64 MiB of address space per thread for malloc arenas; the runner sets
MALLOC_ARENA_MAX=2 in the instance's environment so the address space tracks what is really used.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Callable

from .cgroup import MemoryCgroup

# Output that means an allocation failed where nothing recovers from it.
MEMORY_FAILURES = (
    "MemoryError",
    "Cannot allocate memory",
    "failed to map segment from shared object",
    "std::bad_alloc",
    "can't start new thread",
    "Perhaps out of memory",
)
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def confinement(
    cpus: list[int], limit_bytes: int, cgroup: MemoryCgroup | None
) -> Callable[[], None]:
    """The `preexec_fn` that puts a child into the emulated instance: pinned to `cpus`, held to
    the memory limit (the cgroup's, or RLIMIT_AS), and killed if the runner dies."""

    def enter_instance() -> None:  # runs in the child, between fork and exec
        os.sched_setaffinity(0, cpus)
        if cgroup is not None:
            cgroup.join()
        else:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # no orphan if the runner is killed

    return enter_instance
