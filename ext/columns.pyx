# Compiled columns kernel of the warehouse. Twin: stream/warehouse/_columns_py.py (same API, same results).
#
# declaration() and movement() write the JSON bytes orjson.dumps writes for the twin's dicts, without
# building the dicts: keys in the twin's order, no spaces, strings escaped as orjson escapes them.
# Anything this writer does not write itself (a float, a nested value, a str or int subclass, an int
# outside 64 bits, a string needing an escape) is handed to orjson.dumps, so the bytes (and the
# errors) stay orjson's. tests/test_stock_columns.py holds the two backends equal byte for byte.

import orjson

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    unsigned long long PyLong_AsUnsignedLongLong(object v) except? <unsigned long long>-1

cdef object _dumps = orjson.dumps
cdef object _LIMIT = 1 << 62  # units beyond this (never seen in practice) are reserved by the twin


def _twin_reserve_orders(*args):
    from stream.warehouse._columns_py import reserve_orders

    return reserve_orders(*args)


# -- a growing byte buffer the documents are written into ----------------------------------------

cdef struct Buf:
    char* data
    Py_ssize_t size
    Py_ssize_t cap


cdef int _init(Buf* b) except -1:
    b.data = <char*>malloc(2048)
    if b.data == NULL:
        raise MemoryError()
    b.size = 0
    b.cap = 2048
    return 0


cdef int _put(Buf* b, const char* s, Py_ssize_t n) except -1:
    cdef Py_ssize_t cap
    cdef char* grown
    if b.size + n > b.cap:
        cap = b.cap * 2
        while cap < b.size + n:
            cap *= 2
        grown = <char*>realloc(b.data, cap)
        if grown == NULL:
            raise MemoryError()
        b.data = grown
        b.cap = cap
    memcpy(b.data + b.size, s, n)
    b.size += n
    return 0


cdef inline int _lit(Buf* b, bytes s) except -1:
    return _put(b, <const char*>s, len(s))


cdef int _orjson(Buf* b, object v) except -1:
    """What this writer does not write itself: orjson's bytes, or orjson's error."""
    cdef bytes out = _dumps(v)
    return _put(b, <const char*>out, len(out))


cdef int _str(Buf* b, object s) except -1:
    cdef Py_ssize_t n, i
    cdef const char* u
    cdef unsigned char c
    if type(s) is not str:
        return _orjson(b, s)
    try:
        u = PyUnicode_AsUTF8AndSize(s, &n)
    except UnicodeError:  # a lone surrogate: orjson says so
        return _orjson(b, s)
    for i in range(n):
        c = <unsigned char>u[i]
        if c < 0x20 or c == 0x22 or c == 0x5C:
            return _orjson(b, s)  # an escape: orjson writes it
    _put(b, '"', 1)
    _put(b, u, n)
    _put(b, '"', 1)
    return 0


cdef int _int(Buf* b, object v) except -1:
    cdef int overflow = 0
    cdef long long n
    cdef unsigned long long u
    cdef char digits[24]
    cdef int at = 24
    cdef bint negative
    if type(v) is not int:
        return _orjson(b, v)
    n = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow < 0:
        return _orjson(b, v)  # below int64: orjson's error
    if overflow > 0:
        try:
            u = PyLong_AsUnsignedLongLong(v)
        except OverflowError:
            return _orjson(b, v)  # above uint64: orjson's error
    else:
        negative = n < 0
        u = <unsigned long long>(-(n + 1)) + 1 if negative else <unsigned long long>n
        if negative:
            while True:
                at -= 1
                digits[at] = <char>(48 + u % 10)
                u //= 10
                if u == 0:
                    break
            at -= 1
            digits[at] = 45  # '-'
            return _put(b, digits + at, 24 - at)
    while True:
        at -= 1
        digits[at] = <char>(48 + u % 10)
        u //= 10
        if u == 0:
            break
    return _put(b, digits + at, 24 - at)


