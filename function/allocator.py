"""glibc's allocator, set from inside the process: few arenas, big buffers straight from the OS.

The detector and recogniser allocate and free tens of megabytes per image. By default glibc serves
buffers above a *dynamic* threshold (it rises to 32 MiB after the first large frees) from its
heaps, gives each thread its own heap (8 x cores of them), and keeps freed memory there: resident
memory then climbs with every unlucky sequence of image sizes and never comes back. Fixing the
mmap threshold also fixes it in place (no more dynamic rise), so every buffer above it is mapped
on allocation and unmapped on free; two arenas cap what idle request threads can hold; and
`malloc_trim` after each request hands the heaps' free tops back.

Cloud Run functions' Python runtime cannot LD_PRELOAD another allocator, so this is done with
`mallopt` through ctypes. Where libc is not glibc (macOS, musl) every call here does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

# Buffers above this come from mmap and go back to the OS on free. Lower cuts peaks a little
# more but turns every mid-size tensor into page faults (64 KiB cost ~3x the CPU time).
MMAP_THRESHOLD = 4 * 1024 * 1024
ARENAS = 2


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and libc.mallopt and libc.malloc_trim:
            return libc
    except (OSError, AttributeError):
        pass
    return None


_libc = _glibc()


def configure() -> bool:
    """Apply the settings above; call before the models load. False where there is no glibc."""
    if _libc is None:
        return False
    ok = _libc.mallopt(_M_ARENA_MAX, ARENAS) == 1
    return _libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and ok


def trim() -> None:
    """Return the heaps' free memory to the OS (glibc keeps it otherwise)."""
    if _libc is not None:
        _libc.malloc_trim(0)
