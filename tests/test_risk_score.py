"""The risk scorer: each indicator, exact revenue at risk, selection, the profile, replay, and bad input."""
from __future__ import annotations

import copy
import json
import math

import orjson
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from stream.audit.risk_offline import OfflineScorer
from stream.audit.risk_profile import DEFAULT_PATH, ProfileError, load_profiles
from stream.audit.risk_score import RiskState, Scorer, random_draw
from stream.declaration.engine import Assessor
from stream.declaration.v2 import DeclarationBuilder, Source
from stream.money import parse_tiyn
from stream.rules import load_rules
from tests.schema_oracle import schema_validator

SCORE_SCHEMA = schema_validator("risk-score-1.json")
REJECTION_SCHEMA = schema_validator("rejection-1.json")
SECRET = b"risk-test"


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor(load_rules())


@pytest.fixture(scope="module")
def builder(assessor) -> DeclarationBuilder:
    return DeclarationBuilder(assessor.classifier, SECRET)


def profiles_with(tmp_path, **changes):
    """The shipped profile file with some parameters changed (section.name=value)."""
    data = json.loads(DEFAULT_PATH.read_text())
    for dotted, value in changes.items():
        section, name = dotted.split("__")
        data["profiles"][0][section][name] = value
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(data))
    return load_profiles(path)


def request(n: int, *, price="20.00", code="6110200000", origin="CN", weight="0.500", flow="warehouse", qty=1,
            description="Knitted wool sweater, grey", iin=None, day="2026-11-02", currency="USD") -> dict:
    doc = {"schema": "assessment-request/1", "order_id": f"T-{n:05d}", "flow": flow, "marketplace": "ozon",
           "ordered_at": f"{day}T{9 + n % 10:02d}:{n % 60:02d}:00+05:00", "operator_bin": "123456789012",
           "lines": [{"sku": f"S-{n}", "qty": qty, "unit_price": price, "currency": currency, "origin": origin,
                      "description": description, "hs_code": code, "unit_weight_kg": weight}]}
    if iin is not None:
        doc["buyer"] = {"iin": iin, "name": "Aigerim S."}
    return doc


def honest_prices(count: int, centre: float = 20.0) -> list[str]:
    """Prices spread around ``centre`` like a market (+-25%, deterministic)."""
    return [f"{centre * (0.75 + 0.5 * ((i * 37) % 100) / 100):.2f}" for i in range(count)]


def score_all(assessor, docs, profiles=None) -> list[dict]:
    return list(OfflineScorer(assessor, profiles).score_documents(docs))


def hit(score: dict, indicator: str) -> dict | None:
    return next((h for h in score["hits"] if h["indicator"] == indicator), None)


def total_of(assessor, doc) -> int:
    [answer] = assessor.assess([doc])
    assert answer["schema"] == "assessment/1", answer
    return parse_tiyn(answer["total"])


# -- indicators ---------------------------------------------------------------------------------------------

def test_nothing_suspicious_scores_zero(assessor):
    outs = score_all(assessor, [request(i, price=p) for i, p in enumerate(honest_prices(40))])
    for out in outs:
        SCORE_SCHEMA.validate(out)
        assert out["profile"] == "kz-pca-2026-1"
    assert all(out["score"] == 0 and out["hits"] == [] and out["revenue_at_risk"] == "0.00" for out in outs)


def test_undervaluation_against_the_code_index_with_exact_revenue(assessor):
    docs = [request(i, price=p) for i, p in enumerate(honest_prices(40))]
    fraud = request(99, price="4.00")
    out = score_all(assessor, docs + [fraud])[-1]
    SCORE_SCHEMA.validate(out)
    found = hit(out, "undervaluation")
    assert found is not None and found["line"] == 0
    evidence = found["evidence"]
    assert evidence["samples"] == 40 and evidence["index"] == "code+origin"
    median = parse_tiyn(evidence["index_median"])
    assert parse_tiyn(evidence["unit_value"]) < median // 3
    # the corrected fact: the index median as the unit price, assessed under the declaration's date
    corrected = copy.deepcopy(fraud)
    corrected["lines"][0].update(unit_price=evidence["index_median"], currency="KZT")
    corrected["declared_at"] = "2026-11-02"
    assert parse_tiyn(found["revenue_at_risk"]) == total_of(assessor, corrected) - total_of(assessor, fraud) > 0
    assert out["revenue_at_risk"] == found["revenue_at_risk"]
    assert 0 < out["score"] <= 1


