"""Runtime validation of `local-content-request/1`, equal to schemas/local-content-request-1.json.

Built from the feed validator's field checks (stream/contracts/validate.py), so identifiers, dates,
texts and the shape of details are checked the same way across the project. Returns ``None`` for a
valid request, else ``(reason, detail)`` naming the field path (``materials[1].origin: ...``), never
more of a value than a bounded repr. tests/test_localcontent_contract.py holds this equal to the
schema with jsonschema as the oracle.
"""
from __future__ import annotations

import re

import pycountry

from stream.contracts import registry
from stream.contracts.validate import (
    _MISSING,
    _date_check,
    _fields,
    _id_check,
    _kind,
    _not_an_object,
    _show,
    _text,
    _unknown_schema,
    _wrong,
)

SCHEMA = "local-content-request/1"
MAX_MATERIALS = 1000
DOMESTIC = "KZ"

# Assigned ISO 3166-1 alpha-2 codes; the schema's enum is the same list (a test keeps them equal).
COUNTRIES = frozenset(country.alpha_2 for country in pycountry.countries)

_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,12})(?:\.[0-9]{1,2})?").fullmatch
_ZERO = re.compile(r"0(?:\.0{1,2})?").fullmatch
_COUNTRY_FORM = re.compile(r"[A-Z]{2}").fullmatch
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}").fullmatch


def _amount(v):
    if not isinstance(v, str):
        return _wrong(v, "a decimal string")
    if _AMOUNT(v) is None:
        return ("invalid_number", f": {_show(v)} is not a KZT amount (non-negative, at most 13 integer digits "
                                  f"and 2 decimals)")
    return None


def _production_cost(v):
    problem = _amount(v)
    if problem is None and _ZERO(v) is not None:
        return ("out_of_range", ": must be greater than zero (the share divides by it)")
    return problem


def _origin(v):
    if not isinstance(v, str):
        return _wrong(v, "a string")
    if _COUNTRY_FORM(v) is None:
        return ("invalid_code", f": {_show(v)} is not an ISO 3166-1 alpha-2 country code")
    if v not in COUNTRIES:
        return ("unknown_origin", f": {v!r} is not an assigned ISO 3166-1 alpha-2 country code")
    return None


def _vat_payer(v):
    return None if isinstance(v, bool) else _wrong(v, "true or false")


_MATERIAL = (
    ("name", _text(1, 200), True),
    ("origin", _origin, True),
    ("cost", _amount, True),
)


def _materials(v):
    if not isinstance(v, list):
        return _wrong(v, "an array")
    if len(v) > MAX_MATERIALS:
        return ("too_many_items", f": {len(v)} materials, at most {MAX_MATERIALS} allowed")
    for i, material in enumerate(v):
        if not isinstance(material, dict):
            return ("wrong_type", f"[{i}]: expected an object, got {_kind(material)}")
        problem = _fields(material, _MATERIAL)
        if problem is not None:
            return (problem[0], f"[{i}].{problem[1]}")
    return None


_REQUEST = (
    ("product_id", _id_check(cache=False), True),
    ("product_type", _text(1, 100), True),
    ("calculated_on", _date_check(), True),
    ("vat_payer", _vat_payer, True),
    ("production_cost", _production_cost, True),
    ("margin", _amount, True),
    ("materials", _materials, True),
)


def validate_request(doc: object) -> tuple[str, str] | None:
    """Check a `local-content-request/1` document: None, or (reason, detail) for the first problem."""
    if not isinstance(doc, dict):
        return _not_an_object(doc)
    if doc.get("schema", _MISSING) != SCHEMA:
        return _unknown_schema(doc, repr(SCHEMA))
    return _validate_body(doc)


def _validate_body(doc: dict) -> tuple[str, str] | None:
    """The fields of a document whose `schema` already names this contract (the registry's entry)."""
    return _fields(doc, _REQUEST)


registry.register(SCHEMA, _validate_body, ref_field="product_id", domain="localcontent",
                  schema_file="local-content-request-1.json")


def ref_of(doc: object) -> str | None:
    """The product_id a rejection refers to, when the document has a well-formed one."""
    if isinstance(doc, dict):
        ref = doc.get("product_id")
        if isinstance(ref, str) and _ID(ref) is not None:
            return ref
    return None
