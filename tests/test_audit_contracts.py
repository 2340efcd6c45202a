"""audit-event/1 validation accepts exactly what schemas/audit-event-1.json accepts (jsonschema as the oracle),
and every case snapshot and rejection the case logic writes is valid against its schema."""
from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.audit.events import KINDS, event_of, parse_event, selection_of, validate_event
from stream.contracts.reasons import AUDIT_REASONS, REASONS
from tests.schema_oracle import SCHEMAS, schema_validator

EVENT = schema_validator("audit-event-1.json")
CASE = schema_validator("audit-case-1.json")

OPENED = {"schema": "audit-event/1", "case_id": "CASE-D-1", "kind": "opened", "on": "2026-03-02",
          "declaration_id": "D-1", "findings": "unit value 1200.00 against an index median of 9800.00",
          "additional_accruals": "18450.00"}
PAID = {"schema": "audit-event/1", "case_id": "CASE-D-1", "kind": "paid", "on": "2026-03-10", "amount": "100.5",
        "event_id": "PAY-1"}
BARE = {"schema": "audit-event/1", "case_id": "CASE-D-1", "kind": "notification_delivered", "on": "2026-03-03"}


def check_agrees(doc: object) -> None:
    expected = EVENT.is_valid(doc)
    got = validate_event(doc)
    assert (got is None) == expected, (doc, got, [e.message for e in EVENT.iter_errors(doc)])
    if got is not None:
        reason, detail = got
        assert reason in REASONS and isinstance(detail, str) and detail


def test_schemas_are_registered_beside_the_others():
    assert {"audit-event-1.json", "audit-case-1.json"} <= set(SCHEMAS)


@pytest.mark.parametrize("doc", [OPENED, PAID, BARE] + [dict(BARE, kind=k) for k in KINDS if k not in ("opened", "paid")])
def test_valid_examples(doc):
    assert EVENT.is_valid(doc)
    assert validate_event(doc) is None


@pytest.mark.parametrize("change, reason", [
    ({"amount": 100.5}, "wrong_type"),                 # a float is never money
    ({"amount": 100}, "wrong_type"),
    ({"amount": "0.00"}, "out_of_range"),
    ({"amount": "0"}, "out_of_range"),
    ({"amount": "1.005"}, "invalid_number"),
    ({"amount": "-5"}, "invalid_number"),
    ({"amount": "1e3"}, "invalid_number"),
    ({"amount": "10\n"}, "invalid_number"),
    ({"amount": "12345678901234"}, "invalid_number"),
    ({"kind": "refunded"}, "unknown_event_kind"),
    ({"kind": None}, "unknown_event_kind"),
    ({"on": "2026-02-30"}, "invalid_date"),
    ({"on": "2026-3-1"}, "invalid_date"),
    ({"on": 20260301}, "wrong_type"),
    ({"case_id": ""}, "invalid_code"),
    ({"case_id": "CASE 1"}, "invalid_code"),
    ({"event_id": "x" * 200}, "invalid_code"),
    ({"schema": "audit-event/2"}, "unknown_schema"),
    ({"additional_accruals": 5}, "wrong_type"),
    ({"findings": ""}, "invalid_text"),
])
def test_invalid_examples_get_their_reason(change, reason):
    doc = dict(PAID, **change)
    assert not EVENT.is_valid(doc)
    assert validate_event(doc)[0] == reason


@pytest.mark.parametrize("base, key", [(OPENED, "declaration_id"), (OPENED, "findings"),
                                       (OPENED, "additional_accruals"), (PAID, "amount"), (BARE, "on"),
                                       (BARE, "case_id"), (BARE, "kind"), (BARE, "schema")])
def test_a_missing_required_field(base, key):
    doc = {k: v for k, v in base.items() if k != key}
    check_agrees(doc)
    expected = "unknown_schema" if key == "schema" else "missing_field"
    assert validate_event(doc)[0] == expected


def test_findings_must_not_quote_an_iin():
    for findings in ("buyer 900101300123 split the parcels", "x" * 20 + "123456789012"):
        doc = dict(OPENED, findings=findings)
        check_agrees(doc)
        reason, detail = validate_event(doc)
        assert reason == "invalid_text" and "900101300123" not in detail
    check_agrees(dict(OPENED, findings="declaration line 0: 12345678901 is eleven digits"))
    assert validate_event(dict(OPENED, findings="declaration line 0: 12345678901 is eleven digits")) is None