def test_a_code_with_few_samples_falls_back_to_its_heading(assessor):
    docs = [request(i, price=p) for i, p in enumerate(honest_prices(40))]
    docs += [request(100 + i, price=p, code="6110300000") for i, p in enumerate(honest_prices(5))]
    out = score_all(assessor, docs + [request(200, price="3.00", code="6110300000")])[-1]
    found = hit(out, "undervaluation")
    assert found is not None and found["evidence"]["index"] == "heading+origin"
    assert found["evidence"]["samples"] == 45


def test_too_few_samples_anywhere_is_no_finding(assessor):
    docs = [request(i, price=p) for i, p in enumerate(honest_prices(10))]
    out = score_all(assessor, docs + [request(99, price="1.00")])[-1]
    assert hit(out, "undervaluation") is None


def test_weight_mismatch(assessor):
    docs = [request(i, price=p, weight=f"0.{450 + i:03d}") for i, p in enumerate(honest_prices(40, 8.0))]
    light = request(99, price="8.00", weight="0.040", qty=5)
    out = score_all(assessor, docs + [light])[-1]
    found = hit(out, "weight_mismatch")
    assert found is not None and found["evidence"]["samples"] == 40
    corrected = copy.deepcopy(light)
    median_kg = found["evidence"]["index_median_kg"]
    corrected["lines"][0]["unit_weight_kg"] = median_kg
    corrected["declared_at"] = "2026-11-02"
    # a sweater at EUR 2 per kg: the heavier index weight pays more than 10% of the value
    expected = total_of(assessor, corrected) - total_of(assessor, light)
    assert parse_tiyn(found["revenue_at_risk"]) == expected > 0


def test_misclassification_needs_a_confident_other_heading_that_pays_more(assessor):
    fraud = request(1, price="30.00", code="4901100000", description="Knitted wool sweater, grey")
    out = score_all(assessor, [fraud])[0]
    found = hit(out, "misclassification")
    assert found is not None
    assert found["evidence"]["declared_code"] == "4901100000" and found["evidence"]["classified_code"][:4] == "6110"
    corrected = copy.deepcopy(fraud)
    corrected["lines"][0]["hs_code"] = found["evidence"]["classified_code"]
    assert parse_tiyn(found["revenue_at_risk"]) == total_of(assessor, corrected) - total_of(assessor, fraud) > 0
    # declared under a heading that pays more than the classified one: not a finding
    honest = request(2, price="30.00", code="6110200000", description="Paperback novel, printed")
    assert hit(score_all(assessor, [honest])[0], "misclassification") is None


def test_splitting_one_buyer_two_parcels_under_the_threshold(assessor):
    first = request(1, price="150.00", currency="EUR", flow="parcel", code="6403000000",
                    description="Genuine leather boots, black", iin="900101300123")
    second = request(2, price="140.00", currency="EUR", flow="parcel", code="6403000000",
                     description="Genuine leather boots, brown", iin="900101300123")
    other = request(3, price="140.00", currency="EUR", flow="parcel", code="6403000000",
                    description="Genuine leather boots, brown", iin="880202400456")
    outs = score_all(assessor, [first, other, second])
    assert hit(outs[0], "splitting") is None and hit(outs[1], "splitting") is None
    found = hit(outs[2], "splitting")
    assert found is not None and found["line"] is None and found["evidence"]["parcels"] == 2
    merged = copy.deepcopy(first)
    merged["lines"] = first["lines"] + second["lines"]
    merged["declared_at"] = "2026-11-02"
    paid = total_of(assessor, first) + total_of(assessor, second)
    assert paid == 0  # each parcel alone is duty-free
    assert parse_tiyn(found["revenue_at_risk"]) == total_of(assessor, merged) - paid > 0


