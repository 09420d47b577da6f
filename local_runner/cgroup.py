"""A memory cgroup for one instance: the platform's own limit, on resident memory.

The kernel charges a cgroup for every page its processes touch, page cache and tmpfs
(/dev/shm, an in-memory /tmp) included, and OOM-kills inside it when the limit is reached:
what Cloud Run does to an instance. The group is created below the runner's own cgroup (v1 or
v2), so the runner never reaches outside the resources it was given. It needs write access
there (root, or a delegated cgroup) and, on v2, the memory controller enabled for children.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from function import cgroups

_MB = 1024 * 1024


class CgroupUnavailable(RuntimeError):
    """This machine does not let the runner create a memory cgroup; the message says why."""


class MemoryCgroup:
    """A child memory cgroup with a hard limit and no swap; remove() deletes it."""

    def __init__(self, name: str, limit_bytes: int) -> None:
        self.path, self.version = _create(name)
        self.limit_bytes = limit_bytes
        try:
            if self.version == 1:
                self._write("memory.limit_in_bytes", limit_bytes)
                if (self.path / "memory.memsw.limit_in_bytes").exists():  # swap accounting on
                    self._write("memory.memsw.limit_in_bytes", limit_bytes)
            else:
                self._write("memory.max", limit_bytes)
                if (self.path / "memory.swap.max").exists():
                    self._write("memory.swap.max", 0)
        except OSError as exc:
            self.remove()
            raise CgroupUnavailable(f"cannot set the limit in {self.path}: {exc}") from None

    def _write(self, name: str, value: int | str) -> None:
        (self.path / name).write_text(str(value))

    def _read(self, name: str) -> str:
        return (self.path / name).read_text()

    def join(self) -> None:
        """Move the calling process in; used between fork and exec, so every descendant is in."""
        self._write("cgroup.procs", os.getpid())

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer has killed in this group."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in self._read(name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak_mb(self) -> float | None:
        """The group's peak charge (resident + page cache + tmpfs), if the kernel reports it."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return round(int(self._read(name)) / _MB, 1)
        except (OSError, ValueError):
            return None

    def pids(self) -> list[int]:
        try:
            return [int(pid) for pid in self._read("cgroup.procs").split()]
        except OSError:
            return []

    def remove(self) -> None:
        """Kill anything left inside and delete the group (bounded wait)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # EBUSY until the killed processes are reaped
                time.sleep(0.05)


def _create(name: str) -> tuple[Path, int]:
    """mkdir the group under this process's own memory cgroup (v1, or v2)."""
    found = cgroups.ancestry("memory")
    if found is None:
        raise CgroupUnavailable("no memory cgroup is mounted (neither v1 nor v2)")
    (parent, *_), version = found
    if version == 2:
        _enable_v2_memory_controller(parent)
    path = parent / name
    try:
        path.mkdir()
    except OSError as exc:
        raise CgroupUnavailable(
            f"cannot create {path}: {exc.strerror}. Run as root or in a delegated cgroup."
        ) from None
    return path, version


def _enable_v2_memory_controller(parent: Path) -> None:
    control = parent / "cgroup.subtree_control"
    try:
        if "memory" not in control.read_text().split():
            control.write_text("+memory")
    except OSError as exc:
        raise CgroupUnavailable(
            f"cannot enable the memory controller in {control}: {exc.strerror}. cgroup v2 "
            "allows it only in a group without processes of its own; start the runner in a "
            "delegated one, e.g. `systemd-run --user --scope -p Delegate=yes python -m "
            "local_runner serve --cgroup ...`."
        ) from None
