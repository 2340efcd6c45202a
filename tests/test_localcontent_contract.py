"""local-content-request/1: the runtime validator accepts exactly what the JSON Schema accepts
(jsonschema as the oracle), on generated and mutated documents; the parser survives any bytes."""
from __future__ import annotations

import copy

import orjson
import pycountry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.contracts import registry
from stream.contracts.reasons import REASONS
from stream.localcontent.cli import answer_line
from stream.localcontent.contract import COUNTRIES, validate_request
from stream.localcontent.rules import load_rules
from tests.schema_oracle import SCHEMAS, schema_validator

ORACLE = schema_validator("local-content-request-1.json")
ANSWER_SCHEMA = schema_validator("local-content-1.json")
REJECTION_SCHEMA = schema_validator("rejection-1.json")
RULES = load_rules()
SOME_COUNTRIES = ["KZ", "RU", "CN", "DE", "TR", "BY", "UZ"]
FIELDS = ["schema", "product_id", "product_type", "calculated_on", "vat_payer", "production_cost", "margin",
          "materials"]


def agrees(doc: object) -> tuple[str, str] | None:
    expected = ORACLE.is_valid(doc)
    got = validate_request(copy.deepcopy(doc))
    assert (got is None) == expected, (got, [e.message for e in ORACLE.iter_errors(doc)])
    if got is not None:
        reason, detail = got
        assert reason in REASONS and isinstance(detail, str) and detail
    return got


# -- strategies ----------------------------------------------------------------------------------

def amounts(max_digits: int = 13) -> st.SearchStrategy[str]:
    whole = st.one_of(st.just("0"), st.integers(1, 10**max_digits - 1).map(str))
    frac = st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,2}", fullmatch=True))
    return st.tuples(whole, frac).map("".join)


dates = st.dates().map(lambda d: d.isoformat())
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,20}", fullmatch=True)
materials = st.fixed_dictionaries({
    "name": st.text(min_size=1, max_size=30),
    "origin": st.sampled_from(SOME_COUNTRIES),
    "cost": amounts(7),
})
valid_requests = st.fixed_dictionaries({
    "schema": st.just("local-content-request/1"),
    "product_id": ids,
    "product_type": st.sampled_from(["furniture", "machinery", "textiles", "spacecraft", "Мебель"]),
    "calculated_on": st.one_of(dates, st.sampled_from(["2024-04-27", "2024-04-28", "2025-12-31", "2026-01-01"])),
    "vat_payer": st.booleans(),
    "production_cost": amounts().filter(lambda a: a.strip("0.") != ""),
    "margin": amounts(),
    "materials": st.lists(materials, max_size=5),
})

# Values that probe every rule: types JSON Schema distinguishes, strings near each pattern.
tricky_strings = st.sampled_from([
    "", " ", "0", "0.0", "0.00", "0.000", "00", "01", "1.", ".5", "-1", "+1", "1e5", "1E5", "NaN", "Infinity",
    "1.234", "12.5", "9999999999999", "10000000000000", "9999999999999.99", "1\n", "1 ", " 1",
    "KZ", "XX", "kz", "KAZ", "K", "RU\n", "EU", "XK", "2024-04-28", "2024-02-30", "0000-01-01", "2024-4-28",
    "2024-04-28T00:00:00Z", "local-content-request/1", "P-1", "bad id", "a" * 101, "a" * 201, "Ж",
])
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=12), tricky_strings),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


def paths_of(doc: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths_of(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += paths_of(value, prefix + (i,))
    return found


@st.composite
def mutated_requests(draw):
    doc = copy.deepcopy(draw(valid_requests))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in paths_of(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        else:
            parent[path[-1]] = draw(st.one_of(tricky_strings, json_values))  # half: strings near a pattern
    return doc


# -- the schema equals the runtime check ---------------------------------------------------------

@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(valid_requests)
def test_generated_requests_are_valid_for_both(doc):
    assert agrees(doc) is None


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(mutated_requests())
def test_mutated_requests_agree_with_the_schema(doc):
    agrees(doc)


@settings(max_examples=300)
@given(st.one_of(json_values, st.dictionaries(st.sampled_from(FIELDS), json_values)))
def test_arbitrary_values_agree_with_the_schema(doc):
    agrees(doc)


def test_each_field_rule_agrees_on_its_boundaries():
    base = {"schema": "local-content-request/1", "product_id": "P-1", "product_type": "furniture",
            "calculated_on": "2024-04-28", "vat_payer": True, "production_cost": "1.00", "margin": "0",
            "materials": [{"name": "m", "origin": "CN", "cost": "0"}]}
    agrees(base)
    for field in ("production_cost", "margin"):
        for value in ("9999999999999.99", "10000000000000", "0.01", "0.1", "0", "0.00", "00", "1.001", 1, 1.0, None):
            agrees({**base, field: value})
    for origin in sorted(COUNTRIES) + ["XX", "EU", "XK", "kz", "K", "KZZ", 1]:
        agrees({**base, "materials": [{"name": "m", "origin": origin, "cost": "1"}]})
    agrees({**base, "materials": [{"name": "m", "origin": "CN", "cost": "1"}] * 1000})
    assert agrees({**base, "materials": [{"name": "m", "origin": "CN", "cost": "1"}] * 1001})[0] == "too_many_items"
    for name in ("", "a" * 200, "a" * 201, "Ж" * 200):
        agrees({**base, "materials": [{"name": name, "origin": "CN", "cost": "1"}]})
    for product_type in ("", "a" * 100, "a" * 101):
        agrees({**base, "product_type": product_type})
    for flag in (True, False, 1, 0, "true", None):
        agrees({**base, "vat_payer": flag})


def test_origin_enum_is_pycountrys_assigned_codes():
    enum = SCHEMAS["local-content-request-1.json"]["$defs"]["origin"]["enum"]
    assert enum == sorted(c.alpha_2 for c in pycountry.countries)
    assert set(enum) == COUNTRIES and "KZ" in COUNTRIES and "XX" not in COUNTRIES


def test_the_contract_is_registered_with_its_schema_file():
    contract = registry.get("local-content-request/1")
    assert contract is not None and contract.domain == "localcontent" and contract.ref_field == "product_id"
    assert contract.schema_file == "local-content-request-1.json"


# -- the parser: no bytes crash it, every answer is a valid document -----------------------------

def check_answer(answer: dict) -> None:
    if answer["schema"] == "local-content/1":
        ANSWER_SCHEMA.validate(answer)
    else:
        REJECTION_SCHEMA.validate(answer)
        assert answer["reason"] != "internal_error", answer


@settings(max_examples=1000)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_get_an_answer(raw):
    _, answer = answer_line(raw, RULES)
    check_answer(answer)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(mutated_requests(), st.integers(0, 400), st.binary(max_size=3))
def test_mutated_and_corrupted_lines_get_an_answer(doc, cut, noise):
    raw = orjson.dumps(doc)
    for line in (raw, raw[:cut] + noise + raw[cut:], raw[:cut]):
        _, answer = answer_line(line, RULES)
        check_answer(answer)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(valid_requests)
def test_valid_requests_are_answered_or_refused_for_a_domain_reason(doc):
    _, answer = answer_line(orjson.dumps(doc), RULES)
    check_answer(answer)
    if answer["schema"] == "rejection/1":
        assert answer["reason"] in ("foreign_cost_exceeds_production_cost", "no_local_content_rules"), answer
        assert answer["ref"] == doc["product_id"]
    else:
        assert answer["product_id"] == doc["product_id"]
