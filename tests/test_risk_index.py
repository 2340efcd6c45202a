"""The risk indices' quantiles (stream/audit/risk_index.py) are DDSketch's own: an `Index` answers exactly what a
`ddsketch.DDSketch` holding the same bins answers, after every add, in any order, merged or restored."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.audit.risk_index import Index, Indices, bin_of, reference_sketch

values = st.integers(min_value=-5, max_value=10**13)
adds = st.lists(st.tuples(values, st.integers(min_value=1, max_value=5)), min_size=1, max_size=120)


def reference(bins: dict[int, int]) -> tuple[float, float]:
    sketch = reference_sketch(bins)
    return sketch.get_quantile_value(0.5), sketch.get_quantile_value(0.75)


@settings(max_examples=300, deadline=None)
@given(adds, st.integers(min_value=1, max_value=7))
def test_quartiles_equal_ddsketch_after_every_add(pairs, ask_every):
    index = Index()
    for n, (value, count) in enumerate(pairs):
        index.add_bin(bin_of(value), count)
        if n % ask_every == 0 or n == len(pairs) - 1:  # asked now and then, as the scorer does
            expected = reference(index.bins)
            if n % 2:  # the median alone first (what the scorer asks while a line is not far under it)
                assert index.median() == expected[0]
            assert index.upper_quartiles() == expected
            assert index.median() == expected[0]
            assert index.count == sum(index.bins.values())


@settings(max_examples=100, deadline=None)
@given(adds, adds)
def test_merged_and_restored_indices_answer_alike(first, second):
    a, b = Index(), Index()
    for value, count in first:
        a.add_bin(bin_of(value), count)
    a.upper_quartiles()  # its quantile positions are kept across the merge
    for value, count in second:
        b.add_bin(bin_of(value), count)
    a.merge(b)
    assert a.upper_quartiles() == reference(a.bins)
    indices = Indices()
    indices.values["k"] = a
    restored = Indices()
    restored.restore(indices.snapshot())
    assert restored.values["k"].upper_quartiles() == a.upper_quartiles()
    assert restored.values["k"].bins == a.bins


def test_a_spread_index_steps_to_far_bins():
    index = Index()
    for value in (1, 10**12, 10**12, 5):
        index.add_bin(bin_of(value))
        assert index.upper_quartiles() == reference(index.bins)
    for _ in range(50):
        index.add_bin(bin_of(1))
    assert index.upper_quartiles() == reference(index.bins)
    assert index.upper_quartiles()[0] == pytest.approx(1.0, rel=0.011)


# -- the compiled indices (ext/riskindex.pyx) against their twin (stream/audit/_risk_index_py.py) -------------

from stream import _backend  # noqa: E402
from stream.audit import _risk_index_py as twin  # noqa: E402
from stream.audit import risk_index  # noqa: E402

try:
    from stream.audit import _risk_index as compiled
except ImportError:  # a pure-Python run; the guard below fails where it must be built
    compiled = None
needs_compiled = pytest.mark.skipif(compiled is None, reason="compiled indices not built")


def test_the_compiled_indices_are_used_unless_pure_python_is_asked_for():
    expected = "python" if _backend.PURE_PYTHON else "compiled"
    assert _backend.backend("risk_index") == expected, "is stream.audit._risk_index built?"
    assert (risk_index.Index is twin.Index) == _backend.PURE_PYTHON


operations = st.lists(st.one_of(
    st.tuples(st.just("add"), values, st.integers(min_value=1, max_value=5)),
    st.tuples(st.just("median"), st.none(), st.none()),
    st.tuples(st.just("quartiles"), st.none(), st.none()),
), min_size=1, max_size=150)


@needs_compiled
@settings(max_examples=500, deadline=None)
@given(operations)
def test_the_compiled_index_answers_as_its_twin_step_by_step(ops):
    fast, slow = compiled.Index(), twin.Index()
    for op, value, count in ops:
        if op == "add":
            fast.add_bin(bin_of(value), count)
            slow.add_bin(bin_of(value), count)
        elif slow.count:
            assert (fast.median() if op == "median" else fast.upper_quartiles()) == (
                slow.median() if op == "median" else slow.upper_quartiles())
        assert fast.count == slow.count and fast.bins == slow.bins
    if slow.count:
        assert fast.upper_quartiles() == slow.upper_quartiles() == reference(slow.bins)


rows = st.lists(st.tuples(st.sampled_from(["c:1|CN", "c:1|*", "h:0001|CN", "h:0001|*", "c:2|DE"]),
                          st.none() | st.integers(0, 2100), st.none() | st.integers(0, 2100)), max_size=60)


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(rows, st.integers(min_value=1, max_value=5))
def test_the_compiled_indices_learn_pick_and_snapshot_as_their_twin(body, min_samples):
    fast, slow = compiled.Indices(), twin.Indices()
    fast.add_rows([list(r) for r in body])
    slow.add_rows([list(r) for r in body])
    assert fast.snapshot() == slow.snapshot()
    for table in ("values", "weights"):
        for code, origin in (("1", "CN"), ("2", "DE"), ("3", "KZ")):
            got = fast.pick(getattr(fast, table), code, origin, min_samples)
            expected = slow.pick(getattr(slow, table), code, origin, min_samples)
            assert (got is None) == (expected is None)
            if got is not None:
                assert got[0] == expected[0] and got[1].upper_quartiles() == expected[1].upper_quartiles()
    restored = compiled.Indices()
    restored.restore(slow.snapshot())
    assert restored.snapshot() == slow.snapshot()