def test_splitting_window_expires(assessor):
    first = request(1, price="150.00", currency="EUR", flow="parcel", iin="900101300123", day="2026-11-02")
    later = request(2, price="140.00", currency="EUR", flow="parcel", iin="900101300123", day="2026-11-09")
    assert hit(score_all(assessor, [first, later])[1], "splitting") is None


def test_trader_risk_from_the_previous_days_hit_rate(assessor, tmp_path):
    profiles = profiles_with(tmp_path, trader_risk__min_declarations=5, trader_risk__min_hit_rate="0.2")
    day1 = [request(i, price="30.00", code="4901100000", day="2026-11-02") for i in range(5)]  # misclassified
    day2 = [request(10, price="30.00", description="Paperback novel, printed", code="4901100000", day="2026-11-03")]
    outs = score_all(assessor, day1 + day2, profiles)
    assert all(hit(out, "trader_risk") is None for out in outs[:5])  # the same day does not count yet
    found = hit(outs[-1], "trader_risk")
    assert found is not None and found["evidence"]["declarations"] == 5 and found["revenue_at_risk"] == "0.00"


# -- selection and the profile -----------------------------------------------------------------------------------

def test_selection_within_the_daily_capacity_then_random(assessor, tmp_path):
    fraud = [request(i, price="30.00", code="4901100000") for i in range(4)]
    capped = profiles_with(tmp_path, selection__daily_capacity=2, selection__threshold="0.01",
                           selection__random_rate="0")
    assert [o["selected"] for o in score_all(assessor, fraud, capped)] == ["risk", "risk", None, None]
    everyone = profiles_with(tmp_path, selection__daily_capacity=0, selection__random_rate="1")
    assert [o["selected"] for o in score_all(assessor, fraud, everyone)] == ["random"] * 4


def test_random_selection_is_fixed_by_the_declaration_id():
    assert random_draw("abc") == random_draw("abc") != random_draw("abd")
    draws = [random_draw(f"D-{i}") for i in range(200_000)]
    assert all(0 <= d < 1 for d in draws)
    assert 0.009 < sum(d < 0.01 for d in draws) / len(draws) < 0.011  # the rate the profile asks for


def test_no_profile_in_force_is_a_rejection(assessor, tmp_path):
    data = json.loads(DEFAULT_PATH.read_text())
    data["profiles"][0]["valid_from"] = "2030-01-01"
    path = tmp_path / "late.json"
    path.write_text(json.dumps(data))
    [out] = score_all(assessor, [request(1)], load_profiles(path))
    REJECTION_SCHEMA.validate(out)
    assert out["reason"] == "no_risk_profile"


@pytest.mark.parametrize("change", [
    {"profiles": []}, {"profiles": [{"id": ""}]}, "not json",
])
def test_a_broken_profile_file_is_refused(tmp_path, change):
    path = tmp_path / "broken.json"
    path.write_text(change if isinstance(change, str) else json.dumps(change))
    with pytest.raises(ProfileError):
        load_profiles(path)


def test_a_profile_parameter_out_of_range_is_refused(tmp_path):
    with pytest.raises(ProfileError, match="random_rate"):
        profiles_with(tmp_path, selection__random_rate="1.5")


# -- replay, snapshots, duplicates --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def feed_declarations(assessor, builder):
    from stream.loadgen import RiskFeedConfig, risk_feed

    docs = [doc for doc, _ in risk_feed(RiskFeedConfig(declarations=1500, seed=5, days=6), assessor)]
    answers = assessor.assess(docs)
    return builder.build_many([Source(a, d, d.get("warehouse_id"), d["operator_bin"]) for a, d in zip(answers, docs)
                               if a["schema"] == "assessment/1"])


