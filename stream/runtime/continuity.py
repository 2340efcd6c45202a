"""Input offsets are applied without holes: a message the consumer skipped is read again.

The partition's state knows the last offset it applied of each input topic (every page writes a
record), so the next message must carry the next offset. faust-streaming can hand the agent a later
one: around a rebalance its fetcher may deliver messages fetched before it seeks to the committed
offsets and drop the ones in between (faust-streaming issues 216 and 221 are of this family; seen
here after a worker was killed, with orders never declared). Faust would also commit past such a
hole, because its commit looks for gaps only among acknowledged offsets.

`Continuity.admit` decides for a message that arrives beyond the expected offset (before the first
message of an input partition is applied, the first offset its log holds is the one expected):
- it asks the broker what really follows the expected offset (`probe`). A real hole in the log
  (offsets taken by transaction markers, or records deleted by retention) is accepted at once;
- otherwise the message is not processed and not acknowledged, and the consumer is sent back to
  the expected offset (`seek`); later messages already buffered are passed over the same way;
- if the expected message has still not come ``retry_after`` seconds later, the seek is repeated,
  up to ``max_seeks`` times; after that the hole is accepted and logged as an error (a consumer
  that never delivers an offset must not stop its partition for good).

A dropped message with no later one behind it leaves no hole for `admit` to see. `watch`, on the
worker's timer, compares the consumer's position with the offset due: a partition read past it
with nothing delivered for ``stall_after`` seconds is sought back the same way.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

Seek = Callable[[str, int, int], Awaitable[Any]]
Probe = Callable[[str, int, int], Awaitable["int | None"]]
Position = Callable[[str, int], Awaitable["int | None"]]


@dataclass(slots=True)
class _Hole:
    expected: int  # the offset the state needs next
    target: int  # where the log really goes on (past records deleted by retention, if any)
    seeks: int = 0
    sought_at: float = float("-inf")
    stalled: bool = False  # found by `watch` (no later message will come to give it up)


class Continuity:
    """Holes in the input offsets of the partitions one worker holds, and what to do about them."""

    def __init__(self, seek: Seek, probe: Probe | None = None, position: Position | None = None, *,
                 retry_after: float = 1.0, max_seeks: int = 5, stall_after: float = 15.0,
                 position_timeout: float = 5.0, metrics: Any = None, clock: Callable[[], float] = time.monotonic):
        self.seek = seek
        self.probe = probe
        self.position = position
        self.retry_after = retry_after
        self.max_seeks = max(1, max_seeks)
        self.stall_after = stall_after
        self.position_timeout = position_timeout
        self.metrics = metrics
        self.clock = clock
        self.holes: dict[tuple[str, int], _Hole] = {}
        self.last_seen: dict[tuple[str, int], float] = {}
        self.log_starts: dict[tuple[str, int], int | None] = {}  # first offset held, of partitions not applied yet

    def seen(self, topic: str, partition: int) -> None:
        """A message of this input partition reached the worker (processed, skipped or held back)."""
        self.last_seen[(topic, partition)] = self.clock()

    async def admit(self, topic: str, partition: int, expected: int | None, offset: int) -> bool:
        """May the message at ``offset`` be processed now (``expected`` is the offset due next; None: nothing
        of this input partition was applied yet, so the start of its log is due)?"""
        key = (topic, partition)
        first = None  # the first offset the broker holds at or after ``expected``, once asked
        if expected is None and offset > 0:
            # A consumer can drop the first messages of a partition it was just given, as it drops any
            # others: before anything is applied, the start of the log (asked once) is what is due.
            if key not in self.log_starts:
                self.log_starts[key] = await self._first_offset(topic, partition, 0)
            expected = first = self.log_starts[key]
        if expected is None or offset <= expected:  # (None: the broker did not answer; taken as the start)
            if self.holes:
                self.holes.pop(key, None)
            return True
        hole = self.holes.get(key)
        if hole is not None and hole.expected == expected and offset <= hole.target:
            del self.holes[key]  # the log goes on here: what lies before it is gone
            return True
        if hole is None or hole.expected != expected:
            if first is None:
                first = await self._first_offset(topic, partition, expected)
            if first is not None and first >= offset:
                self.holes.pop(key, None)
                log.info("%s[%d]: offsets %d..%d are not in the log; going on at %d",
                         topic, partition, expected, offset - 1, offset)
                self._count(topic, "accepted")
                return True
            hole = self.holes[key] = _Hole(expected, max(first or expected, expected))
        now = self.clock()
        if now - hole.sought_at < self.retry_after:
            return False  # fetched before the seek: the expected message is on its way
        if hole.seeks >= self.max_seeks:
            del self.holes[key]
            log.error("%s[%d]: offsets %d..%d were never delivered after %d seeks; going on at %d",
                      topic, partition, expected, offset - 1, hole.seeks, offset)
            self._count(topic, "given_up")
            return True
        log.warning("%s[%d]: message at offset %d delivered while %d is due; reading again from %d (seek %d)",
                    topic, partition, offset, expected, hole.target, hole.seeks + 1)
        await self._read_again(topic, partition, hole, now, "sought")
        return False

    async def watch(self, due: list[tuple[str, int, int | None]]) -> None:
        """Find input partitions the consumer has read past what was applied while nothing reaches
        the worker: ``due`` holds (topic, partition, the offset due next or None before the first).

        A dropped message with no later one behind it (the last manifest of a wave) shows no hole
        to `admit`; the consumer's position, ahead of the offset due, shows it here."""
        if self.position is None:
            return
        now = self.clock()
        for topic, partition, expected in due:
            key = (topic, partition)
            if key in self.holes:
                continue
            if now - self.last_seen.setdefault(key, now) < self.stall_after:
                continue
            try:
                position = await self._position(topic, partition)
            except Exception as exc:
                log.warning("%s[%d]: no consumer position (%s: %s)", topic, partition, type(exc).__name__, exc)
                continue
            start = 0 if expected is None else expected
            if position is None or position <= start:
                continue  # caught up
            first = await self._first_offset(topic, partition, start)
            hole = self.holes[key] = _Hole(start, max(first or start, start), stalled=True)
            log.warning("%s[%d]: consumer at offset %d but nothing since %.0f s while %d is due; reading again from %d",
                        topic, partition, position, now - self.last_seen[key], start, hole.target)
            await self._read_again(topic, partition, hole, now, "stalled")

    async def retry_due(self) -> None:
        """Repeat the seeks whose expected message has not come (the consumer may have dropped it
        again, and with no later message arriving nothing else would notice); a stalled partition
        whose seeks are spent is let go, and `watch` starts over after its own wait."""
        now = self.clock()
        for key, hole in list(self.holes.items()):
            topic, partition = key
            if now - hole.sought_at < self.retry_after:
                continue
            if hole.seeks >= self.max_seeks:
                if not hole.stalled:
                    continue  # the next later message gives it up (admit)
                del self.holes[key]
                self.last_seen[key] = now
                log.error("%s[%d]: offset %d still not delivered after %d seeks", topic, partition, hole.target,
                          hole.seeks)
                self._count(topic, "given_up")
            else:
                log.warning("%s[%d]: offset %d still not delivered; reading again (seek %d)",
                            topic, partition, hole.target, hole.seeks + 1)
                await self._read_again(topic, partition, hole, now, "sought")

    async def _position(self, topic: str, partition: int) -> int | None:
        """The consumer's position, waited for ``position_timeout`` seconds at most: aiokafka waits for a
        position it does not know, and `watch` runs under the pipeline's lock, so one partition's wait
        would stop every partition of the worker."""
        task = asyncio.ensure_future(self.position(topic, partition))
        done, _ = await asyncio.wait([task], timeout=self.position_timeout)
        if not done:
            task.cancel()
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise TimeoutError(f"no answer in {self.position_timeout:g} s")
        return task.result()

    async def _read_again(self, topic: str, partition: int, hole: _Hole, now: float, outcome: str) -> None:
        """Send the consumer back to the hole's target (one more seek, counted as ``outcome``)."""
        hole.seeks += 1
        hole.sought_at = now
        self._count(topic, outcome)
        await self.seek(topic, partition, hole.target)

    async def stop(self) -> None:
        stop = getattr(self.probe, "stop", None)
        if stop is not None:
            await stop()

    def forget(self, partitions) -> None:
        """Partitions this worker no longer holds (their next owner starts from the committed offset)."""
        gone = set(partitions)
        for key in [k for k in self.holes if k[1] in gone]:
            del self.holes[key]
        for key in [k for k in self.last_seen if k[1] in gone]:
            del self.last_seen[key]
        for key in [k for k in self.log_starts if k[1] in gone]:
            del self.log_starts[key]

    async def _first_offset(self, topic: str, partition: int, offset: int) -> int | None:
        """The first offset the broker holds at or after ``offset`` (None: no answer)."""
        if self.probe is None:
            return None
        try:
            return await self.probe(topic, partition, offset)
        except Exception as exc:  # no answer: treat it as skipped, the seeks decide
            log.warning("%s[%d]: could not ask the broker about offset %d (%s: %s)",
                        topic, partition, offset, type(exc).__name__, exc)
            return None

    def _count(self, topic: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.record_input_gap(topic, outcome)


class BrokerProbe:
    """`probe` for `Continuity`: reads one message at an offset with a consumer of its own (no group)."""

    def __init__(self, bootstrap: str, timeout: float = 3.0):
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.consumer = None
        self.last_value: bytes | None = None  # of the message the last call found

    async def __call__(self, topic: str, partition: int, offset: int) -> int | None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self.consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                        auto_offset_reset="earliest", max_partition_fetch_bytes=1 << 20)
            await consumer.start()
            self.consumer = consumer
        tp = TopicPartition(topic, partition)
        self.consumer.assign([tp])
        self.consumer.seek(tp, offset)
        batch = await self.consumer.getmany(tp, timeout_ms=int(self.timeout * 1000), max_records=1)
        messages = batch.get(tp)
        self.last_value = messages[0].value if messages else None
        return messages[0].offset if messages else None

    async def digest_at(self, topic: str, partition: int, offset: int) -> str | None:
        """The digest (state.message_digest) of the message at ``offset``; None: the log ends before
        it; "" when it is gone but later ones are there (deleted by retention: the same log)."""
        from stream.runtime.state import message_digest

        found = await self(topic, partition, offset)
        if found is None:
            return None
        return message_digest(self.last_value) if found == offset else ""

    async def stop(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await consumer.stop()
