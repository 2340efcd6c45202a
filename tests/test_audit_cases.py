"""The case state machine (stream/audit/cases.py): every transition, every rejection, the boundary days."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.audit.cases import AUDIT_PERIOD_DAYS, MAX_EVENTS_PER_CASE, CLOSED, Case, decide, expire
from stream.audit.events import KINDS, event_of
from stream.contracts.reasons import REASONS
from tests.schema_oracle import schema_validator

D = dt.date.fromisoformat
CASE_SCHEMA = schema_validator("audit-case-1.json")
_counter = iter(range(10**9))


def ev(kind: str, on: str, **fields):
    doc = {"schema": "audit-event/1", "case_id": "CASE-1", "kind": kind, "on": on,
           "event_id": fields.pop("event_id", f"E{next(_counter)}"), **fields}
    if kind == "opened":
        doc = {"declaration_id": "D-1", "findings": "declared below the index", "additional_accruals": "1000.00",
               **doc}
    return event_of(doc)


class Run:
    """A case driven event by event, as the agent does: each decision's last version is the case."""

    def __init__(self):
        self.case: Case | None = None
        self.snapshots: list[dict] = []

    def send(self, event, today: str | None = None):
        decision = decide(self.case, event, D(today) if today else event.on)
        for version in decision.versions:
            doc = version.to_doc()
            CASE_SCHEMA.validate(doc)
            self.snapshots.append(doc)
        if decision.versions:
            self.case = decision.versions[-1]
        return decision

    def must_reject(self, event, reason: str, today: str | None = None):
        before = self.case
        decision = self.send(event, today)
        assert decision.problem is not None and decision.problem[0] == reason, decision
        assert decision.problem[0] in REASONS
        if not decision.versions:
            assert self.case is before
        return decision

    def tick(self, today: str):
        while self.case is not None and (nxt := expire(self.case, D(today))) is not None:
            self.case = nxt
            self.snapshots.append(nxt.to_doc())


def notified(delivered: str = "2026-03-02") -> Run:
    run = Run()
    run.send(ev("opened", "2026-03-02"))
    run.send(ev("notification_delivered", delivered))
    return run


def test_paid_in_full_by_comply_by_is_complied():
    run = notified()
    assert run.case.comply_by == D("2026-04-03")
    run.send(ev("paid", "2026-03-10", amount="400"))
    assert run.case.state == "notified" and run.case.paid == 40000 and run.case.outstanding == 60000
    run.send(ev("paid", "2026-04-03", amount="600.00"))      # on comply_by itself: in time
    assert run.case.state == "complied" and run.case.closed_on == D("2026-04-03")
    assert [s["version"] for s in run.snapshots] == [1, 2, 3, 4]
    assert run.snapshots[-1]["outstanding"] == "0.00" and run.snapshots[-1]["paid"] == "1000.00"


def test_comply_by_boundary_days():
    # the deadline passes when comply_by ends: a tick on comply_by changes nothing, the next day closes it
    run = notified()
    run.tick("2026-04-03")
    assert run.case.state == "notified"
    run.tick("2026-04-04")          # Saturday: the deadline has passed, weekend or not
    assert run.case.state == "unfulfilled" and run.case.closed_on == D("2026-04-04")
    assert run.case.changed_by == "comply_by_passed"


def test_an_event_the_day_after_comply_by_is_late():
    run = notified()
    run.must_reject(ev("paid", "2026-04-04", amount="1000"), "deadline_passed")
    assert run.case.state == "unfulfilled"  # the deadline itself was applied on the way
    run.must_reject(ev("explanation_received", "2026-04-06"), "deadline_passed")


def test_a_timely_payment_reported_after_the_timer_still_counts():
    run = notified()
    run.tick("2026-04-06")
    assert run.case.state == "unfulfilled"
    run.send(ev("paid", "2026-04-03", amount="1000"), today="2026-04-06")
    assert run.case.state == "complied" and run.case.closed_on == D("2026-04-03")
    # a timely partial payment is recorded, and the deadline closes the case again
    run = notified()
    run.tick("2026-04-06")
    run.send(ev("paid", "2026-04-02", amount="10"), today="2026-04-06")
    assert run.case.state == "unfulfilled" and run.case.paid == 1000