cdef inline bint _simple(object v):
    cdef type t = type(v)
    return t is str or t is int or v is None or v is True or v is False


cdef int _v(Buf* b, object v) except -1:
    """One JSON value: str, int, None, bool, and flat dicts/lists of them; anything else via orjson."""
    cdef type t = type(v)
    cdef bint first = True
    if t is str:
        return _str(b, v)
    if t is int:
        return _int(b, v)
    if v is None:
        return _put(b, "null", 4)
    if v is True:
        return _put(b, "true", 4)
    if v is False:
        return _put(b, "false", 5)
    if t is dict:
        for key, item in (<dict>v).items():
            if type(key) is not str or not _simple(item):
                return _orjson(b, v)
        _put(b, "{", 1)
        for key, item in (<dict>v).items():
            if not first:
                _put(b, ",", 1)
            first = False
            _str(b, key)
            _put(b, ":", 1)
            _v(b, item)
        return _put(b, "}", 1)
    if t is list:
        for item in <list>v:
            if not _simple(item):
                return _orjson(b, v)
        _put(b, "[", 1)
        for item in <list>v:
            if not first:
                _put(b, ",", 1)
            first = False
            _v(b, item)
        return _put(b, "]", 1)
    return _orjson(b, v)


cdef inline bytes _done(Buf* b):
    return PyBytes_FromStringAndSize(b.data, b.size)


_ASSESSMENT_FIELDS = ("flow", "declared_at", "rule_set", "currency", "fx", "customs_value", "duty", "excise",
                      "vat", "total")
_LINE_FIELDS = ("sku", "hs_code", "hs_source", "value", "duty", "excise", "vat")
cdef tuple _ASSESSMENT_KEYS = tuple((',"%s":' % name).encode() for name in _ASSESSMENT_FIELDS)
cdef tuple _LINE_KEYS = tuple((('{"%s":' if n == 0 else ',"%s":') % name).encode()
                              for n, name in enumerate(_LINE_FIELDS))


def declaration(tuple head, assessment, asked_lines, codes, permille, weights, weight):
    """declaration/2 bytes: ``orjson.dumps(stream.declaration.v2.declaration_doc(...))``, byte for byte."""
    cdef Buf b
    cdef Py_ssize_t n, k, count
    order_id, decl_id, warehouse_id, operator_bin, marketplace, ref, ordered_at = head
    _init(&b)
    try:
        _lit(&b, b'{"schema":"declaration/2","order_id":')
        _v(&b, order_id)
        _lit(&b, b',"declaration_id":')
        _v(&b, decl_id)
        _lit(&b, b',"warehouse_id":')
        _v(&b, warehouse_id)
        _lit(&b, b',"operator_bin":')
        _v(&b, operator_bin)
        _lit(&b, b',"marketplace":')
        _v(&b, marketplace)
        _lit(&b, b',"buyer_ref":')
        _v(&b, ref)
        _lit(&b, b',"ordered_at":')
        _v(&b, ordered_at)
        for n in range(10):
            _lit(&b, <bytes>_ASSESSMENT_KEYS[n])
            _v(&b, assessment[_ASSESSMENT_FIELDS[n]])
        _lit(&b, b',"lines":[')
        assessed_lines = assessment["lines"]
        count = min(len(assessed_lines), len(asked_lines), len(codes), len(permille))
        for n in range(count):
            assessed = assessed_lines[n]
            asked = asked_lines[n]
            if n:
                _put(&b, ",", 1)
            for k in range(7):
                _lit(&b, <bytes>_LINE_KEYS[k])
                _v(&b, assessed[_LINE_FIELDS[k]])
            origin = asked["origin"]
            qty = int(asked["qty"])
            _lit(&b, b',"origin":')
            _v(&b, origin)
            _lit(&b, b',"qty":')
            _v(&b, qty)
            unit_weight = asked["unit_weight_kg"]
            found = weights.get((qty, unit_weight))
            if found is None:
                found = weight(qty, unit_weight)
            _lit(&b, b',"weight_kg":')
            _v(&b, found)
            _lit(&b, b',"description":')
            _v(&b, asked["description"])
            code = codes[n]
            if assessed["hs_source"] == "classified" or assessed["hs_code"][:4] != code[:4]:
                _lit(&b, b',"hs_classified":')
                _v(&b, code)
                _lit(&b, b',"confidence":')
                _orjson(&b, permille[n] / 1000)
            _put(&b, "}", 1)
        _lit(&b, b'],"flags":')
        _v(&b, list(assessment["flags"]))
        _put(&b, "}", 1)
        return _done(&b)
    finally:
        free(b.data)


