"""The case agent (stream/audit/agents.py) on the real runtime pipeline, in-process: outputs, records,
crashes at any point, the timer, the metrics. tests/test_audit_broker.py runs it on a real broker."""
from __future__ import annotations

import datetime as dt
import random

import orjson
import pytest
from prometheus_client import CollectorRegistry

from stream.audit.agents import CasesState, CaseDomain, fixed_today, kazakhstan_today
from stream.audit.ids import case_id_for
from stream.audit.metrics import CaseMetrics
from stream.runtime.topics import AUDIT_CASES, AUDIT_EVENTS, REJECTIONS, RISK_HITS
from tests.fixtures.harness import DomainHarness, replay
from tests.schema_oracle import schema_validator

D = dt.date.fromisoformat
CASE_SCHEMA = schema_validator("audit-case-1.json")
REJECTION_SCHEMA = schema_validator("rejection-1.json")


def event(case_id: str, kind: str, on: str, **fields) -> dict:
    doc = {"schema": "audit-event/1", "case_id": case_id, "kind": kind, "on": on, **fields}
    if kind == "opened":
        doc.setdefault("declaration_id", "D-" + case_id)
        doc.setdefault("findings", "declared value far under the price index")
        doc.setdefault("additional_accruals", "1000.00")
    return doc


def score(declaration_id: str, selected: str | None = "risk", revenue: str = "18450.00") -> dict:
    return {"schema": "risk-score/1", "order_id": "O-" + declaration_id, "declaration_id": declaration_id,
            "score": 0.93, "revenue_at_risk": revenue, "selected": selected, "profile": "kz-pca-2026-1",
            "hits": [{"indicator": "undervaluation", "line": 0, "score": 0.93, "revenue_at_risk": revenue}]}


def harness(today: str = "2026-03-20", registry=None) -> tuple[DomainHarness, list]:
    day = [D(today)]
    metrics = CaseMetrics(registry or CollectorRegistry())
    domain = CaseDomain(today=lambda now: day[0], metrics=metrics)
    return DomainHarness(domain), day


def story() -> list[tuple[str, bytes, dict]]:
    """Three cases through their states, with a duplicate, a wrong key and bad events among them."""
    messages = [
        (RISK_HITS, case_id_for("D-9").encode(), score("D-9")),
        (RISK_HITS, case_id_for("D-9").encode(), score("D-9")),                    # redelivered
        (RISK_HITS, case_id_for("D-8").encode(), score("D-8", selected=None)),      # not selected: nothing
        (AUDIT_EVENTS, b"CASE-A", event("CASE-A", "opened", "2026-03-02")),
        (AUDIT_EVENTS, b"CASE-A", event("CASE-A", "notification_delivered", "2026-03-02")),
        (AUDIT_EVENTS, b"CASE-A", event("CASE-A", "paid", "2026-03-05", amount="400", event_id="P1")),
        (AUDIT_EVENTS, b"CASE-A", event("CASE-A", "paid", "2026-03-05", amount="400", event_id="P1")),  # again
        (AUDIT_EVENTS, b"CASE-A", event("CASE-A", "paid", "2026-03-06", amount="700", event_id="P2")),  # too much
        (AUDIT_EVENTS, b"CASE-A", event("CASE-A", "paid", "2026-03-06", amount=600.0, event_id="P3")),  # float
        (AUDIT_EVENTS, b"CASE-A", event("CASE-A", "paid", "2026-03-06", amount="600", event_id="P4")),
        (AUDIT_EVENTS, b"CASE-B", event("CASE-B", "explanation_received", "2026-03-03")),               # unknown
        (AUDIT_EVENTS, b"CASE-B", event("CASE-B", "opened", "2026-03-03")),
        (AUDIT_EVENTS, b"CASE-X", event("CASE-B", "notification_delivered", "2026-03-04")),              # wrong key
        (AUDIT_EVENTS, b"CASE-B", event("CASE-B", "notification_delivered", "2026-03-04")),
        (AUDIT_EVENTS, b"CASE-B", event("CASE-B", "explanation_received", "2026-03-10")),
        (AUDIT_EVENTS, b"CASE-B", b"{not json"),
        (AUDIT_EVENTS, case_id_for("D-9").encode(), event(case_id_for("D-9"), "notification_delivered", "2026-03-20")),
    ]
    return [(t, k, v if isinstance(v, bytes) else orjson.dumps(v)) for t, k, v in messages]


def final_cases(h: DomainHarness) -> dict:
    return {cid: case.to_doc() for cid, case in h.state().cases.items()}


