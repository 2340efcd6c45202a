"""A domain's partition state inside the runtime's changelog record.

The runtime owns the record's envelope; the domain owns only its body (stream/runtime/domain.py).
A record (schemas/state-record-2.json) is one changelog message:

    {"v": 2, "seq": 17, "offsets": {"orders": 41}, "body": {...}}

- ``seq`` numbers a partition's records from 1: replaying a record twice applies it once;
- ``offsets`` holds the input offsets this record applied (the last one per topic), so a
  redelivered input is recognised and the offset due next is known (stream/runtime/continuity.py);
- ``body`` is what the domain's ``State.apply`` takes (absent: only offsets moved);
- ``"snapshot": true`` marks a body that rebuilds the whole state: it replaces what came before.

Version 1 (the warehouse before the runtime) had no envelope: the record was the body with ``seq``
and ``src`` ([topic, offset]) or ``offsets`` beside the body's keys. It is still read, so a worker
upgraded over an old changelog recovers the same stock (tests/test_state_record.py replays one).
"""
from __future__ import annotations

from typing import Callable

from stream.runtime.domain import State

RECORD_VERSION = 2
_V1_ENVELOPE = ("seq", "src", "offsets")


class UnknownRecordVersion(ValueError):
    """A changelog record written by a newer version of the runtime."""


def record_key(partition: int, seq: int) -> bytes:
    """The table key of a record: sorted by key, a partition's records are in seq order."""
    return f"{partition}:{seq:012d}".encode()


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

    def apply_record(self, record: dict) -> None:
        """Apply one record (live, or replayed from the changelog)."""
        seq, offsets, body, snapshot = envelope_of(record)
        if seq <= self.seq:
            return  # replayed twice: already in
        if snapshot:
            self.state = self._new_state()
            self.offsets = {}
        if body is not None:
            self.state.apply(body)
        for topic, offset in offsets.items():
            if offset > self.offsets.get(topic, -1):
                self.offsets[topic] = offset
        self.seq = seq

    def next_record(self, body: dict | None, topic: str | None = None, offset: int | None = None) -> dict:
        """The record that follows the last one applied (not applied yet)."""
        record: dict = {"v": RECORD_VERSION, "seq": self.seq + 1, "offsets": {} if topic is None else {topic: offset}}
        if body is not None:
            record["body"] = body
        return record

    def snapshot_record(self) -> dict:
        """A record that rebuilds this whole partition (state and offsets) on its own."""
        return {"v": RECORD_VERSION, "seq": self.seq, "offsets": dict(self.offsets), "snapshot": True,
                "body": self.state.snapshot()}

    def applied(self, topic: str, offset: int) -> bool:
        """Was this input offset applied already (a redelivery after a crash)?"""
        return offset <= self.offsets.get(topic, -1)

    def next_offset(self, topic: str) -> int | None:
        """The input offset that must come next on ``topic`` (None before its first message)."""
        last = self.offsets.get(topic)
        return None if last is None else last + 1
