"""Price and weight indices: DDSketches per (tariff code, origin), code, (heading, origin) and heading,
kept as integer bins.

Why DDSketch (the `ddsketch` package, Datadog) rather than Apache DataSketches KLL (`datasketches`):
measured here on 200,000 log-normal prices, both answer a median within 1% (DDSketch 0.98% by
construction, KLL k=200 0.3%), both merge, and both update fast (2.2M vs 1.3M values/s from Python),
but a DDSketch is a deterministic function of its bins: a value lands in bin
``key = ceil(log_gamma(value))`` and quantiles depend on bin counts alone. So a changelog record can
carry the bins a declaration added (a value bin and a weight bin per index key) instead of a serialised sketch, a
replay rebuilds exactly the sketch the live agent had (same quantiles, same scores, same hits), and a
snapshot is a dict of integer counts. KLL compacts with random coin flips, so its state can only be
shipped as opaque blobs, and a replay of the values would not reproduce it. Its relative error also
fits prices, which span five orders of magnitude across tariff codes.

Values enter in integer units (tiyn per unit of goods, micro-kg per unit); bins and counts are
integers in state and records. Quantiles come back as floats from the sketch and are only compared
with, or rounded to, exact amounts at the scorer's boundary.
"""
from __future__ import annotations

import math

from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

# Part of the state format: a record's bin keys mean something only under this accuracy.
RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_NO_BIN = None


def bin_of(value: int) -> int:
    """The sketch bin of a positive integer value (values under 1 count as 1)."""
    return _MAPPING.key(float(max(value, 1)))


class Index:
    """A quantile sketch of one index plus its bin counts (what snapshots and records carry)."""

    __slots__ = ("sketch", "bins", "_quantiles")

    def __init__(self):
        self.sketch = DDSketch(RELATIVE_ACCURACY)
        self.bins: dict[int, int] = {}
        self._quantiles: tuple[float, float] | None = None

    @property
    def count(self) -> int:
        return int(self.sketch.count)

    def add_bin(self, key: int, count: int = 1) -> None:
        self.sketch.add(_MAPPING.value(key), count)
        self.bins[key] = self.bins.get(key, 0) + count
        self._quantiles = None

    def merge(self, other: "Index") -> None:
        """Fold another index in (indices learned on different partitions or workers)."""
        for key, count in other.bins.items():
            self.add_bin(key, count)

    def upper_quartiles(self) -> tuple[float, float]:
        """(median, 75th percentile), each within 1% of the true value: what the indicators read (the
        lower half holds undetected frauds, see `log_spread`)."""
        if self._quantiles is None:
            q = self.sketch.get_quantile_value
            self._quantiles = (q(0.5), q(0.75))
        return self._quantiles


def log_spread(quartiles: tuple[float, float], floor: float) -> float:
    """A robust standard deviation of log values from the upper half alone (median to 75th percentile is
    0.6745 sigma of a normal). Fraud pushes declared values and weights down only, so the lower half of
    an index fed by the stream holds its undetected frauds; the upper half stays honest."""
    median, p75 = quartiles
    return max((math.log(p75) - math.log(median)) / 0.6745, floor)


# The fallback chain, most specific first: the code from this origin, the code from anywhere, the
# heading from this origin, the heading from anywhere. The first with enough samples is the index.
LEVELS = ("code+origin", "code", "heading+origin", "heading")


class Indices:
    """All indices of a partition, by key: ``"c:<code>|<origin>"``, ``"c:<code>|*"``, ``"h:<heading>|<origin>"``
    and ``"h:<heading>|*"``."""

    def __init__(self):
        self.values: dict[str, Index] = {}   # tiyn per unit
        self.weights: dict[str, Index] = {}  # micro-kg per unit

    @staticmethod
    def keys(hs_code: str, origin: str) -> tuple[str, str, str, str]:
        """The index keys of a line, in the order of LEVELS (a 4-digit code is its own heading)."""
        heading = hs_code[:4]
        return f"c:{hs_code}|{origin}", f"c:{hs_code}|*", f"h:{heading}|{origin}", f"h:{heading}|*"

    def pick(self, table: dict[str, Index], hs_code: str, origin: str, min_samples: int) -> tuple[str, Index] | None:
        """(level, index): the most specific index with at least ``min_samples``; None when none has."""
        for level, key in zip(LEVELS, self.keys(hs_code, origin)):
            index = table.get(key)
            if index is not None and index.count >= min_samples:
                return level, index
        return None

    def add(self, key: str, value_bin: int | None, weight_bin: int | None) -> None:
        """Learn one line's bins (None: that fact is not learned, e.g. it was found suspicious)."""
        for table, b in ((self.values, value_bin), (self.weights, weight_bin)):
            if b is None:
                continue
            index = table.get(key)
            if index is None:
                index = table[key] = Index()
            index.add_bin(b)

    def snapshot(self) -> dict:
        return {"values": {k: _pairs(i.bins) for k, i in self.values.items()},
                "weights": {k: _pairs(i.bins) for k, i in self.weights.items()}}

    def restore(self, snap: dict) -> None:
        for name, table in (("values", self.values), ("weights", self.weights)):
            for key, pairs in snap.get(name, {}).items():
                index = table.get(key)
                if index is None:
                    index = table[key] = Index()
                for b, count in pairs:
                    index.add_bin(int(b), int(count))


def _pairs(bins: dict[int, int]) -> list[list[int]]:
    return [[b, c] for b, c in sorted(bins.items())]
