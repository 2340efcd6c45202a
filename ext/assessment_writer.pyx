# Compiled writer of assessment/1 JSON lines from the engine's columns. Twin:
# stream/declaration/_writer_py.py (builds the dicts and serialises them with orjson.dumps); the two are
# held equal byte for byte (tests/test_reader_writer.py). Output is compact JSON exactly as orjson.dumps
# writes it: a string that needs an escape (a quote, a backslash, a control character) is written by
# orjson itself, every other string is copied as UTF-8.

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from libc.stdint cimport int64_t

import orjson

cdef object _dumps = orjson.dumps


cdef struct Buf:
    char *data
    Py_ssize_t size
    Py_ssize_t cap


cdef int _grow(Buf *b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = b.cap
    cdef char *data
    if b.size + extra <= cap:
        return 0
    while b.size + extra > cap:
        cap = cap * 2 + 64
    data = <char *>realloc(b.data, cap)
    if data == NULL:
        raise MemoryError()
    b.data = data
    b.cap = cap
    return 0


cdef inline int _raw(Buf *b, const char *s, Py_ssize_t n) except -1:
    if b.size + n > b.cap:
        _grow(b, n)
    memcpy(b.data + b.size, s, n)
    b.size += n
    return 0


cdef int _str(Buf *b, object value) except -1:
    """A JSON string (or null for None), as orjson writes it."""
    cdef Py_ssize_t n, i
    cdef const char *s
    cdef unsigned char c
    cdef bytes dumped
    if value is None:
        return _raw(b, "null", 4)
    s = PyUnicode_AsUTF8AndSize(value, &n)
    for i in range(n):
        c = <unsigned char>s[i]
        if c < 32 or c == 34 or c == 92:
            dumped = _dumps(value)
            return _raw(b, dumped, len(dumped))
    _grow(b, n + 2)
    b.data[b.size] = 34
    memcpy(b.data + b.size + 1, s, n)
    b.data[b.size + n + 1] = 34
    b.size += n + 2
    return 0


cdef int _tiyn(Buf *b, int64_t amount) except -1:
    """An amount in tiyn as a JSON string of KZT with two decimals ("1234.05", "-0.50"), as
    stream.money.format_tiyn writes it."""
    cdef char digits[24]
    cdef int n = 0, i
    cdef bint negative = amount < 0
    cdef unsigned long long value = <unsigned long long>(-amount) if negative else <unsigned long long>amount
    digits[n] = <char>(48 + value % 10)
    value //= 10
    digits[n + 1] = <char>(48 + value % 10)
    value //= 10
    n = 2
    while True:
        digits[n] = <char>(48 + value % 10)
        n += 1
        value //= 10
        if value == 0:
            break
    _grow(b, n + 4)
    b.data[b.size] = 34
    b.size += 1
    if negative:
        b.data[b.size] = 45
        b.size += 1
    for i in range(n - 1, 1, -1):
        b.data[b.size] = digits[i]
        b.size += 1
    b.data[b.size] = 46
    b.data[b.size + 1] = digits[1]
    b.data[b.size + 2] = digits[0]
    b.data[b.size + 3] = 34
    b.size += 4
    return 0


cdef inline int _key(Buf *b, const char *key) except -1:
    """`,"key":` with the comma (keys are ASCII literals without escapes)."""
    cdef Py_ssize_t n = 0
    while key[n] != 0:
        n += 1
    return _raw(b, key, n)


def assessment_lines(list rows, list order_id, list flow, list declared_at, list rule_set, list fx,
                     const int64_t[::1] customs_value, const int64_t[::1] duty, const int64_t[::1] excise,
                     const int64_t[::1] vat, const int64_t[::1] total, list flags, list starts, list stops,
                     list sku, list hs_code, list hs_source, const int64_t[::1] line_value,
                     const int64_t[::1] line_duty, const int64_t[::1] line_excise, const int64_t[::1] line_vat):
    """One assessment/1 JSON line (ending in a newline) for each order index in ``rows``.

    Per order k: order_id, flow, declared_at, rule_set, fx (a dict currency -> rate text), the five
    totals in tiyn (int64 arrays), flags (a list of strings) and its lines starts[k]:stops[k]; per line:
    sku, hs_code, hs_source and the four amounts in tiyn (int64 arrays). Amounts are written as
    stream.money.format_tiyn writes them."""
    cdef Buf b
    cdef Py_ssize_t k, i, start, stop
    cdef bint first
    out = []
    b.data = <char *>malloc(4096)
    if b.data == NULL:
        raise MemoryError()
    b.cap = 4096
    try:
        for row in rows:
            k = row
            b.size = 0
            _key(&b, '{"schema":"assessment/1","order_id":')
            _str(&b, order_id[k])
            _key(&b, ',"flow":')
            _str(&b, flow[k])
            _key(&b, ',"declared_at":')
            _str(&b, declared_at[k])
            _key(&b, ',"rule_set":')
            _str(&b, rule_set[k])
            _key(&b, ',"currency":"KZT","fx":{')
            first = True
            for currency, rate in (<dict>fx[k]).items():
                if not first:
                    _raw(&b, ",", 1)
                first = False
                _str(&b, currency)
                _raw(&b, ":", 1)
                _str(&b, rate)
            _key(&b, '},"customs_value":')
            _tiyn(&b, customs_value[k])
            _key(&b, ',"duty":')
            _tiyn(&b, duty[k])
            _key(&b, ',"excise":')
            _tiyn(&b, excise[k])
            _key(&b, ',"vat":')
            _tiyn(&b, vat[k])
            _key(&b, ',"total":')
            _tiyn(&b, total[k])
            _key(&b, ',"lines":[')
            start = starts[k]
            stop = stops[k]
            for i in range(start, stop):
                if i != start:
                    _raw(&b, ",", 1)
                _key(&b, '{"sku":')
                _str(&b, sku[i])
                _key(&b, ',"hs_code":')
                _str(&b, hs_code[i])
                _key(&b, ',"hs_source":')
                _str(&b, hs_source[i])
                _key(&b, ',"value":')
                _tiyn(&b, line_value[i])
                _key(&b, ',"duty":')
                _tiyn(&b, line_duty[i])
                _key(&b, ',"excise":')
                _tiyn(&b, line_excise[i])
                _key(&b, ',"vat":')
                _tiyn(&b, line_vat[i])
                _raw(&b, "}", 1)
            _key(&b, '],"flags":[')
            first = True
            for flag in <list>flags[k]:
                if not first:
                    _raw(&b, ",", 1)
                first = False
                _str(&b, flag)
            _raw(&b, "]}\n", 3)
            out.append(PyBytes_FromStringAndSize(b.data, b.size))
    finally:
        free(b.data)
    return out