def run(scorer, state, declarations, bodies=None):
    outs = []
    for declaration in declarations:
        decision = scorer.decide(state, declaration)
        if decision.body is not None:
            state.apply(decision.body)
            if bodies is not None:
                bodies.append(orjson.loads(orjson.dumps(decision.body)))  # as the changelog carries it
        outs.append(decision.output)
    return outs


def test_replayed_bodies_and_snapshots_rebuild_the_same_scorer(assessor, feed_declarations):
    scorer = Scorer(assessor)
    live, bodies = RiskState(), []
    head, tail = feed_declarations[:1000], feed_declarations[1000:]
    run(scorer, live, head, bodies)
    assert any(o["hits"] for o in run(scorer, RiskState(), head))
    replayed = RiskState()
    for body in bodies:
        replayed.apply(body)
    restored = RiskState()
    restored.apply(orjson.loads(orjson.dumps(live.snapshot())))
    assert replayed.snapshot() == live.snapshot() == restored.snapshot()
    expected = run(scorer, live, tail)
    assert run(scorer, replayed, tail) == expected == run(scorer, restored, tail)
    for out in expected:
        SCORE_SCHEMA.validate(out)


def test_bodies_are_bounded_and_carry_no_personal_data(assessor, feed_declarations):
    from stream.loadgen import RiskFeedConfig, risk_feed

    people = [doc["buyer"] for doc, _ in risk_feed(RiskFeedConfig(declarations=300, seed=5, days=6), assessor)]
    bodies: list[dict] = []
    outs = run(Scorer(assessor), RiskState(), feed_declarations[:300], bodies)
    text = orjson.dumps([bodies, outs]).decode()
    for person in people:
        assert person["iin"] not in text and person["name"] not in text
    assert max(len(orjson.dumps(b)) for b in bodies) < 4096


def test_a_redelivered_declaration_changes_nothing_and_a_changed_one_is_refused(assessor, feed_declarations):
    scorer, state = Scorer(assessor), RiskState()
    first = feed_declarations[0]
    run(scorer, state, [first])
    again = scorer.decide(state, copy.deepcopy(first))
    assert again.output is None and again.body is None
    changed = copy.deepcopy(first)
    changed["total"] = "1.00"
    refused = scorer.decide(state, changed)
    assert refused.body is None and refused.output["reason"] == "conflicting_duplicate"


# -- bad input ---------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=12)


_TRAINED: dict = {}


def trained_state(assessor, declarations) -> RiskState:
    """A state that learned the first 50 declarations (rebuilt from its snapshot for each example)."""
    if "snapshot" not in _TRAINED:
        state = RiskState()
        run(Scorer(assessor), state, declarations[:50])
        _TRAINED["snapshot"] = state.snapshot()
    state = RiskState()
    state.apply(_TRAINED["snapshot"])
    return state


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_the_scorer_never_raises(assessor, feed_declarations, data):
    scorer, state = Scorer(assessor), trained_state(assessor, feed_declarations)
    doc = copy.deepcopy(data.draw(st.sampled_from(feed_declarations[50:80])))
    for _ in range(data.draw(st.integers(0, 3))):
        target = doc
        lines = doc.get("lines")
        if data.draw(st.booleans()) and isinstance(lines, list) and lines and isinstance(lines[0], dict):
            target = lines[0]
        if not target:
            break
        key = data.draw(st.sampled_from(sorted(target)))
        if data.draw(st.booleans()):
            target[key] = data.draw(JSON_VALUES)
        else:
            del target[key]
    decision = scorer.decide(state, doc)
    out = decision.output
    if out["schema"] == "risk-score/1":
        SCORE_SCHEMA.validate(out)
        assert decision.body is not None
    else:
        REJECTION_SCHEMA.validate(out)
        assert decision.body is None


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_fuzz_the_scorer_on_any_json_value(assessor, value):
    decision = Scorer(assessor).decide(RiskState(), value)
    assert decision.body is None and decision.output["schema"] == "rejection/1"


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.binary(max_size=60) | st.sampled_from([
    b'{"schema": "assessment-request/1"}', b"[]", b"{}", b"\xff\xfe", b'{"a": 1e999}',
    orjson.dumps(request(1)), orjson.dumps(request(2, price="1e3")), orjson.dumps({**request(3), "flow": "x"}),
]), max_size=8))
def test_fuzz_the_offline_parser_one_output_per_line(assessor, lines):
    clean = [raw.replace(b"\n", b" ") for raw in lines]
    outs = list(OfflineScorer(assessor).score_lines(clean))
    assert len(outs) == sum(1 for raw in clean if raw.strip())
    for out in outs:
        assert out["schema"] in ("risk-score/1", "rejection/1")
        (SCORE_SCHEMA if out["schema"] == "risk-score/1" else REJECTION_SCHEMA).validate(out)


