"""The case agent: `audit.events` and `risk.hits` in, an `audit-case/1` snapshot on `audit.cases` for every
change, `rejection/1` on `rejections` for what does not fit. A Domain of the shared runtime
(stream/runtime/domain.py): the runtime consumes, records and recovers; this module only decides.

- Both inputs are keyed by the case id (`stream.audit.ids.case_id_for(declaration_id)` for a risk score),
  so one partition holds a case and everything about it. A message whose key is not its case id is
  rejected (`wrong_partition_key`): applied here, it would split a case over two partitions.
- The state of a partition is its cases (`CasesState`); a record body carries the cases a message or a
  tick changed, whole (a few hundred bytes each), so replaying the changelog rebuilds them exactly.
- Redeliveries change nothing: every applied event's dedupe key (event_id, or the content digest) is kept
  in its case; a repeated or later selection of an open case opens nothing. A crash between outputs and
  record repeats the same snapshots, identified by (case_id, version), which consumers deduplicate.
- "Today" is the calendar date in Kazakhstan (UTC+5) of the runtime's ``now``; deadlines pass at the end
  of their day there (stream/audit/cases.py). Tests inject ``today``.
- The timer (``tick``) applies the deadlines that passed, at most `TICK_CASES` cases per tick (the rest
  on the next ones), and forgets closed cases `RETAIN_DAYS` after they closed, so the state stays bounded.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import orjson

from stream.audit.calendar import WorkingCalendar, default_calendar
from stream.audit.cases import Case, Decision, decide, expire
from stream.audit.events import parse_event, selection_of
from stream.audit.metrics import CaseCounts, CaseMetrics
from stream.contracts.reasons import rejection
from stream.contracts.validate import parse_json_line
from stream.runtime.domain import Effects
from stream.runtime.topics import AUDIT_CASES, AUDIT_EVENTS, REJECTIONS, RISK_HITS

KAZAKHSTAN = dt.timezone(dt.timedelta(hours=5))
TICK_CASES = 200
RETAIN_DAYS = 730
NAME = "audit_cases"


def kazakhstan_today(now: float) -> dt.date:
    """The calendar date in Kazakhstan (UTC+5) at the epoch time ``now``."""
    return dt.datetime.fromtimestamp(now, KAZAKHSTAN).date()


class CasesState:
    """One partition's cases. Changed only by `apply` (live and on changelog replay)."""

    def __init__(self, partition: int | None = None):
        self.partition = partition
        self.cases: dict[str, Case] = {}
        self.per_state: Counter = Counter()
        self.overdue = 0

    def _count(self, case: Case, sign: int) -> None:
        self.per_state[case.state] += sign
        self.overdue += sign * case.overdue

    def apply(self, body: dict) -> None:
        for case_id, case_body in body.get("cases", {}).items():
            old = self.cases.get(case_id)
            if old is not None:
                self._count(old, -1)
            case = Case.from_body(case_body)
            self.cases[case_id] = case
            self._count(case, +1)
        for case_id in body.get("drop", ()):
            old = self.cases.pop(case_id, None)
            if old is not None:
                self._count(old, -1)

    def snapshot(self) -> dict:
        return {"cases": {case_id: case.to_body() for case_id, case in self.cases.items()}}

    def gauges(self) -> tuple[dict[str, int], int]:
        """(cases per state, overdue cases) of this partition."""
        return {state: n for state, n in self.per_state.items() if n}, self.overdue


def _snapshot_message(case: Case) -> tuple[bytes, bytes]:
    return case.case_id.encode(), orjson.dumps(case.to_doc())


def _rejection_message(ref: str | None, reason: str, detail: str) -> tuple[bytes | None, bytes]:
    return (ref.encode() if ref else None), orjson.dumps(rejection(ref, reason, detail))


