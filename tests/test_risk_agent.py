"""The risk agent (stream/audit/risk_agent.py) on the real runtime pipeline, in-process: scores equal to the
offline scorer's, keys, crashes at any point, snapshots, metrics, ClickHouse rows and the dashboard."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.audit.ids import case_id_for
from stream.audit.risk_agent import RiskDomain
from stream.audit.risk_metrics import EXPORTED, RiskMetrics
from stream.audit.risk_score import RiskState, Scorer
from stream.declaration.engine import Assessor
from stream.declaration.v2 import DeclarationBuilder, Source
from stream.rules import load_rules
from stream.runtime.topics import DECLARATIONS, REJECTIONS, RISK_DECLARATIONS, RISK_HITS
from tests.fixtures.harness import DomainHarness, FakeOutputs
from tests.schema_oracle import schema_validator

SCORE_SCHEMA = schema_validator("risk-score-1.json")
ROOT = Path(__file__).resolve().parent.parent


class KeyedOutputs(FakeOutputs):
    """Fake outputs that also remember each message's key."""

    def __init__(self, auto: bool = True):
        super().__init__(auto)
        self.keyed: list[tuple[str, bytes | None, dict]] = []

    async def send(self, partition, per_topic):
        self.keyed.extend((topic, key, orjson.loads(value)) for topic, messages in per_topic.items()
                          for key, value in messages)
        return await super().send(partition, per_topic)


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor(load_rules())


@pytest.fixture(scope="module")
def declarations(assessor) -> list[dict]:
    from stream.loadgen import RiskFeedConfig, risk_feed

    docs = [doc for doc, _ in risk_feed(RiskFeedConfig(declarations=900, seed=11, days=5), assessor)]
    answers = assessor.assess(docs)
    builder = DeclarationBuilder(assessor.classifier, b"agent-test")
    return builder.build_many([Source(a, d, d.get("warehouse_id"), d["operator_bin"])
                               for a, d in zip(answers, docs) if a["schema"] == "assessment/1"])


def offline(assessor, declarations) -> list[dict]:
    scorer, state, outs = Scorer(assessor), RiskState(), []
    for declaration in declarations:
        decision = scorer.decide(state, declaration)
        if decision.body is not None:
            state.apply(decision.body)
        outs.append(decision.output)
    return outs


def harness(assessor, registry=None, auto=True) -> DomainHarness:
    metrics = RiskMetrics(registry or CollectorRegistry())
    return DomainHarness(RiskDomain(Scorer(assessor), metrics=metrics), outputs=KeyedOutputs(auto))


def test_scores_equal_the_offline_scorer_and_are_keyed_by_case(assessor, declarations):
    expected = [o for o in offline(assessor, declarations) if o["hits"] or o["selected"] is not None]
    assert len(expected) > 30
    with harness(assessor) as h:
        for declaration in declarations:
            h.feed(DECLARATIONS, declaration)
        sent = [(key, doc) for topic, key, doc in h.outputs.keyed if topic == RISK_HITS]
        assert [doc for _, doc in sent] == expected
        for key, doc in sent:
            SCORE_SCHEMA.validate(doc)
            assert key == case_id_for(doc["declaration_id"]).encode()
        assert h.recovered().state.snapshot() == h.state().snapshot()


def test_bad_input_duplicates_and_declaration_1(assessor, declarations):
    registry = CollectorRegistry()
    with harness(assessor, registry) as h:
        h.feed(DECLARATIONS, declarations[0])
        h.feed(DECLARATIONS, declarations[0])  # redelivered: nothing
        h.feed(DECLARATIONS, b"{not json")
        h.feed(DECLARATIONS, {**declarations[1], "operator_bin": "12"})
        h.feed(DECLARATIONS, {**declarations[0], "total": "1.00"})  # same id, other content
        h.feed(DECLARATIONS, {"schema": "assessment/1", "order_id": "X"})  # declaration/1: skipped
        h.feed(DECLARATIONS, None)
        reasons = [doc["reason"] for doc in h.sent(REJECTIONS)]
        assert reasons == ["malformed_json", "invalid_code", "conflicting_duplicate", "malformed_json"]
        assert h.state().seen.keys() == {declarations[0]["declaration_id"]}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}
    declared = {dict(labels)["outcome"]: value for (name, labels), value in samples.items()
                if name == "customs_risk_declarations_total"}
    assert declared == {"scored": 1, "duplicate": 1, "rejected": 4, "not_v2": 1}


