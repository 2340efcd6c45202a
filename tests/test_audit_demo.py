"""The demo step walks its cases through every deadline (offline, no services)."""
from __future__ import annotations

from stream.audit.demo import cases_demo_step


def test_the_demo_walks_a_case_through_its_deadlines():
    lines: list[str] = []
    cases_demo_step(lines.append)
    text = "\n".join(lines)
    assert "comply_by 2026-04-03" in text and "answer_by 2026-04-08" in text
    assert "rejected CASE-DEMO-DECL-1: overpayment" in text
    unfulfilled = [line for line in lines if "comply_by_passed" in line]
    assert len(unfulfilled) == 1 and "CASE-DEMO-2" in unfulfilled[0]
    assert any("answer_by_passed" in line and "OVERDUE" in line for line in lines)
    assert lines[-2].split()[3] == "explanation_accepted"
