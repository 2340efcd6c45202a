"""The tax-free domain on the shared runtime (stream/runtime/domain.py).

Inputs `taxfree.documents`, `taxfree.confirmations`, `taxfree.cancellations` (key = document_id,
co-partitioned); output `taxfree.decisions` (one message per change of a document's decision:
pending, then refund or refusal) and `rejections`. With more than one partition the agent also reads
and writes `taxfree.receipt-claims` and `taxfree.receipt-answers` (a receipt counts in one live document
across partitions: stream/taxfree/claims.py). The timer refuses what the validity lets lapse and
compacts documents decided finally more than CUSTOMS_TAXFREE_FINAL_DAYS ago (decide.tombstone).
`domain(cfg)` is the factory the worker wires in; it refuses to build with a commission above 20%.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

import orjson

from stream.contracts.reasons import rejection
from stream.runtime.domain import Effects
from stream.taxfree import claims as claims_contract
from stream.taxfree import contracts
from stream.taxfree.claims import ANSWERS, CLAIMS
from stream.taxfree.decide import Decider, Ledger, Outcome, expanded, receipt_key
from stream.taxfree.reader import read_documents
from stream.taxfree.rules import KZ_TIME

DOCUMENTS = "taxfree.documents"
CONFIRMATIONS = "taxfree.confirmations"
CANCELLATIONS = "taxfree.cancellations"
DECISIONS = "taxfree.decisions"
REJECTIONS = "rejections"

log = logging.getLogger(__name__)

ACCEPTS = {
    DOCUMENTS: ("taxfree-document/1",),
    CONFIRMATIONS: ("taxfree-confirmation/1",),
    CANCELLATIONS: ("taxfree-cancellation/1",),
}


MAX_PAGE_ITEMS = 1000  # a page's record holds every item's changes: kept well under a message's size


def _loads(value: bytes | None):
    """The message's JSON, or the Outcome that rejects it (no value, not JSON, not UTF-8)."""
    if value is None:
        return Outcome(rejections=[rejection(None, "malformed_json", "the message has no value")])
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return Outcome(rejections=[rejection(None, "malformed_json", "the input is not valid JSON (or not UTF-8)")])


def handle_bytes(decider: Decider, ledger: Ledger, topic: str | None, key: bytes | None, value: bytes | None,
                 now: float = 0.0) -> Outcome:
    """One input message against `ledger` (not mutated): the offline command and the agent share it.
    A message is one document, or a `page/1` of them (each item stands or falls on its own)."""
    accept = ACCEPTS.get(topic, contracts.INPUT_SCHEMAS)
    # every document valid (the fast reader vouched for them), or None: parsed and checked below
    read = read_documents(value) if topic == DOCUMENTS and read_documents is not None and value else None
    if read is not None:
        docs, paged = read
        if paged:
            return handle_page(decider, ledger, accept, {"schema": "page/1", "items": docs}, now, checked=True)
        doc = docs[0]
    else:
        doc = _loads(value)
        if isinstance(doc, Outcome):
            return doc
        if isinstance(doc, dict) and doc.get("schema") == "page/1":
            return handle_page(decider, ledger, accept, doc, now)
        problem = contracts.check(doc, accept)
        if problem is not None:
            return Outcome(rejections=[rejection(contracts.ref_of(doc), *problem)])
    if key is not None and key != doc["document_id"].encode():
        return Outcome(rejections=[rejection(doc["document_id"], "invalid_code",
                                             "the message key is not the document_id (inputs are keyed by it)")])
    return decider.handle(ledger, doc, now)


def handle_page(decider: Decider, ledger: Ledger, accept: tuple[str, ...], page: dict, now: float,
                checked: bool = False) -> Outcome:
    """The items of a page in order, as if each were its own message, in one record: each item is
    decided against a shadow ledger holding what it reads of `ledger` plus the changes of the items
    before it; the record is their bodies in order ("steps"). A page serves one partition: its items
    must be keyed to it (always so with the default single partition). `checked`: the page and every
    item are already known valid (the fast reader vouched for them)."""
    from stream.contracts.validate import validate_page

    if not checked:
        problem = validate_page(page)
        if problem is None and len(page["items"]) > MAX_PAGE_ITEMS:
            problem = ("too_many_items", f"items: {len(page['items'])} items, at most {MAX_PAGE_ITEMS} allowed")
        if problem is not None:
            return Outcome(rejections=[rejection(None, *problem)])
    shadow, pulled = Ledger(), set()
    steps, decisions, rejections, claims = [], [], [], []
    with decider.keys.ahead(_qr_pairs(page["items"])):  # the QR checks run ahead on a helper thread
        for i, item in enumerate(page["items"]):
            problem = None if checked else contracts.check(item, accept)
            if problem is not None:
                rejections.append(rejection(contracts.ref_of(item), problem[0], f"items[{i}]: {problem[1]}"))
                continue
            _pull(shadow, ledger, item, pulled)
            outcome = decider.handle(shadow, item, now)
            if outcome.body is not None:
                shadow.apply(outcome.body)
                steps.append(outcome.body)
            decisions += outcome.decisions
            rejections += outcome.rejections
            claims += outcome.claims
    return Outcome({"v": steps[0]["v"], "steps": steps} if steps else None, decisions, rejections, claims)


