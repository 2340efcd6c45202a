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
- It reads `risk.declarations`: `declarations` re-keyed by buyer_ref and paged by its router
  (stream/audit/risk_route.py, an app task of the same worker), so a page of declarations costs one
  record and one acknowledgement, and a buyer's parcels share a partition. A single declaration (not in
  a page) is scored alike.
- A page bends the runtime's rule that ``handle`` leaves the state alone, and only this way: each
  declaration's body is applied as soon as what it teaches is known (``RiskState.stage``; its hit and
  selection follow once the re-assessments of its day, made in one batch, are back: ``Scorer.decide_page``),
  so the next one is scored against it, exactly as one record per declaration would; the page's body is the
  list of those bodies, and ``RiskState.apply`` recognises it as applied (a replay applies them one by one).
  A declaration that fails before it is staged changes nothing; one that fails after (a defect in its last
  step) is refused with `internal_error` and keeps what it taught, recorded with no hit. What the runtime
  could still refuse after ``handle`` (outputs over the producer's limit; a risk score is a few kB) would
  leave the live state ahead of its changelog until the partition is rebuilt; ``RiskState.begin_page`` logs
  an error when that happened.
"""
from __future__ import annotations

import logging

import orjson

from stream.audit.ids import case_id_for
from stream.audit.risk_reader import read_declarations
from stream.audit.risk_metrics import RiskCounts, RiskMetrics
from stream.audit.risk_score import RiskState, Scorer
from stream.contracts.reasons import rejection
from stream.contracts.validate import parse_json_line, validate_document
from stream.money import parse_tiyn
from stream.runtime.domain import Effects
from stream.runtime.pages import page_items
from stream.runtime.topics import REJECTIONS, RISK_DECLARATIONS, RISK_HITS

log = logging.getLogger(__name__)

NAME = "risk"
_V2 = ("declaration/2",)


class RiskDomain:
    name = NAME
    inputs = (RISK_DECLARATIONS,)
    outputs = (RISK_HITS, REJECTIONS)

    def __init__(self, scorer: Scorer, metrics: RiskMetrics | None = None, router=None):
        self.scorer = scorer
        self.metrics = metrics
        self.router = router  # stream.audit.risk_route.RiskRouter: declarations -> risk.declarations

    def new_state(self, partition: int) -> RiskState:
        return RiskState()

    def routes(self, app) -> None:
        """Called once by the app factory with the Faust app: the router runs beside the agent as an app task
        (so `customs-stream worker --domains risk` is the whole risk agent)."""
        if self.router is None:
            return
        from stream.audit.risk_route import run_forever

        router = self.router

        async def risk_route():
            await run_forever(router)

        app.task(risk_route)

    def handle(self, state: RiskState, topic: str, key: bytes | None, value: bytes | None, now: float) -> Effects:
        fast = read_declarations(value) if read_declarations is not None and value is not None else None
        if fast is not None:  # every declaration valid (stream/audit/risk_reader.py)
            docs, paged = fast
            if paged:
                return self._scored_page(state, docs, list(range(len(docs))), [None] * len(docs), True)
            return self._one(*self._outcome(self.scorer.decide(state, docs[0], valid=True)))
        doc = parse_json_line(value) if value is not None else ("malformed_json", "the message has no value")
        if isinstance(doc, tuple):
            return self._rejected(None, *doc)
        if doc.get("schema") == "page/1":
            return self._page(state, doc)
        return self._one(*self._decide(state, doc))

    @staticmethod
    def _one(outcome: str, hits, rejected, body, counts) -> Effects:
        outputs = {}
        if hits is not None:
            outputs[RISK_HITS] = [hits]
        if rejected is not None:
            outputs[REJECTIONS] = [rejected]
        return Effects(outputs=outputs, body=body, counts=counts)

    def _page(self, state: RiskState, doc: dict) -> Effects:
        """A page of declarations (what the router writes), scored in order against the state as each one
        leaves it (``Scorer.decide_page``): every body is staged on the state and the page's record carries
        them all, which the state recognises as applied already; a replay applies them one by one."""
        items = page_items(doc)
        if isinstance(items, tuple):
            return self._rejected(None, *items)
        outcomes: list = [None] * len(items)  # per item: (hit, rejected, counts)
        scored, where = [], []
        for i, item in enumerate(items):
            if isinstance(item, dict) and type(item) is not dict:  # an item that names a key twice
                problem = _duplicate_key_problem(item)
                if problem is not None:
                    outcomes[i] = (None, (None, orjson.dumps(rejection(_ref(item), *problem))), RiskCounts("rejected"))
                    continue
            if isinstance(item, dict) and item.get("schema") == "assessment/1":
                outcomes[i] = (None, None, RiskCounts("not_v2"))
                continue
            scored.append(item)
            where.append(i)
        return self._scored_page(state, scored, where, outcomes, False)

    def _scored_page(self, state: RiskState, scored: list, where: list[int], outcomes: list, valid: bool) -> Effects:
        """The page's Effects once ``scored`` (at ``where`` among its items) are scored; ``outcomes`` holds the
        other items' already."""
        staged = state.begin_page()
        for i, item, decision in zip(where, scored, self.scorer.decide_page(state, scored, valid=valid)):
            if isinstance(decision, Exception):  # a defect: this declaration is refused, the page goes on
                outcomes[i] = (None, (None, orjson.dumps(rejection(_ref(item), *_defect(decision)))),
                               RiskCounts("rejected"))
            else:
                _, hit, rejected, _, count = self._outcome(decision)
                outcomes[i] = (hit, rejected, count)
        hits = [o[0] for o in outcomes if o[0] is not None]
        rejections = [o[1] for o in outcomes if o[1] is not None]
        return Effects(outputs={RISK_HITS: hits, REJECTIONS: rejections}, body={"page": staged} if staged else None,
                       counts=[o[2] for o in outcomes])

    def _decide(self, state: RiskState, doc: object):
        """(outcome, risk.hits message, rejections message, body, counts) of one declaration."""
        if isinstance(doc, dict) and doc.get("schema") == "assessment/1":
            return "not_v2", None, None, None, RiskCounts("not_v2")
        return self._outcome(self.scorer.decide(state, doc))

    @staticmethod
    def _outcome(decision):
        out = decision.output
        if out is None:
            return "duplicate", None, None, None, RiskCounts("duplicate")
        if out["schema"] == "rejection/1":
            return "rejected", None, (None, orjson.dumps(out)), None, RiskCounts("rejected")
        counts = RiskCounts("scored", [(h["indicator"], parse_tiyn(h["revenue_at_risk"])) for h in out["hits"]],
                            out["selected"],
                            parse_tiyn(out["revenue_at_risk"]) if out["selected"] is not None else 0)
        hit = None
        if out["hits"] or out["selected"] is not None:
            hit = (case_id_for(out["declaration_id"]).encode(), orjson.dumps(out))
        return "scored", hit, None, decision.body, counts

    @staticmethod
    def _rejected(ref: str | None, reason: str, detail: str) -> Effects:
        return Effects(outputs={REJECTIONS: [(None, orjson.dumps(rejection(ref, reason, detail)))]},
                       counts=RiskCounts("rejected"))

    def tick(self, state: RiskState, now: float) -> Effects | None:
        return None  # nothing runs on a clock: windows move with the declarations' own dates

    def on_delivered(self, counts) -> None:
        if self.metrics is None or counts is None:
            return
        self.metrics.record_many(counts if isinstance(counts, list) else (counts,))


def _duplicate_key_problem(item: dict) -> tuple[str, str] | None:
    try:
        return validate_document(item, _V2)
    except Exception as exc:  # a defect: this declaration is refused, the page goes on
        log.exception("risk: a declaration of a page failed")
        return _defect(exc)


def _defect(exc: Exception) -> tuple[str, str]:
    return ("internal_error", f"the declaration could not be scored: {type(exc).__name__}: {exc}"[:500])


def _ref(item: object) -> str | None:
    ref = item.get("declaration_id") if isinstance(item, dict) else None
    return ref if isinstance(ref, str) else None


def domain(cfg=None) -> RiskDomain:
    """The risk agent for a worker of its own app id (CUSTOMS_RISK_APP_ID), scoring with the rules of ``cfg``,
    with its router from `declarations` (consumer group ``<app id>-route``)."""
    from stream import settings
    from stream.audit.risk_metrics import default_metrics
    from stream.audit.risk_route import RiskRouter
    from stream.broker import bootstrap_of
    from stream.declaration.engine import Assessor
    from stream.rules import load_rules

    cfg = cfg if cfg is not None else settings.load()
    compression = None if cfg.output_compression in (None, "", "none") else cfg.output_compression
    router = RiskRouter(bootstrap_of(cfg.broker), f"{cfg.app_id}-route", cfg.page_bytes, compression=compression)
    return RiskDomain(Scorer(Assessor(load_rules(cfg))), metrics=default_metrics(), router=router)
