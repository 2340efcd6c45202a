"""Exact money at the boundary (stream/money.py): KZT amounts as text <-> integer tiyn."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.money import format_tiyn, parse_tiyn

GRAMMAR = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]{1,2})?")  # what parse_tiyn accepts as text (the README's money)


def reference(text: str) -> int | None:
    """The amount in tiyn by Decimal arithmetic, or None where the grammar refuses it."""
    if GRAMMAR.fullmatch(text) is None:
        return None
    return int(Decimal(text) * 100)


amounts = st.one_of(
    st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{0,3})?", fullmatch=True),
    st.integers(min_value=-10**18, max_value=10**18).map(lambda t: format_tiyn(t)),
    st.text(alphabet="0123456789.-+ e٣", max_size=12),
    st.sampled_from(["0.00", "00.00", "0.0", "1.", ".50", "-0.00", "1.234", "1e3", " 1.00", "1.00 ", "١.٠٠",
                     "12345678901234567890.99"]),
)


@settings(max_examples=3000, deadline=None)
@given(amounts)
def test_text_amounts_parse_exactly_or_are_refused(text):
    expected = reference(text)
    if expected is None:
        with pytest.raises(ValueError):
            parse_tiyn(text)
    else:
        assert parse_tiyn(text) == expected


@given(st.integers(min_value=-10**18, max_value=10**18))
def test_format_and_parse_round_trip(tiyn):
    assert parse_tiyn(format_tiyn(tiyn)) == tiyn


def test_decimals_and_refusals():
    assert parse_tiyn(Decimal("12.5")) == 1250
    for bad in (1.5, 12, True, None, Decimal("0.001"), Decimal("NaN")):
        with pytest.raises((TypeError, ValueError)):
            parse_tiyn(bad)
