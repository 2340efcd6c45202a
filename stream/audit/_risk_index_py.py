"""The price and weight indices in pure Python: the twin of ext/riskindex.pyx (stream.audit._risk_index), which
tests/test_risk_index.py holds equal to it and to DDSketch. See stream/audit/risk_index.py."""
from __future__ import annotations

from bisect import bisect_left, insort

from stream.audit.risk_bins import LEVELS, QUANTILES, bin_value, index_keys, stored_bin


class Index:
    """One index: its bin counts (what snapshots and records carry) and the DDSketch quantiles of them.

    The quantiles are DDSketch's own (``DDSketch.get_quantile_value``: the lowest stored bin whose running
    count exceeds ``q * (count - 1)``, answered as the bin's representative value), kept incrementally: each
    quantile remembers its bin and the running count there, an added bin at or under it moves that count,
    and a query steps from there to the answer (a bin or two), instead of DDSketch's scan of every bin from
    the lowest on each query and its float bookkeeping on each add."""

    __slots__ = ("bins", "count", "_stored", "_keys", "_at", "_median", "_quantiles")

    def __init__(self):
        self.bins: dict[int, int] = {}     # record bin -> count
        self.count = 0
        self._stored: dict[int, int] = {}  # stored bin -> count
        self._keys: list[int] = []         # stored bins, ascending
        self._at: list[list[int]] = []     # per quantile: [stored bin, running count up to it], once asked
        self._median: float | None = None
        self._quantiles: tuple[float, float] | None = None

    def add_bin(self, key: int, count: int = 1) -> None:
        bins = self.bins
        bins[key] = bins.get(key, 0) + count
        stored = stored_bin(key)
        counts = self._stored
        held = counts.get(stored)
        if held is None:
            insort(self._keys, stored)
            counts[stored] = count
        else:
            counts[stored] = held + count
        self.count += count
        at = self._at
        if at:
            median, p75 = at
            if stored <= median[0]:
                median[1] += count
            if stored <= p75[0]:
                p75[1] += count
        self._median = self._quantiles = None

    def merge(self, other: "Index") -> None:
        """Fold another index in (indices learned on different partitions or workers)."""
        for key, count in other.bins.items():
            self.add_bin(key, count)

    def _quantile(self, which: int, q: float) -> float:
        keys, counts = self._keys, self._stored
        if not self._at:
            self._at = [[keys[0], counts[keys[0]]] for _ in QUANTILES]
        at = self._at[which]
        rank = q * (self.count - 1)
        pos = bisect_left(keys, at[0])
        running = at[1]
        while running - counts[keys[pos]] > rank:  # a lower bin's running count exceeds the rank already
            running -= counts[keys[pos]]
            pos -= 1
        while running <= rank:
            pos += 1
            running += counts[keys[pos]]
        at[0], at[1] = keys[pos], running
        return bin_value(keys[pos])

    def median(self) -> float:
        """The median, within 1% of the true value (what `upper_quartiles` starts with)."""
        if self._median is None:
            self._median = self._quantile(0, QUANTILES[0])
        return self._median

    def upper_quartiles(self) -> tuple[float, float]:
        """(median, 75th percentile), each within 1% of the true value: what the indicators read (the
        lower half holds undetected frauds, see `log_spread`)."""
        if self._quantiles is None:
            self._quantiles = (self.median(), self._quantile(1, QUANTILES[1]))
        return self._quantiles


class Indices:
    """All indices of a partition, by key: ``"c:<code>|<origin>"``, ``"c:<code>|*"``, ``"h:<heading>|<origin>"``
    and ``"h:<heading>|*"``."""

    def __init__(self):
        self.values: dict[str, Index] = {}   # tiyn per unit
        self.weights: dict[str, Index] = {}  # micro-kg per unit

    keys = staticmethod(index_keys)

    def pick(self, table: dict[str, Index], hs_code: str, origin: str, min_samples: int) -> tuple[str, Index] | None:
        """(level, index): the most specific index with at least ``min_samples``; None when none has."""
        for level, key in zip(LEVELS, self.keys(hs_code, origin)):
            index = table.get(key)
            if index is not None and index.count >= min_samples:
                return level, index
        return None

    def add(self, key: str, value_bin: int | None, weight_bin: int | None) -> None:
        """Learn one line's bins (None: that fact is not learned, e.g. it was found suspicious)."""
        self.add_rows(((key, value_bin, weight_bin),))

    def add_rows(self, rows) -> None:
        """`add` for each (key, value bin, weight bin) of a record body's ``index``."""
        values, weights = self.values, self.weights
        for key, value_bin, weight_bin in rows:
            if value_bin is not None:
                index = values.get(key)
                if index is None:
                    index = values[key] = Index()
                index.add_bin(value_bin)
            if weight_bin is not None:
                index = weights.get(key)
                if index is None:
                    index = weights[key] = Index()
                index.add_bin(weight_bin)

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