@pytest.mark.parametrize("seed", range(5))
def test_a_crash_anywhere_recovers_the_indices_and_repeats_no_other_score(assessor, declarations, seed):
    stream = declarations[:400]
    expected = {o["declaration_id"]: o for o in offline(assessor, stream) if o["hits"] or o["selected"] is not None}
    with harness(assessor) as reference:
        for declaration in stream:
            reference.feed(DECLARATIONS, declaration)
        expected_state = reference.state().snapshot()

    rng = random.Random(seed)
    h = harness(assessor, auto=False)
    with h:
        position, crashes = 0, 0
        while position < len(stream):
            if h.pipeline.deliveries is not None and h.pipeline.deliveries.full():
                while h.outputs.waiting:  # the pipeline holds at most max_in_flight: let it move on
                    h.outputs.resolve(0)
            h.feed(DECLARATIONS, stream[position], offset=position, drain=False)
            while h.outputs.waiting and rng.random() < 0.6:
                h.outputs.resolve(rng.randrange(len(h.outputs.waiting)))
            if rng.random() < 0.05 and crashes < 6:
                crashes += 1
                h.outputs.waiting.clear()
                h.crash()  # unrecorded work is lost; the consumer resumes after the last record
                position = h.pipeline.state(0).offsets.get(DECLARATIONS, -1) + 1
                continue
            position += 1
        while h.outputs.waiting:
            h.outputs.resolve(0)
        h.drain()
        assert crashes > 0
        assert h.state().snapshot() == expected_state
        assert h.recovered().state.snapshot() == expected_state
        published: dict[str, dict] = {}
        for topic, key, doc in h.outputs.keyed:
            if topic != RISK_HITS:
                continue
            # a repeat after a crash is the same score under the same key
            assert published.setdefault(doc["declaration_id"], doc) == doc == expected[doc["declaration_id"]]
            assert key == case_id_for(doc["declaration_id"]).encode()
        assert set(published) == set(expected)


def test_a_runtime_snapshot_rebuilds_the_state(assessor, declarations):
    h = DomainHarness(RiskDomain(Scorer(assessor)), outputs=KeyedOutputs(), snapshot_every=100)
    with h:
        for declaration in declarations[:150]:
            h.feed(DECLARATIONS, declaration)
        h.tick(now=1.0)  # the runtime snapshots on its timer, then drops the records before
        records = [orjson.loads(v) for _, _, v in h.changelog if v is not None]
        assert any(r.get("snapshot") for r in records if "seq" in r)
        assert max(len(v) for _, _, v in h.changelog if v is not None and b'"snapshot"' not in v) < 4096
        assert h.recovered().state.snapshot() == h.state().snapshot()
        h.crash()
        for declaration in declarations[150:200]:
            h.feed(DECLARATIONS, declaration)
        expected = [o for o in offline(assessor, declarations[:200])[150:] if o["hits"] or o["selected"] is not None]
        ids = {d["declaration_id"] for d in declarations[150:200]}
        assert [doc for doc in h.sent(RISK_HITS) if doc["declaration_id"] in ids] == expected


def test_no_personal_data_leaves_the_agent(assessor, declarations):
    with harness(assessor) as h:
        for declaration in declarations[:200]:
            h.feed(DECLARATIONS, declaration)
        written = b"".join(v for _, _, v in h.changelog) + orjson.dumps([d for _, _, d in h.outputs.keyed])
    assert b'"iin"' not in written and b'"buyer"' not in written and b'"name"' not in written
    for doc in declarations[:200]:
        assert doc["buyer_ref"] is None or len(doc["buyer_ref"]) == 64


# -- metrics, dashboard, rows -----------------------------------------------------------------------------

