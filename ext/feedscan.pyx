# Compiled key scanner of the feed reader (stream/contracts/reader.py). Twin: stream/contracts/_feedscan_py.py.
#
# The fast reader decodes a message with msgspec, which (like orjson) keeps the last value of a key named
# twice and drops keys its contract does not name. This scan tells the reader whether it may trust that
# decode: it counts the key-value pairs of a JSON text that msgspec accepted and sees whether any object
# repeats a key. It reads raw bytes, so it gives up (UNSURE) where raw bytes do not decide key equality
# (a key written with an escape), and on objects too wide or too deep for its fixed tables; the reader
# then takes the pure path. Only ever called on valid JSON.

from libc.string cimport memchr, memcmp

cdef enum:
    MAX_DEPTH = 64
    MAX_KEYS = 64  # per object
    MAX_LIVE_KEYS = 4096  # MAX_DEPTH * MAX_KEYS
    C_DUPLICATE = -1
    C_UNSURE = -2

DUPLICATE = C_DUPLICATE
UNSURE = C_UNSURE


cdef inline Py_ssize_t _skip_ws(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and (s[i] == 32 or s[i] == 9 or s[i] == 10 or s[i] == 13):
        i += 1
    return i


def scan_keys(const unsigned char[::1] text):
    """The number of key-value pairs in the JSON text, DUPLICATE (-1) when an object names a key twice,
    UNSURE (-2) when the raw bytes cannot tell (an escaped key, more than 64 keys in one object or
    nesting deeper than 64)."""
    cdef Py_ssize_t n = text.shape[0]
    if n == 0:
        return 0
    cdef Py_ssize_t result
    with nogil:
        result = _scan(&text[0], n)
    return result


cdef Py_ssize_t _scan(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0, start, end, j, k, pairs = 0, top = 0, depth = 0
    cdef bint escaped
    cdef unsigned char c
    cdef const unsigned char *quote
    cdef Py_ssize_t key_start[MAX_LIVE_KEYS]
    cdef Py_ssize_t key_len[MAX_LIVE_KEYS]
    cdef Py_ssize_t frame_base[MAX_DEPTH + 1]
    cdef bint frame_object[MAX_DEPTH + 1]
    if True:
        while i < n:
            c = s[i]
            if c == 34:  # a string: a key when a colon follows
                i += 1
                start = i
                escaped = False
                quote = <const unsigned char *>memchr(s + i, 34, n - i)
                if quote != NULL and memchr(s + i, 92, quote - (s + i)) == NULL:
                    i = quote - s  # no escape before the next quote: it closes the string
                else:
                    while i < n and s[i] != 34:
                        if s[i] == 92:
                            escaped = True
                            i += 2
                        else:
                            i += 1
                end = i
                i += 1
                j = _skip_ws(s, i, n)
                if j < n and s[j] == 58 and depth > 0 and frame_object[depth]:
                    if escaped:
                        return C_UNSURE
                    pairs += 1
                    if top - frame_base[depth] >= MAX_KEYS:
                        return C_UNSURE
                    for k in range(frame_base[depth], top):
                        if key_len[k] == end - start and memcmp(s + key_start[k], s + start, end - start) == 0:
                            return C_DUPLICATE
                    key_start[top] = start
                    key_len[top] = end - start
                    top += 1
                    i = j + 1
            elif c == 123 or c == 91:  # { or [
                if depth >= MAX_DEPTH:
                    return C_UNSURE
                depth += 1
                frame_base[depth] = top
                frame_object[depth] = c == 123
                i += 1
            elif c == 125 or c == 93:  # } or ]
                if depth > 0:
                    top = frame_base[depth]
                    depth -= 1
                i += 1
            else:
                i += 1
    return pairs


# -- the string patterns of the feed contracts, in C ----------------------------------------------
#
# The reader's fast path checks, after msgspec decoded a document, the patterns msgspec does not: the
# same regexes as stream/contracts/validate.py (which the twin calls), written out by hand. Each
# matcher takes a str and says whether the regex's fullmatch would match it.

from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

cdef extern from "Python.h":
    bint PyUnicode_CheckExact(object o)
    bint PyUnicode_IS_ASCII(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    bint PyList_CheckExact(object o)
    bint PyDict_CheckExact(object o)
    Py_ssize_t PyDict_GET_SIZE(object o)


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


cdef inline bint _upper(unsigned char c) noexcept nogil:
    return 65 <= c <= 90


cdef inline bint _alnum(unsigned char c) noexcept nogil:
    return _digit(c) or _upper(c) or 97 <= c <= 122


cdef inline const unsigned char *_ascii(object v, Py_ssize_t *n):
    """The characters of an ASCII str, or NULL (not a str, or not ASCII: no pattern here matches)."""
    if not PyUnicode_CheckExact(v) or not PyUnicode_IS_ASCII(v):
        return NULL
    n[0] = PyUnicode_GET_LENGTH(v)
    return <const unsigned char *>PyUnicode_DATA(v)


cdef bint _is_id(object v):
    """[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}"""
    cdef Py_ssize_t n, i
    cdef const unsigned char *s = _ascii(v, &n)
    cdef unsigned char c
    if s == NULL or n < 1 or n > 128 or not _alnum(s[0]):
        return False
    for i in range(1, n):
        c = s[i]
        if not (_alnum(c) or c == 46 or c == 95 or c == 58 or c == 47 or c == 35 or c == 45):
            return False
    return True


cdef bint _is_digit_run(object v, Py_ssize_t lo, Py_ssize_t hi):
    """[0-9]{lo,hi}"""
    cdef Py_ssize_t n, i
    cdef const unsigned char *s = _ascii(v, &n)
    if s == NULL or n < lo or n > hi:
        return False
    for i in range(n):
        if not _digit(s[i]):
            return False
    return True


cdef bint _is_digits(object v, Py_ssize_t length):
    return _is_digit_run(v, length, length)


cdef bint _is_upper(object v, Py_ssize_t length):
    cdef Py_ssize_t n, i
    cdef const unsigned char *s = _ascii(v, &n)
    if s == NULL or n != length:
        return False
    for i in range(n):
        if not _upper(s[i]):
            return False
    return True


cdef bint _is_decimal(object v, Py_ssize_t int_digits):
    """(?:0|[1-9][0-9]{0,int_digits-1})(?:\\.[0-9]{1,6})?"""
    cdef Py_ssize_t n, i = 0, k
    cdef const unsigned char *s = _ascii(v, &n)
    if s == NULL or n == 0 or not _digit(s[0]):
        return False
    if s[0] == 48:
        i = 1
    else:
        while i < n and _digit(s[i]):
            i += 1
        if i > int_digits:
            return False
    if i == n:
        return True
    if s[i] != 46:
        return False
    k = n - i - 1
    if k < 1 or k > 6:
        return False
    for i in range(i + 1, n):
        if not _digit(s[i]):
            return False
    return True


cdef inline int _two(const unsigned char *s) noexcept nogil:
    return (s[0] - 48) * 10 + (s[1] - 48)


cdef bint _valid_ymd(const unsigned char *s) noexcept nogil:
    """s: YYYY-MM-DD with digits in place; year 0000 and impossible days are refused."""
    cdef int year = (s[0] - 48) * 1000 + (s[1] - 48) * 100 + (s[2] - 48) * 10 + (s[3] - 48)
    cdef int month = _two(s + 5), day = _two(s + 8), last
    if year == 0 or month < 1 or month > 12 or day < 1:
        return False
    if month == 2:
        last = 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    elif month == 4 or month == 6 or month == 9 or month == 11:
        last = 30
    else:
        last = 31
    return day <= last


cdef inline bint _digits_at(const unsigned char *s, Py_ssize_t start, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, start + count):
        if not _digit(s[i]):
            return False
    return True


cdef bint _is_date(object v):
    """[0-9]{4}-[0-9]{2}-[0-9]{2}, a possible date"""
    cdef Py_ssize_t n
    cdef const unsigned char *s = _ascii(v, &n)
    if s == NULL or n != 10 or s[4] != 45 or s[7] != 45:
        return False
    if not (_digits_at(s, 0, 4) and _digits_at(s, 5, 2) and _digits_at(s, 8, 2)):
        return False
    return _valid_ymd(s)


cdef bint _is_timestamp(object v):
    """YYYY-MM-DD[Tt]hh:mm:ss(.f{1,9})?([Zz]|[+-]hh:mm), a possible instant (validate._valid_timestamp)"""
    cdef Py_ssize_t n, i, f
    cdef const unsigned char *s = _ascii(v, &n)
    if s == NULL or n < 20:
        return False
    if not (s[4] == 45 and s[7] == 45 and (s[10] == 84 or s[10] == 116) and s[13] == 58 and s[16] == 58):
        return False
    if not (_digits_at(s, 0, 4) and _digits_at(s, 5, 2) and _digits_at(s, 8, 2) and _digits_at(s, 11, 2)
            and _digits_at(s, 14, 2) and _digits_at(s, 17, 2)):
        return False
    if _two(s + 11) > 23 or _two(s + 14) > 59 or _two(s + 17) > 59 or not _valid_ymd(s):
        return False
    i = 19
    if s[i] == 46:
        f = i + 1
        while f < n and _digit(s[f]):
            f += 1
        if f - i - 1 < 1 or f - i - 1 > 9:
            return False
        i = f
    if i == n - 1:
        return s[i] == 90 or s[i] == 122
    if i != n - 6 or not (s[i] == 43 or s[i] == 45) or s[i + 3] != 58:
        return False
    if not (_digits_at(s, i + 1, 2) and _digits_at(s, i + 4, 2)):
        return False
    return _two(s + i + 1) <= 23 and _two(s + i + 4) <= 59


cdef bint _is_passport(object v):
    """[A-Z0-9]{4,20}"""
    cdef Py_ssize_t n, i
    cdef const unsigned char *s = _ascii(v, &n)
    if s == NULL or n < 4 or n > 20:
        return False
    for i in range(n):
        if not (_digit(s[i]) or _upper(s[i])):
            return False
    return True


cdef bint _is_card(object v):
    """[A-Za-z0-9_.:-]{4,200}"""
    cdef Py_ssize_t n, i
    cdef const unsigned char *s = _ascii(v, &n)
    cdef unsigned char c
    if s == NULL or n < 4 or n > 200:
        return False
    for i in range(n):
        c = s[i]
        if not (_alnum(c) or c == 95 or c == 46 or c == 58 or c == 45):
            return False
    return True


cdef bint _is_cents(object v, Py_ssize_t int_digits):
    """(?:0|[1-9][0-9]{0,int_digits-1})\\.[0-9]{2}: a KZT amount of declaration/2"""
    cdef Py_ssize_t n, i = 0
    cdef const unsigned char *s = _ascii(v, &n)
    if s == NULL or n < 4 or not _digit(s[0]):
        return False
    if s[0] == 48:
        i = 1
    else:
        while i < n and _digit(s[i]):
            i += 1
        if i > int_digits:
            return False
    return i == n - 3 and s[i] == 46 and _digit(s[i + 1]) and _digit(s[i + 2])


cdef bint _is_amount(object v):
    """(?:0|[1-9][0-9]{0,11})\\.[0-9]{2}"""
    return _is_cents(v, 12)


cdef bint _is_lower_hex(object v, Py_ssize_t length):
    """[0-9a-f]{length}"""
    cdef Py_ssize_t n, i
    cdef const unsigned char *s = _ascii(v, &n)
    if s == NULL or n != length:
        return False
    for i in range(n):
        if not (_digit(s[i]) or 97 <= s[i] <= 102):
            return False
    return True


cdef inline bint _base64url(unsigned char c) noexcept nogil:
    return _alnum(c) or c == 95 or c == 45


cdef bint _is_jws(object v):
    """[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+"""
    cdef Py_ssize_t n, i, dots = 0, run = 0
    cdef const unsigned char *s = _ascii(v, &n)
    cdef unsigned char c
    if s == NULL:
        return False
    for i in range(n):
        c = s[i]
        if c == 46:
            if run == 0 or dots == 2:
                return False
            dots += 1
            run = 0
        elif _base64url(c):
            run += 1
        else:
            return False
    return dots == 2 and run > 0


# What the checks read, as interned keys.
cdef object K_ORDER_ID = "order_id", K_MANIFEST_ID = "manifest_id", K_ORDERED_AT = "ordered_at"
cdef object K_ARRIVED_AT = "arrived_at", K_DECLARED_AT = "declared_at", K_BUYER = "buyer", K_IIN = "iin"
cdef object K_LINES = "lines", K_SKU = "sku", K_UNIT_PRICE = "unit_price", K_CURRENCY = "currency"
cdef object K_ORIGIN = "origin", K_WEIGHT = "unit_weight_kg", K_VOLUME = "unit_volume_l"
cdef object K_WAREHOUSE = "warehouse_id", K_OPERATOR_BIN = "operator_bin"
cdef object K_DOCUMENT_ID = "document_id", K_ISSUED_AT = "issued_at", K_ENTITY = "trading_entity"
cdef object K_BIN = "bin", K_RECEIPTS = "receipts", K_NUMBER = "number", K_PRICE = "price", K_VAT = "vat"
cdef object K_PASSPORT = "passport", K_COUNTRY = "country", K_ISSUED_ON = "issued_on", K_CARD = "card_token"
cdef object K_FORM = "form", K_QR = "qr", ELECTRONIC = "electronic"


cdef inline object _get(dict d, object key):
    cdef PyObject *v = PyDict_GetItem(d, key)
    if v == NULL:
        return None
    return <object>v


cdef Py_ssize_t _goods_lines(object lines, bint goods):
    """Pairs of the lines when their patterns hold (goods: a request's or a manifest's lines), else -1."""
    cdef Py_ssize_t pairs = 0
    cdef dict line
    if not PyList_CheckExact(lines):
        return -1
    for item in <list>lines:
        if not PyDict_CheckExact(item):
            return -1
        line = <dict>item
        if not (_is_id(_get(line, K_SKU)) and _is_decimal(_get(line, K_UNIT_PRICE), 9)
                and _is_upper(_get(line, K_CURRENCY), 3)):
            return -1
        if goods:
            if not (_is_upper(_get(line, K_ORIGIN), 2) and _is_decimal(_get(line, K_WEIGHT), 5)):
                return -1
            volume = _get(line, K_VOLUME)
            if volume is not None and not _is_decimal(volume, 5):
                return -1
        pairs += PyDict_GET_SIZE(line)
    return pairs


def request_pairs(dict doc):
    """The key-value pairs of a decoded assessment-request/1 when its string patterns hold, else -1."""
    cdef Py_ssize_t pairs, lines
    if not (_is_id(_get(doc, K_ORDER_ID)) and _is_timestamp(_get(doc, K_ORDERED_AT))):
        return -1
    pairs = PyDict_GET_SIZE(doc)
    declared = _get(doc, K_DECLARED_AT)
    if declared is not None and not _is_date(declared):
        return -1
    buyer = _get(doc, K_BUYER)
    if buyer is not None:
        if not PyDict_CheckExact(buyer) or not _is_digits(_get(<dict>buyer, K_IIN), 12):
            return -1
        pairs += PyDict_GET_SIZE(buyer)
    lines = _goods_lines(_get(doc, K_LINES), True)
    return -1 if lines < 0 else pairs + lines


def order_pairs(dict doc):
    """The key-value pairs of a decoded order/1 when its string patterns hold, else -1."""
    cdef Py_ssize_t lines
    buyer = _get(doc, K_BUYER)
    if not (_is_id(_get(doc, K_ORDER_ID)) and _is_id(_get(doc, K_WAREHOUSE))
            and _is_timestamp(_get(doc, K_ORDERED_AT)) and PyDict_CheckExact(buyer)
            and _is_digits(_get(<dict>buyer, K_IIN), 12)):
        return -1
    lines = _goods_lines(_get(doc, K_LINES), False)
    return -1 if lines < 0 else PyDict_GET_SIZE(doc) + PyDict_GET_SIZE(buyer) + lines


def manifest_pairs(dict doc):
    """The key-value pairs of a decoded goods-manifest/1 when its string patterns hold, else -1."""
    cdef Py_ssize_t lines
    if not (_is_id(_get(doc, K_MANIFEST_ID)) and _is_digits(_get(doc, K_OPERATOR_BIN), 12)
            and _is_id(_get(doc, K_WAREHOUSE)) and _is_timestamp(_get(doc, K_ARRIVED_AT))):
        return -1
    lines = _goods_lines(_get(doc, K_LINES), True)
    return -1 if lines < 0 else PyDict_GET_SIZE(doc) + lines


def taxfree_document_pairs(dict doc):
    """The key-value pairs of a decoded taxfree-document/1 when its string patterns hold and an electronic
    form carries its QR (stream/taxfree/contracts.py), else -1."""
    cdef Py_ssize_t pairs
    cdef dict item
    entity, buyer = _get(doc, K_ENTITY), _get(doc, K_BUYER)
    if not (_is_id(_get(doc, K_DOCUMENT_ID)) and _is_timestamp(_get(doc, K_ISSUED_AT))
            and PyDict_CheckExact(entity) and _is_digits(_get(<dict>entity, K_BIN), 12)
            and PyDict_CheckExact(buyer) and _is_card(_get(<dict>buyer, K_CARD))):
        return -1
    passport = _get(<dict>buyer, K_PASSPORT)
    if not (PyDict_CheckExact(passport) and _is_upper(_get(<dict>passport, K_COUNTRY), 2)
            and _is_passport(_get(<dict>passport, K_NUMBER)) and _is_date(_get(<dict>passport, K_ISSUED_ON))):
        return -1
    qr = _get(doc, K_QR)
    if qr is None:
        if _get(doc, K_FORM) == ELECTRONIC:
            return -1
    elif not _is_jws(qr):
        return -1
    pairs = PyDict_GET_SIZE(doc) + PyDict_GET_SIZE(entity) + PyDict_GET_SIZE(buyer) + PyDict_GET_SIZE(passport)
    receipts, lines = _get(doc, K_RECEIPTS), _get(doc, K_LINES)
    if not (PyList_CheckExact(receipts) and PyList_CheckExact(lines)):
        return -1
    for r in <list>receipts:
        if not PyDict_CheckExact(r):
            return -1
        item = <dict>r
        if not (_is_id(_get(item, K_NUMBER)) and _is_timestamp(_get(item, K_ISSUED_AT))):
            return -1
        pairs += PyDict_GET_SIZE(item)
    for line in <list>lines:
        if not PyDict_CheckExact(line):
            return -1
        item = <dict>line
        if not (_is_amount(_get(item, K_PRICE)) and _is_amount(_get(item, K_VAT))):
            return -1
        pairs += PyDict_GET_SIZE(item)
    return pairs


cdef object K_DECLARATION_ID = "declaration_id", K_RULE_SET = "rule_set", K_BUYER_REF = "buyer_ref", K_FX = "fx"
cdef object K_CUSTOMS_VALUE = "customs_value", K_DUTY = "duty", K_EXCISE = "excise", K_TOTAL = "total"
cdef object K_HS_CODE = "hs_code", K_VALUE = "value", K_WEIGHT_KG = "weight_kg", K_HS_CLASSIFIED = "hs_classified"
cdef object K_CONFIDENCE = "confidence"


def declaration_pairs(dict doc):
    """The key-value pairs of a decoded declaration/2 when its string patterns hold and each line names
    hs_classified and confidence together or neither (stream/declaration/v2.py), else -1."""
    cdef Py_ssize_t pairs
    cdef dict item
    warehouse, buyer_ref, fx = _get(doc, K_WAREHOUSE), _get(doc, K_BUYER_REF), _get(doc, K_FX)
    if not (_is_id(_get(doc, K_ORDER_ID)) and _is_id(_get(doc, K_DECLARATION_ID))
            and (warehouse is None or _is_id(warehouse)) and _is_digits(_get(doc, K_OPERATOR_BIN), 12)
            and (buyer_ref is None or _is_lower_hex(buyer_ref, 64)) and _is_timestamp(_get(doc, K_ORDERED_AT))
            and _is_date(_get(doc, K_DECLARED_AT)) and _is_id(_get(doc, K_RULE_SET))
            and _is_cents(_get(doc, K_CUSTOMS_VALUE), 18) and _is_cents(_get(doc, K_DUTY), 18)
            and _is_cents(_get(doc, K_EXCISE), 18) and _is_cents(_get(doc, K_VAT), 18)
            and _is_cents(_get(doc, K_TOTAL), 18) and PyDict_CheckExact(fx)):
        return -1
    for currency, rate in (<dict>fx).items():
        if not (_is_upper(currency, 3) and _is_decimal(rate, 9)):
            return -1
    pairs = PyDict_GET_SIZE(doc) + PyDict_GET_SIZE(fx)
    lines = _get(doc, K_LINES)
    if not PyList_CheckExact(lines):
        return -1
    for line in <list>lines:
        if not PyDict_CheckExact(line):
            return -1
        item = <dict>line
        classified = _get(item, K_HS_CLASSIFIED)
        if not (_is_id(_get(item, K_SKU)) and _is_digit_run(_get(item, K_HS_CODE), 4, 10)
                and _is_cents(_get(item, K_VALUE), 18) and _is_cents(_get(item, K_DUTY), 18)
                and _is_cents(_get(item, K_EXCISE), 18) and _is_cents(_get(item, K_VAT), 18)
                and _is_upper(_get(item, K_ORIGIN), 2) and _is_decimal(_get(item, K_WEIGHT_KG), 11)):
            return -1
        if classified is None:
            if _get(item, K_CONFIDENCE) is not None:
                return -1
        elif _get(item, K_CONFIDENCE) is None or not _is_digit_run(classified, 4, 10):
            return -1
        pairs += PyDict_GET_SIZE(item)
    return pairs


# for the tests: each matcher against its regex
def match(str kind, value):
    """Whether ``value`` matches the pattern ``kind`` (id, bin, currency, country, money, measure,
    timestamp, date; the tax-free passport, card, amount, jws; declaration/2's kzt, tariff, weight, buyer_ref)."""
    if kind == "id":
        return _is_id(value)
    if kind == "bin":
        return _is_digits(value, 12)
    if kind == "currency":
        return _is_upper(value, 3)
    if kind == "country":
        return _is_upper(value, 2)
    if kind == "money":
        return _is_decimal(value, 9)
    if kind == "measure":
        return _is_decimal(value, 5)
    if kind == "timestamp":
        return _is_timestamp(value)
    if kind == "date":
        return _is_date(value)
    if kind == "passport":
        return _is_passport(value)
    if kind == "card":
        return _is_card(value)
    if kind == "amount":
        return _is_amount(value)
    if kind == "jws":
        return _is_jws(value)
    if kind == "kzt":
        return _is_cents(value, 18)
    if kind == "tariff":
        return _is_digit_run(value, 4, 10)
    if kind == "weight":
        return _is_decimal(value, 11)
    if kind == "buyer_ref":
        return _is_lower_hex(value, 64)
    raise ValueError(kind)


def vouch(const unsigned char[::1] text, list docs, int kind, Py_ssize_t extra):
    """Whether the decoded ``docs`` (kind 0: assessment-request/1, 1: order/1, 2: goods-manifest/1,
    3: taxfree-document/1, 4: declaration/2) hold their patterns and, with ``extra`` pairs of an envelope, every key-value
    pair of the message ``text`` (no key repeated, none dropped): the fast path's one question, in one call."""
    cdef Py_ssize_t pairs = extra, n
    for doc in docs:
        if kind == 0:
            n = request_pairs(doc)
        elif kind == 1:
            n = order_pairs(doc)
        elif kind == 2:
            n = manifest_pairs(doc)
        elif kind == 3:
            n = taxfree_document_pairs(doc)
        else:
            n = declaration_pairs(doc)
        if n < 0:
            return False
        pairs += n
    n = text.shape[0]
    if n == 0:
        return False
    return _scan(&text[0], n) == pairs