def test_explanation_then_accepted_or_rejected():
    run = notified()
    run.send(ev("explanation_received", "2026-03-20"))
    assert run.case.state == "disputed" and run.case.answer_by == D("2026-04-08")
    run.send(ev("explanation_accepted", "2026-04-08"))
    assert run.case.state == "explanation_accepted" and run.case.closed_on == D("2026-04-08")

    run = notified()
    run.send(ev("explanation_received", "2026-04-03"))  # on comply_by: in time
    run.send(ev("explanation_rejected", "2026-04-10"))
    assert run.case.state == "unfulfilled" and run.case.changed_by == "explanation_rejected"


def test_customs_late_answer_marks_the_case_overdue_and_is_still_recorded():
    run = notified()
    run.send(ev("explanation_received", "2026-03-20"))
    run.tick("2026-04-08")
    assert not run.case.overdue
    run.tick("2026-04-09")
    assert run.case.state == "disputed" and run.case.overdue and run.case.changed_by == "answer_by_passed"
    run.send(ev("explanation_accepted", "2026-04-15"))
    assert run.case.state == "explanation_accepted" and not run.case.overdue


def test_the_comply_by_deadline_does_not_close_a_disputed_case():
    run = notified()
    run.send(ev("explanation_received", "2026-03-20"))
    run.tick("2026-04-06")
    assert run.case.state == "disputed"


def test_paying_in_full_ends_a_dispute():
    run = notified()
    run.send(ev("explanation_received", "2026-03-20"))
    run.send(ev("paid", "2026-03-25", amount="1000"))
    assert run.case.state == "complied"


def test_an_opened_case_is_overdue_after_the_audit_period():
    run = Run()
    run.send(ev("opened", "2026-03-02"))
    run.tick((D("2026-03-02") + dt.timedelta(days=AUDIT_PERIOD_DAYS)).isoformat())
    assert not run.case.overdue
    run.tick((D("2026-03-02") + dt.timedelta(days=AUDIT_PERIOD_DAYS + 1)).isoformat())
    assert run.case.overdue and run.case.changed_by == "audit_period_passed" and run.case.state == "opened"
    run.send(ev("notification_delivered", "2026-05-05"))
    assert run.case.state == "notified" and not run.case.overdue


def test_reopening_before_notification_amends_the_findings():
    run = Run()
    run.send(ev("opened", "2026-03-02"))
    run.send(ev("opened", "2026-03-03", additional_accruals="1500.50", findings="after the audit"))
    assert run.case.accruals == 150050 and run.case.findings == "after the audit" and run.case.version == 2