def test_metrics_count_hits_revenue_and_selections(assessor, declarations):
    registry = CollectorRegistry()
    outs = offline(assessor, declarations[:300])
    with harness(assessor, registry) as h:
        for declaration in declarations[:300]:
            h.feed(DECLARATIONS, declaration)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    hits = {s.labels["indicator"]: s.value for s in families["customs_risk_hits"].samples if s.name.endswith("_total")}
    for indicator in hits:
        assert hits[indicator] == sum(1 for o in outs for x in o["hits"] if x["indicator"] == indicator)
    revenue = {s.labels["indicator"]: s.value for s in families["customs_risk_revenue_at_risk_kzt"].samples}
    from decimal import Decimal

    for indicator, value in revenue.items():
        exact = sum(Decimal(x["revenue_at_risk"]) for o in outs for x in o["hits"] if x["indicator"] == indicator)
        assert Decimal(str(value)) == exact
    exposed = {s.name for f in families.values() for s in f.samples}
    assert set(EXPORTED) <= exposed


def test_the_dashboard_queries_only_what_the_agent_exports():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/customs-risk.json").read_text())
    queried = set()
    words = {"sum", "by", "rate", "increase", "indicator", "selected", "outcome"}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", target["expr"])
            queried |= set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)) - words
            assert target["expr"].count("(") == target["expr"].count(")")
    assert queried == set(EXPORTED)
    assert {"customs_risk_hits_total", "customs_risk_revenue_at_risk_kzt_total"} <= queried
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_rows_for_clickhouse(assessor, declarations):
    from stream.analytics.rows import Source, load_converters
    from stream.analytics.sink import convert

    load_converters()
    outs = [o for o in offline(assessor, declarations[:300]) if o["hits"]]
    rows = convert("risk_score", outs, Source(RISK_HITS, 2, tuple(range(len(outs)))))
    assert len(rows["risk_scores"]) == len(outs)
    assert len(rows["risk_hits"]) == sum(len(o["hits"]) for o in outs)
    first = rows["risk_scores"][0]
    assert first[0] == outs[0]["declaration_id"] and first[4] == int(outs[0]["score"] * 10000 + 0.5)
    assert first[5] == int(outs[0]["revenue_at_risk"].replace(".", ""))
    assert all(isinstance(r[5], int) for r in rows["risk_scores"]) and all(r[-1] == 2 for r in rows["risk_hits"])
    with pytest.raises((TypeError, ValueError)):
        convert("risk_score", [{**outs[0], "revenue_at_risk": 12.5}], Source(RISK_HITS, 0))


# -- pages: what the router (stream/audit/risk_route.py) writes to risk.declarations --------------------------

def page_of(declarations) -> bytes:
    return b'{"schema":"page/1","items":[' + b",".join(orjson.dumps(d) for d in declarations) + b"]}"


