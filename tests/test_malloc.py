"""The worker's allocator settings (stream/_malloc.py): applied on glibc, the operator's own variables
left alone, an unknown mode refused."""
from __future__ import annotations

import ctypes
import platform

import pytest

from stream._malloc import BOUNDED, M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, tune

glibc = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not glibc, reason="mallopt is glibc's")
def test_bounded_applies_every_setting_on_glibc():
    assert tune("bounded", environ={}) == BOUNDED
    assert hasattr(ctypes.CDLL(None), "mallopt")


@pytest.mark.skipif(not glibc, reason="mallopt is glibc's")
def test_the_operators_own_variables_win():
    applied = tune("bounded", environ={"MALLOC_ARENA_MAX": "4", "MALLOC_TRIM_THRESHOLD_": "0"})
    assert applied == {M_MMAP_THRESHOLD: BOUNDED[M_MMAP_THRESHOLD]}
    assert M_ARENA_MAX not in applied and M_TRIM_THRESHOLD not in applied


def test_glibc_leaves_the_allocator_alone():
    assert tune("glibc", environ={}) == {}
    assert tune(" GLIBC ", environ={}) == {}


@pytest.mark.parametrize("mode", ["", "jemalloc", "on", "1"])
def test_an_unknown_mode_is_refused_by_name(mode):
    with pytest.raises(ValueError, match="CUSTOMS_MALLOC"):
        tune(mode, environ={})
