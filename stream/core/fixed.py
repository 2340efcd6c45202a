"""Fixed-point conventions shared by the kernels and their callers.

Inputs enter the kernels as int64 "micro" numbers (value * 10**6: prices, rates, weights, rates in
percent) and amounts leave them as int64 tiyn (KZT * 100). Keeping every boundary integral is what
lets the compiled kernel and the Decimal twin agree to the tiyn.
"""
from __future__ import annotations

import re

MICRO = 10**6
# An amount per line above this (10^13 KZT) is rejected as absurd rather than computed.
MAX_LINE_TIYN = 10**15

# Kernel status codes per line / per order.
STATUS_OK = 0
STATUS_OUT_OF_RANGE = 1
STATUS_MISSING_VOLUME = 2

# Unit codes of tariff rows (specific duty and excise).
UNIT_NONE, UNIT_KG, UNIT_PIECE, UNIT_PAIR, UNIT_LITRE = 0, 1, 2, 3, 4
UNIT_CODES = {"": UNIT_NONE, "kg": UNIT_KG, "piece": UNIT_PIECE, "pair": UNIT_PAIR, "litre": UNIT_LITRE}

# How a tariff row's parts combine into the duty.
COMBINE_AD_VALOREM, COMBINE_SPECIFIC, COMBINE_MAX, COMBINE_SUM = 0, 1, 2, 3

# Parcel regimes.
REGIME_EXCESS = 1  # duty on the value/weight above the thresholds, no separate VAT (EEC 107/2017)
REGIME_WHOLE_VALUE = 2  # above the value threshold, duty on the whole value plus VAT (from 2026-07-01)

_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,6})?$")


def micro(text: str) -> int:
    """A validated non-negative decimal string with at most 6 decimals as integer micro-units."""
    whole, _, fraction = text.partition(".")
    if fraction:
        return int(whole) * MICRO + int(fraction.ljust(6, "0"))
    return int(whole) * MICRO


def parse_micro(text: str, what: str) -> int:
    """Like micro() but validates first: for data files, where input is not schema-checked."""
    if not _DECIMAL.match(text):
        raise ValueError(f"{what}: {text!r} is not a non-negative decimal with at most 6 decimals")
    return micro(text)


def format_tiyn(tiyn: int) -> str:
    """Integer tiyn as a KZT decimal string with two places ("1234.05")."""
    if tiyn < 0:
        return "-" + format_tiyn(-tiyn)
    return f"{tiyn // 100}.{tiyn % 100:02d}"


def format_micro(value: int, min_places: int = 2) -> str:
    """Integer micro-units as the shortest decimal string with at least ``min_places`` decimals."""
    whole, fraction = divmod(value, MICRO)
    digits = f"{fraction:06d}".rstrip("0").ljust(min_places, "0")
    return f"{whole}.{digits}" if digits else str(whole)
