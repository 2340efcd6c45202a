# cython: language_level=3, boundscheck=False, wraparound=False
# The risk scorer's price and weight indices, compiled (stream/audit/risk_index.py chooses the backend).
# Twin: stream/audit/_risk_index_py.py, the same algorithm line by line; tests/test_risk_index.py holds the
# two equal, operation by operation, and both equal to DDSketch's own quantiles.
#
# What compiling buys: a line teaches 8 indices (4 keys, value and weight), so an agent applies ~13 bins
# per declaration and asks a median or two; in Python each of those is a dozen interpreted steps. Here the
# per-index bookkeeping (bin counts, the sorted stored bins, the two quantiles' running positions) runs as
# C over the same Python dicts and lists the snapshots read.

cimport cython
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject

from stream.audit.risk_bins import LEVELS, QUANTILES, bin_value, index_keys, stored_bin
from stream.audit.risk_bins import _STORED, _VALUES  # the memos stored_bin and bin_value fill

cdef tuple _LEVELS = tuple(LEVELS)  # the four keys of a line, most specific first (risk_bins.index_keys)
cdef double Q_MEDIAN = QUANTILES[0]
cdef double Q_UPPER = QUANTILES[1]


cdef inline object _memoized(dict memo, object key, object compute):
    """``compute(key)``, read from the memo it fills without a Python call once it is there."""
    cdef PyObject *found = PyDict_GetItem(memo, key)
    if found != NULL:
        return <object>found
    return compute(key)


cdef Py_ssize_t _bisect_left(list keys, long key):
    cdef Py_ssize_t lo = 0, hi = PyList_GET_SIZE(keys), mid
    while lo < hi:
        mid = (lo + hi) // 2
        if <long><object>PyList_GET_ITEM(keys, mid) < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef class Index:
    """One index: its bin counts (what snapshots and records carry) and the DDSketch quantiles of them,
    kept incrementally (see the twin, stream/audit/_risk_index_py.py)."""

    cdef public dict bins      # record bin -> count
    cdef public long count
    cdef dict _stored          # stored bin -> count
    cdef list _keys            # stored bins, ascending
    cdef bint _asked           # the quantiles' positions are kept once a quantile was asked
    cdef long _at_bin[2]       # per quantile: its stored bin ...
    cdef long _at_running[2]   # ... and the running count up to it
    cdef object _median
    cdef object _quantiles

    def __init__(self):
        self.bins = {}
        self.count = 0
        self._stored = {}
        self._keys = []
        self._asked = False
        self._median = None
        self._quantiles = None

    cpdef add_bin(self, object key, long count=1):
        cdef PyObject *held = PyDict_GetItem(self.bins, key)
        PyDict_SetItem(self.bins, key, count if held == NULL else <object>held + count)
        stored = _memoized(_STORED, key, stored_bin)
        held = PyDict_GetItem(self._stored, stored)
        if held == NULL:
            self._keys.insert(_bisect_left(self._keys, stored), stored)
            PyDict_SetItem(self._stored, stored, count)
        else:
            PyDict_SetItem(self._stored, stored, <object>held + count)
        self.count += count
        cdef long at = stored
        if self._asked:
            if at <= self._at_bin[0]:
                self._at_running[0] += count
            if at <= self._at_bin[1]:
                self._at_running[1] += count
        self._median = None
        self._quantiles = None

    def merge(self, Index other):
        """Fold another index in (indices learned on different partitions or workers)."""
        for key, count in other.bins.items():
            self.add_bin(key, count)

    @cython.boundscheck(True)  # the steps stay in the list by the counts' invariants; if broken, IndexError, not a crash
    @cython.wraparound(True)
    cdef object _quantile(self, int which, double q):
        cdef list keys = self._keys
        cdef dict counts = self._stored
        cdef Py_ssize_t pos
        cdef long running
        cdef double rank
        if not self._asked:
            if not keys:
                raise IndexError("an empty index has no quantile")
            for i in range(2):
                self._at_bin[i] = keys[0]
                self._at_running[i] = counts[keys[0]]
            self._asked = True
        rank = q * (self.count - 1)
        pos = _bisect_left(keys, self._at_bin[which])
        running = self._at_running[which]
        while running - <long>counts[keys[pos]] > rank:  # a lower bin's running count exceeds the rank already
            running -= <long>counts[keys[pos]]
            pos -= 1
        while running <= rank:
            pos += 1
            running += <long>counts[keys[pos]]
        self._at_bin[which] = keys[pos]
        self._at_running[which] = running
        return _memoized(_VALUES, keys[pos], bin_value)

    def median(self):
        """The median, within 1% of the true value (what `upper_quartiles` starts with)."""
        if self._median is None:
            self._median = self._quantile(0, Q_MEDIAN)
        return self._median

    def upper_quartiles(self):
        """(median, 75th percentile), each within 1% of the true value."""
        if self._quantiles is None:
            self._quantiles = (self.median(), self._quantile(1, Q_UPPER))
        return self._quantiles


cdef class Indices:
    """All indices of a partition, by key: ``"c:<code>|<origin>"``, ``"c:<code>|*"``, ``"h:<heading>|<origin>"``
    and ``"h:<heading>|*"``."""

    cdef public dict values   # tiyn per unit
    cdef public dict weights  # micro-kg per unit

    def __init__(self):
        self.values = {}
        self.weights = {}

    keys = staticmethod(index_keys)

    def pick(self, dict table, str hs_code, str origin, long min_samples):
        """(level, index): the most specific index with at least ``min_samples``; None when none has."""
        cdef tuple keys = index_keys(hs_code, origin)
        cdef PyObject *found
        cdef Py_ssize_t i
        for i in range(4):
            found = PyDict_GetItem(table, keys[i])
            if found != NULL and (<Index>found).count >= min_samples:
                return _LEVELS[i], <Index>found
        return None

    def add(self, key, value_bin, weight_bin):
        """Learn one line's bins (None: that fact is not learned, e.g. it was found suspicious)."""
        self.add_rows(((key, value_bin, weight_bin),))

    def add_rows(self, rows):
        """`add` for each (key, value bin, weight bin) of a record body's ``index``."""
        for key, value_bin, weight_bin in rows:
            if value_bin is not None:
                _learn(self.values, key, value_bin)
            if weight_bin is not None:
                _learn(self.weights, key, weight_bin)

    def snapshot(self):
        return {"values": {k: _pairs(i.bins) for k, i in self.values.items()},
                "weights": {k: _pairs(i.bins) for k, i in self.weights.items()}}

    def restore(self, dict snap):
        for name, table in (("values", self.values), ("weights", self.weights)):
            for key, pairs in snap.get(name, {}).items():
                index = table.get(key)
                if index is None:
                    index = table[key] = Index()
                for b, count in pairs:
                    index.add_bin(int(b), int(count))


cdef int _learn(dict table, object key, object bin) except -1:
    """Add a bin to the table's index of ``key`` (a new index for a new key)."""
    cdef PyObject *found = PyDict_GetItem(table, key)
    cdef Index index
    if found == NULL:
        index = Index()
        table[key] = index
    else:
        index = <Index>found
    index.add_bin(bin)
    return 0


def _pairs(dict bins):
    return [[b, c] for b, c in sorted(bins.items())]
