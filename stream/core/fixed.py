"""Fixed-point conventions shared by the kernels and their callers.

Inputs enter the kernels as int64 "micro" numbers (value * 10**6: prices, rates, weights, rates in
percent) and amounts leave them as int64 tiyn (KZT * 100). Keeping every boundary integral is what
lets the compiled kernel and the Decimal twin agree to the tiyn.
"""
from __future__ import annotations

# the conversions live in stream/money.py (one copy for every caller); re-exported beside the kernel constants
from stream.money import MICRO, format_micro, format_tiyn, micro, parse_micro  # noqa: F401

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
