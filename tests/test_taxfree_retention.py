"""The tax-free ledger stays bounded: CUSTOMS_TAXFREE_FINAL_DAYS after its final decision a document's
record is compacted to its tombstone (decide.tombstone) by the timer, the runtime's snapshot then drops
the records before it from the changelog, and after a crash a redelivered document, confirmation or
cancellation still changes nothing, the receipt rule still holds, and the API shows the same."""
from __future__ import annotations

from datetime import datetime

import orjson

from stream.taxfree import rules as rules_module
from stream.taxfree import samples
from stream.taxfree.access import view
from stream.taxfree.agents import CANCELLATIONS, CONFIRMATIONS, DOCUMENTS, TaxfreeDomain
from stream.taxfree.decide import Decider, Ledger, tombstone
from stream.taxfree.rules import KZ_TIME
from tests.fixtures.harness import DomainHarness

SELLER = samples.entity("123456789012")
TOPIC = {"taxfree-document/1": DOCUMENTS, "taxfree-confirmation/1": CONFIRMATIONS,
         "taxfree-cancellation/1": CANCELLATIONS}


def at(day: str) -> float:
    return datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=KZ_TIME).timestamp()


def doc(document_id: str, number: str, **kwargs) -> dict:
    return samples.document(document_id, SELLER, passport="P" + document_id[-4:].rjust(8, "0"), receipts=[
        {"number": number, "issued_at": "2026-08-15T14:18:00+05:00", "register_address": "Almaty, Abay 1"}], **kwargs)


def feed(h: DomainHarness, message: dict) -> None:
    h.feed(TOPIC[message["schema"]], message, key=message["document_id"].encode())


def test_final_documents_compacted_then_redelivery_changes_nothing():
    domain = TaxfreeDomain(Decider(rules_module.load(), samples.keyset(SELLER), b"k" * 32), final_days=30)
    refunded, refused, cancelled, pending = (doc("TF-0001", "R-1"), doc("TF-0002", "R-2", country="KZ"),
                                             doc("TF-0003", "R-3"), doc("TF-0004", "R-4"))
    confirmation = samples.confirmation(refunded, at="2026-08-20T09:10:00+05:00")
    with DomainHarness(domain, snapshot_every=7) as h:  # 6 inputs, then the compaction: a snapshot
        h.now = at("2026-08-15")
        for message in (refunded, refused, cancelled, pending, confirmation,
                        samples.cancellation(cancelled, at="2026-08-16T10:00:00+05:00")):
            feed(h, message)
        before = {k: dict(v) for k, v in h.state().docs.items()}
        views = {k: view(domain.lookup(k)) for k in before}
        sent = len(h.outputs.sent)

        h.tick(at("2026-09-10"))  # 21 days after the refund: inside the window, nothing compacted
        assert h.state().docs == before
        h.tick(at("2026-09-20"))  # the refund (08-20), the refusal (08-15), the cancellation (08-16)
        docs = h.state().docs
        assert {k for k, v in docs.items() if v.get("compact")} == {"TF-0001", "TF-0002", "TF-0003"}
        assert docs["TF-0004"] == before["TF-0004"]  # pending: kept whole
        for k in ("TF-0001", "TF-0002", "TF-0003"):
            assert docs[k] == tombstone(before[k])
            assert len(orjson.dumps(docs[k])) < 0.7 * len(orjson.dumps(before[k]))
            assert view(domain.lookup(k)) == views[k]  # the API shows the same
        assert h.state().final_by_day == {}
        assert len(h.outputs.sent) == sent  # compaction publishes nothing
        # the snapshot after the compaction's record: the records before it left the changelog (but the
        # compaction's own, still in flight when the snapshot was taken)
        assert len(h.records) == 2 and orjson.loads(h.records[max(h.records)])["snapshot"] is True

        h.crash()  # a new worker rebuilds from the snapshot alone
        assert h.state().docs == docs
        assert h.state().receipts == {f"{SELLER.bin}:R-1": "TF-0001", f"{SELLER.bin}:R-2": "TF-0002",
                                      f"{SELLER.bin}:R-4": "TF-0004"}
        for message in (refunded, refused, cancelled, confirmation):  # redelivered: nothing at all
            feed(h, message)
        assert len(h.outputs.sent) == sent
        feed(h, samples.confirmation(refunded, at="2026-08-21T09:10:00+05:00", official_id="SRA-9"))
        feed(h, samples.cancellation(refunded, at="2026-08-22T10:00:00+05:00"))
        feed(h, samples.cancellation(cancelled, at="2026-08-23T10:00:00+05:00"))
        assert [r["reason"] for r in h.sent("rejections")] == ["already_confirmed", "already_refunded",
                                                               "already_cancelled"]
        # the receipt rule: the refunded's and the refused's receipts are taken, the cancelled one's free
        for document_id, number in (("TF-0101", "R-1"), ("TF-0102", "R-2"), ("TF-0103", "R-3")):
            feed(h, doc(document_id, number))
        latest = {d["document_id"]: d for d in h.sent("taxfree.decisions")}
        assert latest["TF-0101"]["reasons"] == latest["TF-0102"]["reasons"] == ["duplicate_receipt"]
        assert latest["TF-0103"]["decision"] == "pending"
        assert h.state().docs["TF-0001"] == docs["TF-0001"]


def test_tombstones_replay_and_snapshot_alike():
    """A tombstone is an ordinary record: replayed, or from a snapshot, the ledger is the same."""
    decider = Decider(rules_module.load(), samples.keyset(SELLER), b"k" * 32)
    ledger = Ledger()
    bodies = []
    for message in (doc("TF-0001", "R-1"), samples.confirmation(doc("TF-0001", "R-1"))):
        from stream.taxfree.agents import handle_bytes

        outcome = handle_bytes(decider, ledger, None, None, orjson.dumps(message))
        bodies.append(outcome.body)
        ledger.apply(outcome.body)
    from datetime import date

    assert decider.compact(ledger, date(2026, 8, 20)) is None  # decided on 08-20: not before it
    compacted = decider.compact(ledger, date(2026, 8, 21))
    bodies.append(orjson.loads(orjson.dumps(compacted.body)))
    ledger.apply(compacted.body)
    replayed, from_snapshot = Ledger(), Ledger()
    for body in bodies:
        replayed.apply(body)
    from_snapshot.apply(orjson.loads(orjson.dumps(ledger.snapshot())))
    for other in (replayed, from_snapshot):
        assert other.docs == ledger.docs and other.receipts == ledger.receipts
        assert other.final_by_day == ledger.final_by_day == {} and other.pending == {}
    assert ledger.decision("TF-0001")["decision"] == "refund"
