"""Where a process's cgroup is: the directories in which the platform writes its limits.

Reading /sys/fs/cgroup/memory.max is right only for a process at the root of its container. A
process in a nested group (the local runner's, a systemd slice) is limited by its own group and
by every ancestor, so the lookup follows /proc/PID/cgroup below the mount and walks up.
"""

from __future__ import annotations

import os
from pathlib import Path


def ancestry(controller: str, pid: int | str = "self") -> tuple[list[Path], int] | None:
    """The cgroup directories of `pid`, its own first, up to the mount; and the version (1, 2).

    `controller` names the v1 hierarchy ("memory", "cpu"); v2 has one for all. None where no
    such cgroup is mounted (not Linux, or no cgroup filesystem).
    """
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        memberships = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    v1 = v2 = None
    for line in mounts:
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], fields[separator + 3].split(",")
        if fstype == "cgroup" and controller in options:
            v1 = (fields[3], Path(fields[4]))
        elif fstype == "cgroup2" and v2 is None:
            v2 = (fields[3], Path(fields[4]))
    own: dict[str, str] = {}
    for line in memberships:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(","):
            own[name] = path
    if v1 is not None and controller in own:
        return _up_to_mount(v1, own[controller]), 1
    if v2 is not None and "" in own:
        return _up_to_mount(v2, own[""]), 2
    return None


def _up_to_mount(mount: tuple[str, Path], group: str) -> list[Path]:
    root, point = mount
    directory = point / os.path.relpath(group, root)
    return [directory, *(p for p in directory.parents if p.is_relative_to(point))]
