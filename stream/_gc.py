"""Pausing the cyclic garbage collector around batch work.

A batch allocates ~10^5 acyclic objects (parsed documents, result dicts); the generational
collections they trigger scan the whole heap, cost a third or more of the batch's time and free
nothing that reference counting does not free anyway. Measured in bench: `bench core --only cli`.
"""
from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def gc_paused():
    if not gc.isenabled():  # nested, or paused by the caller
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