def test_pages_score_like_the_offline_scorer_one_record_each(assessor, declarations):
    expected = [o for o in offline(assessor, declarations) if o["hits"] or o["selected"] is not None]
    registry = CollectorRegistry()
    with harness(assessor, registry) as h:
        for start in range(0, len(declarations), 97):
            h.feed(RISK_DECLARATIONS, page_of(declarations[start:start + 97]))
        assert [doc for doc in h.sent(RISK_HITS)] == expected
        records = [v for _, _, v in h.changelog if v is not None]
        assert len(records) == -(-len(declarations) // 97)  # one record per page
        assert h.recovered().state.snapshot() == h.state().snapshot()  # the replay applies each body
        with harness(assessor) as single:
            for declaration in declarations:
                single.feed(DECLARATIONS, declaration)
            assert h.state().snapshot() == single.state().snapshot()
    declared = {s.labels["outcome"]: s.value for f in text_string_to_metric_families(generate_latest(registry).decode())
                for s in f.samples if s.name == "customs_risk_declarations_total"}
    assert declared["scored"] == len(declarations)


def test_a_page_with_bad_items_duplicates_and_repeats(assessor, declarations):
    with harness(assessor) as h:
        first = declarations[0]
        bad = orjson.dumps({**declarations[1], "operator_bin": "12"})
        twice = orjson.dumps(declarations[2])[:-1] + b',"flow":"parcel"}'  # names a key twice
        page = (b'{"schema":"page/1","items":[' + orjson.dumps(first) + b"," + orjson.dumps(first) + b"," + bad
                + b"," + twice + b"," + b'{"schema":"assessment/1","order_id":"X"}' + b"," + b"7" + b","
                + orjson.dumps(declarations[3]) + b"]}")
        h.feed(RISK_DECLARATIONS, page)
        reasons = [doc["reason"] for doc in h.sent(REJECTIONS)]
        assert reasons == ["invalid_code", "duplicate_key", "not_an_object"]
        assert h.state().seen.keys() == {first["declaration_id"], declarations[3]["declaration_id"]}
        h.feed(RISK_DECLARATIONS, page_of(declarations[:4]))  # routed again after a crash: only [1] and [2] are new
        assert h.state().seen.keys() == {d["declaration_id"] for d in declarations[:4]}
        h.feed(RISK_DECLARATIONS, b'{"schema":"page/1","items":[]}')
        assert h.sent(REJECTIONS)[-1]["reason"] in ("empty_lines", "too_many_items", "unknown_schema", "missing_field",
                                                      "out_of_range")
        assert h.recovered().state.snapshot() == h.state().snapshot()


@pytest.mark.parametrize("seed", range(3))
def test_a_crash_anywhere_between_pages_recovers_the_indices(assessor, declarations, seed):
    stream = declarations[:400]
    pages = [page_of(stream[i:i + 23]) for i in range(0, len(stream), 23)]
    expected = {o["declaration_id"]: o for o in offline(assessor, stream) if o["hits"] or o["selected"] is not None}
    with harness(assessor) as reference:
        for page in pages:
            reference.feed(RISK_DECLARATIONS, page)
        expected_state = reference.state().snapshot()
    rng = random.Random(seed)
    h = harness(assessor, auto=False)
    with h:
        position, crashes = 0, 0
        while position < len(pages):
            if h.pipeline.deliveries is not None and h.pipeline.deliveries.full():
                while h.outputs.waiting:
                    h.outputs.resolve(0)
            h.feed(RISK_DECLARATIONS, pages[position], offset=position, drain=False)
            while h.outputs.waiting and rng.random() < 0.6:
                h.outputs.resolve(rng.randrange(len(h.outputs.waiting)))
            if rng.random() < 0.15 and crashes < 4:
                crashes += 1
                h.outputs.waiting.clear()
                h.crash()
                position = h.pipeline.state(0).offsets.get(RISK_DECLARATIONS, -1) + 1
                continue
            position += 1
        while h.outputs.waiting:
            h.outputs.resolve(0)
        h.drain()
        assert crashes > 0
        assert h.state().snapshot() == expected_state
        assert h.recovered().state.snapshot() == expected_state
        published: dict[str, dict] = {}
        for topic, _, doc in h.outputs.keyed:
            if topic == RISK_HITS:
                assert published.setdefault(doc["declaration_id"], doc) == doc == expected[doc["declaration_id"]]
        assert set(published) == set(expected)


# -- a page's re-assessments in one batch (Scorer.decide_page) ---------------------------------------------------

def _sequential(scorer: Scorer, declarations) -> tuple[list[dict], RiskState]:
    state, outs = RiskState(), []
    for declaration in declarations:
        decision = scorer.decide(state, declaration)
        if decision.body is not None:
            state.apply(decision.body)
        outs.append(decision.output)
    return outs, state


def _tight_profiles(tmp_path):
    """The shipped profile with a daily capacity that binds and a trader window that fires within days."""
    from stream.audit.risk_profile import DEFAULT_PATH, load_profiles

    data = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    for profile in data["profiles"]:
        profile["selection"]["daily_capacity"] = 3
        profile["trader_risk"].update(window_days=2, min_declarations=5, min_hit_rate="0.02")
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return load_profiles(path)


def _paged(scorer: Scorer, declarations, size: int) -> DomainHarness:
    h = DomainHarness(RiskDomain(scorer), outputs=KeyedOutputs())
    h.__enter__()
    for start in range(0, len(declarations), size):
        h.feed(RISK_DECLARATIONS, page_of(declarations[start:start + size]))
    return h


def test_pages_score_one_by_one_where_capacity_and_trader_windows_bind(assessor, declarations, tmp_path):
    """Pages cross days, a day's capacity runs out within a page and trader_risk reads the days before: each
    declaration is scored exactly as one by one, though its outcome waits for the re-assessments of its day."""
    scorer = Scorer(assessor, _tight_profiles(tmp_path))
    expected, state = _sequential(scorer, declarations)
    per_day: dict[str, int] = {}
    for o in expected:
        per_day[o["declared_at"]] = per_day.get(o["declared_at"], 0) + (o["selected"] == "risk")
    assert max(per_day.values()) == 3 and list(per_day.values()).count(3) >= 4  # the capacity binds on most days
    threshold = float(scorer.profiles.profiles[0].threshold)
    assert sum(1 for o in expected if o["hits"] and o["score"] >= threshold and o["selected"] != "risk") > 0
    assert any(h["indicator"] == "trader_risk" for o in expected for h in o["hits"])
    assert any(h["indicator"] == "misclassification" for o in expected for h in o["hits"])  # re-assessed at once
    for size in (151, 500):
        h = _paged(scorer, declarations, size)
        try:
            assert h.sent(RISK_HITS) == [o for o in expected if o["hits"] or o["selected"] is not None]
            assert h.state().snapshot() == state.snapshot()
            assert h.recovered().state.snapshot() == state.snapshot()
        finally:
            h.__exit__(None, None, None)


class _FailingAssessor:
    """The engine with a defect: it raises on a batch holding a re-assessment of ``order_id``."""

    def __init__(self, assessor: Assessor, order_id: str):
        self.assessor, self.rules, self.order_id = assessor, assessor.rules, order_id

    def assess(self, requests, **kw):
        if any(r["order_id"].startswith(self.order_id + ".") for r in requests):
            raise RuntimeError("a defect")
        return self.assessor.assess(requests, **kw)


def test_a_defect_in_a_re_assessment_costs_only_its_own_revenue(assessor, declarations):
    reference, _ = _sequential(Scorer(assessor), declarations)
    bad = next(o for o in reference if any(h["indicator"] == "undervaluation" for h in o["hits"]))
    scorer = Scorer(_FailingAssessor(assessor, bad["order_id"]))
    expected, state = _sequential(scorer, declarations)
    [scored] = [o for o in expected if o["declaration_id"] == bad["declaration_id"]]
    assert {h["evidence"].get("reassessment") for h in scored["hits"] if h["indicator"] == "undervaluation"} == {
        "internal_error"}
    assert scored["revenue_at_risk"] == "0.00"
    h = _paged(scorer, declarations, 97)
    try:
        assert h.sent(RISK_HITS) == [o for o in expected if o["hits"] or o["selected"] is not None]
        assert h.recovered().state.snapshot() == h.state().snapshot() == state.snapshot()
    finally:
        h.__exit__(None, None, None)


def test_a_defect_after_the_lessons_is_a_rejection_and_the_state_matches_its_changelog(assessor, declarations):
    stream = declarations[:200]
    reference, _ = _sequential(Scorer(assessor), stream)
    bad = reference[57]["declaration_id"]

    class FailingScorer(Scorer):
        def _finish(self, state, scoring, body):
            if scoring.decl["declaration_id"] == bad:
                raise RuntimeError("a defect")
            return super()._finish(state, scoring, body)

    h = _paged(FailingScorer(assessor), stream, 50)
    try:
        [refused] = h.sent(REJECTIONS)
        assert (refused["reason"], refused["ref"]) == ("internal_error", bad)
        assert all(o["declaration_id"] != bad for o in h.sent(RISK_HITS))
        assert bad in h.state().seen  # what it taught stays learned, recorded with no hit and no selection
        assert h.recovered().state.snapshot() == h.state().snapshot()
    finally:
        h.__exit__(None, None, None)