def test_the_story_on_the_pipeline():
    h, day = harness()
    with h:
        for topic, key, value in story():
            h.feed(topic, value, key=key)
        cases = final_cases(h)
        assert cases["CASE-A"]["state"] == "complied" and cases["CASE-A"]["paid"] == "1000.00"
        assert cases["CASE-B"]["state"] == "disputed" and cases["CASE-B"]["answer_by"] == "2026-03-27"
        risk_case = cases[case_id_for("D-9")]
        assert risk_case["source"] == "risk" and risk_case["additional_accruals"] == "18450.00"
        assert risk_case["state"] == "notified" and risk_case["risk"]["profile"] == "kz-pca-2026-1"
        assert case_id_for("D-8") not in cases
        reasons = [r["reason"] for r in h.sent(REJECTIONS)]
        assert reasons == ["overpayment", "wrong_type", "unknown_case", "wrong_partition_key", "malformed_json"]
        for doc in h.sent(REJECTIONS):
            REJECTION_SCHEMA.validate(doc)
        snapshots = h.sent(AUDIT_CASES)
        for doc in snapshots:
            CASE_SCHEMA.validate(doc)
        ids = [(s["case_id"], s["version"]) for s in snapshots]
        assert len(ids) == len(set(ids)), "no case event is published twice"

        # the timer: CASE-B's answer_by passes, then the risk case's comply_by
        day[0] = D("2026-03-28")
        h.tick(now=1.0)
        assert h.state().cases["CASE-B"].overdue
        day[0] = D("2026-04-23")
        h.tick(now=2.0)
        assert h.state().cases[case_id_for("D-9")].state == "unfulfilled"
        h.tick(now=3.0)  # nothing more to do
        assert [s["changed_by"] for s in h.sent(AUDIT_CASES)][-2:] == ["answer_by_passed", "comply_by_passed"]

        # a fresh worker rebuilds the same cases from the records
        recovered = h.recovered().state
        assert {cid: c.to_doc() for cid, c in recovered.cases.items()} == final_cases(h)
        assert recovered.gauges() == h.state().gauges()


@pytest.mark.parametrize("seed", range(6))
def test_a_crash_anywhere_recovers_the_cases_and_repeats_no_case_event(seed):
    messages = story()
    reference, _ = harness()
    with reference:
        for topic, key, value in messages:
            reference.feed(topic, value, key=key)
        expected = final_cases(reference)
        expected_snapshots = {(s["case_id"], s["version"]): s for s in reference.sent(AUDIT_CASES)}

    rng = random.Random(seed)
    h, _ = harness()
    with h:
        offsets: dict[str, int] = {}
        position = 0
        crashes = 0
        while position < len(messages):
            topic, key, value = messages[position]
            offset = offsets.get(topic, 0)
            # outputs go out at once; the record follows (or not, when the worker dies first)
            h.feed(topic, value, key=key, offset=offset, drain=rng.random() < 0.5)
            offsets[topic] = offset + 1
            position += 1
            if rng.random() < 0.3 and crashes < 5:
                crashes += 1
                h.crash()
                # the consumer resumes after the last recorded offset of each topic
                state = h.pipeline.state(0)
                offsets = {t: state.offsets.get(t, -1) + 1 for t in (RISK_HITS, AUDIT_EVENTS)}
                position = _position_after(messages, offsets)
        h.drain()
        assert final_cases(h) == expected
        published = {}
        for snapshot in h.sent(AUDIT_CASES):
            key = (snapshot["case_id"], snapshot["version"])
            # a repeat after a crash is the same snapshot (consumers keep one per (case_id, version))
            assert published.setdefault(key, snapshot) == snapshot
            assert snapshot == expected_snapshots[key]
        assert set(published) == set(expected_snapshots)


def _position_after(messages, offsets) -> int:
    """The index of the first message not yet applied, given the next offset per topic."""
    seen: dict[str, int] = {}
    for index, (topic, _, _) in enumerate(messages):
        n = seen.get(topic, 0)
        if n >= offsets.get(topic, 0):
            return index
        seen[topic] = n + 1
    return len(messages)


def test_records_replay_to_the_same_state():
    h, _ = harness()
    with h:
        for topic, key, value in story():
            h.feed(topic, value, key=key)
        bodies = [orjson.loads(v).get("body") for _, _, v in h.changelog]
        rebuilt = replay(lambda: CasesState(0), [b for b in bodies if b is not None])
        assert {c: x.to_doc() for c, x in rebuilt.cases.items()} == final_cases(h)
        snapshot = replay(lambda: CasesState(0), [h.state().snapshot()])
        assert {c: x.to_doc() for c, x in snapshot.cases.items()} == final_cases(h)


