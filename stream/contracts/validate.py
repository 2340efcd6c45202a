"""Runtime validation of the feed contracts, equivalent to schemas/*.json.

Hand-written for the hot path (every message of the stream passes here): plain type checks,
precompiled regexes and static field tables. It accepts exactly the documents the JSON Schemas
accept (tests/test_contracts.py holds the two equal with the jsonschema library as the oracle)
and names the first problem found as a stable reason code from `reasons.py` plus a human detail
that names the field path, e.g. ``lines[2].unit_price: '1e400' is not a decimal string``.

Every check returns ``None`` when the document is valid, else ``(reason, detail)``.

Three rules hold for every contract built from these checks (other domains reuse them):
- Integers: JSON Schema counts ``1.0`` as an integer, so an integral float in an integer field is
  accepted and replaced by its int in the document (``1.0`` -> ``1``) before anything reads it; no
  float reaches state or output. ``1.5`` is rejected (``wrong_type``), as the schema does.
- Personal data: details name the field and why; the value of a personal field (buyer IIN and
  name, BINs, anything under ``buyer``) is never quoted, only its JSON type.
- Regex dialect: the schemas anchor patterns with ``^...$`` and forbid newlines (ECMA-262
  semantics); here the same patterns are used unanchored with ``fullmatch``, which, unlike
  Python's ``$``, does not match before a trailing newline.

Documents are dispatched through the contract registry (registry.py): a domain registers its
contracts there and `validate(doc, accept=...)` checks the ones a topic accepts.
"""
from __future__ import annotations

import json
import re

import orjson

from stream._backend import PURE_PYTHON
from stream.contracts import registry

