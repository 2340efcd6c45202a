"""The tax-free runtime validator accepts exactly what schemas/taxfree-*.json accept (jsonschema as the
oracle), on DESIGN's examples, on mutations of every field, and on hypothesis-generated documents."""
from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from stream.contracts.reasons import REASONS, TAXFREE_REASONS
from stream.taxfree import contracts, samples
from tests.schema_oracle import SCHEMAS, schema_validator

FILES = {
    "taxfree-document/1": "taxfree-document-1.json",
    "taxfree-confirmation/1": "taxfree-confirmation-1.json",
    "taxfree-cancellation/1": "taxfree-cancellation-1.json",
    "taxfree-decision/1": "taxfree-decision-1.json",
    "taxfree-invoice/1": "taxfree-invoice-1.json",
    "taxfree-report/1": "taxfree-report-1.json",
}
ORACLE = {kind: schema_validator(name) for kind, name in FILES.items()}

SELLER = samples.entity("123456789012")
DOCUMENT = samples.document("TF-2026-000123", SELLER)
PAPER = samples.document("TF-2026-000124", SELLER, form="paper")
CONFIRMATION = samples.confirmation(DOCUMENT)
CANCELLATION = samples.cancellation(DOCUMENT, replaced_by="TF-2026-000125")
DECISION = {"schema": "taxfree-decision/1", "document_id": "TF-2026-000123", "decision": "refund", "reasons": [],
            "vat": "16551.72", "commission": "2482.76", "refund": "14068.96",
            "pay_from": "2026-08-29", "pay_by": "2026-11-15"}
REFUSAL = {**DECISION, "decision": "refusal", "reasons": ["buyer_eaeu_citizen", "below_minimum"],
           "commission": "0.00", "refund": "0.00", "pay_from": None, "pay_by": None}
INVOICE = {"schema": "taxfree-invoice/1", "invoice_id": "INV-2026Q3-123456789012", "quarter": "2026Q3",
           "trading_entity_bin": "123456789012", "documents": 2, "vat_confirmed": "33103.44",
           "commission": "4965.52", "refunded": "28137.92", "issued_on": "2026-09-30", "due_by": "2026-10-05"}
REPORT = {"schema": "taxfree-report/1", "month": "2026-08", "due_by": "2026-09-15",
          "participants": [{"trading_entity_bin": "123456789012", "documents": 2, "vat_received": "33103.44",
                            "vat_compensated": "28137.92"}],
          "documents": 2, "refusals": 1, "buyers": 2, "vat_received": "33103.44", "vat_compensated": "28137.92",
          "operator_turnover": "4965.52"}
EXAMPLES = [DOCUMENT, PAPER, CONFIRMATION, CANCELLATION, DECISION, REFUSAL, INVOICE, REPORT]


def agrees(doc) -> None:
    kind = doc.get("schema") if isinstance(doc, dict) else None
    expected = kind in ORACLE and ORACLE[kind].is_valid(doc)
    before = copy.deepcopy(doc)
    got = contracts.check(doc)
    assert (got is None) == expected, (got, kind in ORACLE and [e.message for e in ORACLE[kind].iter_errors(before)])
    if got is not None:
        assert got[0] in REASONS and got[1]


@pytest.mark.parametrize("name", sorted(FILES.values()))
def test_schema_files_are_draft_2020_12(name):
    assert SCHEMAS[name]["$id"].endswith("/" + name)
    Draft202012Validator.check_schema(SCHEMAS[name])


@pytest.mark.parametrize("doc", EXAMPLES, ids=lambda d: d["schema"])
def test_examples_are_valid(doc):
    ORACLE[doc["schema"]].validate(doc)
    assert contracts.check(copy.deepcopy(doc)) is None


def test_refusal_reasons_match_the_schema():
    assert SCHEMAS["taxfree-decision-1.json"]["properties"]["reasons"]["items"]["enum"] == list(contracts.REFUSAL_REASONS)


def test_rejection_reasons_are_distinct_from_refusal_reasons():
    assert set(TAXFREE_REASONS) <= set(REASONS)
    assert not set(TAXFREE_REASONS) & set(contracts.REFUSAL_REASONS)


