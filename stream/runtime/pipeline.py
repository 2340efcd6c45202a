"""The at-least-once page pipeline: a domain's input messages in, its outputs and records out.

One Faust agent (concurrency 1) per domain consumes the domain's co-partitioned inputs, so the
messages of a partition are handled strictly in order. For each message:

1. the domain decides it against the partition's state (``Domain.handle``: outputs and a body);
2. the runtime wraps the body in a record (stream/runtime/state.py), applies it to the in-memory
   state at once (the next message reads it) and hands the outputs to the producer;
3. a committer task, in order, awaits the delivery of each message's outputs, then writes its record
   to the domain's table as ONE changelog message, then acknowledges the input message (only
   acknowledged offsets are committed, and Faust flushes the changelog before committing).

Steps 1-2 of the next messages overlap step 3 of earlier ones, with at most ``max_in_flight``
messages (and ticks) between their handling and their record. What is durable stays what the
serial order gave: a record is written only after its outputs are acknowledged, records are written
in sequence order, and an input offset is committed only after its record. A crash loses the
in-memory state of unrecorded messages; their offsets are not committed, so they are handled again
from the recorded state and repeat the same outputs (deterministic ids: consumers deduplicate).
Partitions are drained (every record written) before they are revoked or reassigned.

Every input message has a record, so the state knows the last offset it applied of each input: a
redelivered one is acknowledged without being handled, and one that arrives past the next offset
(faust-streaming can drop messages around a rebalance) is held back while the consumer reads again
from the missing offset (stream/runtime/continuity.py).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import orjson

from stream._gc import gc_paused
from stream.contracts.reasons import rejection
from stream.runtime import quarantine
from stream.runtime.continuity import Continuity
from stream.runtime.domain import Domain, Effects
from stream.runtime.producer import Messages, Outputs
from stream.runtime.state import PartitionState, decode_records, encode_record, message_digest, seq_of_key
from stream.runtime.topics import REJECTIONS

log = logging.getLogger(__name__)

# seconds to wait for a message's outputs to be acknowledged before sending them again
DELIVERY_TIMEOUT = 60.0
# seconds after which an input log found to be the one applied is checked again (one probe each)
VERIFY_AGAIN_SECONDS = 15.0


@dataclass(slots=True)
class Delivery:
    """A handled input message (or tick) on its way out: outputs sent, record not yet written."""
    partition: int
    per_topic: Messages
    records: list[tuple[bytes, bytes | None]] = field(default_factory=list)  # changelog: (key, value or delete)
    ack: Callable[[], Awaitable[Any]] | None = None
    counts: Any = None  # for Domain.on_delivered
    futures: list | None = field(default_factory=list)  # None: to be sent (again)


class Pipeline:
    """One domain's partition states and the handling, delivery and recording of its messages."""

    def __init__(self, domain: Domain, *, outputs: Outputs, write_record: Callable[[int, bytes, bytes], None],
                 records: Callable[[], Any], max_in_flight: int, continuity: Continuity | None = None,
                 clock: Callable[[], float] = time.time, max_input_bytes: int | None = None,
                 max_record_bytes: int | None = None, log_probe: Any = None, metrics: Any = None,
                 snapshot_every: int = 0):
        self.domain = domain
        self.outputs = outputs
        self.write_record = write_record
        self.records = records
        self.continuity = continuity
        self.clock = clock
        self.max_input_bytes = max_input_bytes  # larger input messages are refused unread (too_large)
        self.max_record_bytes = max_record_bytes  # larger records are written in parts (state.py)
        self.snapshot_every = snapshot_every  # records after which a partition is snapshotted (0: never)
        self.log_probe = log_probe  # digest_at(topic, partition, offset): is this still the log we applied?
        self.metrics = metrics
        # input partition -> when its log was last found the one applied (checked again after a while:
        # a broker that starts again may leave the consumer where it was, with no rebalance to tell)
        self.verified: dict[tuple[str, int], float] = {}
        self.anchors: dict[tuple[str, int], tuple[int, str]] = {}  # (offset, digest) found the same last time
        self.rejections_topic = getattr(domain, "rejections", REJECTIONS)
        self.states: dict[int, PartitionState] = {}
        self.lock = asyncio.Lock()
        self.max_in_flight = max(1, max_in_flight)
        self.deliveries: asyncio.Queue[Delivery] | None = None
        self.committer: asyncio.Task | None = None
        self.outstanding = 0  # deliveries queued and not yet done (recorded and acknowledged)

    # -- state per partition -----------------------------------------------------------------

    def state(self, partition: int) -> PartitionState:
        found = self.states.get(partition)
        if found is None:
            found = self.states[partition] = self.rebuild(partition)
        return found

    def rebuild(self, partition: int) -> PartitionState:
        """Fold the partition's records (recovered by Faust from the changelog) into its state."""
        prefix = f"{partition}:".encode()
        state = PartitionState(lambda: self.domain.new_state(partition))
        records = self.records()
        for record in decode_records((k, records[k]) for k in list(records.keys()) if k.startswith(prefix)):
            state.apply_record(record)
        if state.seq:
            log.info("%s partition %d: state rebuilt from %d records", self.domain.name, partition, state.seq)
        return state

    def forget(self, partitions) -> None:
        partitions = list(partitions)
        for partition in partitions:
            self.states.pop(partition, None)
        # anchors stay: they name what the log held when this worker last read it, which a log that
        # started again while the partitions moved (the rebalance it causes) no longer holds
        self.verified = {tp: at for tp, at in self.verified.items() if tp[1] not in partitions}
        if self.continuity is not None:
            self.continuity.forget(partitions)

    # -- handling ------------------------------------------------------------------------------

    async def page(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                   ack: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Handle one input message; ``ack`` is awaited once its record is written (or it was applied)."""
        async with self.lock:
            state = self.state(partition)
            if self.continuity is not None:
                self.continuity.seen(topic, partition)
            if await self._log_started_again(state, topic, partition):
                # the policy: a log that started again is read from its start, as new input (documents
                # seen before are still recognised by the domain, by id and digest); a message past
                # offset 0 is then a hole, and the continuity guard reads the log again from 0
                await self._rebase(state, partition, topic)
            if state.applied(topic, offset):
                # redelivered after its record was made: acknowledged behind the records in flight
                await self._launch(Delivery(partition, {}, ack=ack))
                return
            if self.continuity is not None and not await self.continuity.admit(
                    topic, partition, self._due(state, topic, partition), offset):
                return  # not handled, not acknowledged: it is read again after the earlier ones
            with gc_paused():  # the message's objects are gone (all but its outputs) when GC resumes
                delivery = self._handle(state, topic, partition, offset, key, value)
            if self.log_probe is not None and (topic, partition) not in self.anchors and topic in state.digests:
                # the first message applied from this log since the last check: later checks look here
                self.anchors[(topic, partition)] = (state.offsets[topic], state.digests[topic])
            delivery.ack = ack
            await self._launch(delivery)

    async def _snapshot(self, state: PartitionState, partition: int) -> None:
        """Write the partition's whole state as one record, then delete every record before it from
        the table (tombstones on its compacted changelog): memory and recovery stay bounded."""
        record = state.snapshot_record()
        prefix = f"{partition}:".encode()
        older = [key for key in list(self.records().keys()) if key.startswith(prefix) and seq_of_key(key) < record["seq"]]
        messages = encode_record(partition, record, self.max_record_bytes) + [(key, None) for key in sorted(older)]
        await self._launch(Delivery(partition, {}, records=messages))
        state.apply_record(record)
        log.info("%s partition %d: snapshot at record %d, %d older messages deleted", self.domain.name, partition,
                 record["seq"], len(older))

    async def _rebase(self, state: PartitionState, partition: int, topic: str) -> None:
        """Record that ``topic``'s log started again: its offsets are due from 0."""
        rebase = state.rebase_record([topic])
        await self._launch(Delivery(partition, {}, records=encode_record(partition, rebase)))
        state.apply_record(rebase)

    def reassigned(self) -> None:
        """After a rebalance: check each input log again before passing over what looks applied."""
        self.verified.clear()

    async def _log_started_again(self, state: PartitionState, topic: str, partition: int) -> bool:
        """Does the broker hold another message (or none) at an offset we applied? Then the log started
        again (a memory-only broker restarted, a new cluster, a recreated topic) and what looks applied
        is new input. Checked once per input partition after each assignment and every
        VERIFY_AGAIN_SECONDS, at the *anchor*: the last offset found the same at the previous check.
        Messages the consumer read from a new log in between (it may go on at its old position,
        before any rebalance) are behind the anchor, so the next check finds them and the log is read
        again from 0 (the domain recognises what it saw before by id and digest)."""
        checked = self.verified.get((topic, partition))
        if self.log_probe is None or (checked is not None and time.monotonic() - checked < VERIFY_AGAIN_SECONDS):
            return False
        tail = (state.offsets.get(topic, -1), state.digests.get(topic))
        offset, expected = self.anchors.get((topic, partition), tail)
        if expected is None or offset < 0:
            self.verified[(topic, partition)] = time.monotonic()  # nothing applied, or no digest kept: cannot tell
            self.anchors.pop((topic, partition), None)
            return False
        try:
            found = await self.log_probe.digest_at(topic, partition, offset)
        except Exception as exc:  # no answer: ask again with the next message (the anchor stays)
            log.warning("%s[%d]: could not check offset %d against the broker (%s: %s)", topic, partition, offset,
                        type(exc).__name__, exc)
            return False
        self.verified[(topic, partition)] = time.monotonic()
        if found == expected or found == "":  # "": deleted by retention, later offsets are there
            self.anchors[(topic, partition)] = tail
            return False
        log.error("%s[%d]: the broker holds %s at offset %d, which %s applied: the log started again; reading it "
                  "from offset 0 as new input", topic, partition, "another message" if found else "nothing", offset,
                  self.domain.name)
        if self.metrics is not None:
            self.metrics.record_input_gap(topic, "log_restarted")
        self.anchors.pop((topic, partition), None)
        return True

    def _handle(self, state: PartitionState, topic: str, partition: int, offset: int, key: bytes | None,
                value: bytes | None) -> Delivery:
        limit = self.max_input_bytes
        if limit is not None and value is not None and len(value) > limit:
            detail = f"message at {topic}[{partition}]@{offset} has {len(value)} bytes, more than the {limit} allowed"
            return self._prepare(state, partition, self._rejected("too_large", detail), topic, offset,
                                 message_digest(value))
        try:
            effects = self.domain.handle(state.state, topic, key, value, self.clock())
            problem = self.outputs.oversized(effects.outputs)
            if problem is not None:
                raise ValueError(problem)
            return self._prepare(state, partition, effects, topic, offset, message_digest(value))
        except Exception as exc:  # a defect must not stop the partition: reject the message
            log.exception("%s: %s[%d]@%d failed", self.domain.name, topic, partition, offset)
            detail = (f"message at {topic}[{partition}]@{offset} could not be processed: "
                      f"{type(exc).__name__}: {exc}")[:500]
            return self._prepare(state, partition, self._rejected("internal_error", detail), topic, offset,
                                 message_digest(value))

    def _rejected(self, reason: str, detail: str) -> Effects:
        """A whole input message refused by the runtime: one rejection, the state unchanged."""
        return Effects({self.rejections_topic: [(None, orjson.dumps(rejection(None, reason, detail)))]})

    async def tick(self) -> None:
        """The domain's timer work on every partition this worker holds, then its gauges."""
        async with self.lock:
            now = self.clock()
            for partition, state in list(self.states.items()):
                try:
                    with gc_paused():
                        effects = self.domain.tick(state.state, now)
                        if effects is None or (effects.body is None and not effects.outputs):
                            continue
                        problem = self.outputs.oversized(effects.outputs)
                        if problem is not None:
                            raise ValueError(problem)
                        delivery = self._prepare(state, partition, effects)
                except Exception:  # a defect in one partition's timer must not stop the worker
                    log.exception("%s partition %d: tick failed", self.domain.name, partition)
                    continue
                await self._launch(delivery)
            if self.snapshot_every > 0:
                for partition, state in list(self.states.items()):
                    if state.seq - state.snapshot_seq >= self.snapshot_every:
                        await self._snapshot(state, partition)
            observe = getattr(self.domain, "observe", None)
            if observe is not None:
                observe({partition: state.state for partition, state in self.states.items()})

    async def watch(self, held) -> None:
        """Check that no input partition this worker holds has been read past what was applied
        (continuity.py). Called between rebalances only: the tables are recovered, so a held
        partition with no state yet may build one."""
        if self.continuity is None:
            return
        async with self.lock:
            await self.continuity.retry_due()
            due = []
            for partition in sorted(held):
                state = self.state(partition)
                for topic in self.domain.inputs:
                    if await self._log_started_again(state, topic, partition):
                        await self._rebase(state, partition, topic)
                        await self.continuity.seek(topic, partition, 0)
                due.extend((topic, partition, self._due(state, topic, partition)) for topic in self.domain.inputs)
            await self.continuity.watch(due)

    @staticmethod
    def _due(state: PartitionState, topic: str, partition: int) -> int | None:
        """The input offset due next, past any batch quarantined as undecodable (not a gap to read again)."""
        due = state.next_offset(topic)
        return due if due is None else quarantine.resume_offset(topic, partition, due)

    def _prepare(self, state: PartitionState, partition: int, effects: Effects, topic: str | None = None,
                 offset: int | None = None, digest: str | None = None) -> Delivery:
        """Wrap the body in its record and apply it in memory (durable once the committer wrote it)."""
        outputs = {t: m for t, m in effects.outputs.items() if m}
        if self.rejections_topic in outputs:
            # each rejection names what it answers, so a repeat after a crash is one row in ClickHouse
            # and identical rejections of distinct inputs stay distinct (rejection/1 `source`)
            origin = (f"{topic}/{partition}/{offset}" if topic is not None
                      else f"{self.domain.name}.tick/{partition}/{state.seq + 1}")
            outputs[self.rejections_topic] = [
                (key, _with_source(value, f"{origin}/{index}"))
                for index, (key, value) in enumerate(outputs[self.rejections_topic])]
        delivery = Delivery(partition, outputs, counts=effects.counts)
        if topic is not None or effects.body is not None:
            record = state.next_record(effects.body, topic, offset, digest)
            delivery.records = encode_record(partition, record, self.max_record_bytes)
            state.apply_record(record)  # last: the next message reads it
        return delivery

    # -- delivery, records, acknowledgements -------------------------------------------------

    async def _launch(self, delivery: Delivery) -> None:
        """Send the outputs and queue the delivery for the committer (waits while too many are in flight)."""
        if self.committer is None or self.committer.done():
            if self.committer is not None and not self.committer.cancelled() and self.committer.exception():
                raise RuntimeError("the committer failed") from self.committer.exception()
            if self.deliveries is None:
                self.deliveries = asyncio.Queue(self.max_in_flight)
            self.committer = asyncio.ensure_future(self._commit_loop())
        if delivery.per_topic:
            try:
                delivery.futures = await self.outputs.send(delivery.partition, delivery.per_topic)
            except Exception as exc:  # the committer sends them again
                log.warning("partition %d: outputs not sent (%s: %s)", delivery.partition, type(exc).__name__, exc)
                delivery.futures = None
        self.outstanding += 1
        await self.deliveries.put(delivery)

    async def _commit_loop(self) -> None:
        deliveries = self.deliveries
        while True:
            delivery = await deliveries.get()
            try:
                await self._record_when_delivered(delivery)
            finally:
                self.outstanding -= 1
                deliveries.task_done()

    async def _record_when_delivered(self, delivery: Delivery) -> None:
        """Await delivery (sending again until the broker takes it), then write the record, then ack."""
        attempt = 0
        while True:
            try:
                if delivery.futures is None:
                    delivery.futures = await self.outputs.send(delivery.partition, delivery.per_topic)
                if delivery.futures:
                    # aiokafka fails a batch after its request timeout; this bounds a sender that died
                    # (asyncio.wait, not wait_for: wait_for in 3.11 can swallow a cancellation)
                    done, late = await asyncio.wait(delivery.futures, timeout=DELIVERY_TIMEOUT)
                    if late:
                        for future in late:  # their eventual failure is not an unretrieved error
                            future.add_done_callback(lambda f: f.cancelled() or f.exception())
                        raise TimeoutError(f"{len(late)} batches unacknowledged after {DELIVERY_TIMEOUT:.0f} s")
                    for future in done:
                        future.result()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # outputs repeat with the same ids: consumers deduplicate
                attempt += 1
                log.warning("partition %d: outputs not delivered (%s: %s), sending them again (attempt %d)",
                            delivery.partition, type(exc).__name__, exc, attempt)
                await asyncio.sleep(min(0.05 * 2 ** attempt, 5.0))
                delivery.futures = None
        for key, value in delivery.records:  # a record in parts: the parts, then its head
            self.write_record(delivery.partition, key, value)
        if delivery.ack is not None:
            await delivery.ack()
        if delivery.counts is not None:
            try:
                self.domain.on_delivered(delivery.counts)
            except Exception:  # metrics must not stop the committer
                log.exception("%s: counting delivered effects failed", self.domain.name)

    @property
    def busy(self) -> bool:
        """Are handled messages still waiting for their delivery, record or acknowledgement?"""
        return self.outstanding > 0

    async def drain(self) -> None:
        """Wait until every handled message has its outputs delivered, its record written and is acked."""
        if self.deliveries is not None and self.committer is not None and not self.committer.done():
            await self.deliveries.join()

    async def stop(self) -> None:
        committer, self.committer = self.committer, None
        if committer is not None and not committer.done():
            committer.cancel()
            await asyncio.wait([committer], timeout=5.0)
        self.deliveries = None
        self.outstanding = 0


def _with_source(value: bytes, source: str) -> bytes:
    """A serialised rejection/1 with its `source` (one that names its own is left as it is)."""
    doc = orjson.loads(value)
    if not isinstance(doc, dict) or doc.get("schema") != "rejection/1" or "source" in doc:
        return value
    doc["source"] = source
    return orjson.dumps(doc)