__all__ = [
    "DOCUMENT_SCHEMAS",
    "FEED_SCHEMAS",
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


def _wrong(v: object, expected: str, personal: bool = False) -> tuple[str, str]:
    if personal:  # the type alone: a misplaced IIN or name must not be quoted
        return ("wrong_type", f": expected {expected}, got {_kind(v)}")
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


def _pattern(match, reason: str, expected: str, what: str, cache: bool = True, personal: bool = False):
    """A string check by `match` (a compiled pattern's fullmatch).

    With `personal`, a refused value is never quoted in the detail (only its length).

    With `cache`, strings already found valid are remembered in a bounded set: feeds repeat
    warehouse ids, SKUs, currencies, prices and (at high rates) timestamps, and a set lookup is
    several times cheaper than a regex. Only valid strings enter, so results never change.
    Fields unique per message (order_id, manifest_id) use no cache.
    """
    def refused(v: str) -> tuple[str, str]:
        if personal:
            return (reason, f": the value ({len(v)} characters) {what}")
        return (reason, f": {_show(v)} {what}")

    if not cache:
        def check(v):
            if isinstance(v, str):
                if match(v) is not None:
                    return None
                return refused(v)
            return _wrong(v, expected, personal)
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
            return refused(v)
        return _wrong(v, expected, personal)
    return check_cached


def _id_check(cache: bool = True):
    return _pattern(_ID, "invalid_code", "a string", "is not a valid identifier", cache)


def _bin_check():
    # a BIN may be an individual entrepreneur's IIN: personal either way
    return _pattern(_BIN, "invalid_code", "a string", "is not a 12-digit BIN/IIN", personal=True)


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


def integer(lo: int, hi: int):
    """A JSON integer in lo..hi. An integral float passes (JSON Schema's "integer") and `_fields`
    then stores it as an int in the document; ``True`` is not an integer."""
    def check(v):
        cls = v.__class__
        if cls is int:
            n = v
        elif cls is float or isinstance(v, float):
            if not v.is_integer():
                return _wrong(v, "an integer")
            n = v
        elif isinstance(v, int) and not isinstance(v, bool):
            n = v
        else:
            return _wrong(v, "an integer")
        if lo <= n <= hi:
            return None
        return ("out_of_range", f": {_show(v)} is outside {lo}..{hi}")
    _INTEGER_CHECKS.add(check)
    return check


_INTEGER_CHECKS: set = set()  # checks of integer fields: `_fields` stores their integral floats as int


_qty = integer(1, MAX_QTY)


def _hs_code(v):
    if v is None:
        return None
    if isinstance(v, str):
        if len(v) <= 32:
            return None
        return ("invalid_code", f": {_show(v)} is longer than 32 characters")
    return _wrong(v, "a string or null")


def _text(lo: int, hi: int, personal: bool = False):
    def check(v):
        if isinstance(v, str):
            if lo <= len(v) <= hi:
                return None
            if personal:
                return ("invalid_text", f": has {len(v)} characters, must have {lo} to {hi}")
            return ("invalid_text", f": {_show(v)} must be {lo} to {hi} characters long")
        return _wrong(v, "a string", personal)
    return check


_marketplace = _text(1, 64)
_description = _text(1, 1000)
_category = _text(1, 100)
_buyer_name = _text(1, 200, personal=True)


def _flow(v):
    if v == "parcel" or v == "warehouse":
        if isinstance(v, str):
            return None
    return ("unknown_flow", f": {_show(v)} is neither 'parcel' nor 'warehouse'")


# -- objects and arrays --------------------------------------------------------------------------

def _fields(doc: dict, spec: tuple) -> tuple[str, str] | None:
    """Check `doc` against (key, check, required) rows; detail starts with the key.

    An integral float accepted by an integer check (`integer`) is replaced by its int here, the
    one place every contract's fields pass, so no float leaves the boundary.
    """
    for key, check, required in spec:
        v = doc.get(key, _MISSING)
        if v is _MISSING:
            if required:
                return ("missing_field", f"{key}: required field is missing")
            continue
        r = check(v)
        if r is not None:
            return (r[0], key + r[1])
        if v.__class__ is float and check in _INTEGER_CHECKS:
            doc[key] = int(v)
    return None


def _object(spec: tuple, personal: bool = False):
    def check(v):
        if not isinstance(v, dict):
            return _wrong(v, "an object", personal)
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
_buyer = _object(_BUYER, personal=True)

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
# the fields order/1 names (what a pending order may keep: nothing a feed added beside them)
ORDER_FIELDS = ("schema",) + tuple(name for name, _, _ in _ORDER)
ORDER_LINE_FIELDS = tuple(name for name, _, _ in _ORDER_LINE)

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


# The feed contracts of the warehouse and the offline assessment, in the registry like any domain's.
FEED_SCHEMAS: tuple[str, ...] = ("goods-manifest/1", "order/1", "assessment-request/1")
DOCUMENT_SCHEMAS = FEED_SCHEMAS  # the name the CLI and the agents import


def _body_check(schema: str, spec):
    def check(doc: dict) -> tuple[str, str] | None:
        return _fields(doc, spec)
    check.__name__ = check.__qualname__ = "validate_" + schema.split("/")[0].replace("-", "_")
    return check


registry.register("goods-manifest/1", _body_check("goods-manifest/1", _MANIFEST), ref_field="manifest_id",
                  domain="warehouse", schema_file="goods-manifest-1.json")
registry.register("order/1", _body_check("order/1", _ORDER), ref_field="order_id", domain="warehouse",
                  schema_file="order-1.json")
registry.register("assessment-request/1", _body_check("assessment-request/1", _REQUEST), ref_field="order_id",
                  domain="declaration", schema_file="assessment-request-1.json")


def validate_document(doc: object, accept: tuple[str, ...] = FEED_SCHEMAS) -> tuple[str, str] | None:
    """Check one document whose `schema` is one of `accept`, through the contract registry.

    Use this on the items of a page: a page inside a page is `unknown_schema`.
    """
    if not isinstance(doc, dict):
        return _not_an_object(doc)
    if doc.__class__ is _Duplicated:
        return doc.problem()
    s = doc.get("schema")
    contract = registry.get(s) if s in accept else None
    if contract is None:
        return _unknown_schema(doc, "one of " + ", ".join(accept))
    return contract.validate(doc)


def validate(doc: object, accept: tuple[str, ...] = FEED_SCHEMAS) -> tuple[str, str] | None:
    """Check a feed message: one document of `accept` (see `validate_document`) or a `page/1` envelope."""
    if not isinstance(doc, dict):
        return _not_an_object(doc)
    s = doc.get("schema")
    if s == "page/1":
        return validate_page(doc)
    if doc.__class__ is _Duplicated:
        return doc.problem()
    contract = registry.get(s) if s in accept else None
    if contract is not None:
        return contract.validate(doc)
    return _unknown_schema(doc, "one of " + ", ".join(accept + ("page/1",)))


def ref_of(doc: object) -> str | None:
    """The id a rejection refers to: the reference field of the document's contract when it is a
    string; for a document of no known contract, the first string among the registered reference
    fields (`order_id`, `manifest_id`, then other domains')."""
    if isinstance(doc, dict):
        contract = registry.get(doc.get("schema"))
        fields = (contract.ref_field,) if contract is not None and contract.ref_field else registry.ref_fields()
        for field_name in fields:
            ref = doc.get(field_name)
            if isinstance(ref, str):
                return ref
    return None


# -- parsing: orjson, plus the duplicate keys it cannot report ------------------------------------

class _Duplicated(dict):
    """An object (from the exact parser) that names a key twice, itself or in an object inside it.

    The validators reject it (`duplicate_key`); in a page only the items holding one are rejected.
    """

    __slots__ = ("path", "key", "own")

    def problem(self) -> tuple[str, str]:
        where = f"{self.path}: " if self.path else ""
        return ("duplicate_key", f"{where}key {_show(self.key)} appears more than once in one object")


def _taint(value: object) -> tuple[_Duplicated, str] | None:
    """The first duplicated object at or inside `value` (lists included), and its path from there."""
    cls = value.__class__
    if cls is _Duplicated:
        return value, ""
    if cls is list:
        for i, item in enumerate(value):
            found = _taint(item)
            if found is not None:
                inner, path = found
                return inner, f"[{i}]" + (("." + path) if path and path[0] != "[" else path)
    return None


def _pairs_hook(pairs: list) -> dict:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                break
            seen.add(key)
        marked = _Duplicated(doc)
        marked.path, marked.key, marked.own = "", key, True
        return marked
    for key, value in doc.items():
        found = _taint(value)
        if found is not None:
            inner, path = found
            inner_path = path + (("." + inner.path) if path and inner.path else inner.path)
            marked = _Duplicated(doc)
            marked.path = key + (inner_path if inner_path.startswith("[") else ("." + inner_path if inner_path else ""))
            marked.key, marked.own = inner.key, False
            return marked
    return doc


_exact = json.JSONDecoder(object_pairs_hook=_pairs_hook)


def _compiled_key_scan():
    """The feed reader's compiled key scan (ext/feedscan.pyx), or None in pure-Python mode or without it.
    Imported directly, not through `load_kernel`: its twin imports this module."""
    if PURE_PYTHON:
        return None
    try:
        from stream.contracts._feedscan import DUPLICATE, scan_keys
    except ImportError:
        return None
    return scan_keys, DUPLICATE


_KEY_SCAN = _compiled_key_scan()


def _has_duplicate_keys(raw: bytes, doc: object) -> bool:
    """Whether the message may name a key twice in one object, at C speed: the compiled key scan decides in
    one pass over the bytes, except where the raw bytes cannot tell (an escaped key, an object of more than
    64 keys, nesting deeper than 64); there, and without the scan, the colons count."""
    if _KEY_SCAN is not None and raw.__class__ is bytes:
        scan_keys, duplicate = _KEY_SCAN
        found = scan_keys(raw)
        if found == duplicate:
            return True
        if found >= 0:
            return False
    return _colons_dropped(raw, doc)  # the scan is unsure, or absent


def _colons_dropped(raw: bytes, doc: object) -> bool:
    """Every colon of a JSON text is either the separator of one key-value pair or a character inside a
    string. Re-serialised, the parsed document keeps every surviving pair and every string as is, so it has
    fewer colons than the input exactly when pairs were dropped, i.e. when a key came twice. The one
    exception is a colon written as an escape (``\\u003a``), which the re-serialisation writes plainly:
    such input takes the exact parser instead."""
    if b"\\u003" in raw:
        return True
    try:
        return raw.count(b":") != orjson.dumps(doc).count(b":")
    except TypeError:  # nested deeper than orjson writes (254): the exact parser decides
        return True


def parse_json_line(raw: bytes) -> dict | tuple[str, str]:
    """Parse one message: the object, or (reason, detail) for bad JSON, bad UTF-8 or a non-object.

    A message with a key named twice in one object is reparsed exactly: an object of its own that
    repeats a key is `duplicate_key`; in a page, the items that hold one come back marked and
    `validate_document` rejects only them.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if len(msg) > 200:
            msg = msg[:197] + "..."
        return ("malformed_json", msg)
    if not isinstance(doc, dict):
        return _not_an_object(doc)
    if not _has_duplicate_keys(raw, doc):
        return doc
    try:
        exact = _exact.decode(raw.decode("utf-8"))
    except RecursionError:
        return ("malformed_json", "nested too deep to check for duplicate keys")
    if exact.__class__ is _Duplicated and (exact.own or exact.get("schema") != "page/1"
                                           or not exact.path.startswith("items[")):
        return exact.problem()
    return exact  # a page: its marked items are rejected one by one