def _qr_pairs(items: list) -> list[tuple[str, str]]:
    """The (QR, BIN) of a page's documents that carry a QR, in page order (checked or not yet)."""
    pairs = []
    for item in items:
        if type(item) is dict and item.get("schema") == "taxfree-document/1":
            qr, entity = item.get("qr"), item.get("trading_entity")
            if type(qr) is str and type(entity) is dict and type(entity.get("bin")) is str:
                pairs.append((qr, entity["bin"]))
    return pairs


def _pull(shadow: Ledger, ledger: Ledger, item: dict, pulled: set) -> None:
    """Copy into `shadow`, once, the entries of `ledger` that `item` reads or changes."""
    document_id = item["document_id"]
    if ("doc", document_id) not in pulled:
        pulled.add(("doc", document_id))
        record = ledger.docs.get(document_id)
        if record is not None:
            shadow.docs[document_id] = record
            if document_id in ledger.pending:
                shadow.pending[document_id] = ledger.pending[document_id]
            keys = record["receipts"]
        else:
            keys = ()
        if document_id in ledger.parked:
            shadow.parked[document_id] = list(ledger.parked[document_id])
    else:
        keys = ()
    if item["schema"] == "taxfree-document/1":
        keys = [*keys, *(receipt_key(item["trading_entity"]["bin"], r["number"]) for r in item["receipts"])]
    for key in keys:
        if ("receipt", key) not in pulled:
            pulled.add(("receipt", key))
            holder = ledger.receipts.get(key)
            if holder is not None:
                shadow.receipts[key] = holder


def _new_documents(body: dict | None, state: Ledger) -> int:
    """How many documents a record body adds to the ledger (a page's steps included)."""
    if body is None:
        return 0
    ids: set[str] = set()
    for step in body.get("steps", (body,)):
        ids.update(step.get("docs", ()))
    docs = state.docs
    return sum(1 for document_id in ids if document_id not in docs)  # (ids - docs.keys() walks every key)


def _effects(outcome: Outcome | None, new_documents: int = 0, partition: int = 0, partitions: int = 1) -> Effects | None:
    if outcome is None:
        return None
    outputs: dict[str, list[tuple]] = {}
    if outcome.claims:  # to the receipts' partitions, answered back to this one
        outputs[CLAIMS] = claims_contract.claim_messages(outcome.claims, partition, partitions)
    if outcome.answers:
        outputs[ANSWERS] = claims_contract.answer_messages(outcome.answers)
    if outcome.decisions:
        outputs[DECISIONS] = [(d["document_id"].encode(), orjson.dumps(d)) for d in outcome.decisions]
    if outcome.rejections:
        outputs[REJECTIONS] = [((r["ref"] or "").encode() or None, orjson.dumps(r)) for r in outcome.rejections]
    return Effects(outputs, outcome.body, (new_documents, outcome.decisions, outcome.rejections))


