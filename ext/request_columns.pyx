# Compiled columns of validated assessment requests, for the engine (stream/declaration/engine.py). Twin:
# stream/declaration/_columns_py.py (same API, same results; tests/test_reader_writer.py holds them equal).
#
# One pass over a batch of validated documents: per line the integer facts the kernel takes (qty, and the
# decimal strings as micro-units), the strings the engine and the writer need, and per order its distinct
# currencies in the order its lines name them (the order of the `fx` object of its assessment).

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

cnp.import_array()

cdef extern from "Python.h":
    bint PyUnicode_CheckExact(object o)
    bint PyUnicode_IS_ASCII(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)

cdef object K_LINES = "lines", K_QTY = "qty", K_PRICE = "unit_price", K_WEIGHT = "unit_weight_kg"
cdef object K_VOLUME = "unit_volume_l", K_CURRENCY = "currency", K_HS = "hs_code", K_SKU = "sku"

cdef int64_t[7] _SCALE = [1000000, 100000, 10000, 1000, 100, 10, 1]


cdef int64_t _micro(object text) except -1:
    """A validated decimal string (at most 9 integer digits, 6 decimals) as micro-units."""
    cdef Py_ssize_t n, i
    cdef const unsigned char *s
    cdef int64_t whole = 0, fraction = 0
    cdef int places = 0
    if not PyUnicode_CheckExact(text) or not PyUnicode_IS_ASCII(text):
        raise ValueError(f"{text!r} is not a validated decimal string")
    n = PyUnicode_GET_LENGTH(text)
    s = <const unsigned char *>PyUnicode_DATA(text)
    i = 0
    while i < n and s[i] != 46:
        if s[i] < 48 or s[i] > 57 or i >= 12:
            raise ValueError(f"{text!r} is not a validated decimal string")
        whole = whole * 10 + (s[i] - 48)
        i += 1
    if i == 0:
        raise ValueError(f"{text!r} is not a validated decimal string")
    if i < n:
        i += 1
        while i < n:
            if s[i] < 48 or s[i] > 57 or places >= 6:
                raise ValueError(f"{text!r} is not a validated decimal string")
            fraction = fraction * 10 + (s[i] - 48)
            places += 1
            i += 1
        if places == 0:
            raise ValueError(f"{text!r} is not a validated decimal string")
    return whole * 1000000 + fraction * _SCALE[places]


cdef inline object _get(dict d, object key):
    cdef PyObject *v = PyDict_GetItem(d, key)
    if v == NULL:
        return None
    return <object>v


def request_columns(list docs):
    """(line_counts, qty, price6, weight6, volume6, lines, currency, hs_code, sku, currencies) of
    validated assessment-request/1 documents: int64 arrays (volume6 -1 when a line gives none), the
    lines themselves and their currency, hs_code (None when absent) and sku, and per order the tuple
    of its distinct currencies in the order of its lines."""
    cdef Py_ssize_t m = len(docs), n = 0, k, i = 0, j
    cdef dict line
    for doc in docs:
        n += len(<list>(<dict>doc)[K_LINES])
    counts = np.empty(m, dtype=np.int64)
    qty = np.empty(n, dtype=np.int64)
    price6 = np.empty(n, dtype=np.int64)
    weight6 = np.empty(n, dtype=np.int64)
    volume6 = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] c_counts = counts, c_qty = qty, c_price = price6, c_weight = weight6, c_volume = volume6
    lines = [None] * n
    currency = [None] * n
    hs_code = [None] * n
    sku = [None] * n
    currencies = [None] * m
    cdef list seen
    for k in range(m):
        doc_lines = <list>(<dict>docs[k])[K_LINES]
        c_counts[k] = len(doc_lines)
        seen = []
        for item in doc_lines:
            line = <dict>item
            lines[i] = line
            c_qty[i] = line[K_QTY]
            c_price[i] = _micro(line[K_PRICE])
            c_weight[i] = _micro(line[K_WEIGHT])
            volume = _get(line, K_VOLUME)
            c_volume[i] = -1 if volume is None else _micro(volume)
            code = line[K_CURRENCY]
            currency[i] = code
            for j in range(len(seen)):
                if seen[j] == code:
                    break
            else:
                seen.append(code)
            hs_code[i] = _get(line, K_HS)
            sku[i] = line[K_SKU]
            i += 1
        currencies[k] = tuple(seen)
    return counts, qty, price6, weight6, volume6, lines, currency, hs_code, sku, currencies


def line_rates(list rates, const int64_t[::1] line_counts, list currency):
    """Per line, the rate of its currency in its order's ``rates`` (a dict currency -> fx6 per order)."""
    cdef Py_ssize_t k, i = 0, c
    out = np.empty(len(currency), dtype=np.int64)
    cdef int64_t[::1] c_out = out
    cdef dict order_rates
    for k in range(line_counts.shape[0]):
        order_rates = <dict>rates[k]
        for c in range(line_counts[k]):
            c_out[i] = order_rates[currency[i]]
            i += 1
    return out
