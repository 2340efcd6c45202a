"""Runtime validation of the feed contracts, equivalent to schemas/*.json.

Hand-written for the hot path (every message of the stream passes here): plain type checks,
precompiled regexes and static field tables. It accepts exactly the documents the JSON Schemas
accept (tests/test_contracts.py holds the two equal with the jsonschema library as the oracle)
and names the first problem found as a stable reason code from `reasons.py` plus a human detail
that names the field path, e.g. ``lines[2].unit_price: '1e400' is not a decimal string``.

Every check returns ``None`` when the document is valid, else ``(reason, detail)``.

Regex dialect note: the schemas anchor patterns with ``^...$`` and forbid newlines
(ECMA-262 semantics); here the same patterns are used unanchored with ``fullmatch``.
"""
from __future__ import annotations

import re

import orjson

__all__ = [
    "DOCUMENT_SCHEMAS",
    "parse_json_line",
    "ref_of",
    "validate",
    "validate_document",
    "validate_manifest",
    "validate_order",
    "validate_page",
    "validate_request",
]

MAX_LINES = 1000
MAX_PAGE_ITEMS = 10000
MAX_QTY = 1_000_000

# Same patterns as schemas/common-1.json, without the anchors (fullmatch anchors both ends and,
# unlike `$`, does not accept a trailing newline).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}").fullmatch
_BIN = re.compile(r"[0-9]{12}").fullmatch
_CURRENCY = re.compile(r"[A-Z]{3}").fullmatch
_COUNTRY = re.compile(r"[A-Z]{2}").fullmatch
_MONEY = re.compile(r"(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,6})?").fullmatch
_MEASURE = re.compile(r"(?:0|[1-9][0-9]{0,4})(?:\.[0-9]{1,6})?").fullmatch
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))"
).fullmatch
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})").fullmatch

_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_MISSING = object()

_JSON_TYPE = {
    dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
    float: "number", type(None): "null",
}


def _kind(v: object) -> str:
    t = _JSON_TYPE.get(v.__class__)
    if t is not None:
        return t
    for cls, name in _JSON_TYPE.items():
        if isinstance(v, cls):
            return name
    return type(v).__name__


def _show(v: object) -> str:
    """A bounded repr for details (a hostile document must not make huge rejections)."""
    if isinstance(v, str) and len(v) > 60:
        return repr(v[:40]) + f"... ({len(v)} chars)"
    try:
        r = repr(v)
    except Exception:  # pragma: no cover - exotic objects only
        r = f"<{type(v).__name__}>"
    return r if len(r) <= 60 else r[:57] + "..."


def _wrong(v: object, expected: str) -> tuple[str, str]:
    return ("wrong_type", f": expected {expected}, got {_kind(v)} {_show(v)}")


def _valid_ymd(y: str, m: str, d: str) -> bool:
    # Two-digit ASCII strings compare like the numbers they spell.
    if y == "0000" or m < "01" or m > "12" or d < "01":
        return False
    if d <= "28":
        return True
    month = int(m)
    last = _DAYS_IN_MONTH[month]
    if month == 2:
        year = int(y)
        if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
            last = 29
    return int(d) <= last


# -- leaf checks: return None, or (reason, ": message") -----------------------------------------

_CACHE_LIMIT = 16384


def _pattern(match, reason: str, expected: str, what: str, cache: bool = True):
    """A string check by `match` (a compiled pattern's fullmatch).

    With `cache`, strings already found valid are remembered in a bounded set: feeds repeat
    warehouse ids, SKUs, currencies, prices and (at high rates) timestamps, and a set lookup is
    several times cheaper than a regex. Only valid strings enter, so results never change.
    Fields unique per message (order_id, manifest_id) use no cache.
    """
    if not cache:
        def check(v):
            if isinstance(v, str):
                if match(v) is not None:
                    return None
                return (reason, f": {_show(v)} {what}")
            return _wrong(v, expected)
        return check

    seen: set[str] = set()

    def check_cached(v):
        if isinstance(v, str):
            if v in seen:
                return None
            if match(v) is not None:
                if len(seen) >= _CACHE_LIMIT:
                    seen.clear()
                seen.add(v)
                return None
            return (reason, f": {_show(v)} {what}")
        return _wrong(v, expected)
    return check_cached


def _id_check(cache: bool = True):
    return _pattern(_ID, "invalid_code", "a string", "is not a valid identifier", cache)


def _bin_check():
    return _pattern(_BIN, "invalid_code", "a string", "is not a 12-digit BIN/IIN")


def _currency_check():
    return _pattern(_CURRENCY, "invalid_code", "a string", "is not an ISO 4217 currency code")


def _country_check():
    return _pattern(_COUNTRY, "invalid_code", "a string",
                    "is not an ISO 3166-1 alpha-2 country code")


def _money_check():
    return _pattern(_MONEY, "invalid_number", "a decimal string",
                    "is not a decimal string (non-negative, at most 9 integer digits and 6 decimals)")


def _measure_check():
    return _pattern(_MEASURE, "invalid_number", "a decimal string",
                    "is not a decimal string (non-negative, at most 5 integer digits and 6 decimals)")


