"""Fuzzing: no input makes parse_json_line or the validators raise."""
from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.contracts.reasons import REASONS
from stream.contracts.validate import (
    parse_json_line,
    ref_of,
    validate,
    validate_document,
    validate_manifest,
    validate_order,
    validate_page,
    validate_request,
)

CHECKS = (validate, validate_document, validate_manifest, validate_order, validate_page,
          validate_request)
KEYS = ["schema", "order_id", "manifest_id", "operator_bin", "warehouse_id", "marketplace",
        "arrived_at", "ordered_at", "declared_at", "flow", "buyer", "iin", "name", "lines",
        "items", "sku", "description", "hs_code", "origin", "qty", "unit_price", "currency",
        "unit_weight_kg", "unit_volume_l", "category"]
SCHEMAS = ["order/1", "goods-manifest/1", "assessment-request/1", "page/1"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                    st.sampled_from(SCHEMAS + ["parcel", "4.35", "USD", "2026-01-01"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), inner,
                        max_size=6),
    ),
    max_leaves=30,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _well_formed(result) -> None:
    if result is not None:
        reason, detail = result
        assert reason in REASONS
        assert isinstance(detail, str) and 0 < len(detail) < 500


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes(raw):
    doc = parse_json_line(raw)
    if isinstance(doc, tuple):
        assert doc[0] in ("malformed_json", "not_an_object", "duplicate_key")
    else:
        assert isinstance(doc, dict)
        _well_formed(validate(doc))


@FUZZ
@given(json_values)
def test_arbitrary_json_values(value):
    for check in CHECKS:
        _well_formed(check(value))
    ref = ref_of(value)
    assert ref is None or isinstance(ref, str)
    if isinstance(value, dict):
        for schema in SCHEMAS:
            _well_formed(validate({**value, "schema": schema}))


@FUZZ
@given(json_values)
def test_roundtrip_through_bytes(value):
    try:
        raw = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits
        return
    doc = parse_json_line(raw)
    if isinstance(value, dict):
        assert isinstance(doc, dict)
        _well_formed(validate(doc))
    else:
        assert doc[0] == "not_an_object"


@FUZZ
@given(st.data())
def test_mangled_valid_message(data):
    """Byte-level damage to a real message: truncation, flipped bytes, invalid UTF-8."""
    raw = bytearray(orjson.dumps({
        "schema": "order/1", "order_id": "AX-ORD-1", "marketplace": "aliexpress",
        "warehouse_id": "KZ-ALA-CW-01", "ordered_at": "2026-11-21T10:00:00+05:00",
        "buyer": {"iin": "900101300123", "name": "Айгерим"},
        "lines": [{"sku": "AX-100500", "qty": 2, "unit_price": "5.10", "currency": "USD"}]}))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    raw = raw[:data.draw(st.integers(0, len(raw)))]
    doc = parse_json_line(bytes(raw))
    if isinstance(doc, dict):
        _well_formed(validate(doc))
    else:
        assert doc[0] in ("malformed_json", "not_an_object", "duplicate_key")


def test_deep_nesting_is_rejected_not_raised():
    assert parse_json_line(b"[" * 100000 + b"]" * 100000)[0] == "malformed_json"
    assert parse_json_line(b'{"a":' * 5000 + b"1" + b"}" * 5000)[0] == "malformed_json"


@FUZZ
@given(st.binary(max_size=60), st.binary(max_size=60),
       st.sampled_from([b"Aigerim Sultanbekova", b"900101300123", b"MUELLER ANNA"]))
def test_no_personal_value_in_a_parse_error(before, after, personal):
    """A broken message around a buyer's data: the detail says where and why, never the data."""
    raw = before + b'{"buyer": {"iin": "' + personal + b'", "name": "' + personal + b'"}' + after
    result = parse_json_line(raw)
    if isinstance(result, tuple):
        assert personal.decode() not in result[1]
    else:
        problem = validate(result)
        if problem is not None:
            assert personal.decode() not in problem[1]
