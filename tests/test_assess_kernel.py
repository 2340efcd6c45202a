"""The compiled assessment kernel against its Decimal twin, to the tiyn, on random input and on the
boundaries of every rule."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream import _backend
from stream.core import _assess_py as twin
from stream.core import assess, fixed

try:
    compiled = importlib.import_module("stream.core._assess")
except ImportError:  # the guard test below says why this must not happen outside pure-Python runs
    compiled = None

needs_compiled = pytest.mark.skipif(compiled is None, reason="compiled kernel not built")

M = fixed.MICRO


def test_compiled_kernel_is_used_unless_pure_python_is_asked_for():
    if _backend.PURE_PYTHON:
        assert assess.backend() == "python"
    else:
        assert compiled is not None, "stream.core._assess is missing: run `make build`"
        assert assess.backend() == "compiled"


@needs_compiled
def test_kernel_constants_match_the_python_side():
    assert compiled.MAX_LINE_TIYN_VALUE == fixed.MAX_LINE_TIYN == twin.MAX_LINE_TIYN_VALUE


# -- strategies ---------------------------------------------------------------------------------

micro_price = st.one_of(st.integers(0, 10**6 * M), st.integers(0, 10**9 * M - 1), st.sampled_from([0, 1, 5 * 10**5, 10**9 * M - 1]))
micro_rate = st.one_of(st.integers(1, 10**6 * M), st.sampled_from([M, 545_100_000, 478_250_000, 3_521_000]))
micro_weight = st.integers(0, 10**5 * M - 1)
quantity = st.one_of(st.integers(1, 20), st.integers(1, 10**6))
percent6 = st.one_of(st.integers(0, 1000 * M), st.sampled_from([0, 5 * M, 10 * M, 12 * M, 15 * M, 16 * M]))
eur6 = st.integers(0, 10_000 * M)
unit = st.integers(0, 4)
excise_unit = st.sampled_from([0, 1, 2, 4])
volume = st.one_of(st.just(-1), st.integers(0, 10**5 * M - 1))


@st.composite
def warehouse_batch(draw):
    n = draw(st.integers(0, 40))
    def column(strategy):
        return np.array([draw(strategy) for _ in range(n)], dtype=np.int64)
    spec_unit = column(unit)
    combine = np.array([0 if u == 0 else draw(st.integers(1, 3)) for u in spec_unit], dtype=np.int8)
    return dict(
        qty=column(quantity), price6=column(micro_price), fx6=column(micro_rate), unit_weight6=column(micro_weight),
        unit_volume6=column(volume), ad_valorem_pct6=column(percent6), specific_eur6=column(eur6),
        specific_unit=spec_unit.astype(np.int8), combine=combine, excise_kzt6=column(st.integers(0, 10**9 * M)),
        excise_unit=column(excise_unit).astype(np.int8), eur_fx6=column(micro_rate), vat_pct6=column(percent6),
    )


@st.composite
def parcel_batch(draw):
    m = draw(st.integers(0, 12))
    counts = [draw(st.integers(1, 6)) for _ in range(m)]
    n = sum(counts)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    small_value = st.integers(0, 500_000 * 100)  # up to 500,000 KZT: around the EUR 200 threshold
    regime = [draw(st.sampled_from([1, 2])) for _ in range(m)]
    return dict(
        line_value=np.array([draw(st.one_of(small_value, st.integers(0, fixed.MAX_LINE_TIYN))) for _ in range(n)], dtype=np.int64),
        qty=np.array([draw(st.integers(1, 50)) for _ in range(n)], dtype=np.int64),
        unit_weight6=np.array([draw(st.one_of(st.integers(0, 40 * M), micro_weight)) for _ in range(n)], dtype=np.int64),
        offsets=offsets,
        eur_fx6=np.array([draw(micro_rate) for _ in range(m)], dtype=np.int64),
        regime=np.array(regime, dtype=np.int8),
        threshold_eur6=np.array([draw(st.sampled_from([200 * M, 1000 * M, 0])) for _ in range(m)], dtype=np.int64),
        threshold_kg6=np.array([draw(st.sampled_from([31 * M, -1, 0])) for _ in range(m)], dtype=np.int64),
        duty_pct6=np.array([draw(percent6) for _ in range(m)], dtype=np.int64),
        min_eur_per_kg6=np.array([draw(st.integers(0, 10 * M)) for _ in range(m)], dtype=np.int64),
        vat_pct6=np.array([draw(percent6) for _ in range(m)], dtype=np.int64),
    )


def assert_same(left, right):
    assert len(left) == len(right)
    for a, b in zip(left, right):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# -- parity ---------------------------------------------------------------------------------------

@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(warehouse_batch())
def test_warehouse_lines_compiled_equals_twin(batch):
    assert_same(compiled.warehouse_lines(*batch.values()), twin.warehouse_lines(*batch.values()))


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(quantity, micro_price, micro_rate), max_size=40))
def test_line_values_compiled_equals_twin(rows):
    columns = [np.array(column, dtype=np.int64) for column in zip(*rows)] or [np.zeros(0, np.int64)] * 3
    assert_same(compiled.line_values(*columns), twin.line_values(*columns))


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parcel_batch())
def test_parcel_orders_compiled_equals_twin(batch):
    assert_same(compiled.parcel_orders(*batch.values()), twin.parcel_orders(*batch.values()))


@settings(max_examples=200, deadline=None)
@given(parcel_batch())
def test_parcel_line_shares_sum_to_the_order_amounts(batch):
    result = assess.parcel_orders(**batch)
    offsets = batch["offsets"]
    for order, status in enumerate(result.status):
        if status == fixed.STATUS_OK:
            span = slice(offsets[order], offsets[order + 1])
            assert result.line_duty[span].sum() == result.duty[order]
            assert result.line_vat[span].sum() == result.vat[order]
            assert (result.line_duty[span] >= 0).all()


@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**9), min_size=1, max_size=12))
def test_allocation_is_proportional_within_one_tiyn(total, weights):
    parts = twin.allocate(total, weights)
    assert sum(parts) == total
    if sum(weights):
        for part, weight in zip(parts, weights):
            assert abs(part * sum(weights) - total * weight) < sum(weights)


# -- boundaries, each through both backends ------------------------------------------------------

BACKENDS = [pytest.param(twin, id="twin"), pytest.param(compiled, id="compiled", marks=needs_compiled)]
EUR = 500 * M  # a round rate makes the thresholds exact: EUR 200 = 100,000.00 KZT


def parcel(kernel, value_tiyn, weight6, *, regime, threshold_kg6=31 * M, pct6=15 * M, per_kg6=2 * M, vat6=16 * M):
    result = kernel.parcel_orders(
        np.array([value_tiyn], np.int64), np.array([1], np.int64), np.array([weight6], np.int64),
        np.array([0, 1], np.int64), np.array([EUR], np.int64), np.array([regime], np.int8),
        np.array([200 * M], np.int64), np.array([threshold_kg6], np.int64), np.array([pct6], np.int64),
        np.array([per_kg6], np.int64), np.array([vat6], np.int64))
    return int(result[0][0]), int(result[1][0])


@pytest.mark.parametrize("kernel", BACKENDS)
def test_excess_regime_value_threshold(kernel):
    assert parcel(kernel, 100_000_00, 1 * M, regime=1) == (0, 0)  # EUR 200.00: duty-free
    # EUR 200.01 = 100,005.00 KZT: 15% of the 5.00 KZT excess = 0.75 KZT
    assert parcel(kernel, 100_005_00, 1 * M, regime=1) == (75, 0)


@pytest.mark.parametrize("kernel", BACKENDS)
def test_excess_regime_weight_threshold(kernel):
    assert parcel(kernel, 1_000_00, 31 * M, regime=1) == (0, 0)  # 31 kg: duty-free
    # 31.001 kg: EUR 2 per kg of the 0.001 kg excess = EUR 0.002 = 1.00 KZT
    assert parcel(kernel, 1_000_00, 31_001_000, regime=1) == (100, 0)


@pytest.mark.parametrize("kernel", BACKENDS)
def test_excess_regime_takes_the_larger_of_value_and_weight_parts(kernel):
    # EUR 300 and 41 kg: value part 15% * EUR 100 = EUR 15; weight part EUR 2 * 10 = EUR 20
    assert parcel(kernel, 150_000_00, 41 * M, regime=1) == (20 * 500_00, 0)
    # EUR 400 and 32 kg: value part EUR 30 wins over EUR 2
    assert parcel(kernel, 200_000_00, 32 * M, regime=1) == (30 * 500_00, 0)


@pytest.mark.parametrize("kernel", BACKENDS)
def test_whole_value_regime_threshold_and_vat(kernel):
    whole = dict(regime=2, threshold_kg6=-1, pct6=5 * M, per_kg6=1 * M)
    assert parcel(kernel, 100_000_00, 50 * M, **whole) == (0, 0)  # EUR 200.00, any weight: free
    # EUR 200.01: duty on the whole value: max(5% * 100,005.00, EUR 1 * 1 kg = 500.00) = 5,000.25
    duty, vat = parcel(kernel, 100_005_00, 1 * M, **whole)
    assert duty == 5_000_25
    assert vat == round((100_005_00 + 5_000_25) * 16 / 100)  # 16,800.84 exactly: no half to round
    # DOMAIN.md worked example: EUR 350, 5 kg -> max(17.50, 5.00) = EUR 17.50
    assert parcel(kernel, 175_000_00, 5 * M, **whole)[0] == 17_50 * 500


def warehouse_one(kernel, *, qty=1, price6, fx6=M, weight6=0, volume6=-1, adv6=0, spec6=0, spec_unit=0, combine=0,
                  excise6=0, excise_unit=0, eur6=EUR, vat6=16 * M):
    def one(value, dtype=np.int64):
        return np.array([value], dtype=dtype)
    result = kernel.warehouse_lines(one(qty), one(price6), one(fx6), one(weight6), one(volume6), one(adv6), one(spec6),
                                    one(spec_unit, np.int8), one(combine, np.int8), one(excise6), one(excise_unit, np.int8),
                                    one(eur6), one(vat6))
    return tuple(int(column[0]) for column in result)


@pytest.mark.parametrize("kernel", BACKENDS)
def test_combined_max_switches_sides(kernel):
    # 10% but not less than EUR 0.50 per piece; EUR = 500 KZT, so the minimum is 250.00 KZT per piece
    rate = dict(adv6=10 * M, spec6=M // 2, spec_unit=2, combine=2)
    assert warehouse_one(kernel, price6=2_499_990_000, **rate)[1] == 250_00  # 2,499.99 KZT: 249.999 < 250
    assert warehouse_one(kernel, price6=2_500_000_000, **rate)[1] == 250_00  # equal
    assert warehouse_one(kernel, price6=2_500_100_000, **rate)[1] == 250_01  # 250.01 > 250


@pytest.mark.parametrize("kernel", BACKENDS)
def test_combined_sum_adds_both_parts_and_vat_includes_excise(kernel):
    # 10% plus EUR 0.10 per kg on 1,000 KZT and 2 kg; excise 100 KZT per kg
    value, duty, excise, vat, status = warehouse_one(kernel, price6=1000 * M, weight6=2 * M, adv6=10 * M,
                                                     spec6=M // 10, spec_unit=1, combine=3, excise6=100 * M,
                                                     excise_unit=1)
    assert (value, duty, excise, status) == (1000_00, 100_00 + 100_00, 200_00, 0)
    assert vat == (1000_00 + 200_00 + 200_00) * 16 // 100


@pytest.mark.parametrize("kernel", BACKENDS)
def test_half_up_rounding(kernel):
    # 0.005 KZT rounds up to 0.01; 0.0049999 rounds down
    assert warehouse_one(kernel, price6=5_000, vat6=0)[0] == 1
    assert warehouse_one(kernel, price6=4_999, vat6=0)[0] == 0


@pytest.mark.parametrize("kernel", BACKENDS)
def test_litre_rate_needs_a_volume(kernel):
    assert warehouse_one(kernel, price6=M, spec6=M, spec_unit=4, combine=1)[4] == fixed.STATUS_MISSING_VOLUME
    value, duty, *_ , status = warehouse_one(kernel, qty=2, price6=M, volume6=750_000, spec6=M, spec_unit=4, combine=1)
    assert (duty, status) == (750_00, 0)  # 2 x 0.75 l x EUR 1 x 500 KZT = 750.00 KZT


@pytest.mark.parametrize("kernel", BACKENDS)
def test_absurd_amounts_are_out_of_range_not_wrapped(kernel):
    status = warehouse_one(kernel, qty=10**6, price6=10**9 * M - 1, fx6=10**6 * M)[4]
    assert status == fixed.STATUS_OUT_OF_RANGE
    # just under the limit is fine: 10^13 KZT exactly
    assert warehouse_one(kernel, qty=10**4, price6=10**9 * M, vat6=0)[4] == fixed.STATUS_OK


def test_wrapper_rejects_mismatched_columns():
    with pytest.raises(ValueError, match="rows"):
        assess.line_values([1, 2], [1], [1, 1])
    with pytest.raises(ValueError, match="negative"):
        assess.line_values([1], [-1], [1])