@dataclass
class CaseDomain:
    """The case agent as the runtime drives it."""
    calendar: WorkingCalendar = field(default_factory=default_calendar)
    today: Callable[[float], dt.date] = kazakhstan_today
    metrics: CaseMetrics | None = None
    tick_seconds: float = 60.0
    name: str = NAME
    inputs: tuple[str, ...] = (RISK_HITS, AUDIT_EVENTS)
    outputs: tuple[str, ...] = (AUDIT_CASES, REJECTIONS)

    def new_state(self, partition: int) -> CasesState:
        return CasesState(partition)

    # -- input messages -------------------------------------------------------------------------

    def handle(self, state: CasesState, topic: str, key: bytes | None, value: bytes | None, now: float) -> Effects:
        today = self.today(now)
        if topic == RISK_HITS:
            event = self._selection(value, today)
        else:
            event = parse_event(value)
        if event is None:
            return Effects()
        if isinstance(event, tuple):
            return self._rejected(*event)
        if key != event.case_id.encode():
            return self._rejected(event.case_id, "wrong_partition_key",
                                  f"key: the message key is not the case id {event.case_id}")
        decision = decide(state.cases.get(event.case_id), event, today, self.calendar)
        return self._effects(state, decision, event.case_id)

    def _selection(self, value: bytes | None, today: dt.date):
        if value is None:
            return (None, "malformed_json", "empty message (a tombstone) on risk.hits")
        doc = parse_json_line(value)
        if isinstance(doc, tuple):
            return (None, *doc)
        return selection_of(doc, today)

    @staticmethod
    def _rejected(ref: str | None, reason: str, detail: str) -> Effects:
        counts = CaseCounts()
        counts.rejections.append(reason)
        return Effects(outputs={REJECTIONS: [_rejection_message(ref, reason, detail)]}, counts=counts)

    def _effects(self, state: CasesState, decision: Decision, case_id: str) -> Effects:
        if decision.duplicate:
            return Effects()
        outputs: dict[str, list] = {}
        changed: dict[str, Case] = {}
        if decision.versions:
            outputs[AUDIT_CASES] = [_snapshot_message(case) for case in decision.versions]
            changed[case_id] = decision.versions[-1]
        counts = CaseCounts()
        self._count_versions(counts, state.cases.get(case_id), decision.versions)
        if decision.problem is not None:
            outputs[REJECTIONS] = [_rejection_message(case_id, *decision.problem)]
            counts.rejections.append(decision.problem[0])
        body = {"cases": {cid: case.to_body() for cid, case in changed.items()}} if changed else None
        return Effects(outputs=outputs, body=body, counts=counts)

    @staticmethod
    def _count_versions(counts: CaseCounts, before: Case | None, versions) -> None:
        previous = before
        for case in versions:
            counts.changes.append(case.changed_by)
            counts.paid += case.paid - (previous.paid if previous is not None else 0)
            if case.changed_by == "notification_delivered":
                counts.notified += case.accruals
            previous = case

    # -- the timer ------------------------------------------------------------------------------

    def tick(self, state: CasesState, now: float) -> Effects | None:
        today = self.today(now)
        changed: dict[str, Case] = {}
        snapshots = []
        kinds = []
        dropped = []
        for case_id, case in state.cases.items():
            if len(changed) + len(dropped) >= TICK_CASES:
                break
            if case.closed:
                if case.closed_on is not None and (today - case.closed_on).days > RETAIN_DAYS:
                    dropped.append(case_id)
                continue
            current = case
            while (nxt := expire(current, today)) is not None:
                snapshots.append(_snapshot_message(nxt))
                kinds.append(nxt.changed_by)
                current = nxt
            if current is not case:
                changed[case_id] = current
        if not changed and not dropped:
            return None
        counts = CaseCounts()
        counts.changes.extend(kinds)
        body: dict = {}
        if changed:
            body["cases"] = {cid: case.to_body() for cid, case in changed.items()}
        if dropped:
            body["drop"] = dropped
        return Effects(outputs={AUDIT_CASES: snapshots} if snapshots else {}, body=body, counts=counts)

    def on_delivered(self, counts) -> None:
        if self.metrics is not None and counts is not None:
            self.metrics.record(counts)

    def observe(self, states: dict[int, CasesState]) -> None:
        """After each timer run (the runtime calls it): the gauges of the partitions held."""
        if self.metrics is not None:
            self.metrics.observe({partition: state.gauges() for partition, state in states.items()})


_METRICS: list[CaseMetrics] = []


def default_metrics() -> CaseMetrics:
    """The process's case metrics in the default registry (registered once)."""
    if not _METRICS:
        _METRICS.append(CaseMetrics())
    return _METRICS[0]


def fixed_today(day: dt.date) -> Callable[[float], dt.date]:
    return lambda now: day


def domain(cfg=None) -> CaseDomain:
    """The case agent for the worker (`customs-stream worker --domains audit`)."""
    from stream.settings import env
    fixed = env("CUSTOMS_AUDIT_TODAY")
    today = fixed_today(dt.date.fromisoformat(fixed)) if fixed else kazakhstan_today
    return CaseDomain(metrics=default_metrics(), today=today, tick_seconds=float(env("CUSTOMS_AUDIT_TICK_SECONDS")))
