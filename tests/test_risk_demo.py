"""The demo's risk step prints the top of the audit list from a generated feed."""
from __future__ import annotations

from stream.audit.risk_demo import risk_demo_step


def test_the_demo_step_shows_the_audit_list():
    lines: list[str] = []
    figures = risk_demo_step(lines.append, declarations=2500, top=8)
    text = "\n".join(lines)
    assert "the audit list" in text and "revenue at risk (KZT)" in text
    assert figures["scored"] == 2500 and figures["with_hits"] > 0
    assert figures["top_frauds"] >= 6  # the generator's ground truth: the top of the list is mostly fraud
    assert sum(1 for line in lines if line.startswith("  RK-")) == 8