cdef str _HEX = "0123456789abcdef"


cdef str _uuid_of(str h):
    """stream/declaration/ids.py's layout of a SHA-1 hex digest as a version-5 UUID."""
    cdef Py_UCS4 variant = _HEX[8 + (_HEX.index(h[16]) & 0x3)]
    return h[:8] + "-" + h[8:12] + "-5" + h[13:16] + "-" + variant + h[17:20] + "-" + h[20:32]


cdef tuple _head(source, inner, outer, seeded):
    """The builder's head (DeclarationBuilder._head): the same values from the keyed hashes."""
    assessment = source.assessment
    request = source.request
    buyer = request.get("buyer")
    order_id = assessment["order_id"]
    sha = seeded.copy()
    sha.update(order_id.encode())
    decl_id = _uuid_of(sha.hexdigest())
    marketplace = source.marketplace
    if marketplace is None:
        marketplace = request.get("marketplace")
    if isinstance(buyer, dict):
        keyed = inner.copy()
        keyed.update(buyer["iin"].encode("utf-8"))
        outside = outer.copy()
        outside.update(keyed.digest())
        ref = outside.hexdigest()
    else:
        ref = request.get("buyer_ref")
    return (order_id, decl_id, source.warehouse_id, source.operator_bin, marketplace, ref, request["ordered_at"])


def declarations(list sources, list codes, list permille, weights, weight, head_of, tuple hashers):
    """The twin's declarations: every source's declaration/2 bytes, heads computed here."""
    cdef list out = []
    cdef Py_ssize_t at = 0, count
    inner, outer, seeded = hashers
    for source in sources:
        lines = source.request["lines"]
        count = len(lines)
        out.append(declaration(_head(source, inner, outer, seeded), source.assessment, lines,
                               codes[at:at + count], permille[at:at + count], weights, weight))
        at += count
    return out


def movement(warehouse_id, sku, at, partition, seq, received_qty, declared_qty, received, declared):
    """stock-movement/1 bytes: ``orjson.dumps(_columns_py.movement_doc(...))``, byte for byte."""
    cdef Buf b
    on_hand = received - declared
    _init(&b)
    try:
        _lit(&b, b'{"schema":"stock-movement/1","warehouse_id":')
        _v(&b, warehouse_id)
        _lit(&b, b',"sku":')
        _v(&b, sku)
        _lit(&b, b',"at":')
        _v(&b, at)
        _lit(&b, b',"partition":')
        _v(&b, partition)
        _lit(&b, b',"seq":')
        _v(&b, seq)
        _lit(&b, b',"received_qty":')
        _v(&b, received_qty)
        _lit(&b, b',"declared_qty":')
        _v(&b, declared_qty)
        _lit(&b, b',"received":')
        _v(&b, received)
        _lit(&b, b',"declared":')
        _v(&b, declared)
        _lit(&b, b',"on_hand":')
        _v(&b, on_hand)
        _put(&b, "}", 1)
        return _done(&b)
    finally:
        free(b.data)


