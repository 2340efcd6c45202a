"""Quarantine of input record batches that cannot be decoded, so every other partition flows.

Every Kafka codec is read (aiokafka decodes gzip itself, and snappy, lz4 and zstd through cramjam,
its `snappy,lz4,zstd` extras in setup.py). A batch that still cannot be decoded (an unknown codec
id, a corrupt compressed payload, a failed CRC) made aiokafka raise out of `getmany` on every poll:
the consumer of the whole worker stopped, and no order of any partition was declared after it (a
CRC failure was even fetched again forever). aiokafka has no hook for this, so `install()` replaces
the class its fetcher builds per fetched partition (`aiokafka.consumer.fetcher.PartitionRecords`)
by one that decodes batch by batch and, when a batch fails, skips that batch alone:
- the records of the batch not yet delivered are skipped (offsets ``first..last``), the fetch
  position moves past it, and the rest of the partition and every other partition go on;
- a metric counts it (`customs_quarantined_batches_total{topic, codec}`) and an ERROR log line
  names topic, partition, offsets, codec and the error (never a record's content);
- `skipped(topic, partition)` lists the quarantined ranges, and `resume_offset()` tells a
  continuity guard that an offset inside one was skipped on purpose, so the guard does not send
  the consumer back to read it again (which would quarantine it again, forever).

Wiring (the app factory, stream/runtime/app.py, before any consumer starts)::

    from stream.runtime import quarantine
    quarantine.install(metrics)          # metrics: a stream.metrics.Metrics (or None: the default one)

and in the continuity guard, where an input offset is due but a later one arrives::

    due = quarantine.resume_offset(topic, partition, due)   # past a quarantined batch: not a gap

`install` is idempotent and process-wide (Faust's consumer and plain aiokafka consumers alike).
The quarantined batch stays in the topic: an operator can read it again with a tool that decodes
it, from the offsets the log line gives.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


@dataclass(frozen=True)
class Skipped:
    topic: str
    partition: int
    first: int  # first offset not delivered
    last: int  # last offset of the batch
    codec: str
    error: str


_lock = threading.Lock()
_skipped: dict[tuple[str, int], list[Skipped]] = {}
_metrics = None
_installed = None
_MAX_KEPT = 1000  # ranges kept per partition (oldest dropped): bounded memory on a hostile feed


def codec_of(batch) -> str:
    try:
        code = batch.compression_type
    except Exception:  # a header too broken to read
        return "unknown"
    return CODECS.get(code, f"unknown-{code}")


def record(topic: str, partition: int, first: int, last: int, codec: str, error: BaseException) -> Skipped:
    """Count, log and remember one quarantined batch."""
    entry = Skipped(topic, partition, first, last, codec, f"{type(error).__name__}: {error}"[:300])
    with _lock:
        ranges = _skipped.setdefault((topic, partition), [])
        ranges.append(entry)
        del ranges[:-_MAX_KEPT]
    log.error("quarantined an undecodable record batch: %s[%d] offsets %d-%d, codec %s (%s); the partition goes on "
              "after it", topic, partition, first, last, codec, entry.error)
    metrics = _metrics
    if metrics is None:
        from stream import metrics as metrics_module

        metrics = metrics_module.default()
    metrics.record_quarantined(topic, codec)
    return entry


def skipped(topic: str, partition: int) -> list[Skipped]:
    with _lock:
        return list(_skipped.get((topic, partition), ()))


def resume_offset(topic: str, partition: int, offset: int) -> int:
    """`offset`, or the offset after the quarantined batch that holds it."""
    with _lock:
        ranges = _skipped.get((topic, partition))
        if not ranges:
            return offset
        moved = True
        while moved:  # batches quarantined back to back
            moved = False
            for entry in ranges:
                if entry.first <= offset <= entry.last:
                    offset = entry.last + 1
                    moved = True
        return offset


def reset() -> None:
    """Forget the quarantined ranges (tests)."""
    with _lock:
        _skipped.clear()


def _quarantining(base):
    class QuarantiningPartitionRecords(base):
        """aiokafka's PartitionRecords, one batch at a time: a batch that fails to decode is skipped."""

        def _unpack_records(self):
            tp = self._tp
            records = self._records
            while records.has_next():
                try:
                    batch = records.next_batch()
                except Exception as error:  # the batch header itself is unreadable: nothing after it can be framed
                    record(tp.topic, tp.partition, self.next_fetch_offset, self.next_fetch_offset, "unknown", error)
                    self.next_fetch_offset += 1
                    return
                if batch is None:
                    return
                one = _OneBatch(batch)
                self._records = one
                try:
                    for consumer_record in base._unpack_records(self):
                        yield consumer_record
                except Exception as error:
                    first = self.next_fetch_offset
                    last = max(first, batch.next_offset - 1)
                    record(tp.topic, tp.partition, first, last, codec_of(batch), error)
                    self.next_fetch_offset = last + 1
                finally:
                    self._records = records
    QuarantiningPartitionRecords.__name__ = "QuarantiningPartitionRecords"
    return QuarantiningPartitionRecords


class _OneBatch:
    """A MemoryRecords look-alike that holds one batch (so aiokafka's own loop handles one at a time)."""

    __slots__ = ("_batch",)

    def __init__(self, batch):
        self._batch = batch

    def has_next(self) -> bool:
        return self._batch is not None

    def next_batch(self):
        batch, self._batch = self._batch, None
        return batch


def install(metrics=None) -> None:
    """Make every aiokafka consumer of this process quarantine undecodable batches (idempotent)."""
    global _installed, _metrics
    from aiokafka.consumer import fetcher

    _metrics = metrics
    with _lock:
        if _installed is not None and fetcher.PartitionRecords is _installed:
            return
        original = fetcher.PartitionRecords
        _installed = _quarantining(original)
        fetcher.PartitionRecords = _installed
