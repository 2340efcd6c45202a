"""Receipts across partitions: a receipt counts in one live tax-free document, whatever partition holds it.

The inputs are keyed by document_id, so with CUSTOMS_TAXFREE_PARTITIONS > 1 two documents naming the
same receipt can land on different partitions, and neither partition's documents tell. The receipt's
partition decides instead (its registry, `Ledger.claims`: receipt -> the document holding it):

1. a valid document that holds its receipts (no local duplicate) is recorded as waiting
   (`awaiting`: its receipts; shown `pending`, no decision published yet) and sends one
   `taxfree-receipt-claims/1` message per receipt partition to `taxfree.receipt-claims`, keyed by
   the first receipt it names (BIN:number), on the partition of Kafka's default partitioner for
   that key (murmur2), with `reply_to`: the document's partition;
2. the receipt's partition grants a claim when the receipt is free or already held by that same
   document (a claim is idempotent per (receipt, document): a repeat gets the same answer), denies
   it otherwise, and answers with one `taxfree-receipt-answers/1` message to `reply_to` on
   `taxfree.receipt-answers`, keyed by the first document id it answers;
3. when every receipt of the document is answered the document is decided as the single-partition
   path would have: its first decision (`pending`, or a refusal with every reason that applies) is
   published then, with `duplicate_receipt` when a claim was denied; a denied document holds none
   of its receipts and releases those it was granted; confirmations and cancellations that came
   while it waited are applied after, in their arrival order;
4. a cancelled document releases its receipts (`op: release`, applied only by the receipt's current
   holder, so a late or repeated release cannot free a receipt another document holds).

Both topics are read by the tax-free agent itself (each partition's state holds the documents keyed
there and the registry of the receipts keyed there), so claims and answers get the runtime's records,
redelivery checks and snapshots like any input. With one partition (the default) nothing is claimed:
the partition's own receipt index is exact and decides at once (the fast path).
"""
from __future__ import annotations

CLAIMS = "taxfree.receipt-claims"
ANSWERS = "taxfree.receipt-answers"
CLAIMS_SCHEMA = "taxfree-receipt-claims/1"
ANSWERS_SCHEMA = "taxfree-receipt-answers/1"
MAX_ENTRIES = 1000  # claims or answers per message at most (a page's claims are split)
MAX_TEXT = 300  # a receipt key (12-digit BIN, ':', a receipt number) or a document id


_murmur2 = None


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, positive) gives `key`."""
    global _murmur2
    if _murmur2 is None:  # aiokafka's, imported on first use (the offline commands need no Kafka client)
        from aiokafka.partitioner import murmur2 as _murmur2
    return (_murmur2(key) & 0x7FFFFFFF) % partitions


def claim_messages(claims: list[dict], reply_to: int, partitions: int) -> list[tuple[bytes, bytes, int]]:
    """The claim entries (`receipt`, `document_id`, `op`) as messages (key, value, partition): one per
    receipt partition (and per MAX_ENTRIES), in the entries' order within each."""
    import orjson

    by_partition: dict[int, list[dict]] = {}
    for entry in claims:
        by_partition.setdefault(partition_of(entry["receipt"].encode(), partitions), []).append(entry)
    messages = []
    for partition, entries in by_partition.items():
        for start in range(0, len(entries), MAX_ENTRIES):
            chunk = entries[start:start + MAX_ENTRIES]
            messages.append((chunk[0]["receipt"].encode(),
                             orjson.dumps({"schema": CLAIMS_SCHEMA, "reply_to": reply_to, "claims": chunk}),
                             partition))
    return messages


def answer_messages(answers: list[tuple[int, dict]]) -> list[tuple[bytes, bytes, int]]:
    """(reply_to, answer entry) pairs as messages (key, value, partition), one per partition answered."""
    import orjson

    by_partition: dict[int, list[dict]] = {}
    for reply_to, entry in answers:
        by_partition.setdefault(reply_to, []).append(entry)
    messages = []
    for partition, entries in by_partition.items():
        for start in range(0, len(entries), MAX_ENTRIES):
            chunk = entries[start:start + MAX_ENTRIES]
            messages.append((chunk[0]["document_id"].encode(),
                             orjson.dumps({"schema": ANSWERS_SCHEMA, "answers": chunk}), partition))
    return messages


def _text(v) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_TEXT


def check(doc, schema: str, partitions: int) -> tuple[str, str] | None:
    """None when `doc` is a well-formed claims (or answers) message, else (reason, detail). These are
    the workers' own messages; anything else on the topic is rejected, never applied."""
    if not isinstance(doc, dict):
        return ("not_an_object", "the message is not a JSON object")
    if doc.get("schema") != schema:
        return ("unknown_schema", f"schema: {schema} expected on this topic")
    if schema == CLAIMS_SCHEMA:
        reply_to = doc.get("reply_to")
        if isinstance(reply_to, bool) or not isinstance(reply_to, int) or not 0 <= reply_to < partitions:
            return ("out_of_range", f"reply_to: a partition from 0 to {partitions - 1} expected")
        field, fields = "claims", (("receipt", _text), ("document_id", _text),
                                   ("op", lambda v: v in ("claim", "release")))
    else:
        field, fields = "answers", (("receipt", _text), ("document_id", _text),
                                    ("granted", lambda v: isinstance(v, bool)))
    entries = doc.get(field)
    if not isinstance(entries, list) or not entries:
        return ("wrong_type", f"{field}: a non-empty array expected")
    if len(entries) > MAX_ENTRIES:
        return ("too_many_items", f"{field}: {len(entries)} entries, at most {MAX_ENTRIES} allowed")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            return ("wrong_type", f"{field}[{i}]: an object expected")
        for name, ok in fields:
            if name not in entry:
                return ("missing_field", f"{field}[{i}].{name}: required field is missing")
            if not ok(entry[name]):
                return ("wrong_type", f"{field}[{i}].{name}: not a valid value")
    return None