@pytest.mark.parametrize("setup, event, reason", [
    ([], ev("paid", "2026-03-02", amount="1"), "unknown_case"),
    ([ev("opened", "2026-03-02")], ev("paid", "2026-03-03", amount="1"), "case_not_notified"),
    ([ev("opened", "2026-03-02")], ev("explanation_received", "2026-03-03"), "case_not_notified"),
    ([ev("opened", "2026-03-02")], ev("explanation_accepted", "2026-03-03"), "not_disputed"),
    ([ev("opened", "2026-03-02"), ev("notification_delivered", "2026-03-02")],
     ev("notification_delivered", "2026-03-03"), "already_notified"),
    ([ev("opened", "2026-03-02"), ev("notification_delivered", "2026-03-02")],
     ev("opened", "2026-03-03"), "already_notified"),
    ([ev("opened", "2026-03-02"), ev("notification_delivered", "2026-03-02")],
     ev("explanation_rejected", "2026-03-03"), "not_disputed"),
    ([ev("opened", "2026-03-02"), ev("notification_delivered", "2026-03-02")],
     ev("paid", "2026-03-03", amount="1000.01"), "overpayment"),
    ([ev("opened", "2026-03-02"), ev("notification_delivered", "2026-03-05")],
     ev("paid", "2026-03-04", amount="1"), "date_out_of_order"),
    ([ev("opened", "2026-03-02"), ev("notification_delivered", "2026-03-02"), ev("paid", "2026-03-03", amount="1000")],
     ev("paid", "2026-03-04", amount="1"), "case_closed"),
    ([ev("opened", "2026-03-02"), ev("notification_delivered", "2026-03-02"), ev("explanation_received", "2026-03-03")],
     ev("explanation_received", "2026-03-04"), "already_explained"),
    ([ev("opened", "2026-03-02", additional_accruals="0")], ev("notification_delivered", "2026-03-03"), "no_accruals"),
    ([ev("opened", "2026-03-02")], ev("opened", "2026-03-03", declaration_id="D-2"), "declaration_mismatch"),
    ([ev("opened", "2026-03-02")], ev("notification_delivered", "2027-12-15"), "outside_calendar"),
    ([ev("opened", "2026-03-02", event_id="X")], ev("opened", "2026-03-02", event_id="X", findings="other"),
     "conflicting_duplicate"),
])
def test_an_event_that_does_not_fit_is_rejected_and_changes_nothing(setup, event, reason):
    run = Run()
    for step in setup:
        assert run.send(step).problem is None
    run.must_reject(event, reason)


def test_an_event_dated_after_today_is_rejected():
    run = notified()
    run.must_reject(ev("paid", "2026-03-05", amount="1"), "date_in_future", today="2026-03-04")


def test_a_redelivered_event_changes_nothing():
    run = notified()
    payment = ev("paid", "2026-03-05", amount="1", event_id="P-1")
    run.send(payment)
    decision = run.send(payment)
    assert decision.duplicate and not decision.versions and run.case.paid == 100


def test_events_per_case_are_bounded():
    run = notified()
    for i in range(MAX_EVENTS_PER_CASE - 2):
        run.send(ev("paid", "2026-03-05", amount="0.01"))
    run.must_reject(ev("paid", "2026-03-05", amount="0.01"), "too_many_events")


def test_a_case_survives_its_body():
    run = notified()
    run.send(ev("explanation_received", "2026-03-20"))
    assert Case.from_body(run.case.to_body()) == run.case


# -- any sequence of events: snapshots valid, money exact, closed cases final -----------------------

_days = st.integers(0, 120).map(lambda n: (D("2026-02-01") + dt.timedelta(days=n)).isoformat())


@st.composite
def sequences(draw):
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(KINDS))
        fields = {}
        if kind == "paid":
            fields["amount"] = draw(st.sampled_from(["0.01", "1", "250", "500.5", "999.99", "1000", "2000"]))
        if kind == "opened":
            fields["additional_accruals"] = draw(st.sampled_from(["0", "1000", "750.25"]))
        steps.append((ev(kind, draw(_days), **fields), draw(st.integers(0, 30))))
    return steps


@given(sequences())
def test_any_sequence_keeps_the_invariants(steps):
    run = Run()
    for event, late in steps:
        before = run.case
        today = (event.on + dt.timedelta(days=late)).isoformat()
        decision = run.send(event, today)
        if decision.problem is not None:
            assert decision.problem[0] in REASONS
        case = run.case
        if case is not None:
            assert 0 <= case.paid <= case.accruals
            assert case.state != "complied" or case.paid == case.accruals
            if before is not None and before.closed and case is not before:
                # only the timer's unfulfilled reopens, for a timely event reported late
                assert before.changed_by == "comply_by_passed" or decision.versions == ()
        versions = [s["version"] for s in run.snapshots]
        assert versions == list(range(1, len(versions) + 1))
    assert all(s["state"] in CLOSED | {"opened", "notified", "disputed"} for s in run.snapshots)
