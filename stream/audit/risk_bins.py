"""What an index's bins mean (shared by `stream.audit.risk_index`'s two backends): the DDSketch mapping of
values to integer bins, each bin's representative value, and the keys of a line's indices.

Part of the state format: a record's bin keys mean something only under this accuracy.
"""
from __future__ import annotations

from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
QUANTILES = (0.5, 0.75)  # what the indicators read (upper_quartiles)
# The fallback chain, most specific first: the code from this origin, the code from anywhere, the
# heading from this origin, the heading from anywhere. The first with enough samples is the index.
LEVELS = ("code+origin", "code", "heading+origin", "heading")

_BINS: dict[int, int] = {}  # value -> its bin, a bounded memo: a SKU's unit price and weight recur
_BINS_KEPT = 200_000
_STORED: dict[int, int] = {}  # record bin -> the bin DDSketch stores its representative value in
_VALUES: dict[int, float] = {}  # stored bin -> its representative value (bins span a few thousand keys)
_KEYS: dict[tuple[str, str], tuple[str, str, str, str]] = {}  # (code, origin) -> its keys, a bounded memo
_KEYS_KEPT = 100_000


def bin_of(value: int) -> int:
    """The sketch bin of a positive integer value (values under 1 count as 1)."""
    found = _BINS.get(value)
    if found is None:
        found = MAPPING.key(float(max(value, 1)))
        if len(_BINS) >= _BINS_KEPT:
            _BINS.clear()
        _BINS[value] = found
    return found


def stored_bin(key: int) -> int:
    """Where ``DDSketch.add(mapping.value(key))`` puts a record's bin (the same bin; computed, not assumed)."""
    stored = _STORED.get(key)
    if stored is None:
        value = MAPPING.value(key)
        if not value > MAPPING.min_possible:
            raise ValueError(f"bin {key}: its value {value!r} is below what the sketch maps")
        stored = _STORED[key] = MAPPING.key(value)
    return stored


def bin_value(key: int) -> float:
    """A stored bin's representative value: what DDSketch answers a quantile with."""
    value = _VALUES.get(key)
    if value is None:
        value = _VALUES[key] = MAPPING.value(key)
    return value


def index_keys(hs_code: str, origin: str) -> tuple[str, str, str, str]:
    """The index keys of a line, in the order of LEVELS (a 4-digit code is its own heading)."""
    found = _KEYS.get((hs_code, origin))
    if found is None:
        heading = hs_code[:4]
        found = (f"c:{hs_code}|{origin}", f"c:{hs_code}|*", f"h:{heading}|{origin}", f"h:{heading}|*")
        if len(_KEYS) >= _KEYS_KEPT:
            _KEYS.clear()
        _KEYS[(hs_code, origin)] = found
    return found
