"""A domain's partition state inside the runtime's changelog record.

The runtime owns the record's envelope; the domain owns only its body (stream/runtime/domain.py).
A record (schemas/state-record-2.json) is one changelog message:

    {"v": 2, "seq": 17, "offsets": {"orders": 41}, "body": {...}}

- ``seq`` numbers a partition's records from 1: replaying a record twice applies it once;
- ``offsets`` holds the input offsets this record applied (the last one per topic), so a
  redelivered input is recognised and the offset due next is known (stream/runtime/continuity.py);
- ``body`` is what the domain's ``State.apply`` takes (absent: only offsets moved);
- ``"snapshot": true`` marks a body that rebuilds the whole state: it replaces what came before.
- ``digests`` holds, per input topic, a digest of the last message applied: a log that starts again
  (a new cluster, a recreated topic) shows at that offset another message, or none (pipeline.py);
- ``"rebase": [topic, ...]`` records that policy: those topics' offsets start again from 0.

A record larger than the changelog's message limit (a backlog settled at once, a big page) is
written in parts, applied together or not at all (`encode_record`, `decode_records`): parts
``<key>.0000``, ``<key>.0001``, ... each carry a slice of the record's JSON text, then the head
``<key>`` names how many parts and the digest of the whole. The head is written last (after every
part), so a head on the changelog means its parts went before it; a record whose parts do not add
up to the head's digest (the worker died while they went out, before its input was acknowledged)
is not applied, and its input is handled again.

Version 1 (the warehouse before the runtime) had no envelope: the record was the body with ``seq``
and ``src`` ([topic, offset]) or ``offsets`` beside the body's keys. It is still read, so a worker
upgraded over an old changelog recovers the same stock (tests/test_state_record.py replays one).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Callable, Iterable, Iterator

import orjson

from stream.runtime.domain import State

log = logging.getLogger(__name__)

RECORD_VERSION = 2
_V1_ENVELOPE = ("seq", "src", "offsets")


class UnknownRecordVersion(ValueError):
    """A changelog record written by a newer version of the runtime."""


def message_digest(value: bytes | None) -> str:
    """A short digest of an input message as the broker holds it (to recognise the same log)."""
    return hashlib.blake2b(value or b"", digest_size=8).hexdigest()


def record_key(partition: int, seq: int) -> bytes:
    """The table key of a record: sorted by key, a partition's records are in seq order."""
    return f"{partition}:{seq:012d}".encode()


def seq_of_key(key: bytes) -> int:
    """The seq a record's (or a part's) key names."""
    return int(key.split(b":", 1)[1].split(b".", 1)[0])