def paths(doc, prefix=()):
    """Every (path, value) in a document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield prefix + (k,), v
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield prefix + (i,), v
            yield from paths(v, prefix + (i,))


def put(doc, path, value):
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


DELETE = object()
REPLACEMENTS = [DELETE, None, True, 0, 1.0, 2.5, -1, 120000.0, "", "x", "X" * 5000, "120000.00", "120000.0",
                "1e5", " 1.00", "2026-02-30", "2026-08-15T24:00:00+05:00", "2026-08-15T14:20:00", "2026-08-15",
                "2026-08-15t14:20:00z", "ALA", "ala", "DE", "deu", "a.b.c", "a.b", "a.b.c\n", "C01X00T47",
                "123456789012", "12345678901", "refund", "refusal", "pending", "confirmed", "refused",
                "electronic", "paper", [], [{}], {}, ["qr_mismatch"], ["qr_mismatch", "qr_mismatch"], ["bogus"],
                "2026Q3", "2026Q5", "2026-13", "a" * 64, "A" * 64, 10**7, "a." + "b" * 4100 + ".c",
                "123456789012.00", "1234567890123.00", "0.00", "00.00"]


@pytest.mark.parametrize("doc", EXAMPLES, ids=lambda d: d["schema"])
def test_every_mutation_agrees_with_the_schema(doc):
    checked = 0
    for path, _ in list(paths(doc)):
        if path == ("schema",):
            continue
        for value in REPLACEMENTS:
            agrees(put(doc, path, value))
            checked += 1
    assert checked > 100


def test_wrong_kinds_and_shapes():
    for doc in [None, [], "x", 1, {}, {"schema": "order/1"}, {"schema": 1}, {**DOCUMENT, "schema": "taxfree-document/2"}]:
        agrees(doc)
        assert contracts.check(doc) is not None


def test_float_amount_is_wrong_type_and_detail_quotes_no_personal_value():
    reason, detail = contracts.check(put(DOCUMENT, ("lines", 0, "price"), 120000.0))
    assert reason == "wrong_type" and detail.startswith("lines[0].price")
    reason, detail = contracts.check(put(DOCUMENT, ("buyer", "passport", "number"), "c01x00t47"))
    assert reason == "invalid_code" and "buyer.passport.number" in detail and "c01x00t47" not in detail.lower()
    reason, detail = contracts.check(put(DOCUMENT, ("buyer", "card_token"), "4111 1111 1111 1111"))
    assert "4111" not in detail


def test_integral_float_qty_becomes_int():
    doc = put(DOCUMENT, ("lines", 0, "qty"), 2.0)
    assert contracts.check(doc) is None
    assert type(doc["lines"][0]["qty"]) is int


def test_electronic_form_needs_its_qr():
    assert contracts.check(put(DOCUMENT, ("qr",), DELETE))[0] == "missing_field"
    assert contracts.check(put(DOCUMENT, ("qr",), None))[0] == "wrong_type"
    assert contracts.check(put(PAPER, ("qr",), None)) is None


def test_impossible_dates_are_invalid_date():
    for path in [("issued_at",), ("receipts", 0, "issued_at"), ("buyer", "passport", "issued_on")]:
        value = "2026-02-30" if path[-1] == "issued_on" else "2026-02-30T10:00:00+05:00"
        assert contracts.check(put(DOCUMENT, path, value))[0] == "invalid_date"


# -- hypothesis: generated documents and raw bytes ------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**7), st.floats(allow_nan=False),
                      st.text(max_size=20), st.sampled_from([v for v in REPLACEMENTS if v is not DELETE]))


def fuzzed(doc, data, least: int = 1, most: int = 3):
    """`doc` with `least` to `most` of its fields (not `schema`) replaced by drawn JSON leaves."""
    all_paths = [p for p, _ in paths(doc) if p != ("schema",)]
    mutated = doc
    for path in data.draw(st.lists(st.sampled_from(all_paths), min_size=least, max_size=most)):
        try:
            mutated = put(mutated, path, data.draw(json_leaf))
        except (KeyError, IndexError, TypeError):
            pass
    return mutated


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLES), st.data())
def test_fuzzed_fields_agree(doc, data):
    agrees(fuzzed(doc, data))


@settings(max_examples=300)
@given(st.binary(max_size=300) | st.builds(lambda d: orjson.dumps(d), st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["schema", "document_id", "at", "airport", "outcome", "lines", "qr", "x"]), inner, max_size=5),
    max_leaves=20)))
def test_parse_never_raises(raw):
    result = contracts.parse(raw)
    assert isinstance(result, dict) or (result[0] in REASONS and isinstance(result[1], str))


def test_registered_with_the_contract_registry():
    from stream.contracts import registry

    registered = {c.schema: c for c in registry.contracts("taxfree")}
    assert set(registered) == set(FILES)
    for kind, name in FILES.items():
        assert registered[kind].schema_file == name
    assert registered["taxfree-document/1"].validate(copy.deepcopy(DOCUMENT)) is None
    assert registered["taxfree-document/1"].validate({**DOCUMENT, "form": "fax"})[0] == "invalid_code"
