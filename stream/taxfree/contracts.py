"""Runtime validation of the tax-free contracts, equal to schemas/taxfree-*.json.

`check(doc)` accepts exactly what the JSON Schema of the document's `schema` accepts
(tests/test_taxfree_contracts.py holds the two equal with jsonschema as the oracle) and returns
None, or ``(reason, detail)`` with a stable reason code and a detail naming the field path and the
problem. Details never quote a value: a tax-free document is full of personal data (passport,
name, card token), so the detail says which field failed and why, nothing more.

A JSON Schema "integer" accepts ``2.0``: such a `qty` is replaced by its int in the document, so
no float reaches the state or an output.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache

import orjson

# the shared patterns of schemas/common-1.json (fullmatch: no trailing newline)
from stream.contracts.validate import _BIN, _COUNTRY, _DATE, _ID, _TIMESTAMP

INPUT_SCHEMAS = ("taxfree-document/1", "taxfree-confirmation/1", "taxfree-cancellation/1")
MAX_LINES = 1000
MAX_RECEIPTS = 100
MAX_QTY = 1_000_000

_MISSING = object()

_AIRPORT = re.compile(r"[A-Z]{3}").fullmatch
_PASSPORT = re.compile(r"[A-Z0-9]{4,20}").fullmatch
_CARD = re.compile(r"[A-Za-z0-9_.:-]{4,200}").fullmatch
_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,11})\.[0-9]{2}").fullmatch
_KZT = re.compile(r"(?:0|[1-9][0-9]{0,17})\.[0-9]{2}").fullmatch
_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+").fullmatch
_HEX64 = re.compile(r"[0-9a-f]{64}").fullmatch
_QUARTER = re.compile(r"[0-9]{4}Q[1-4]").fullmatch
_MONTH = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])").fullmatch

REFUSAL_REASONS = ("buyer_eaeu_citizen", "below_minimum", "receipts_not_same_day", "export_refused",
                   "export_not_confirmed", "not_pilot_airport", "qr_mismatch", "cancelled",
                   "duplicate_receipt")


def _kind(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(v), type(v).__name__)


@lru_cache(maxsize=8192)  # a feed's documents share their days
def _possible_date(y: str, m: str, d: str) -> bool:
    try:
        date(int(y), int(m), int(d))
    except ValueError:
        return False
    return True


def timestamp_ok(v: str) -> bool:
    m = _TIMESTAMP(v)
    if m is None:
        return False
    y, mo, d, hh, mi, ss, oh, om = m.groups()
    return (_possible_date(y, mo, d) and hh <= "23" and mi <= "59" and ss <= "59"
            and (oh is None or (oh <= "23" and om <= "59")))


def _date_ok(v: str) -> bool:
    m = _DATE(v)
    return m is not None and _possible_date(*m.groups())


# -- leaf checks: None, or (reason, message) ------------------------------------------------------

def _string(match, reason: str, what: str):
    def check(v):
        if not isinstance(v, str):
            return ("wrong_type", f"expected a string, got {_kind(v)}")
        if match(v):
            return None
        return (reason, what)
    return check


def _nullable(check):
    def nullable(v):
        return None if v is None else check(v)
    return nullable


def _text(hi: int):
    def check(v):
        if not isinstance(v, str):
            return ("wrong_type", f"expected a string, got {_kind(v)}")
        if 1 <= len(v) <= hi:
            return None
        return ("invalid_text", f"must be 1 to {hi} characters long")
    return check


def _enum(values: tuple[str, ...], reason: str = "invalid_code"):
    def check(v):
        if isinstance(v, str) and v in values:
            return None
        return (reason, "must be one of " + ", ".join(values))
    return check


def _integer(lo: int, hi: int | None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return ("wrong_type", f"expected an integer, got {_kind(v)}")
        if isinstance(v, float) and not v.is_integer():
            return ("wrong_type", "expected an integer, got a fraction")
        if v < lo or (hi is not None and v > hi):
            return ("out_of_range", f"is outside {lo}..{hi if hi is not None else ''}")
        return None
    return check


_id = _string(_ID, "invalid_code", "is not a valid identifier")
_bin = _string(_BIN, "invalid_code", "is not a 12-digit BIN")
_country = _string(_COUNTRY, "invalid_code", "is not an ISO 3166-1 alpha-2 country code")
_timestamp = _string(timestamp_ok, "invalid_date", "is not a possible RFC 3339 timestamp with offset")
_date = _string(_date_ok, "invalid_date", "is not a possible YYYY-MM-DD date")
_amount = _string(_AMOUNT, "invalid_number",
                  "is not a KZT amount string with exactly two decimals (at most 12 integer digits)")
_kzt = _string(_KZT, "invalid_number", "is not a KZT amount string with exactly two decimals")
_jws = _string(_JWS, "invalid_code", "is not a JWS compact serialization (three base64url parts)")


def _jws_limited(v):
    r = _jws(v)
    if r is None and len(v) > 4096:
        return ("invalid_code", "is longer than 4096 characters")
    return r


# -- objects and arrays ---------------------------------------------------------------------------

def _fields(doc: dict, spec: tuple, path: str):
    for key, check, required in spec:
        v = doc.get(key, _MISSING)
        if v is _MISSING:
            if required:
                return ("missing_field", f"{path}{key}: required field is missing")
            continue
        r = check(v)
        if r is not None:
            if r[0] == "nested":
                return r[1]
            return (r[0], f"{path}{key}: {r[1]}")
        if v.__class__ is float:  # only an integer check lets a float through: 2.0 becomes 2
            doc[key] = int(v)
    return None


def _object(spec: tuple, path: str):
    def check(v):
        if not isinstance(v, dict):
            return ("wrong_type", f"expected an object, got {_kind(v)}")
        r = _fields(v, spec, path)
        return None if r is None else ("nested", r)
    return check


def _array(spec: tuple, path: str, hi: int, empty_reason: str, unit: str):
    def check(v):
        if not isinstance(v, list):
            return ("wrong_type", f"expected an array, got {_kind(v)}")
        if not v:
            return (empty_reason, f"no {unit}")
        if len(v) > hi:
            return ("too_many_items", f"{len(v)} {unit}, at most {hi} allowed")
        for i, item in enumerate(v):
            if not isinstance(item, dict):
                return ("nested", ("wrong_type", f"{path}[{i}]: expected an object, got {_kind(item)}"))
            r = _fields(item, spec, f"{path}[{i}].")
            if r is not None:
                return ("nested", r)
        return None
    return check


_PASSPORT_SPEC = (
    ("country", _country, True),
    ("number", _string(_PASSPORT, "invalid_code", "is not 4 to 20 upper-case letters and digits"), True),
    ("issued_on", _date, True),
)
_BUYER = (
    ("passport", _object(_PASSPORT_SPEC, "buyer.passport."), True),
    ("name", _text(200), True),
    ("card_token", _string(_CARD, "invalid_code", "is not a card token (4 to 200 letters, digits, _ . : -)"), True),
)
_ENTITY = (
    ("bin", _bin, True),
    ("name", _text(200), True),
    ("address", _text(500), True),
)
_RECEIPT = (
    ("number", _id, True),
    ("issued_at", _timestamp, True),
    ("register_address", _text(500), True),
)
_LINE = (
    ("description", _text(1000), True),
    ("qty", _integer(1, MAX_QTY), True),
    ("price", _amount, True),
    ("vat", _amount, True),
)
_DOCUMENT = (
    ("document_id", _id, True),
    ("form", _enum(("electronic", "paper"), "invalid_code"), True),
    ("issued_at", _timestamp, True),
    ("trading_entity", _object(_ENTITY, "trading_entity."), True),
    ("receipts", _array(_RECEIPT, "receipts", MAX_RECEIPTS, "empty_lines", "receipts"), True),
    ("lines", _array(_LINE, "lines", MAX_LINES, "empty_lines", "lines"), True),
    ("buyer", _object(_BUYER, "buyer."), True),
    ("qr", _nullable(_jws_limited), False),
)
_CONFIRMATION = (
    ("document_id", _id, True),
    ("at", _timestamp, True),
    ("airport", _string(_AIRPORT, "invalid_code", "is not a 3-letter IATA airport code"), True),
    ("official_id", _id, True),
    ("outcome", _enum(("confirmed", "refused")), True),
    ("qr_scanned", _nullable(_jws_limited), False),
)
_CANCELLATION = (
    ("document_id", _id, True),
    ("at", _timestamp, True),
    ("replaced_by", _nullable(_id), False),
)


def _electronic_needs_qr(doc: dict):
    if doc.get("form") == "electronic" and not isinstance(doc.get("qr"), str):
        if "qr" not in doc:
            return ("missing_field", "qr: required on the electronic form")
        return ("wrong_type", "qr: the electronic form needs a JWS string, got null")
    return None


_DECISION = (
    ("document_id", _id, True),
    ("decision", _enum(("refund", "refusal", "pending")), True),
    ("reasons", lambda v: _reasons(v), True),
    ("vat", _kzt, True),
    ("commission", _kzt, True),
    ("refund", _kzt, True),
    ("pay_from", _nullable(_date), True),
    ("pay_by", _nullable(_date), True),
    ("trading_entity_bin", _bin, False),
    ("decided_on", _date, False),
    ("buyer_ref", _string(_HEX64, "invalid_code", "is not 64 lower-case hex digits"), False),
)


def _reasons(v):
    if not isinstance(v, list):
        return ("wrong_type", f"expected an array, got {_kind(v)}")
    if not all(isinstance(r, str) and r in REFUSAL_REASONS for r in v):
        return ("invalid_code", "lists a code that is not a refusal reason")
    if len(set(v)) != len(v):
        return ("invalid_code", "lists a reason twice")
    return None


def _decision_shape(doc: dict):
    if doc.get("decision") == "refusal":
        if not doc["reasons"]:
            return ("missing_field", "reasons: a refusal lists at least one reason")
        if doc["pay_from"] is not None or doc["pay_by"] is not None:
            return ("wrong_type", "pay_from, pay_by: a refusal has no payment dates")
    else:
        if doc["reasons"]:
            return ("invalid_code", "reasons: only a refusal lists reasons")
        if doc["pay_from"] is None or doc["pay_by"] is None:
            return ("wrong_type", "pay_from, pay_by: a refund or pending decision has payment dates")
    return None


_INVOICE = (
    ("invoice_id", _id, True),
    ("quarter", _string(_QUARTER, "invalid_code", "is not YYYYQn"), True),
    ("trading_entity_bin", _bin, True),
    ("documents", _integer(1, None), True),
    ("vat_confirmed", _kzt, True),
    ("commission", _kzt, True),
    ("refunded", _kzt, True),
    ("issued_on", _date, True),
    ("due_by", _date, True),
)
_PARTICIPANT = (
    ("trading_entity_bin", _bin, True),
    ("documents", _integer(1, None), True),
    ("vat_received", _kzt, True),
    ("vat_compensated", _kzt, True),
)


def _participants(v):
    if not isinstance(v, list):
        return ("wrong_type", f"expected an array, got {_kind(v)}")
    for i, item in enumerate(v):
        if not isinstance(item, dict):
            return ("nested", ("wrong_type", f"participants[{i}]: expected an object, got {_kind(item)}"))
        r = _fields(item, _PARTICIPANT, f"participants[{i}].")
        if r is not None:
            return ("nested", r)
    return None


_REPORT = (
    ("month", _string(_MONTH, "invalid_date", "is not YYYY-MM"), True),
    ("due_by", _date, True),
    ("participants", _participants, True),
    ("documents", _integer(0, None), True),
    ("refusals", _integer(0, None), True),
    ("buyers", _integer(0, None), True),
    ("vat_received", _kzt, True),
    ("vat_compensated", _kzt, True),
    ("operator_turnover", _kzt, True),
)

# schema -> (field spec, whole-document rule applied once the fields are valid)
_CONTRACTS = {
    "taxfree-document/1": (_DOCUMENT, _electronic_needs_qr),
    "taxfree-confirmation/1": (_CONFIRMATION, None),
    "taxfree-cancellation/1": (_CANCELLATION, None),
    "taxfree-decision/1": (_DECISION, _decision_shape),
    "taxfree-invoice/1": (_INVOICE, None),
    "taxfree-report/1": (_REPORT, None),
}
SCHEMAS = tuple(_CONTRACTS)


def _text_ok(v, hi: int) -> bool:
    return type(v) is str and 1 <= len(v) <= hi


def _document_fast(doc: dict) -> bool:
    """True when `doc` is certainly a valid taxfree-document/1 (the same rules as _DOCUMENT and
    _electronic_needs_qr, written out for the common case); False sends it to the spec walker, which
    finds the first problem (or accepts it: an integral float qty, say, that it turns into an int)."""
    try:
        entity, buyer, receipts, lines = doc["trading_entity"], doc["buyer"], doc["receipts"], doc["lines"]
        passport = buyer["passport"]
        form = doc["form"]
        if not (type(doc["document_id"]) is str and _ID(doc["document_id"])
                and (form == "electronic" or form == "paper") and type(form) is str
                and type(doc["issued_at"]) is str and timestamp_ok(doc["issued_at"])
                and type(entity) is dict and type(entity["bin"]) is str and _BIN(entity["bin"])
                and _text_ok(entity["name"], 200) and _text_ok(entity["address"], 500)
                and type(receipts) is list and 1 <= len(receipts) <= MAX_RECEIPTS
                and type(lines) is list and 1 <= len(lines) <= MAX_LINES
                and type(buyer) is dict and type(passport) is dict
                and type(passport["country"]) is str and _COUNTRY(passport["country"])
                and type(passport["number"]) is str and _PASSPORT(passport["number"])
                and type(passport["issued_on"]) is str and _date_ok(passport["issued_on"])
                and _text_ok(buyer["name"], 200)
                and type(buyer["card_token"]) is str and _CARD(buyer["card_token"])):
            return False
        for r in receipts:
            if not (type(r) is dict and type(r["number"]) is str and _ID(r["number"])
                    and type(r["issued_at"]) is str and timestamp_ok(r["issued_at"])
                    and _text_ok(r["register_address"], 500)):
                return False
        for line in lines:
            qty = line["qty"]
            if not (type(line) is dict and _text_ok(line["description"], 1000)
                    and type(qty) is int and 1 <= qty <= MAX_QTY
                    and type(line["price"]) is str and _AMOUNT(line["price"])
                    and type(line["vat"]) is str and _AMOUNT(line["vat"])):
                return False
        qr = doc.get("qr", _MISSING)
        if qr is _MISSING or qr is None:
            return form == "paper" and (qr is None or "qr" not in doc)
        return type(qr) is str and len(qr) <= 4096 and _JWS(qr) is not None
    except (KeyError, TypeError):
        return False


def check(doc: object, accept: tuple[str, ...] = SCHEMAS) -> tuple[str, str] | None:
    """None when `doc` is a valid document of one of the `accept`ed contracts, else (reason, detail)."""
    if not isinstance(doc, dict):
        return ("not_an_object", f"the document is a JSON {_kind(doc)}, not an object")
    kind = doc.get("schema", _MISSING)
    if kind is _MISSING:
        return ("unknown_schema", "schema: required field is missing")
    if not isinstance(kind, str) or kind not in accept:
        return ("unknown_schema", "schema: is not one of " + ", ".join(accept))
    if kind == "taxfree-document/1" and _document_fast(doc):
        return None
    spec, rule = _CONTRACTS[kind]
    r = _fields(doc, spec, "")
    if r is None and rule is not None:
        r = rule(doc)
    return r


def parse(raw: bytes | str, accept: tuple[str, ...] = INPUT_SCHEMAS) -> dict | tuple[str, str]:
    """One JSON message as a valid document, or (reason, detail)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ("malformed_json", "the input is not valid JSON (or not UTF-8)")
    r = check(doc, accept)
    return doc if r is None else r


def ref_of(doc: object) -> str | None:
    if isinstance(doc, dict) and isinstance(doc.get("document_id"), str):
        return doc["document_id"][:128]
    return None


def timestamp_of(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))


def _register() -> None:
    from stream.contracts import registry

    for kind in SCHEMAS:
        registry.register(kind, lambda doc, kind=kind: check(doc, (kind,)),
                          ref_field=None if kind in ("taxfree-invoice/1", "taxfree-report/1") else "document_id",
                          domain="taxfree", schema_file=kind.replace("/", "-") + ".json")


_register()