def _utf8_slices(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in slices of at most ``size`` bytes, never cutting a UTF-8 character."""
    start = 0
    while start < len(data):
        stop = min(start + size, len(data))
        while stop < len(data) and stop > start + 1 and data[stop] & 0xC0 == 0x80:
            stop -= 1  # a continuation byte: the character began before
        yield data[start:stop]
        start = stop


def encode_record(partition: int, record: dict, limit: int | None = None) -> list[tuple[bytes, bytes]]:
    """The changelog messages (key, value) of a record, in the order to write them: the record
    itself, or its parts and then its head when it is larger than ``limit`` bytes."""
    value = orjson.dumps(record)
    key = record_key(partition, record["seq"])
    if limit is None or len(value) <= limit:
        return [(key, value)]
    digest = hashlib.blake2b(value, digest_size=16).hexdigest()
    # a slice is written as a JSON string, where quotes and backslashes are escaped: half the limit
    slices = list(_utf8_slices(value, max(limit // 2 - 200, 64)))
    messages = [(key + b".%04d" % i, orjson.dumps({"v": RECORD_VERSION, "seq": record["seq"], "part": i,
                                                    "digest": digest, "text": piece.decode()}))
                for i, piece in enumerate(slices)]
    messages.append((key, orjson.dumps({"v": RECORD_VERSION, "seq": record["seq"], "parts": len(slices),
                                        "digest": digest})))
    return messages


def decode_records(messages: Iterable[tuple[bytes, bytes]]) -> Iterator[dict]:
    """The records of one partition's changelog messages, in seq order; a record in parts is joined,
    and the first one whose parts are incomplete ends the replay (nothing after it can be right)."""
    heads, parts = [], {}
    for key, value in messages:
        if b"." in key:
            parts[key] = value
        else:
            heads.append((key, value))
    for key, value in sorted(heads):
        record = orjson.loads(value)
        if "parts" in record:
            pieces = [parts.get(key + b".%04d" % i) for i in range(record["parts"])]
            texts = [orjson.loads(piece) if piece is not None else None for piece in pieces]
            if any(t is None or t.get("digest") != record["digest"] for t in texts):
                log.warning("record %s: %d parts announced, not all written; replay stops before it",
                            key.decode(), record["parts"])
                return
            whole = "".join(t["text"] for t in texts).encode()
            if hashlib.blake2b(whole, digest_size=16).hexdigest() != record["digest"]:
                log.warning("record %s: its parts do not match its digest; replay stops before it", key.decode())
                return
            record = orjson.loads(whole)
        yield record


def envelope_of(record: dict) -> tuple[int, dict[str, int], dict | None, bool]:
    """(seq, offsets applied, body, is a snapshot) of a record of any known version."""
    version = record.get("v", 1)
    if version == RECORD_VERSION:
        return record["seq"], record.get("offsets", {}), record.get("body"), bool(record.get("snapshot"))
    if version != 1 or "v" in record:
        raise UnknownRecordVersion(f"state record version {version!r} (this runtime reads 1 and {RECORD_VERSION})")
    offsets = dict(record.get("offsets", {}))
    src = record.get("src")
    if src:
        offsets[src[0]] = max(offsets.get(src[0], -1), src[1])
    body = {k: v for k, v in record.items() if k not in _V1_ENVELOPE}
    # every v1 record was a stock transaction (its body possibly empty): the stock counts it
    return record["seq"], offsets, body, False


class PartitionState:
    """One partition's domain state plus what the runtime knows of it: records applied, input offsets."""

    def __init__(self, new_state: Callable[[], State]):
        self._new_state = new_state
        self.state = new_state()
        self.seq = 0
        self.offsets: dict[str, int] = {}
        self.digests: dict[str, str] = {}  # input topic -> message_digest of the message at its offset
        self.snapshot_seq = 0  # the last snapshot record applied (compaction counts records from it)

    def apply_record(self, record: dict) -> None:
        """Apply one record (live, or replayed from the changelog)."""
        seq, offsets, body, snapshot = envelope_of(record)
        if seq <= self.seq:
            return  # replayed twice: already in
        if snapshot:
            self.state = self._new_state()
            self.offsets, self.digests = {}, {}
            self.snapshot_seq = seq
        for topic in record.get("rebase", ()):
            self.offsets[topic] = -1  # due from 0 again
            self.digests.pop(topic, None)
        if body is not None:
            self.state.apply(body)
        digests = record.get("digests", {})
        for topic, offset in offsets.items():
            if offset > self.offsets.get(topic, -1) or (snapshot and topic not in self.offsets):
                self.offsets[topic] = offset
                if topic in digests:
                    self.digests[topic] = digests[topic]
                else:
                    self.digests.pop(topic, None)
        self.seq = seq

    def next_record(self, body: dict | None, topic: str | None = None, offset: int | None = None,
                    digest: str | None = None) -> dict:
        """The record that follows the last one applied (not applied yet)."""
        record: dict = {"v": RECORD_VERSION, "seq": self.seq + 1, "offsets": {} if topic is None else {topic: offset}}
        if digest is not None:
            record["digests"] = {topic: digest}
        if body is not None:
            record["body"] = body
        return record

    def rebase_record(self, topics) -> dict:
        """The record of the policy for an input log that started again: its offsets are due from 0."""
        return {"v": RECORD_VERSION, "seq": self.seq + 1, "offsets": {}, "rebase": sorted(topics)}

    def snapshot_record(self) -> dict:
        """The next record, rebuilding this whole partition (state and offsets) on its own: every
        record before it may then be deleted (compaction)."""
        record = {"v": RECORD_VERSION, "seq": self.seq + 1, "offsets": dict(self.offsets), "snapshot": True,
                  "body": self.state.snapshot()}
        if self.digests:
            record["digests"] = dict(self.digests)
        return record

    def applied(self, topic: str, offset: int) -> bool:
        """Was this input offset applied already (a redelivery after a crash)?"""
        return offset <= self.offsets.get(topic, -1)

    def next_offset(self, topic: str) -> int | None:
        """The input offset that must come next on ``topic`` (None before its first message)."""
        last = self.offsets.get(topic)
        return None if last is None else last + 1
