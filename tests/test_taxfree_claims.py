"""Receipts across partitions (stream/taxfree/claims.py), in-process on the real page pipeline
(tests/fixtures/harness.py): with 4 partitions, two documents naming one receipt on different
partitions are never both refunded; claims and answers redelivered, or repeated after a crash, change
nothing; a document waits until its receipts are answered; a cancelled or receipt-refused document
frees its receipts; and the decisions are those one partition (and `taxfree decide`) gives."""
from __future__ import annotations

from datetime import date

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.taxfree import rules as rules_module
from stream.taxfree import samples
from stream.taxfree.agents import CANCELLATIONS, CONFIRMATIONS, DOCUMENTS, TaxfreeDomain
from stream.taxfree.claims import ANSWERS, CLAIMS, check, claim_messages, partition_of
from stream.taxfree.decide import Decider
from stream.taxfree.offline import decide_lines
from tests.fixtures.harness import DomainHarness

PARTITIONS = 4
SELLER = samples.entity("123456789012")
RULES = rules_module.load()
KEYS = samples.keyset(SELLER)
TOPIC = {"taxfree-document/1": DOCUMENTS, "taxfree-confirmation/1": CONFIRMATIONS,
         "taxfree-cancellation/1": CANCELLATIONS}


def decider() -> Decider:
    return Decider(RULES, KEYS, b"k" * 32)


def doc_partition(document_id: str) -> int:
    return partition_of(document_id.encode(), PARTITIONS)


def ids_on_distinct_partitions(prefix: str, count: int) -> list[str]:
    found, seen, i = [], set(), 0
    while len(found) < count:
        candidate = f"{prefix}{i}"
        if doc_partition(candidate) not in seen:
            seen.add(doc_partition(candidate))
            found.append(candidate)
        i += 1
    return found


def receipt(number: str, at: str = "2026-08-15T14:18:00+05:00") -> dict:
    return {"number": number, "issued_at": at, "register_address": "Almaty, Abay 1, register 3"}


def doc(document_id: str, receipts=None, **kwargs) -> dict:
    return samples.document(document_id, SELLER, receipts=receipts, passport="P" + "".join(c for c in document_id if c.isalnum())[-8:].rjust(8, "0"),
                            **kwargs)


