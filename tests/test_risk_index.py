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
