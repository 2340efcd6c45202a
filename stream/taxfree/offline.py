"""`taxfree decide` offline: the three input kinds as JSON lines in time order, decided exactly as
the agent decides them (same `handle_bytes`, same ledger bodies), then the validity lapse as of a date."""
from __future__ import annotations

from datetime import date
from typing import Iterable, Iterator

from stream.taxfree.agents import handle_bytes
from stream.taxfree.decide import Decider, Ledger


def decide_lines(lines: Iterable[bytes], decider: Decider, as_of: date) -> Iterator[dict]:
    """Rejections as they occur (those of confirmations and cancellations whose document never came
    at the end of the input), then one decision per document (as of `as_of`) in the order of their
    first appearance."""
    ledger = Ledger()
    order: dict[str, None] = {}  # document ids in the order of their first appearance
    for raw in lines:
        if not raw.strip():
            continue
        outcome = handle_bytes(decider, ledger, None, None, raw)
        if outcome.body is not None:
            for step in outcome.body.get("steps", (outcome.body,)):
                for document_id in step.get("docs", ()):
                    if document_id not in ledger.docs:
                        order.setdefault(document_id)
            ledger.apply(outcome.body)
        yield from outcome.rejections
    while True:  # the input is over: what was held for a document that never came is rejected
        outcome = decider.expire_parked(ledger, None)
        if outcome is None:
            break
        ledger.apply(outcome.body)
        yield from outcome.rejections
    while True:
        outcome = decider.lapse(ledger, as_of)
        if outcome is None:
            break
        ledger.apply(outcome.body)
    for document_id in order:
        yield ledger.decision(document_id)