cdef void _reserve_spans(int64_t* a, const int64_t* s, const int64_t* q, const int64_t* st,
                         Py_ssize_t orders, unsigned char* ok) noexcept nogil:
    """Order k's lines are s/q[st[k]:st[k + 1]]: reserved (ok[k] = 1, ``a`` reduced) only when every
    slot is known (>= 0) and covers the order's sum of it, else ``a`` is left as it was (ok[k] = 0)."""
    cdef Py_ssize_t k, i, lo, hi
    cdef bint fine
    for k in range(orders):
        lo = st[k]
        hi = st[k + 1]
        fine = True
        for i in range(lo, hi):
            if s[i] < 0:
                fine = False
                break
        if fine:
            for i in range(lo, hi):
                a[s[i]] -= q[i]
            for i in range(lo, hi):
                if a[s[i]] < 0:
                    fine = False
                    break
            if not fine:
                for i in range(lo, hi):
                    a[s[i]] += q[i]
        ok[k] = fine


def reserve(avail, slots, qty, starts):
    """The page's orders reserved in order (see the twin): per order 1 (reserved) or 0; ``avail`` reduced.
    Columns: ``avail`` int64 (per slot), ``slots``/``qty`` int64 per line, ``starts`` int64 per order + 1."""
    cdef int64_t[::1] a = avail
    cdef const int64_t[::1] s = slots
    cdef const int64_t[::1] q = qty
    cdef const int64_t[::1] st = starts
    cdef Py_ssize_t k, i, orders = st.shape[0] - 1
    if orders <= 0:
        return []
    # checked once here, so the kernel reads no index it was not given
    if st[0] < 0 or st[orders] > s.shape[0] or st[orders] > q.shape[0]:
        raise ValueError("starts: beyond the line columns")
    for k in range(orders):
        if st[k] > st[k + 1]:
            raise ValueError("starts: not in order")
    for i in range(st[orders]):
        if s[i] >= a.shape[0]:
            raise IndexError("slots: beyond the available units")
    out = bytearray(orders)
    cdef unsigned char[::1] o = out
    cdef int64_t empty = 0
    # an empty column has no first element to point at; no span reads it then
    cdef int64_t* ap = &a[0] if a.shape[0] else &empty
    cdef const int64_t* sp = &s[0] if s.shape[0] else &empty
    cdef const int64_t* qp = &q[0] if q.shape[0] else &empty
    with nogil:
        _reserve_spans(ap, sp, qp, &st[0], orders, &o[0])
    return list(out)


def reserve_orders(list queued, dict facts, dict known, available, dict cache, dict reserved):
    """The twin's reserve_orders (stream/warehouse/_columns_py.py), on C arrays: the same result, the
    same updates of ``cache`` and ``reserved``. Units that do not fit int64 go to the twin."""
    cdef Py_ssize_t total = 0, orders = len(queued), k, i, n, slots_n = 0, slot
    cdef int64_t* s = NULL
    cdef int64_t* q = NULL
    cdef int64_t* st = NULL
    cdef int64_t* a = NULL
    cdef int64_t* before = NULL
    cdef unsigned char* ok = NULL
    cdef dict slot_of = {}
    cdef list keys_at = []
    cdef list keys, lines, out, need
    cdef tuple entry
    for entry in queued:
        total += len(<list>entry[2])
    try:
        s = <int64_t*>malloc((total + 1) * sizeof(int64_t))
        q = <int64_t*>malloc((total + 1) * sizeof(int64_t))
        a = <int64_t*>malloc((total + 1) * sizeof(int64_t))
        before = <int64_t*>malloc((total + 1) * sizeof(int64_t))
        st = <int64_t*>malloc((orders + 1) * sizeof(int64_t))
        ok = <unsigned char*>malloc(orders + 1)
        if s == NULL or q == NULL or a == NULL or before == NULL or st == NULL or ok == NULL:
            raise MemoryError()
        n = 0
        st[0] = 0
        for k in range(orders):
            entry = <tuple>queued[k]
            keys = <list>entry[2]
            lines = entry[0]["lines"]
            for i in range(len(keys)):
                key = keys[i]
                found = slot_of.get(key)
                if found is None:
                    if key in facts or key in known:
                        units = available(key)
                        if type(units) is not int or not (-_LIMIT <= units <= _LIMIT):
                            return _twin_reserve_orders(queued, facts, known, available, cache, reserved)
                        slot = slots_n
                        a[slot] = units
                        before[slot] = units
                        slots_n += 1
                        keys_at.append(key)
                    else:
                        slot = -1
                    slot_of[key] = slot
                else:
                    slot = found
                units = lines[i]["qty"]
                if type(units) is not int or not (-_LIMIT <= units <= _LIMIT):
                    return _twin_reserve_orders(queued, facts, known, available, cache, reserved)
                s[n] = slot
                q[n] = units
                n += 1
            st[k + 1] = n
        with nogil:
            _reserve_spans(a, s, q, st, orders, ok)
        for slot in range(slots_n):
            key = keys_at[slot]
            cache[key] = a[slot]
            if before[slot] != a[slot]:
                reserved[key] = reserved.get(key, 0) + (before[slot] - a[slot])
        out = []
        for k in range(orders):
            if not ok[k]:
                out.append(None)
                continue
            keys = <list>(<tuple>queued[k])[2]
            lo = st[k]
            need = []
            for i in range(len(keys)):
                need.append((keys[i], q[lo + i]))
            out.append(need)
        return out
    finally:
        free(s)
        free(q)
        free(a)
        free(before)
        free(st)
        free(ok)


