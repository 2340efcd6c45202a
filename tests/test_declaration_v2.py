"""declaration/2: the builder's output, its validator equal to the JSON Schema, and no buyer data in it."""
from __future__ import annotations

import copy
import hashlib
import hmac
import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.declaration.engine import Assessor
from stream.declaration.ids import declaration_id
from stream.declaration.v2 import DeclarationBuilder, Source, buyer_ref, line_weight_kg, validate_declaration_v2
from stream.rules import load_rules
from tests.schema_oracle import schema_validator

ORACLE = schema_validator("declaration-2.json")
SECRET = b"test-secret"
OPERATOR = "123456789012"


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor(load_rules())


@pytest.fixture(scope="module")
def builder() -> DeclarationBuilder:
    return DeclarationBuilder(secret=SECRET)


def request(**changes) -> dict:
    doc = {
        "schema": "assessment-request/1", "order_id": "AX-ORD-1", "flow": "parcel", "marketplace": "aliexpress",
        "ordered_at": "2026-11-21T10:00:00+05:00",
        "buyer": {"iin": "900101300123", "name": "Aigerim S."},
        "lines": [
            {"sku": "AX-1", "qty": 2, "unit_price": "5.10", "currency": "USD", "origin": "CN",
             "description": "Men's cotton T-shirt, knitted", "hs_code": "6109100000", "unit_weight_kg": "0.180"},
            {"sku": "AX-2", "qty": 1, "unit_price": "120.00", "currency": "USD", "origin": "CN",
             "description": "Smartphone Xiaomi 128GB", "unit_weight_kg": "0.400"},
            {"sku": "AX-3", "qty": 1, "unit_price": "15.00", "currency": "USD", "origin": "KR",
             "description": "Matte lipstick, long lasting", "hs_code": "6109100000", "unit_weight_kg": "0.050"},
        ],
    }
    doc.update(changes)
    return doc


def declare(assessor, builder, req, warehouse_id=None):
    [answer] = assessor.assess([req])
    assert answer["schema"] == "assessment/1", answer
    return builder.build(answer, req, warehouse_id=warehouse_id, operator_bin=OPERATOR)


def test_declaration_carries_the_lines_facts_and_the_pseudonym(assessor, builder):
    doc = declare(assessor, builder, request())
    ORACLE.validate(doc)
    assert validate_declaration_v2(doc) is None
    assert doc["schema"] == "declaration/2"
    assert doc["declaration_id"] == declaration_id("AX-ORD-1")
    assert doc["warehouse_id"] is None and doc["operator_bin"] == OPERATOR and doc["marketplace"] == "aliexpress"
    assert doc["buyer_ref"] == hmac.new(SECRET, b"900101300123", hashlib.sha256).hexdigest()
    shirt, phone, lipstick = doc["lines"]
    assert (shirt["origin"], shirt["qty"], shirt["weight_kg"]) == ("CN", 2, "0.36")
    assert "hs_classified" not in shirt  # declared, and the classifier agrees on the heading
    assert phone["hs_source"] == "classified" and phone["hs_classified"] == phone["hs_code"]
    assert 0 <= phone["confidence"] <= 1
    assert lipstick["hs_source"] == "declared" and lipstick["hs_code"] == "6109100000"
    assert lipstick["hs_classified"][:4] == "3304"  # disagrees with the declared heading
    assert doc["total"] == str(doc["total"]) and doc["lines"][0]["value"].count(".") == 1


def test_marketplace_argument_wins_and_no_buyer_gives_null(assessor, builder):
    req = request()
    del req["buyer"], req["marketplace"]
    [answer] = assessor.assess([req])
    doc = builder.build(answer, req, warehouse_id="KZ-ALA-CW-01", operator_bin=OPERATOR, marketplace="wildberries")
    assert doc["buyer_ref"] is None and doc["marketplace"] == "wildberries" and doc["warehouse_id"] == "KZ-ALA-CW-01"
    assert ORACLE.is_valid(doc) and validate_declaration_v2(doc) is None


def test_same_buyer_same_ref_other_secret_other_ref():
    assert buyer_ref("900101300123", b"a") == buyer_ref("900101300123", b"a")
    assert buyer_ref("900101300123", b"a") != buyer_ref("900101300123", b"b")
    assert buyer_ref("900101300123", b"a") != buyer_ref("900101300124", b"a")


def test_weight_is_exact():
    assert line_weight_kg(3, "0.1") == "0.3"
    assert line_weight_kg(1_000_000, "99999.999999") == "99999999999"
    assert line_weight_kg(7, "99999.999999") == "699999.999993"
    assert line_weight_kg(5, "0") == "0"


def test_a_rejection_or_another_order_is_a_callers_error(assessor, builder):
    req = request()
    [answer] = assessor.assess([req])
    with pytest.raises(ValueError):
        builder.build({"schema": "rejection/1", "ref": "AX-ORD-1", "reason": "x", "detail": ""}, req,
                      warehouse_id=None, operator_bin=OPERATOR)
    with pytest.raises(ValueError):
        builder.build(answer, {**req, "order_id": "OTHER"}, warehouse_id=None, operator_bin=OPERATOR)


