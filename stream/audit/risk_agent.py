"""The risk agent: `declarations` in, `risk-score/1` on `risk.hits` out. A Domain of the shared runtime
(stream/runtime/domain.py): the runtime consumes, records and recovers; this module only decides.

- It runs in its own consumer group (app id CUSTOMS_RISK_APP_ID), so it scales apart from the worker
  that writes `declarations` and never slows it down.
- Each declaration/2 is scored by `stream.audit.risk_score.Scorer` against the partition's `RiskState`;
  the record body is what the declaration taught the indices (a few integer bins per line), its buyer's
  parcel for the splitting window and the trader counts: bounded, no personal data (the buyer appears as
  the pseudonym `buyer_ref` only). The runtime snapshots the partition (``RiskState.snapshot``: the
  indices as bin counts) every CUSTOMS_SNAPSHOT_RECORDS records and deletes the records before it.
- Scores with a hit or a selection go to `risk.hits`, keyed by `case_id_for(declaration_id)` so the
  case agent sees a selection and the events of its case in one partition; a score without either is
  only counted. A crash between outputs and record scores the declaration again from the same state:
  the same score, the same key (consumers deduplicate by declaration_id).
- A redelivered declaration (same id, same content) changes nothing and sends nothing; bad input gets
  a `rejection/1` on `rejections`. A declaration/1 (what the worker wrote before declaration/2) lacks
  what scoring needs: it is counted as `not_v2` and skipped.
"""
from __future__ import annotations

import orjson

from stream.audit.ids import case_id_for
from stream.audit.risk_metrics import RiskCounts, RiskMetrics
from stream.audit.risk_score import RiskState, Scorer
from stream.contracts.reasons import rejection
from stream.contracts.validate import parse_json_line
from stream.money import parse_tiyn
from stream.runtime.domain import Effects
from stream.runtime.topics import DECLARATIONS, REJECTIONS, RISK_HITS

NAME = "risk"


class RiskDomain:
    name = NAME
    inputs = (DECLARATIONS,)
    outputs = (RISK_HITS, REJECTIONS)

    def __init__(self, scorer: Scorer, metrics: RiskMetrics | None = None):
        self.scorer = scorer
        self.metrics = metrics

    def new_state(self, partition: int) -> RiskState:
        return RiskState()

    def handle(self, state: RiskState, topic: str, key: bytes | None, value: bytes | None, now: float) -> Effects:
        doc = parse_json_line(value) if value is not None else ("malformed_json", "the message has no value")
        if isinstance(doc, tuple):
            return self._rejected(None, *doc)
        if doc.get("schema") == "assessment/1":
            return Effects(counts=RiskCounts("not_v2"))
        decision = self.scorer.decide(state, doc)
        out = decision.output
        if out is None:
            return Effects(counts=RiskCounts("duplicate"))
        if out["schema"] == "rejection/1":
            return Effects(outputs={REJECTIONS: [(None, orjson.dumps(out))]}, counts=RiskCounts("rejected"))
        counts = RiskCounts("scored", [(h["indicator"], parse_tiyn(h["revenue_at_risk"])) for h in out["hits"]],
                            out["selected"],
                            parse_tiyn(out["revenue_at_risk"]) if out["selected"] is not None else 0)
        outputs = {}
        if out["hits"] or out["selected"] is not None:
            outputs[RISK_HITS] = [(case_id_for(out["declaration_id"]).encode(), orjson.dumps(out))]
        return Effects(outputs=outputs, body=decision.body, counts=counts)

    @staticmethod
    def _rejected(ref: str | None, reason: str, detail: str) -> Effects:
        return Effects(outputs={REJECTIONS: [(None, orjson.dumps(rejection(ref, reason, detail)))]},
                       counts=RiskCounts("rejected"))

    def tick(self, state: RiskState, now: float) -> Effects | None:
        return None  # nothing runs on a clock: windows move with the declarations' own dates

    def on_delivered(self, counts) -> None:
        if self.metrics is not None and counts is not None:
            self.metrics.record(counts)


def domain(cfg=None) -> RiskDomain:
    """The risk agent for a worker of its own app id (CUSTOMS_RISK_APP_ID), scoring with the rules of ``cfg``."""
    from stream import settings
    from stream.audit.risk_metrics import default_metrics
    from stream.declaration.engine import Assessor
    from stream.rules import load_rules

    cfg = cfg if cfg is not None else settings.load()
    return RiskDomain(Scorer(Assessor(load_rules(cfg))), metrics=default_metrics())
