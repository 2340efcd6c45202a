"""The warehouse's columns kernel: the compiled writer of declaration/2 and stock-movement/1 bytes
and the page reservation over arrays (ext/columns.pyx), or its pure-Python twin
(stream/warehouse/_columns_py.py), as stream/_backend.py chooses.

The twin *is* the reference: it builds the documents as dicts and serialises them with
``orjson.dumps``; the compiled writer produces the same bytes without the dicts
(tests/test_stock_columns.py holds the two equal byte for byte on generated pages).
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from stream._backend import backend as _backend_of_name, load_kernel
from stream.warehouse import _columns_py as _twin

kernel: ModuleType = load_kernel("columns", "stream.warehouse._columns", "stream.warehouse._columns_py")


def backend() -> str:
    return _backend_of_name("columns")


_LIMIT = 1 << 62  # columns hold int64: availability beyond this (never seen in practice) takes the twin


def reserve(avail: list[int], slots: list[int], qty: list[int], starts: list[int]) -> list[int]:
    """The page's orders reserved in order over columns (see `_columns_py.reserve`): per order 1
    (reserved) or 0 (it waits); ``avail`` (a list, one entry per slot) is left reduced by what was
    reserved. The compiled kernel runs on int64 arrays; units it cannot hold exactly go to the twin."""
    if kernel is _twin or not starts or len(starts) < 2:
        return _twin.reserve(avail, slots, qty, starts)
    if avail and (min(avail) < -_LIMIT or max(avail) > _LIMIT):
        return _twin.reserve(avail, slots, qty, starts)
    columns = np.array(avail, dtype=np.int64)
    ok = kernel.reserve(columns, np.array(slots, dtype=np.int64), np.array(qty, dtype=np.int64),
                        np.array(starts, dtype=np.int64))
    avail[:] = columns.tolist()
    return ok