def test_build_many_matches_one_by_one(assessor, builder):
    reqs = [request(order_id=f"O-{i}", lines=request()["lines"][i % 3:]) for i in range(7)]
    answers = assessor.assess(reqs)
    many = builder.build_many([Source(a, r, None, OPERATOR) for a, r in zip(answers, reqs)])
    one = [builder.build(a, r, warehouse_id=None, operator_bin=OPERATOR) for a, r in zip(answers, reqs)]
    assert many == one


# -- no buyer data in the output ----------------------------------------------------------------------

# Names from an alphabet no other field of these documents uses, so any trace of one would show.
NAMES = st.text(alphabet="ЁЖЗЙФЩЪЫЭЮЯӘҒҚҢӨҰҮҺІ", min_size=3, max_size=30)
IINS = st.from_regex(r"[0-9]{12}", fullmatch=True)
DESCRIPTIONS = st.sampled_from(["Men's cotton T-shirt, knitted", "Smartphone 128GB", "Wireless earbuds",
                                "Kids toy car", "Face cream 50 ml", "Running shoes"])
LINES = st.fixed_dictionaries({
    "sku": st.from_regex(r"[A-Z]{2}-[0-9]{1,4}", fullmatch=True),
    "qty": st.integers(1, 50),
    "unit_price": st.decimals(min_value=0, max_value=5000, places=2).map(str),
    "currency": st.sampled_from(["USD", "EUR", "CNY"]),
    "origin": st.sampled_from(["CN", "TR", "KR", "US"]),
    "description": DESCRIPTIONS,
    "unit_weight_kg": st.decimals(min_value=0, max_value=30, places=3).map(str),
}, optional={"hs_code": st.sampled_from(["6109100000", "8517130000", "3304990000", "nonsense", None])})


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(iin=IINS, name=NAMES, lines=st.lists(LINES, min_size=1, max_size=4),
       flow=st.sampled_from(["parcel", "warehouse"]))
def test_no_iin_and_no_name_in_the_serialised_declaration(assessor, builder, iin, name, lines, flow):
    req = request(buyer={"iin": iin, "name": name}, lines=lines, flow=flow)
    [answer] = assessor.assess([req])
    if answer["schema"] != "assessment/1":
        return
    doc = builder.build(answer, req, warehouse_id="KZ-ALA-CW-01", operator_bin=OPERATOR)
    text = orjson.dumps(doc).decode()
    assert iin not in text
    assert name not in text
    assert "buyer" not in doc and "iin" not in text and "name" not in doc
    assert ORACLE.is_valid(doc) and validate_declaration_v2(doc) is None


# -- the validator equals the schema --------------------------------------------------------------------

ODD_VALUES = [None, True, False, 0, 1, 2.0, -1, 1.5, math.nan, math.inf, "", "x", "KZT", "declared", "CN",
              "0.00", "1.5", "12.345", "6109", "123", "123456789012", "2026-02-30", "2026-11-21",
              "2026-11-21T10:00:00Z", "a" * 65, "ab\n", "0" * 64, "A" * 64, "parcel", [], {}, ["x"], {"USD": "1"},
              0.5, 1000001, "99999999999.999999", "999999999999"]


def paths(doc, prefix=()):
    """Every (container path, key) of a JSON document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield prefix, key
            yield from paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield prefix, index
            yield from paths(value, prefix + (index,))


def at(doc, path):
    for step in path:
        doc = doc[step]
    return doc


@pytest.fixture(scope="module")
def valid_doc(assessor, builder) -> dict:
    return declare(assessor, builder, request(), warehouse_id="KZ-ALA-CW-01")


def agrees(doc) -> None:
    expected = ORACLE.is_valid(doc)
    got = validate_declaration_v2(doc)
    assert (got is None) == expected, (got, [e.message for e in ORACLE.iter_errors(doc)][:3])


def odd(data):
    """A copy of one of the odd values: a later mutation adding to a shared [] or {} would change
    ODD_VALUES itself (and could make a document contain itself)."""
    return copy.deepcopy(data.draw(st.sampled_from(ODD_VALUES)))


@settings(max_examples=600, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_validator_agrees_with_schema_on_mutations(valid_doc, data):
    doc = copy.deepcopy(valid_doc)
    for _ in range(data.draw(st.integers(1, 3))):
        where = list(paths(doc))
        if not where:
            break
        path, key = data.draw(st.sampled_from(where))
        container = at(doc, path)
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            container[key] = odd(data)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[data.draw(st.sampled_from(["hs_classified", "confidence", "extra", "USD", "X"]))] = \
                odd(data)
        else:
            container.append(odd(data))
    agrees(doc)


@pytest.mark.parametrize("doc", [None, [], "declaration/2", {}, {"schema": "assessment/1"}])
def test_validator_agrees_on_non_documents(doc):
    agrees(doc)


def test_validator_names_the_field(valid_doc):
    doc = copy.deepcopy(valid_doc)
    doc["lines"][1]["weight_kg"] = "1e3"
    reason, detail = validate_declaration_v2(doc)
    assert reason == "invalid_number" and detail.startswith("lines[1].weight_kg")
    doc = copy.deepcopy(valid_doc)
    del doc["lines"][1]["confidence"]
    assert validate_declaration_v2(doc)[0] == "missing_field"
