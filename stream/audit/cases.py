"""Cameral audit cases: the state machine of schemas/audit-case-1.json, pure (no Kafka, no clock, no I/O).

    opened --notification_delivered--> notified --paid in full by comply_by--> complied
                                          |--explanation_received by comply_by--> disputed
                                          '--comply_by passes with neither--> unfulfilled
    disputed --explanation_accepted--> explanation_accepted
             --explanation_rejected--> unfulfilled
             (--paid in full by comply_by--> complied: paying is how a party gives up its dispute)

"By comply_by" is day-granular, in Kazakhstan time (UTC+5): an event dated ``comply_by`` itself is in
time, whatever the hour; the deadline passes when that calendar day ends, so the timer marks the case
unfulfilled from the next day on (``today > comply_by``), even when that day is a weekend. Payments
accumulate; the case is complied on the day they reach the accruals. An event recorded after the timer
closed the case but dated by comply_by (a timely payment reported late) still counts: the case is decided
again as if the timer had not run, then the deadline applies to what remains.

Customs' answer to an explanation is due by ``answer_by``; when it passes with no decision the case stays
disputed and is marked ``overdue`` (the Code makes acceptance customs' duty, so silence is not a decision
against the party); a late decision is still recorded. An opened case is ``overdue`` after the 60 calendar
days a cameral audit may last (Customs Code art. 417) without a notification.

Every function returns new `Case` values; `decide` and `expire` never change their arguments. An event
that does not fit is rejected with a reason (stream/contracts/reasons.py AUDIT_REASONS) and changes
nothing.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from stream.audit.calendar import CalendarError, WorkingCalendar, answer_by, comply_by
from stream.audit.events import CASE_SCHEMA, Event
from stream.money import format_tiyn

CLOSED = frozenset({"complied", "explanation_accepted", "unfulfilled"})
AUDIT_PERIOD_DAYS = 60
MAX_EVENTS_PER_CASE = 64
_ONE_DAY = dt.timedelta(days=1)

Problem = tuple[str, str]


@dataclass(frozen=True)
class Case:
    case_id: str
    declaration_id: str
    state: str
    source: str                      # "risk" or "officer"
    opened_on: dt.date
    findings: str
    accruals: int                    # tiyn
    paid: int = 0                    # tiyn
    delivered_on: dt.date | None = None
    comply_by: dt.date | None = None
    explanation_received_on: dt.date | None = None
    answer_by: dt.date | None = None
    closed_on: dt.date | None = None
    overdue: bool = False
    version: int = 1
    changed_by: str = "opened"
    risk: dict | None = None
    last_on: dt.date | None = None   # date of the latest event applied (events of a case come in date order)
    seen: tuple[tuple[str, str], ...] = field(default=())  # (dedupe key, content digest) of applied events

    @property
    def outstanding(self) -> int:
        return self.accruals - self.paid

    @property
    def closed(self) -> bool:
        return self.state in CLOSED

    def to_doc(self) -> dict:
        """The `audit-case/1` snapshot."""
        iso = _iso
        return {"schema": CASE_SCHEMA, "case_id": self.case_id, "declaration_id": self.declaration_id,
                "state": self.state, "source": self.source, "opened_on": self.opened_on.isoformat(),
                "findings": self.findings, "additional_accruals": format_tiyn(self.accruals),
                "paid": format_tiyn(self.paid), "outstanding": format_tiyn(self.outstanding),
                "delivered_on": iso(self.delivered_on), "comply_by": iso(self.comply_by),
                "explanation_received_on": iso(self.explanation_received_on), "answer_by": iso(self.answer_by),
                "closed_on": iso(self.closed_on), "overdue": self.overdue, "version": self.version,
                "changed_by": self.changed_by, "risk": self.risk}

    def to_body(self) -> dict:
        """JSON-able, exact (tiyn as integers), for the changelog record."""
        iso = _iso
        return {"case_id": self.case_id, "declaration_id": self.declaration_id, "state": self.state,
                "source": self.source, "opened_on": self.opened_on.isoformat(), "findings": self.findings,
                "accruals": self.accruals, "paid": self.paid, "delivered_on": iso(self.delivered_on),
                "comply_by": iso(self.comply_by), "explanation_received_on": iso(self.explanation_received_on),
                "answer_by": iso(self.answer_by), "closed_on": iso(self.closed_on), "overdue": self.overdue,
                "version": self.version, "changed_by": self.changed_by, "risk": self.risk,
                "last_on": iso(self.last_on), "seen": [list(pair) for pair in self.seen]}

    @classmethod
    def from_body(cls, body: dict) -> "Case":
        day = _day
        return cls(case_id=body["case_id"], declaration_id=body["declaration_id"], state=body["state"],
                   source=body["source"], opened_on=dt.date.fromisoformat(body["opened_on"]),
                   findings=body["findings"], accruals=int(body["accruals"]), paid=int(body["paid"]),
                   delivered_on=day(body["delivered_on"]), comply_by=day(body["comply_by"]),
                   explanation_received_on=day(body["explanation_received_on"]), answer_by=day(body["answer_by"]),
                   closed_on=day(body["closed_on"]), overdue=bool(body["overdue"]), version=int(body["version"]),
                   changed_by=body["changed_by"], risk=body.get("risk"), last_on=day(body.get("last_on")),
                   seen=tuple((k, d) for k, d in body.get("seen", ())))


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _day(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _changed(case: Case, event: Event, **changes) -> Case:
    return replace(case, version=case.version + 1, changed_by=event.kind, last_on=event.on,
                   seen=case.seen + ((event.dedupe_key, event.digest),), **changes)


def open_case(event: Event) -> Case:
    return Case(case_id=event.case_id, declaration_id=event.declaration_id, state="opened", source=event.source,
                opened_on=event.on, findings=event.findings, accruals=event.accruals, risk=event.risk,
                last_on=event.on, seen=((event.dedupe_key, event.digest),))


def expire(case: Case, today: dt.date) -> Case | None:
    """The case after the deadlines that passed by ``today`` (None: nothing passed)."""
    if case.state == "notified" and today > case.comply_by:
        return replace(case, state="unfulfilled", closed_on=case.comply_by + _ONE_DAY, overdue=False,
                       version=case.version + 1, changed_by="comply_by_passed")
    if case.state == "disputed" and not case.overdue and today > case.answer_by:
        return replace(case, overdue=True, version=case.version + 1, changed_by="answer_by_passed")
    if case.state == "opened" and not case.overdue and (today - case.opened_on).days > AUDIT_PERIOD_DAYS:
        return replace(case, overdue=True, version=case.version + 1, changed_by="audit_period_passed")
    return None


@dataclass(frozen=True)
class Decision:
    """What an event does: the new versions of its case, in order (each one is a snapshot to publish),
    and the rejection when the event itself does not fit (the versions then come from deadlines only)."""
    versions: tuple[Case, ...] = ()
    problem: Problem | None = None
    duplicate: bool = False


def _expired_all(case: Case, today: dt.date) -> list[Case]:
    versions = []
    while True:
        nxt = expire(case, today)
        if nxt is None:
            return versions
        versions.append(nxt)
        case = nxt


def decide(case: Case | None, event: Event, today: dt.date, calendar: WorkingCalendar | None = None) -> Decision:
    """Decide ``event`` against ``case`` (None: no such case yet) on ``today`` (Kazakhstan)."""
    if case is not None:
        for key, digest in case.seen:
            if key == event.dedupe_key:
                if digest == event.digest:
                    return Decision(duplicate=True)
                return Decision(problem=("conflicting_duplicate",
                                         f"event_id: seen before in case {case.case_id} with other content"))
    if case is not None and event.source == "risk":
        return Decision(duplicate=True)  # a later or repeated selection of an open case opens nothing
    if event.on > today:
        return Decision(problem=("date_in_future", f"on: {event.on} is after today ({today}) in Kazakhstan"))
    if case is None:
        if event.kind != "opened":
            return Decision(problem=("unknown_case", f"case_id: no case {event.case_id} was opened"))
        return Decision(versions=(open_case(event),))

    deadlines = _expired_all(case, today)
    current = deadlines[-1] if deadlines else case
    base = current
    if (current.state == "unfulfilled" and current.changed_by == "comply_by_passed"
            and event.kind in ("paid", "explanation_received") and event.on <= current.comply_by):
        # a timely event reported after the timer ran: decide it as if the deadline had not passed yet
        base = replace(current, state="notified", closed_on=None)
    problem = _fits(base, event)
    if problem is not None:
        return Decision(versions=tuple(deadlines), problem=problem)
    try:
        applied = _apply(base, event, calendar)
    except CalendarError as exc:
        return Decision(versions=tuple(deadlines), problem=("outside_calendar", str(exc)))
    if isinstance(applied, tuple):
        return Decision(versions=tuple(deadlines), problem=applied)
    return Decision(versions=(*deadlines, applied, *_expired_all(applied, today)))


def _fits(case: Case, event: Event) -> Problem | None:
    """Checks common to every kind, against the case as it stands."""
    if len(case.seen) >= MAX_EVENTS_PER_CASE:
        return ("too_many_events", f"case {case.case_id} holds {MAX_EVENTS_PER_CASE} events")
    if event.kind in ("paid", "explanation_received") and case.comply_by is not None and event.on > case.comply_by:
        return ("deadline_passed", f"on: {event.on} is after comply_by {case.comply_by}")
    if case.closed:
        return ("case_closed", f"case {case.case_id} is {case.state} since {case.closed_on}")
    if case.last_on is not None and event.on < case.last_on:
        return ("date_out_of_order", f"on: {event.on} is before the case's latest event ({case.last_on})")
    return None


def _apply(case: Case, event: Event, calendar: WorkingCalendar | None) -> Case | Problem:
    kind = event.kind
    state = case.state
    if kind == "opened":
        if event.declaration_id != case.declaration_id:
            return ("declaration_mismatch", f"declaration_id: case {case.case_id} is about another declaration")
        if state != "opened":
            return ("already_notified", f"case {case.case_id} is {state}: its findings can no longer change")
        # the audit's findings replace the first ones (a risk selection's estimate) before notification
        return _changed(case, event, findings=event.findings, accruals=event.accruals)
    if kind == "notification_delivered":
        if state != "opened":
            return ("already_notified", f"case {case.case_id} was notified on {case.delivered_on}")
        if case.accruals == 0:
            return ("no_accruals", f"case {case.case_id} has no additional accruals to notify")
        return _changed(case, event, state="notified", delivered_on=event.on,
                        comply_by=comply_by(event.on, calendar), overdue=False)
    if kind == "paid":
        if state == "opened":
            return ("case_not_notified", f"case {case.case_id}: no notification was delivered")
        if event.amount > case.outstanding:
            return ("overpayment", f"amount: {format_tiyn(event.amount)} is more than the outstanding "
                                   f"{format_tiyn(case.outstanding)}")
        paid = case.paid + event.amount
        if paid == case.accruals:
            return _changed(case, event, paid=paid, state="complied", closed_on=event.on, overdue=False)
        return _changed(case, event, paid=paid)
    if kind == "explanation_received":
        if state == "opened":
            return ("case_not_notified", f"case {case.case_id}: no notification was delivered")
        if state == "disputed":
            return ("already_explained", f"case {case.case_id} received its explanation on "
                                         f"{case.explanation_received_on}")
        return _changed(case, event, state="disputed", explanation_received_on=event.on,
                        answer_by=answer_by(event.on, calendar))
    # explanation_accepted / explanation_rejected
    if state != "disputed":
        return ("not_disputed", f"case {case.case_id} is {state}: it received no explanation")
    decided = "explanation_accepted" if kind == "explanation_accepted" else "unfulfilled"
    return _changed(case, event, state=decided, closed_on=event.on, overdue=False)