def _valid_timestamp(v: str):
    m = _TIMESTAMP(v)
    if m is None:
        return None
    y, mo, d, hh, mi, ss, oh, om = m.groups()
    if hh > "23" or mi > "59" or ss > "59" or not _valid_ymd(y, mo, d) or (
            oh is not None and (oh > "23" or om > "59")):
        return None
    return m


def _valid_date(v: str):
    m = _DATE(v)
    if m is None or not _valid_ymd(*m.groups()):
        return None
    return m


def _timestamp_check():
    return _pattern(_valid_timestamp, "invalid_date", "an RFC 3339 timestamp string",
                    "is not a possible RFC 3339 timestamp with offset")


def _date_check():
    return _pattern(_valid_date, "invalid_date", "a date string",
                    "is not a possible YYYY-MM-DD date")


def _qty(v):
    cls = v.__class__
    if cls is int:
        n = v
    elif cls is float or (isinstance(v, float)):
        if not v.is_integer():
            return _wrong(v, "an integer")
        n = v
    elif isinstance(v, int) and not isinstance(v, bool):
        n = v
    else:
        return _wrong(v, "an integer")
    if 1 <= n <= MAX_QTY:
        return None
    return ("out_of_range", f": {_show(v)} is outside 1..{MAX_QTY}")


def _hs_code(v):
    if v is None:
        return None
    if isinstance(v, str):
        if len(v) <= 32:
            return None
        return ("invalid_code", f": {_show(v)} is longer than 32 characters")
    return _wrong(v, "a string or null")


def _text(lo: int, hi: int):
    def check(v):
        if isinstance(v, str):
            if lo <= len(v) <= hi:
                return None
            return ("invalid_text", f": {_show(v)} must be {lo} to {hi} characters long")
        return _wrong(v, "a string")
    return check


_marketplace = _text(1, 64)
_description = _text(1, 1000)
_category = _text(1, 100)
_buyer_name = _text(1, 200)


def _flow(v):
    if v == "parcel" or v == "warehouse":
        if isinstance(v, str):
            return None
    return ("unknown_flow", f": {_show(v)} is neither 'parcel' nor 'warehouse'")


# -- objects and arrays --------------------------------------------------------------------------

def _fields(doc: dict, spec: tuple) -> tuple[str, str] | None:
    """Check `doc` against (key, check, required) rows; detail starts with the key."""
    for key, check, required in spec:
        v = doc.get(key, _MISSING)
        if v is _MISSING:
            if required:
                return ("missing_field", f"{key}: required field is missing")
            continue
        r = check(v)
        if r is not None:
            return (r[0], key + r[1])
    return None


def _object(spec: tuple):
    def check(v):
        if not isinstance(v, dict):
            return _wrong(v, "an object")
        r = _fields(v, spec)
        if r is not None:
            return (r[0], "." + r[1])
        return None
    return check


def _lines(spec: tuple):
    def check(v):
        if not isinstance(v, list):
            return _wrong(v, "an array")
        n = len(v)
        if n == 0:
            return ("empty_lines", ": the document has no lines")
        if n > MAX_LINES:
            return ("too_many_items", f": {n} lines, at most {MAX_LINES} allowed")
        i = 0
        for line in v:
            if not isinstance(line, dict):
                return ("wrong_type", f"[{i}]: expected an object, got {_kind(line)}")
            r = _fields(line, spec)
            if r is not None:
                return (r[0], f"[{i}].{r[1]}")
            i += 1
        return None
    return check


_BUYER = (
    ("iin", _bin_check(), True),
    ("name", _buyer_name, True),
)
_buyer = _object(_BUYER)

_MANIFEST_LINE = (
    ("sku", _id_check(), True),
    ("description", _description, True),
    ("hs_code", _hs_code, False),
    ("origin", _country_check(), True),
    ("qty", _qty, True),
    ("unit_price", _money_check(), True),
    ("currency", _currency_check(), True),
    ("unit_weight_kg", _measure_check(), True),
    ("unit_volume_l", _measure_check(), False),
    ("category", _category, False),
)
_MANIFEST = (
    ("manifest_id", _id_check(cache=False), True),
    ("operator_bin", _bin_check(), True),
    ("warehouse_id", _id_check(), True),
    ("marketplace", _marketplace, True),
    ("arrived_at", _timestamp_check(), True),
    ("lines", _lines(_MANIFEST_LINE), True),
)

_ORDER_LINE = (
    ("sku", _id_check(), True),
    ("qty", _qty, True),
    ("unit_price", _money_check(), True),
    ("currency", _currency_check(), True),
)
_ORDER = (
    ("order_id", _id_check(cache=False), True),
    ("marketplace", _marketplace, True),
    ("warehouse_id", _id_check(), True),
    ("ordered_at", _timestamp_check(), True),
    ("buyer", _buyer, True),
    ("lines", _lines(_ORDER_LINE), True),
)

