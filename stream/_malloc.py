"""The C allocator's settings for a long-running worker (glibc's `mallopt`).

A worker churns large short-lived buffers (changelog records of ~200 KB, snapshot parts of MBs, fetch
buffers). glibc raises its mmap threshold after the first large free (up to 32 MB), so later buffers come
from the heap arenas (one per thread; the Kafka client runs its own) and leave holes that are not given
back: over a 30-minute soak the worker's RSS grew 57% while the Python objects it held stayed flat
(tracemalloc). A fixed mmap threshold and trim threshold of 128 KB, and two arenas, return such buffers to
the system when they are freed: the same soak stayed flat within 5% (README, "Memory").

`CUSTOMS_MALLOC`: `bounded` (those settings, the default) or `glibc` (glibc's own). It became the default
once the continuity guard (stream/runtime/continuity.py) saw a partition's first message dropped: a
SIGKILL-and-recover test of the tax-free worker had failed with it 2 runs in 3 (a stalled input partition
after the restart), and passed 6 of 6 with it after that fix, as did the other real-broker recovery
tests. Whatever the `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_` or `MALLOC_TRIM_THRESHOLD_` environment
variables set (glibc reads them at start) is left alone; another C library (musl, macOS) is left alone too.
"""
from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

# glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

BOUNDED = {M_MMAP_THRESHOLD: 128 * 1024, M_TRIM_THRESHOLD: 128 * 1024, M_ARENA_MAX: 2}
ENVIRONMENT = {M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_", M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_",
               M_ARENA_MAX: "MALLOC_ARENA_MAX"}
MODES = ("bounded", "glibc")


def tune(mode: str, environ=os.environ) -> dict[int, int]:
    """Apply ``mode`` (CUSTOMS_MALLOC) to this process's allocator; returns the settings applied."""
    mode = mode.strip().lower()
    if mode not in MODES:
        raise ValueError(f"CUSTOMS_MALLOC={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "glibc":
        return {}
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: its allocator is not this one
        log.debug("no mallopt in this C library: allocator left as it is")
        return {}
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = {}
    for param, value in BOUNDED.items():
        if ENVIRONMENT[param] in environ:
            continue  # the operator's own setting, already read by glibc
        if mallopt(param, value) == 1:
            applied[param] = value
    return applied