class TaxfreeDomain:
    name = "taxfree"
    inputs = (DOCUMENTS, CONFIRMATIONS, CANCELLATIONS)  # and CLAIMS, ANSWERS with more than one partition
    outputs = (DECISIONS, REJECTIONS)
    rejections = REJECTIONS
    tick_seconds = 10.0  # the validity ends at a day's end; held inputs expire after minutes

    def __init__(self, decider: Decider, metrics=None, partitions: int = 1, lapse_grace_days: int = 14,
                 final_days: int = 30):
        self.decider = decider
        self.metrics = metrics
        # The timer refuses a lapsed document this many days after its validity ends: a confirmation
        # stamped in time can reach the operator later (paper copies sit in airport mailboxes emptied
        # weekly), and a refusal is final. The offline `decide --as-of` knows all its input: no grace.
        self.lapse_grace = timedelta(days=lapse_grace_days)
        # a final document's record is compacted to its tombstone this many days after its final decision
        # (CUSTOMS_TAXFREE_FINAL_DAYS; decide.tombstone): the ledger grows by tombstones, not whole records
        self.final_window = timedelta(days=final_days)
        # partitions of the taxfree.* topics (CUSTOMS_TAXFREE_PARTITIONS, default 1; the topic plan creates
        # them with this count): with more than one, receipts are claimed from their partitions (claims.py)
        self.partitions = partitions
        decider.claims = partitions > 1
        if decider.claims:  # one partition reads and writes no claims: its own receipt index decides
            self.inputs = (*TaxfreeDomain.inputs, CLAIMS, ANSWERS)
            self.outputs = (*TaxfreeDomain.outputs, CLAIMS, ANSWERS)
        self.ledgers: dict[int, Ledger] = {}  # the partitions this worker holds, for the API

    def new_state(self, partition: int) -> Ledger:
        if partition >= self.partitions:
            log.warning("taxfree: partition %d of more than CUSTOMS_TAXFREE_PARTITIONS=%d: receipts are claimed "
                        "from %d partitions only", partition, self.partitions, self.partitions)
        ledger = Ledger(partition)
        self.ledgers[partition] = ledger
        return ledger

    def handle(self, state: Ledger, topic: str, key: bytes | None, value: bytes | None, now: float) -> Effects:
        if topic in (CLAIMS, ANSWERS):
            outcome = self._claims(state, topic, value)
        else:
            outcome = handle_bytes(self.decider, state, topic, key, value, now)
        new = _new_documents(outcome.body, state) if topic == DOCUMENTS else 0
        return _effects(outcome, new, state.partition, self.partitions)

    def _claims(self, state: Ledger, topic: str, value: bytes | None) -> Outcome:
        """A claims message (this partition's receipts) or an answers message (its documents)."""
        schema = claims_contract.CLAIMS_SCHEMA if topic == CLAIMS else claims_contract.ANSWERS_SCHEMA
        doc = _loads(value)
        if isinstance(doc, Outcome):
            return doc
        problem = claims_contract.check(doc, schema, self.partitions)
        if problem is not None:
            return Outcome(rejections=[rejection(None, *problem)])
        if topic == CLAIMS:
            return self.decider.claim(state, doc["claims"], doc["reply_to"])
        return self.decider.answer(state, doc["answers"])

    def tick(self, state: Ledger, now: float) -> Effects | None:
        """Refuse what the validity let lapse; reject inputs held too long for a document that never came;
        compact documents decided finally more than the window ago (one of these per tick, bounded)."""
        today = datetime.fromtimestamp(now, KZ_TIME).date()
        lapsed = self.decider.lapse(state, today - self.lapse_grace, now, self.decider.hold_seconds)
        outcome = (lapsed or self.decider.expire_parked(state, now)
                   or self.decider.compact(state, today - self.final_window))
        return _effects(outcome, 0, state.partition, self.partitions)

    def on_delivered(self, counts) -> None:
        if counts is not None and self.metrics is not None:
            self.metrics.record(*counts)

    def lookup(self, document_id: str) -> dict | None:
        """The record of a document held by this worker (for the API), or None."""
        for ledger in list(self.ledgers.values()):
            record = ledger.docs.get(document_id)
            if record is not None:
                return expanded(document_id, record)
        return None

    def routes(self, app) -> None:
        from stream.taxfree.api import faust_routes

        faust_routes(app, self.lookup)


def build_decider(commission_pct: str | Decimal | None = None, rules_path=None, jwks_path=None) -> Decider:
    """The decider of the configured rules, keys and PII key (CUSTOMS_TAXFREE_* variables)."""
    from stream.settings import env
    from stream.taxfree import rules as rules_module
    from stream.taxfree.pii import pii_key
    from stream.taxfree.qr import KeySet
    from stream.taxfree.secrets_store import default_jwks

    if commission_pct is None:
        commission_pct = env("CUSTOMS_TAXFREE_COMMISSION_PCT") or None
    rules = rules_module.load(rules_path, commission_pct)
    return Decider(rules, KeySet.load(jwks_path or default_jwks()), pii_key(),
                   float(env("CUSTOMS_TAXFREE_HOLD_SECONDS")))


def domain(cfg=None) -> TaxfreeDomain:
    """The tax-free domain for the worker. Raises `RulesError` (with a clear message) on a commission
    above 20% or a broken rules file, so the worker does not start."""
    from stream.settings import env
    from stream.taxfree.metrics import default

    return TaxfreeDomain(build_decider(), default(), int(env("CUSTOMS_TAXFREE_PARTITIONS")),
                         int(env("CUSTOMS_TAXFREE_LAPSE_GRACE_DAYS")), int(env("CUSTOMS_TAXFREE_FINAL_DAYS")))