_REQUEST_LINE = (
    ("sku", _id_check(), True),
    ("qty", _qty, True),
    ("unit_price", _money_check(), True),
    ("currency", _currency_check(), True),
    ("description", _description, True),
    ("hs_code", _hs_code, False),
    ("origin", _country_check(), True),
    ("unit_weight_kg", _measure_check(), True),
    ("unit_volume_l", _measure_check(), False),
    ("category", _category, False),
)
_REQUEST = (
    ("order_id", _id_check(cache=False), True),
    ("marketplace", _marketplace, False),
    ("ordered_at", _timestamp_check(), True),
    ("declared_at", _date_check(), False),
    ("flow", _flow, True),
    ("buyer", _buyer, False),
    ("lines", _lines(_REQUEST_LINE), True),
)


# -- public API ----------------------------------------------------------------------------------

def _not_an_object(doc: object) -> tuple[str, str]:
    return ("not_an_object", f"the document is a JSON {_kind(doc)}, not an object")


def _unknown_schema(doc: dict, expected: str) -> tuple[str, str]:
    s = doc.get("schema", _MISSING)
    if s is _MISSING:
        return ("unknown_schema", "schema: required field is missing")
    return ("unknown_schema", f"schema: {_show(s)} is not {expected}")


def _validate_as(doc: object, schema: str, spec) -> tuple[str, str] | None:
    """Check a document that must carry ``schema``, against its field spec."""
    if not isinstance(doc, dict):
        return _not_an_object(doc)
    if doc.get("schema") != schema:
        return _unknown_schema(doc, repr(schema))
    return _fields(doc, spec)


def validate_manifest(doc: object) -> tuple[str, str] | None:
    """Check a `goods-manifest/1` document."""
    return _validate_as(doc, "goods-manifest/1", _MANIFEST)


def validate_order(doc: object) -> tuple[str, str] | None:
    """Check an `order/1` document."""
    return _validate_as(doc, "order/1", _ORDER)


def validate_request(doc: object) -> tuple[str, str] | None:
    """Check an `assessment-request/1` document."""
    return _validate_as(doc, "assessment-request/1", _REQUEST)


def validate_page(doc: object) -> tuple[str, str] | None:
    """Check the envelope of a `page/1` message (schemas/page-1.json).

    The items are not validated here: validate each with `validate_document`, so that one bad
    item is rejected on its own.
    """
    if not isinstance(doc, dict):
        return _not_an_object(doc)
    if doc.get("schema") != "page/1":
        return _unknown_schema(doc, "'page/1'")
    items = doc.get("items", _MISSING)
    if items is _MISSING:
        return ("missing_field", "items: required field is missing")
    if not isinstance(items, list):
        code, detail = _wrong(items, "an array")
        return (code, "items" + detail)
    n = len(items)
    if n == 0:
        return ("empty_lines", "items: the page has no items")
    if n > MAX_PAGE_ITEMS:
        return ("too_many_items", f"items: {n} items, at most {MAX_PAGE_ITEMS} allowed")
    i = 0
    for item in items:
        if not isinstance(item, dict):
            return ("not_an_object", f"items[{i}]: the item is a JSON {_kind(item)}, not an object")
        i += 1
    return None


_BODY = {
    "goods-manifest/1": _MANIFEST,
    "order/1": _ORDER,
    "assessment-request/1": _REQUEST,
}
DOCUMENT_SCHEMAS: tuple[str, ...] = tuple(_BODY)


def validate_document(doc: object) -> tuple[str, str] | None:
    """Check one feed document (manifest, order or assessment request), dispatching on `schema`.

    Use this on the items of a page: a page inside a page is `unknown_schema`.
    """
    if not isinstance(doc, dict):
        return _not_an_object(doc)
    s = doc.get("schema")
    spec = _BODY.get(s) if isinstance(s, str) else None
    if spec is None:
        return _unknown_schema(doc, "one of " + ", ".join(DOCUMENT_SCHEMAS))
    return _fields(doc, spec)


def validate(doc: object) -> tuple[str, str] | None:
    """Check a feed message: one document (see `validate_document`) or a `page/1` envelope."""
    if not isinstance(doc, dict):
        return _not_an_object(doc)
    s = doc.get("schema")
    spec = _BODY.get(s) if isinstance(s, str) else None
    if spec is not None:
        return _fields(doc, spec)
    if s == "page/1":
        return validate_page(doc)
    return _unknown_schema(doc, "one of " + ", ".join(DOCUMENT_SCHEMAS + ("page/1",)))


def ref_of(doc: object) -> str | None:
    """The id a rejection refers to: `order_id` or `manifest_id` when it is a string."""
    if isinstance(doc, dict):
        ref = doc.get("order_id")
        if isinstance(ref, str):
            return ref
        ref = doc.get("manifest_id")
        if isinstance(ref, str):
            return ref
    return None


def parse_json_line(raw: bytes) -> dict | tuple[str, str]:
    """Parse one message: the object, or (reason, detail) for bad JSON, bad UTF-8 or a non-object."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if len(msg) > 200:
            msg = msg[:197] + "..."
        return ("malformed_json", msg)
    if isinstance(doc, dict):
        return doc
    return _not_an_object(doc)