def test_findings_never_appear_in_a_rejection():
    secret = "buyer Aigerim S., IIN 900101300123"
    doc = dict(OPENED, findings=secret * 200)
    reason, detail = validate_event(doc)
    assert reason == "invalid_text" and "Aigerim" not in detail and "900101300123" not in detail


# -- generated and mutated documents against the oracle -----------------------------------------

_text = st.text(max_size=12)
_amounts = st.one_of(st.from_regex(r"\A(0|[1-9][0-9]{0,13})(\.[0-9]{0,3})?\Z"), st.sampled_from(
    ["0", "0.0", "0.00", "0.01", "1", "10.5", "9999999999999.99", "-1", "1,5", " 1", "1 "]), _text)
_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**14), st.floats(allow_nan=False), _text,
                    _amounts, st.lists(st.integers(), max_size=2), st.dictionaries(_text, st.integers(), max_size=2))
_dates = st.one_of(st.dates().map(lambda d: d.isoformat()), st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"), _text)
_ids = st.one_of(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/#-]{0,130}\Z"), _text)


@st.composite
def events(draw):
    doc = {"schema": draw(st.sampled_from(["audit-event/1"] * 9 + ["audit-event/2"])),
           "case_id": draw(_ids), "kind": draw(st.sampled_from(KINDS + ("closed",))), "on": draw(_dates)}
    findings = st.one_of(st.text(max_size=5), st.sampled_from(["IIN 900101300123", "9001013001", "a\n"]))
    for key, strategy in (("event_id", _ids), ("declaration_id", _ids), ("findings", findings),
                          ("additional_accruals", _amounts), ("amount", _amounts)):
        if draw(st.booleans()):
            doc[key] = draw(strategy)
    # mutate: drop a key, or put any JSON value in one
    action = draw(st.integers(0, 3))
    if action == 1 and doc:
        doc.pop(draw(st.sampled_from(sorted(doc))))
    elif action == 2:
        doc[draw(st.sampled_from(sorted(doc) + ["extra"]))] = draw(_values)
    return doc


@given(events())
def test_runtime_validation_equals_the_schema(doc):
    check_agrees(doc)


@given(st.one_of(_values, events()))
def test_any_value_is_decided(doc):
    check_agrees(doc)


@given(st.binary(max_size=64) | events().map(orjson.dumps))
def test_parse_event_never_raises(raw):
    result = parse_event(raw)
    if isinstance(result, tuple):
        ref, reason, detail = result
        assert reason in REASONS and detail
    else:
        assert result.kind in KINDS


def test_event_of_is_exact():
    event = event_of(dict(PAID))
    assert event.amount == 10050 and event.dedupe_key == "PAY-1"
    opened = event_of(dict(OPENED))
    assert opened.accruals == 1845000 and opened.dedupe_key.startswith("digest:")
    assert event_of(copy.deepcopy(OPENED)).digest == opened.digest


def test_audit_reasons_are_part_of_the_one_table():
    assert set(AUDIT_REASONS) <= set(REASONS)


# -- risk selections --------------------------------------------------------------------------------

SCORE = {"schema": "risk-score/1", "order_id": "AX-ORD-1", "declaration_id": "D-9", "score": 0.93,
         "revenue_at_risk": "18450.00", "selected": "risk", "profile": "kz-pca-2026-1",
         "hits": [{"indicator": "undervaluation", "line": 0, "score": 0.93, "revenue_at_risk": "18450.00",
                   "evidence": {"unit_value": "1200.00", "index_median": "9800.00", "samples": 412}}]}


def test_a_selected_score_is_an_opening():
    import datetime as dt
    event = selection_of(SCORE, dt.date(2026, 3, 2))
    assert event.case_id == "CASE-D-9" and event.accruals == 1845000 and event.source == "risk"
    assert "undervaluation (line 0)" in event.findings
    assert selection_of(dict(SCORE, selected=None), dt.date(2026, 3, 2)) is None
    assert selection_of(dict(SCORE, revenue_at_risk=18450.0), dt.date(2026, 3, 2))[1] == "wrong_type"
    assert selection_of(dict(SCORE, selected="maybe"), dt.date(2026, 3, 2))[1] == "wrong_type"


@given(st.dictionaries(st.sampled_from(sorted(SCORE) + ["x"]), _values, max_size=8))
def test_selection_of_never_raises(mutation):
    import datetime as dt
    result = selection_of(dict(SCORE, **mutation), dt.date(2026, 3, 2))
    if isinstance(result, tuple):
        assert result[1] in REASONS
