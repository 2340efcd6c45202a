"""Identifiers shared by the risk agent and the case agent.

A selected risk score opens a case by itself, so `risk.hits` and `audit.events` are co-partitioned by the
case id: the risk agent keys each hit by `case_id_for(declaration_id)` and every event of that case is keyed
by the same id, so one partition of the case agent sees both.
"""
from __future__ import annotations


def case_id_for(declaration_id: str) -> str:
    """The audit case that a risk selection of ``declaration_id`` opens (deterministic: a redelivered
    selection opens the same case, not a second one)."""
    return f"CASE-{declaration_id}"
