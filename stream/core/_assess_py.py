"""Pure-Python twin of the compiled assessment kernel (ext/assess.pyx): same API, same results.

Written for exactness rather than speed: every amount is a ``Decimal`` computed straight from the
formulas of README.md "The assessment" (KZT, rounded half up to the tiyn), so the parity tests compare the
compiled integer arithmetic against an independent formulation.
"""
from __future__ import annotations

import decimal
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from stream.core.fixed import (
    COMBINE_AD_VALOREM,
    COMBINE_MAX,
    COMBINE_SPECIFIC,
    MAX_LINE_TIYN,
    REGIME_EXCESS,
    STATUS_MISSING_VOLUME,
    STATUS_OK,
    STATUS_OUT_OF_RANGE,
    UNIT_KG,
    UNIT_LITRE,
    UNIT_PAIR,
    UNIT_PIECE,
    format_tiyn,
)

MAX_LINE_TIYN_VALUE = MAX_LINE_TIYN

# Products of three inputs reach ~10**40: far beyond the default 28 digits.
_CONTEXT = decimal.Context(prec=100, rounding=ROUND_HALF_UP, Emax=999999, Emin=-999999)
_TIYN = Decimal("0.01")
_HUNDRED = Decimal(100)
_MAX_KZT = Decimal(MAX_LINE_TIYN) / _HUNDRED


def _d(micro_value) -> Decimal:
    """int64 micro-units as an exact Decimal."""
    return Decimal(int(micro_value)).scaleb(-6)


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(_TIYN, rounding=ROUND_HALF_UP, context=_CONTEXT)


def _tiyn(amount: Decimal) -> int:
    return int(amount * _HUNDRED)


def _value(qty, price6, fx6) -> Decimal | None:
    """round(qty * unit_price * fx) in KZT, or None when out of range."""
    value = _round(_CONTEXT.multiply(_CONTEXT.multiply(Decimal(int(qty)), _d(price6)), _d(fx6)))
    return None if value > _MAX_KZT else value


def _units(unit, qty, unit_weight6, unit_volume6) -> Decimal | None:
    """Quantity in the tariff unit; None when litres are needed and the volume is unknown."""
    if unit == UNIT_KG:
        return Decimal(int(qty)) * _d(unit_weight6)
    if unit in (UNIT_PIECE, UNIT_PAIR):
        return Decimal(int(qty))
    if unit == UNIT_LITRE:
        return None if unit_volume6 < 0 else Decimal(int(qty)) * _d(unit_volume6)
    return Decimal(0)


def _ints(*arrays):
    return [np.asarray(array).tolist() for array in arrays]


def line_values(qty, price6, fx6):
    n = len(qty)
    value = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int8)
    for i, (q, p, f) in enumerate(zip(*_ints(qty, price6, fx6))):
        line_value = _value(q, p, f)
        if line_value is None:
            status[i] = STATUS_OUT_OF_RANGE
        else:
            value[i] = _tiyn(line_value)
    return value, status


def warehouse_lines(qty, price6, fx6, unit_weight6, unit_volume6, ad_valorem_pct6, specific_eur6,
                    specific_unit, combine, excise_kzt6, excise_unit, eur_fx6, vat_pct6):
    n = len(qty)
    out = {name: np.zeros(n, dtype=np.int64) for name in ("value", "duty", "excise", "vat")}
    status = np.zeros(n, dtype=np.int8)
    columns = _ints(qty, price6, fx6, unit_weight6, unit_volume6, ad_valorem_pct6, specific_eur6, specific_unit,
                    combine, excise_kzt6, excise_unit, eur_fx6, vat_pct6)
    for i, (q, p, f, w, vol, adv, spec, spec_unit, comb, exc, exc_unit, eur, vat_pct) in enumerate(zip(*columns)):
        status[i] = _warehouse_line(out, i, q, p, f, w, vol, adv, spec, spec_unit, comb, exc, exc_unit, eur, vat_pct)
    return out["value"], out["duty"], out["excise"], out["vat"], status


