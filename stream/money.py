"""Money, exactly: the one place that turns decimal strings into integer minor units and back.

Every domain speaks KZT as decimal strings with two places at its boundaries (`"1234.05"`) and
keeps integer tiyn (KZT x 100) or `Decimal` inside; rates, prices and weights enter the kernels as
integer micro-units (x 10**6). Rounding is half up everywhere (the contracts say so). A float is
never money: every function here refuses one with `TypeError`, so a float that slips past a
boundary fails loudly instead of becoming a wrong tiyn.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

MICRO = 10**6
TIYN_PER_KZT = 100

_CONTEXT = Context(prec=60)
_CENT = Decimal("0.01")
_AMOUNT = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]{1,2}))?").fullmatch
_CANONICAL = re.compile(r"(?:0|[1-9][0-9]*)\.[0-9]{2}").fullmatch  # non-negative, two places
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]{1,6}))?").fullmatch


def _refuse_float(value: object, what: str) -> None:
    if isinstance(value, float) or isinstance(value, bool):
        raise TypeError(f"{what}: {type(value).__name__} is not money (use a decimal string or Decimal)")


# -- KZT amounts <-> tiyn ------------------------------------------------------------------------

def parse_tiyn(amount: str | Decimal) -> int:
    """An exact KZT amount (``"123.45"``, ``"-7.5"``, ``"12"``, or a Decimal with at most two
    places) as integer tiyn. Anything else (a float, an int, more than two places) is an error:
    an integer where tiyn are expected is ambiguous (KZT or tiyn?), so it is refused, not scaled."""
    if amount.__class__ is str and _CANONICAL(amount) is not None:  # the common case: what format_tiyn writes
        return int(amount.replace(".", "", 1))
    if isinstance(amount, str):
        m = _AMOUNT(amount)
        if m is None:
            raise ValueError(f"{amount[:40]!r} is not a KZT amount with at most two decimals")
        sign, whole, frac = m.groups()
        tiyn = int(whole) * TIYN_PER_KZT + (int(frac.ljust(2, "0")) if frac else 0)
        return -tiyn if sign else tiyn
    if isinstance(amount, Decimal):
        if not amount.is_finite():
            raise ValueError(f"{amount} is not a finite amount")
        scaled = amount * TIYN_PER_KZT
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{amount} has more than two decimals")
        return int(scaled)
    _refuse_float(amount, "amount")
    raise TypeError(f"amount: {type(amount).__name__} is not a KZT amount (use a decimal string or Decimal)")


def format_tiyn(tiyn: int) -> str:
    """Integer tiyn as a KZT decimal string with two places (``"1234.05"``, ``"-0.50"``)."""
    if type(tiyn) is int and tiyn >= 0:  # the common case first (a bool is not an int here)
        return f"{tiyn // 100}.{tiyn % 100:02d}"
    if not isinstance(tiyn, int) or isinstance(tiyn, bool):
        _refuse_float(tiyn, "tiyn")
        raise TypeError(f"tiyn must be an int, not {type(tiyn).__name__}")
    if tiyn < 0:
        return "-" + format_tiyn(-tiyn)
    return f"{tiyn // 100}.{tiyn % 100:02d}"


def format_kzt(tiyn: int) -> str:
    """Integer tiyn for people: thousands grouped by spaces (``"1 234 567.05"``), as Kazakhstan writes them."""
    text = format_tiyn(tiyn)
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}.{frac}".replace(",", " ")


def to_decimal(tiyn: int) -> Decimal:
    """Integer tiyn as an exact Decimal in KZT."""
    return Decimal(format_tiyn(tiyn))


def round_tiyn(amount: Decimal) -> int:
    """A KZT Decimal rounded half up to the tiyn, as integer tiyn."""
    if not isinstance(amount, Decimal):
        _refuse_float(amount, "amount")
        amount = Decimal(amount)
    return int(amount.quantize(_CENT, rounding=ROUND_HALF_UP, context=_CONTEXT) * TIYN_PER_KZT)


def round_kzt(amount: Decimal) -> Decimal:
    """A KZT Decimal rounded half up to two places."""
    return to_decimal(round_tiyn(amount))


def percent_of(tiyn: int, pct: Decimal | str, places: int = 2) -> int:
    """``round_half_up(tiyn * pct / 100)`` in tiyn, exact (``pct`` a Decimal or decimal string)."""
    pct = Decimal(pct) if isinstance(pct, str) else pct
    return round_tiyn(_CONTEXT.divide(_CONTEXT.multiply(Decimal(tiyn), pct), Decimal(100 * TIYN_PER_KZT)))


def share_pct(part: Decimal, whole: Decimal, places: int = 2) -> Decimal:
    """``part / whole x 100`` rounded half up to ``places`` decimals (``whole`` must not be 0)."""
    quantum = Decimal(1).scaleb(-places)
    return _CONTEXT.divide(_CONTEXT.multiply(part, Decimal(100)), whole).quantize(
        quantum, rounding=ROUND_HALF_UP, context=_CONTEXT)


# -- micro-units (prices, rates, weights in the kernels) -----------------------------------------

def micro(text: str) -> int:
    """A validated non-negative decimal string with at most 6 decimals as integer micro-units."""
    whole, _, fraction = text.partition(".")
    if fraction:
        return int(whole) * MICRO + int(fraction.ljust(6, "0"))
    return int(whole) * MICRO


def parse_micro(text: str, what: str) -> int:
    """Like `micro` but validates first: for data files, where input is not schema-checked."""
    if not isinstance(text, str) or _DECIMAL(text) is None:
        raise ValueError(f"{what}: {text!r} is not a non-negative decimal with at most 6 decimals")
    return micro(text)


def format_micro(value: int, min_places: int = 2) -> str:
    """Integer micro-units as the shortest decimal string with at least ``min_places`` decimals."""
    whole, fraction = divmod(value, MICRO)
    digits = f"{fraction:06d}".rstrip("0").ljust(min_places, "0")
    return f"{whole}.{digits}" if digits else str(whole)


def micro_product_tiyn(units: int, price_micro: int, rate_micro: int) -> int:
    """``units x price x rate`` (price and rate in micro-units) in tiyn, rounded half up."""
    return (units * price_micro * rate_micro + 5 * 10**9) // 10**10


def decimal_of(text: str, what: str = "amount") -> Decimal:
    """A decimal string as an exact Decimal (no float, no exponent, no NaN)."""
    if not isinstance(text, str):
        _refuse_float(text, what)
        raise TypeError(f"{what}: {type(text).__name__} is not a decimal string")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what}: {text[:40]!r} is not a decimal") from None
    if not value.is_finite() or "e" in text.lower():
        raise ValueError(f"{what}: {text[:40]!r} is not a plain decimal")
    return value