def requests(list candidates, dict line_facts, facts_of, tuple fields):
    """The twin's requests (stream/warehouse/_columns_py.py): the same documents, keys in the same order."""
    cdef list out = [], lines
    cdef dict request, base, line_doc
    for cand in candidates:
        order = cand.order
        wh = order["warehouse_id"]
        lines = []
        for line in order["lines"]:
            sku = line["sku"]
            key = (wh, sku)
            found = line_facts.get(key)
            if found is None:
                facts = facts_of(key)
                base = {}
                for k in fields:
                    if k in facts:
                        base[k] = facts[k]
                line_facts[key] = base
            else:
                base = <dict>found
            line_doc = base.copy()
            line_doc["sku"] = sku
            line_doc["qty"] = line["qty"]
            line_doc["unit_price"] = line["unit_price"]
            line_doc["currency"] = line["currency"]
            lines.append(line_doc)
        request = {"schema": "assessment-request/1", "order_id": order["order_id"], "flow": "warehouse",
                   "ordered_at": order["ordered_at"], "marketplace": order["marketplace"], "lines": lines}
        if "buyer" in order:
            request["buyer"] = order["buyer"]
        elif "buyer_ref" in order:
            request["buyer_ref"] = order["buyer_ref"]
        out.append(request)
    return out


def settle(list candidates, results, requests, dict reserved, dict decl, dict avail, dict o,
           list rejections, list declarations, facts_of, sources, source_type, list pdel, declared, rejected,
           declaration_id):
    """The twin's settle (stream/warehouse/_columns_py.py): the same updates, in the same order."""
    cdef Py_ssize_t index, n = min(len(candidates), len(results))
    for index in range(n):
        cand = candidates[index]
        result = results[index]
        order = cand.order
        oid = order["order_id"]
        if result.get("schema") == "assessment/1":
            for key, qty in cand.need:
                reserved[key] = reserved[key] - qty
                decl[key] = decl.get(key, 0) + qty
            wh = order["warehouse_id"]
            operator_bin = facts_of((wh, order["lines"][0]["sku"]))["operator_bin"]
            if sources is not None:
                sources.append(tuple.__new__(source_type, (result, requests[index], wh, operator_bin,
                                                           order["marketplace"])))
            else:
                result["declaration_id"] = declaration_id(oid)
                result["warehouse_id"] = wh
                result["operator_bin"] = operator_bin
                declarations.append(result)
            o[oid] = [declared, cand.digest]
        else:
            for key, qty in cand.need:
                reserved[key] = reserved[key] - qty
                avail[key] = avail[key] + qty
            rejections.append(result)
            o[oid] = [rejected, cand.digest]
        if cand.from_pending:
            pdel.append(oid)