def _warehouse_line(out, i, qty, price6, fx6, unit_weight6, unit_volume6, adv_pct6, spec_eur6, spec_unit, combine,
                    excise_kzt6, excise_unit, eur_fx6, vat_pct6) -> int:
    value = _value(qty, price6, fx6)
    if value is None:
        return STATUS_OUT_OF_RANGE
    spec_units = _units(spec_unit, qty, unit_weight6, unit_volume6)
    excise_units = _units(excise_unit, qty, unit_weight6, unit_volume6)
    if spec_units is None or excise_units is None:
        return STATUS_MISSING_VOLUME
    ad_valorem = _round(_CONTEXT.multiply(value, _d(adv_pct6)) / _HUNDRED)
    specific = Decimal(0)
    if combine != COMBINE_AD_VALOREM:
        specific = _round(_CONTEXT.multiply(_CONTEXT.multiply(_d(spec_eur6), _d(eur_fx6)), spec_units))
    if combine == COMBINE_AD_VALOREM:
        duty = ad_valorem
    elif combine == COMBINE_SPECIFIC:
        duty = specific
    elif combine == COMBINE_MAX:
        duty = max(ad_valorem, specific)
    else:
        duty = ad_valorem + specific
    excise = _round(_CONTEXT.multiply(_d(excise_kzt6), excise_units))
    if duty > _MAX_KZT or excise > _MAX_KZT:
        return STATUS_OUT_OF_RANGE
    vat = _round(_CONTEXT.multiply(value + duty + excise, _d(vat_pct6)) / _HUNDRED)
    if vat > _MAX_KZT:
        return STATUS_OUT_OF_RANGE
    out["value"][i] = _tiyn(value)
    out["duty"][i] = _tiyn(duty)
    out["excise"][i] = _tiyn(excise)
    out["vat"][i] = _tiyn(vat)
    return STATUS_OK


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` by largest remainder (ties: earlier line).

    All weights zero: everything to the first line. The parts always sum to ``total``.
    """
    if not weights:
        return []
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [total] + [0] * (len(weights) - 1)
    parts = [total * weight // weight_sum for weight in weights]
    leftover = total - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight_sum), i))
    for i in by_remainder[:leftover]:
        parts[i] += 1
    return parts


def parcel_orders(line_value, qty, unit_weight6, offsets, eur_fx6, regime, threshold_eur6, threshold_kg6,
                  duty_pct6, min_eur_per_kg6, vat_pct6):
    m = len(offsets) - 1
    duty = np.zeros(m, dtype=np.int64)
    vat = np.zeros(m, dtype=np.int64)
    status = np.zeros(m, dtype=np.int8)
    line_duty = np.zeros(len(line_value), dtype=np.int64)
    line_vat = np.zeros(len(line_value), dtype=np.int64)
    values, quantities, weights6, bounds = _ints(line_value, qty, unit_weight6, offsets)
    line_weight6 = [q * w for q, w in zip(quantities, weights6)]
    per_order = _ints(eur_fx6, regime, threshold_eur6, threshold_kg6, duty_pct6, min_eur_per_kg6, vat_pct6)
    for order, (eur, reg, thr_eur, thr_kg, pct, per_kg, vat_pct) in enumerate(zip(*per_order)):
        start, stop = bounds[order], bounds[order + 1]
        total_value = Decimal(sum(values[start:stop])) / _HUNDRED  # KZT, exact
        total_weight = _d(sum(line_weight6[start:stop]))  # kg
        eur_kzt = _d(eur)
        threshold = _d(thr_eur) * eur_kzt
        order_duty = order_vat = Decimal(0)
        if reg == REGIME_EXCESS:
            excess_value = max(Decimal(0), total_value - threshold)
            excess_weight = max(Decimal(0), total_weight - _d(thr_kg)) if thr_kg >= 0 else Decimal(0)
            order_duty = _round(max(_CONTEXT.multiply(_d(pct) / _HUNDRED, excess_value),
                                    _CONTEXT.multiply(_CONTEXT.multiply(_d(per_kg), eur_kzt), excess_weight)))
        elif total_value > threshold:
            order_duty = _round(max(_CONTEXT.multiply(_d(pct) / _HUNDRED, total_value),
                                    _CONTEXT.multiply(_CONTEXT.multiply(_d(per_kg), eur_kzt), total_weight)))
            order_vat = _round(_CONTEXT.multiply(_d(vat_pct) / _HUNDRED, total_value + order_duty))
        if order_duty > _MAX_KZT or order_vat > _MAX_KZT:
            status[order] = STATUS_OUT_OF_RANGE
            continue
        duty[order] = _tiyn(order_duty)
        vat[order] = _tiyn(order_vat)
        basis = values[start:stop] if sum(values[start:stop]) > 0 else line_weight6[start:stop]
        line_duty[start:stop] = allocate(int(duty[order]), basis)
        line_vat[start:stop] = allocate(int(vat[order]), basis)
    return duty, vat, line_duty, line_vat, status


def format_tiyn_column(amounts) -> list[str]:
    return [format_tiyn(amount) for amount in np.asarray(amounts).tolist()]
