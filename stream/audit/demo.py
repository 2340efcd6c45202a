"""The audit-cases step of `make demo`: two cases through their Kazakhstan working-day deadlines, offline.

The case agent's Domain runs in-process with a moving "today": a risk selection opens case 1, its
notification is delivered on Monday 2 March 2026 (comply_by counts 20 working days past 9 March and
Nauryz), the party pays part and explains, customs answers late and accepts; case 2 gets no answer from
the party and the timer makes it unfulfilled the day after comply_by.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import orjson

from stream.audit.agents import CaseDomain
from stream.audit.ids import case_id_for
from stream.runtime.topics import AUDIT_CASES, AUDIT_EVENTS, REJECTIONS, RISK_HITS

D = dt.date.fromisoformat


def _event(case_id: str, kind: str, on: str, **fields) -> tuple[str, bytes, bytes]:
    doc = {"schema": "audit-event/1", "case_id": case_id, "kind": kind, "on": on, **fields}
    return AUDIT_EVENTS, case_id.encode(), orjson.dumps(doc)


def _score(declaration_id: str, revenue: str) -> tuple[str, bytes, bytes]:
    doc = {"schema": "risk-score/1", "order_id": "AX-ORD-1", "declaration_id": declaration_id, "score": 0.93,
           "revenue_at_risk": revenue, "selected": "risk", "profile": "kz-pca-2026-1",
           "hits": [{"indicator": "undervaluation", "line": 0, "score": 0.93, "revenue_at_risk": revenue}]}
    return RISK_HITS, case_id_for(declaration_id).encode(), orjson.dumps(doc)


def script() -> list[tuple[str, list[tuple[str, bytes, bytes]]]]:
    """(today, messages of that day); a day without messages is a timer run."""
    one, two = case_id_for("DEMO-DECL-1"), "CASE-DEMO-2"
    return [
        ("2026-03-02", [_score("DEMO-DECL-1", "18450.00"),
                        _event(one, "notification_delivered", "2026-03-02"),
                        _event(two, "opened", "2026-03-02", declaration_id="DEMO-DECL-2",
                               findings="parcels split under the duty-free threshold", additional_accruals="7300.00"),
                        _event(two, "notification_delivered", "2026-03-02")]),
        ("2026-03-10", [_event(one, "paid", "2026-03-10", amount="5000.00", event_id="DEMO-PAY-1"),
                        _event(one, "paid", "2026-03-10", amount="20000.00", event_id="DEMO-PAY-2")]),
        ("2026-03-20", [_event(one, "explanation_received", "2026-03-20")]),
        ("2026-04-03", []),
        ("2026-04-04", []),
        ("2026-04-09", []),
        ("2026-04-14", [_event(one, "explanation_accepted", "2026-04-14")]),
    ]


def _line(doc: dict) -> str:
    deadlines = f"comply_by {doc['comply_by']}" if doc["comply_by"] else "no deadline yet"
    if doc["answer_by"]:
        deadlines += f", answer_by {doc['answer_by']}"
    overdue = "  OVERDUE" if doc["overdue"] else ""
    return (f"{doc['case_id']:<22} v{doc['version']:<2} {doc['changed_by']:<23} {doc['state']:<21} "
            f"paid {doc['paid']:>9} of {doc['additional_accruals']:>9} KZT; {deadlines}{overdue}")


def cases_demo_step(echo: Callable[[str], object]) -> None:
    """Walk the two cases day by day and print every snapshot and rejection the case agent writes."""
    today = [D("2026-03-02")]
    domain = CaseDomain(today=lambda now: today[0])
    state = domain.new_state(0)

    def show(effects) -> None:
        if effects is None:
            return
        if effects.body is not None:
            state.apply(effects.body)
        for _, value in effects.outputs.get(AUDIT_CASES, ()):
            echo("    " + _line(orjson.loads(value)))
        for _, value in effects.outputs.get(REJECTIONS, ()):
            rejected = orjson.loads(value)
            echo(f"    rejected {rejected['ref']}: {rejected['reason']} ({rejected['detail']})")

    echo("")
    echo("=== cameral audit cases: deadlines in Kazakhstan working days (20 to comply, 10 to answer) ===")
    for day, messages in script():
        today[0] = D(day)
        echo(f"  {day} ({today[0].strftime('%a')}):")
        for topic, key, value in messages:
            show(domain.handle(state, topic, key, value, 0.0))
        show(domain.tick(state, 0.0))
    echo("  (9 March and 23-25 March 2026 are days off: Women's Day moved from Sunday, Nauryz)")
