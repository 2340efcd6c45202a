# Compiled columns kernel of the warehouse. Twin: stream/warehouse/_columns_py.py (same API, same results).
#
# declaration() and movement() write the JSON bytes orjson.dumps writes for the twin's dicts, without
# building the dicts: keys in the twin's order, no spaces, strings escaped as orjson escapes them.
# Anything this writer does not write itself (a float, a nested value, a str or int subclass, an int
# outside 64 bits, a string needing an escape) is handed to orjson.dumps, so the bytes (and the
# errors) stay orjson's. tests/test_stock_columns.py holds the two backends equal byte for byte.

import orjson

from libc.stdint cimport int64_t

cdef object _dumps = orjson.dumps
cdef object _MIN_INT = -(1 << 63)
cdef object _MAX_UINT = (1 << 64) - 1


cdef inline bint _plain(str s):
    """True when ``s`` is written as it is between quotes (no escape, no surrogate)."""
    cdef Py_UCS4 c
    for c in s:
        if c < 0x20 or c == 0x22 or c == 0x5C or (0xD800 <= c <= 0xDFFF):
            return False
    return True


cdef inline str _s(object s):
    if type(s) is str and _plain(<str>s):
        return '"' + <str>s + '"'
    return _dumps(s).decode("utf-8")


cdef str _v(object v):
    """One JSON value: str, int, None, bool, and flat dicts/lists of them; anything else via orjson."""
    cdef type t = type(v)
    cdef list parts
    if t is str:
        return _s(v)
    if t is int:
        if _MIN_INT <= v <= _MAX_UINT:
            return str(v)
    elif v is None:
        return "null"
    elif v is True:
        return "true"
    elif v is False:
        return "false"
    elif t is dict:
        parts = []
        for key, item in (<dict>v).items():
            if type(key) is not str or not _simple(item):
                return _dumps(v).decode("utf-8")
            parts.append(_s(key) + ":" + _v(item))
        return "{" + ",".join(parts) + "}"
    elif t is list:
        parts = []
        for item in <list>v:
            if not _simple(item):
                return _dumps(v).decode("utf-8")
            parts.append(_v(item))
        return "[" + ",".join(parts) + "]"
    return _dumps(v).decode("utf-8")


cdef inline bint _simple(object v):
    cdef type t = type(v)
    return t is str or t is int or v is None or v is True or v is False


_ASSESSMENT_FIELDS = ("flow", "declared_at", "rule_set", "currency", "fx", "customs_value", "duty", "excise",
                      "vat", "total")
_LINE_FIELDS = ("sku", "hs_code", "hs_source", "value", "duty", "excise", "vat")
cdef tuple _ASSESSMENT_KEYS = tuple(',"%s":' % name for name in _ASSESSMENT_FIELDS)
cdef tuple _LINE_KEYS = tuple(('{"%s":' if n == 0 else ',"%s":') % name for n, name in enumerate(_LINE_FIELDS))


def declaration(tuple head, assessment, asked_lines, codes, permille, weights, weight):
    """declaration/2 bytes: ``orjson.dumps(stream.declaration.v2.declaration_doc(...))``, byte for byte."""
    cdef list parts = []
    cdef Py_ssize_t n, count
    order_id, decl_id, warehouse_id, operator_bin, marketplace, ref, ordered_at = head
    parts.append('{"schema":"declaration/2","order_id":')
    parts.append(_v(order_id))
    parts.append(',"declaration_id":')
    parts.append(_v(decl_id))
    parts.append(',"warehouse_id":')
    parts.append(_v(warehouse_id))
    parts.append(',"operator_bin":')
    parts.append(_v(operator_bin))
    parts.append(',"marketplace":')
    parts.append(_v(marketplace))
    parts.append(',"buyer_ref":')
    parts.append(_v(ref))
    parts.append(',"ordered_at":')
    parts.append(_v(ordered_at))
    for n in range(10):
        parts.append(<str>_ASSESSMENT_KEYS[n])
        parts.append(_v(assessment[_ASSESSMENT_FIELDS[n]]))
    parts.append(',"lines":[')
    assessed_lines = assessment["lines"]
    count = min(len(assessed_lines), len(asked_lines), len(codes), len(permille))
    for n in range(count):
        assessed = assessed_lines[n]
        asked = asked_lines[n]
        if n:
            parts.append(",")
        for k in range(7):
            parts.append(<str>_LINE_KEYS[k])
            parts.append(_v(assessed[_LINE_FIELDS[k]]))
        origin = asked["origin"]
        qty = int(asked["qty"])
        parts.append(',"origin":')
        parts.append(_v(origin))
        parts.append(',"qty":')
        parts.append(_v(qty))
        unit_weight = asked["unit_weight_kg"]
        found = weights.get((qty, unit_weight))
        if found is None:
            found = weight(qty, unit_weight)
        parts.append(',"weight_kg":')
        parts.append(_v(found))
        parts.append(',"description":')
        parts.append(_v(asked["description"]))
        code = codes[n]
        if assessed["hs_source"] == "classified" or assessed["hs_code"][:4] != code[:4]:
            parts.append(',"hs_classified":')
            parts.append(_v(code))
            parts.append(',"confidence":')
            parts.append(_dumps(permille[n] / 1000).decode("utf-8"))
        parts.append("}")
    parts.append('],"flags":')
    parts.append(_v(list(assessment["flags"])))
    parts.append("}")
    return "".join(parts).encode("utf-8")


def movement(warehouse_id, sku, at, partition, seq, received_qty, declared_qty, received, declared):
    """stock-movement/1 bytes: ``orjson.dumps(_columns_py.movement_doc(...))``, byte for byte."""
    return "".join([
        '{"schema":"stock-movement/1","warehouse_id":', _v(warehouse_id), ',"sku":', _v(sku), ',"at":', _v(at),
        ',"partition":', _v(partition), ',"seq":', _v(seq), ',"received_qty":', _v(received_qty),
        ',"declared_qty":', _v(declared_qty), ',"received":', _v(received), ',"declared":', _v(declared),
        ',"on_hand":', _v(received - declared), "}"]).encode("utf-8")


def reserve(avail, slots, qty, starts):
    """The page's orders reserved in order (see the twin): per order 1 (reserved) or 0; ``avail`` reduced.
    Columns: ``avail`` int64 (per slot), ``slots``/``qty`` int64 per line, ``starts`` int64 per order + 1."""
    cdef int64_t[::1] a = avail
    cdef const int64_t[::1] s = slots
    cdef const int64_t[::1] q = qty
    cdef const int64_t[::1] st = starts
    cdef Py_ssize_t k, i, lo, hi, orders = st.shape[0] - 1
    cdef bint ok
    out = bytearray(orders if orders > 0 else 0)
    cdef unsigned char[::1] o = out
    with nogil:
        for k in range(orders):
            lo = st[k]
            hi = st[k + 1]
            ok = True
            for i in range(lo, hi):
                if s[i] < 0:
                    ok = False
                    break
            if ok:
                for i in range(lo, hi):
                    a[s[i]] -= q[i]
                for i in range(lo, hi):
                    if a[s[i]] < 0:
                        ok = False
                        break
                if not ok:
                    for i in range(lo, hi):
                        a[s[i]] += q[i]
            o[k] = ok
    return list(out)