def test_the_timer_works_in_bounded_chunks_and_forgets_old_closed_cases():
    from stream.audit import agents

    h, day = harness("2026-03-02")
    with h:
        for i in range(agents.TICK_CASES + 5):
            cid = f"CASE-{i}"
            h.feed(AUDIT_EVENTS, event(cid, "opened", "2026-03-02"), key=cid.encode())
            h.feed(AUDIT_EVENTS, event(cid, "notification_delivered", "2026-03-02"), key=cid.encode())
        day[0] = D("2026-04-10")
        h.tick(now=1.0)
        states = [c.state for c in h.state().cases.values()]
        assert states.count("unfulfilled") == agents.TICK_CASES
        h.tick(now=2.0)
        assert all(c.state == "unfulfilled" for c in h.state().cases.values())
        # closed cases are forgotten RETAIN_DAYS after they closed (4 April), in chunks too
        day[0] = D("2026-04-04") + dt.timedelta(days=agents.RETAIN_DAYS)
        h.tick(now=3.0)
        assert len(h.state().cases) == agents.TICK_CASES + 5
        day[0] += dt.timedelta(days=1)
        h.tick(now=4.0)
        assert len(h.state().cases) == 5
        h.tick(now=5.0)
        assert h.state().cases == {} and h.recovered().state.cases == {}


def test_metrics_count_changes_rejections_money_and_gauges():
    registry = CollectorRegistry()
    h, day = harness(registry=registry)
    with h:
        for topic, key, value in story():
            h.feed(topic, value, key=key)
        h.tick(now=1.0)
        value = registry.get_sample_value
        assert value("customs_audit_accruals_paid_kzt_total") == 1000.0
        assert value("customs_audit_accruals_notified_kzt_total") == 1000.0 + 1000.0 + 18450.0
        assert value("customs_audit_rejections_total", {"reason": "overpayment"}) == 1
        assert value("customs_audit_case_changes_total", {"changed_by": "paid"}) == 2
        assert value("customs_audit_cases", {"partition": "0", "state": "complied"}) == 1
        assert value("customs_audit_cases", {"partition": "0", "state": "disputed"}) == 1
        assert value("customs_audit_overdue_cases", {"partition": "0"}) == 0


def test_today_is_the_date_in_kazakhstan():
    # 2026-03-01 19:00 UTC is already 2 March in Almaty (UTC+5)
    assert kazakhstan_today(dt.datetime(2026, 3, 1, 19, 0, tzinfo=dt.timezone.utc).timestamp()) == D("2026-03-02")
    assert kazakhstan_today(dt.datetime(2026, 3, 1, 18, 59, tzinfo=dt.timezone.utc).timestamp()) == D("2026-03-01")
    assert fixed_today(D("2026-05-05"))(0.0) == D("2026-05-05")


# -- no input crashes the agent ---------------------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
                    st.text(max_size=10), st.sampled_from(["2026-03-02", "2026-12-31", "0", "1000.00", "CASE-A"]))
_event_docs = st.builds(
    lambda kind, on, extra: {**event("CASE-A", kind, on), **extra},
    st.sampled_from(["opened", "notification_delivered", "paid", "explanation_received", "explanation_accepted",
                     "explanation_rejected", "other"]),
    st.sampled_from(["2026-03-02", "2026-03-19", "2026-03-21", "2027-01-04", "2023-12-29"]),
    st.dictionaries(st.sampled_from(["amount", "additional_accruals", "declaration_id", "findings", "event_id",
                                     "case_id", "schema", "on"]), _values, max_size=3))


@given(st.lists(st.one_of(st.binary(max_size=40).map(lambda b: (AUDIT_EVENTS, b)),
                          _event_docs.map(lambda d: (AUDIT_EVENTS, orjson.dumps(d))),
                          st.dictionaries(st.sampled_from(sorted(score("D-1")) + ["x"]), _values, max_size=3).map(
                              lambda change: (RISK_HITS, orjson.dumps({**score("D-1"), **change})))),
                max_size=12))
def test_no_message_crashes_the_agent(messages):
    domain = CaseDomain(today=fixed_today(D("2026-03-20")))
    state = domain.new_state(0)
    for topic, value in messages:
        key = case_id_for("D-1").encode() if topic == RISK_HITS else b"CASE-A"
        effects = domain.handle(state, topic, key, value, 0.0)
        if effects.body is not None:
            state.apply(orjson.loads(orjson.dumps(effects.body)))
        for out_topic, outputs in effects.outputs.items():
            for _, out in outputs:
                (CASE_SCHEMA if out_topic == AUDIT_CASES else REJECTION_SCHEMA).validate(orjson.loads(out))
    later = CaseDomain(today=fixed_today(D("2026-12-31")))
    effects = later.tick(state, 0.0)
    for _, out in (effects.outputs.get(AUDIT_CASES, []) if effects else []):
        CASE_SCHEMA.validate(orjson.loads(out))