class Cluster:
    """The tax-free domain with 4 partitions on one in-process pipeline; `route` delivers the claims and
    answers it sent to the partitions they name (as the broker would), until none are left."""

    def __init__(self, h: DomainHarness):
        self.h = h
        self.routed = 0  # outputs.routed already delivered

    def feed(self, message: dict, route: bool = True) -> None:
        topic = TOPIC[message["schema"]]
        self.h.feed(topic, message, partition=doc_partition(message["document_id"]),
                    key=message["document_id"].encode())
        if route:
            self.route()

    def pending_routes(self) -> list[tuple[str, int, bytes, bytes]]:
        return [m for m in self.h.outputs.routed[self.routed:] if m[0] in (CLAIMS, ANSWERS)]

    def route(self, repeat: bool = False) -> None:
        while True:
            batch = self.pending_routes()
            self.routed = len(self.h.outputs.routed)
            if not batch:
                return
            for topic, partition, key, value in batch:
                self.h.feed(topic, value, partition=partition, key=key)
                if repeat:  # at-least-once: the same message again, at the next offset
                    self.h.feed(topic, value, partition=partition, key=key)

    def decisions(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for d in self.h.sent("taxfree.decisions"):
            if not out.get(d["document_id"]) or out[d["document_id"]][-1] != d:
                out.setdefault(d["document_id"], []).append(d)
        return out

    def final(self) -> dict[str, dict]:
        return {k: v[-1] for k, v in self.decisions().items()}


@pytest.fixture
def cluster():
    with DomainHarness(TaxfreeDomain(decider(), partitions=PARTITIONS)) as h:
        yield Cluster(h)


def test_two_documents_one_receipt_on_different_partitions_one_refund(cluster):
    a_id, b_id = ids_on_distinct_partitions("TF-A", 2)
    a = doc(a_id, receipts=[receipt("FMU-1")])
    b = doc(b_id, receipts=[receipt("FMU-1")])
    cluster.feed(a)
    cluster.feed(b)
    cluster.feed(samples.confirmation(a))
    cluster.feed(samples.confirmation(b))
    final = cluster.final()
    assert final[a_id]["decision"] == "refund"
    assert final[b_id]["decision"] == "refusal" and final[b_id]["reasons"] == ["duplicate_receipt"]
    assert [d["decision"] for d in cluster.decisions()[a_id]] == ["pending", "refund"]
    assert [d["decision"] for d in cluster.decisions()[b_id]] == ["refusal"]
    # the receipt's registry lives on the receipt's partition and names the refunded document
    key = f"{SELLER.bin}:FMU-1"
    assert cluster.h.state(partition_of(key.encode(), PARTITIONS)).claims == {key: a_id}


def test_a_document_waits_for_its_answers_and_its_confirmation_waits_with_it(cluster):
    a_id, b_id = ids_on_distinct_partitions("TF-W", 2)
    a = doc(a_id, receipts=[receipt("FMU-7"), receipt("FMU-8", "2026-08-15T14:19:00+05:00")])
    cluster.feed(a, route=False)
    cluster.feed(samples.confirmation(a), route=False)
    state = cluster.h.state(doc_partition(a_id))
    assert state.docs[a_id]["decision"]["decision"] == "pending"  # the API shows it pending
    assert set(state.docs[a_id]["awaiting"]) == {f"{SELLER.bin}:FMU-7", f"{SELLER.bin}:FMU-8"}
    assert cluster.decisions() == {}  # nothing decided before every receipt is answered
    assert a_id not in state.pending  # and the lapse does not refuse it meanwhile
    cluster.route()
    assert [d["decision"] for d in cluster.decisions()[a_id]] == ["pending", "refund"]
    assert "awaiting" not in cluster.h.state(doc_partition(a_id)).docs[a_id]
    # b names one free receipt and one of a's: refused, and frees the one it was granted
    b = doc(b_id, receipts=[receipt("FMU-9"), receipt("FMU-8", "2026-08-15T14:18:00+05:00")])
    cluster.feed(b)
    assert cluster.final()[b_id]["reasons"] == ["duplicate_receipt"]
    c_id = ids_on_distinct_partitions("TF-C", 1)[0]
    cluster.feed(doc(c_id, receipts=[receipt("FMU-9")]))
    assert cluster.final()[c_id]["decision"] == "pending"


def test_cancelled_document_releases_its_receipts(cluster):
    a_id, b_id = ids_on_distinct_partitions("TF-X", 2)
    a = doc(a_id, receipts=[receipt("FMU-5")])
    cluster.feed(a)
    cluster.feed(samples.cancellation(a))
    assert cluster.final()[a_id]["reasons"] == ["cancelled"]
    b = doc(b_id, receipts=[receipt("FMU-5")])
    cluster.feed(b)
    cluster.feed(samples.confirmation(b))
    assert cluster.final()[b_id]["decision"] == "refund"
    # a late repeat of a's release does not free b's receipt; a repeat of a's claim is denied
    key = f"{SELLER.bin}:FMU-5"
    home = partition_of(key.encode(), PARTITIONS)
    for op in ("release", "claim"):
        ((k, v, p),) = claim_messages([{"receipt": key, "document_id": a_id, "op": op}], doc_partition(a_id), PARTITIONS)
        assert p == home
        cluster.h.feed(CLAIMS, v, partition=p, key=k)
    cluster.route()
    assert cluster.h.state(home).claims == {key: b_id}
    assert cluster.final()[a_id]["reasons"] == ["cancelled"]


def test_refused_document_keeps_its_receipts_as_design_says(cluster):
    """DESIGN 8.2: `duplicate_receipt` is a receipt already in another document that was not cancelled;
    a document refused for another reason (here an EAEU passport) still counts."""
    a_id, b_id = ids_on_distinct_partitions("TF-R", 2)
    cluster.feed(doc(a_id, receipts=[receipt("FMU-3")], country="KZ"))
    assert cluster.final()[a_id]["reasons"] == ["buyer_eaeu_citizen"]
    cluster.feed(doc(b_id, receipts=[receipt("FMU-3")]))
    assert cluster.final()[b_id]["reasons"] == ["duplicate_receipt"]


def feed_with_shared_receipts() -> list[dict]:
    """Documents spread over the partitions, some naming receipts of others, confirmations, a
    cancellation that frees a receipt for a later document, and refusals for other reasons."""
    ids = [f"TF-F{i:03d}" for i in range(24)]
    messages, docs = [], {}
    for i, document_id in enumerate(ids):
        shared = [receipt(f"FMU-{i}")]
        if i % 4 == 1:
            shared = [receipt(f"FMU-{i - 1}")]  # the previous document's receipt
        if i % 6 == 5:
            shared = [receipt(f"FMU-{i}"), receipt(f"FMU-{i - 3}", "2026-08-15T14:19:00+05:00")]
        d = doc(document_id, receipts=shared, country="KZ" if i % 7 == 3 else "DE")
        docs[document_id] = d
        messages.append(d)
        if i % 3 == 0:
            messages.append(samples.confirmation(d))
        if i == 8:
            messages.append(samples.cancellation(docs[ids[8]]))
            messages.append(doc("TF-F900", receipts=[receipt("FMU-8")]))
    messages += [samples.confirmation(docs[i]) for i in ids if int(i[-3:]) % 3 == 1]
    return messages


def test_decisions_equal_one_partition_with_redelivery_and_crashes():
    messages = feed_with_shared_receipts()
    expected = {d["document_id"]: d for d in decide_lines([orjson.dumps(m) for m in messages], decider(),
                                                          date(2026, 8, 25)) if d["schema"] == "taxfree-decision/1"}
    assert {d["reasons"][0] for d in expected.values() if d["reasons"]} >= {"duplicate_receipt", "buyer_eaeu_citizen"}
    with DomainHarness(TaxfreeDomain(decider(), partitions=PARTITIONS)) as h:
        cluster = Cluster(h)
        for i, message in enumerate(messages):
            cluster.feed(message, route=False)
            if i % 5 == 4:
                h.crash()  # claims sent, their answers not yet delivered: they reach the new pipeline
            cluster.route(repeat=i % 2 == 0)
            if i % 7 == 6:
                h.crash()
        for topic, partition, key, value in [m for m in h.outputs.routed if m[0] in (CLAIMS, ANSWERS)]:
            h.feed(topic, value, partition=partition, key=key)  # every claim and answer once more, late
        cluster.route()
        decisions = cluster.decisions()
        assert cluster.final() == expected
        for document_id, seen in decisions.items():  # decided once: pending at most before the final one
            assert [d["decision"] for d in seen[:-1]] in ([], ["pending"]), (document_id, seen)
        refunded = [d for d in expected.values() if d["decision"] == "refund"]
        receipts = [r["number"] for m in messages if m["schema"] == "taxfree-document/1"
                    and m["document_id"] in {d["document_id"] for d in refunded} for r in m["receipts"]]
        assert len(receipts) == len(set(receipts))  # no receipt in two refunds


def test_one_partition_sends_no_claims():
    with DomainHarness(TaxfreeDomain(decider())) as h:
        a = doc("TF-1", receipts=[receipt("FMU-1")])
        h.feed(DOCUMENTS, a, key=b"TF-1")
        h.feed(CANCELLATIONS, samples.cancellation(a), key=b"TF-1")
        assert [m for m in h.outputs.routed if m[0] in (CLAIMS, ANSWERS)] == []
        assert [d["decision"] for d in h.sent("taxfree.decisions")] == ["pending", "refusal"]


@pytest.mark.parametrize("topic,value,reason", [
    (CLAIMS, b"not json", "malformed_json"),
    (CLAIMS, b"[]", "not_an_object"),
    (CLAIMS, b'{"schema": "taxfree-receipt-answers/1", "answers": []}', "unknown_schema"),
    (CLAIMS, b'{"schema": "taxfree-receipt-claims/1", "reply_to": 9, "claims": []}', "out_of_range"),
    (CLAIMS, b'{"schema": "taxfree-receipt-claims/1", "reply_to": 1, "claims": [{"receipt": "a"}]}', "missing_field"),
    (CLAIMS, b'{"schema": "taxfree-receipt-claims/1", "reply_to": 1, "claims": [{"receipt": "a", '
             b'"document_id": "b", "op": "steal"}]}', "wrong_type"),
    (ANSWERS, b'{"schema": "taxfree-receipt-answers/1", "answers": [{"receipt": "a", "document_id": "b", '
              b'"granted": 1}]}', "wrong_type"),
    (ANSWERS, None, "malformed_json"),
])
def test_bad_claims_and_answers_are_rejected_not_applied(topic, value, reason):
    with DomainHarness(TaxfreeDomain(decider(), partitions=PARTITIONS)) as h:
        h.feed(topic, value, partition=1)
        assert [r["reason"] for r in h.sent("rejections")] == [reason]
        assert h.state(1).claims == {} and h.state(1).docs == {}
        h.feed(DOCUMENTS, doc("TF-OK"), partition=doc_partition("TF-OK"), key=b"TF-OK")  # the partition goes on
        assert [m for m in h.outputs.routed if m[0] == CLAIMS]


def test_claims_contract_accepts_what_the_domain_sends():
    messages = claim_messages([{"receipt": f"{SELLER.bin}:R{i}", "document_id": "TF-1", "op": "claim"}
                               for i in range(2500)], 2, PARTITIONS)
    assert sum(len(orjson.loads(v)["claims"]) for _, v, _ in messages) == 2500
    for key, value, partition in messages:
        body = orjson.loads(value)
        assert check(body, "taxfree-receipt-claims/1", PARTITIONS) is None
        assert {partition_of(c["receipt"].encode(), PARTITIONS) for c in body["claims"]} == {partition}
        assert partition_of(key, PARTITIONS) == partition


json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10) | st.text(max_size=12) | st.sampled_from(
        ["claim", "release", "taxfree-receipt-claims/1", "taxfree-receipt-answers/1", f"{SELLER.bin}:FMU-1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["schema", "reply_to", "claims", "answers", "receipt", "document_id", "op", "granted"]), inner, max_size=5),
    max_leaves=12)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from([CLAIMS, ANSWERS]), json_value | st.binary(max_size=40))
def test_any_claims_or_answers_message_is_applied_or_rejected_never_raises(topic, value):
    domain = TaxfreeDomain(decider(), partitions=PARTITIONS)
    state = domain.new_state(1)
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    effects = domain.handle(state, topic, None, raw, 0.0)
    rejected = effects.outputs.get("rejections", [])
    if rejected:
        assert effects.body is None and len(rejected) == 1
    elif effects.body is not None:
        state.apply(orjson.loads(orjson.dumps(effects.body)))


def test_partition_of_is_kafkas_default_partitioner():
    from aiokafka.partitioner import DefaultPartitioner

    partitions = list(range(PARTITIONS))
    for key in (b"a", b"TF-2026-000123", f"{SELLER.bin}:FMU-778899".encode(), "\u00e9".encode()):
        assert partition_of(key, PARTITIONS) == DefaultPartitioner()(key, partitions, partitions)