def test_score_is_finite_and_hits_ordered(assessor, feed_declarations):
    outs = run(Scorer(assessor), RiskState(), feed_declarations)
    order = ("undervaluation", "splitting", "misclassification", "weight_mismatch", "trader_risk")
    assert sum(1 for out in outs if out["hits"]) > 20
    for out in outs:
        assert math.isfinite(out["score"]) and 0 <= out["score"] <= 1
        if not out["hits"]:
            assert out["score"] == 0 and out["revenue_at_risk"] == "0.00"
        ranks = [order.index(h["indicator"]) for h in out["hits"]]
        assert ranks == sorted(ranks)


# The scorer hands its re-assessment requests to the engine as validated (it skips validate_request): each
# one it builds from a valid declaration/2, whatever the corrections, must be valid, or not built at all.
KZT = st.one_of(st.integers(0, 10**6), st.integers(0, 10**20 - 1)).map(lambda t: f"{t // 100}.{t % 100:02d}")
WEIGHT = st.one_of(st.integers(0, 10**7), st.integers(0, 10**17 - 1)).map(lambda m: f"{m // 10**6}.{m % 10**6:06d}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_reassessment_request_is_valid_or_not_made(assessor, feed_declarations, data):
    from stream.audit.risk_score import _consignment, _lines_of, _request
    from stream.contracts.validate import validate_request
    from stream.declaration.v2 import validate_declaration_v2

    decl = copy.deepcopy(data.draw(st.sampled_from(feed_declarations)))
    decl["order_id"] = data.draw(st.sampled_from([decl["order_id"], "O" * 128, "A-1"]))
    for line in decl["lines"]:
        line["qty"] = data.draw(st.sampled_from([1, 2, 3, 7, 9999, 10**6]))
        line["value"], line["weight_kg"] = data.draw(KZT), data.draw(WEIGHT)
        line["hs_code"] = data.draw(st.from_regex(r"[0-9]{4,10}", fullmatch=True))
    assume(validate_declaration_v2(decl) is None)  # only what the scorer would score
    lines = _lines_of(decl)
    corrections = [(data.draw(st.integers(0, len(lines) - 1)), field, value) for field, value in data.draw(
        st.lists(st.one_of(st.tuples(st.just("value"), st.integers(0, 10**20)),
                           st.tuples(st.just("weight6"), st.integers(0, 10**17)),
                           st.tuples(st.just("hs_code"), st.from_regex(r"[0-9]{4,10}", fullmatch=True))),
                 min_size=1, max_size=3))]
    window = data.draw(st.lists(st.tuples(st.integers(0, 10**18), st.integers(0, 10**12)), max_size=4))
    for request in (_request(decl, lines, corrections, f"{decl['order_id']}.undervaluation.0"),
                    _consignment(decl, lines, [[0, value, weight6, 0, 1] for value, weight6 in window])):
        event("built" if request is not None else "not built")
        if request is not None:
            assert validate_request(request) is None, request
