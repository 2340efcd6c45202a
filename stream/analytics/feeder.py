"""Feeds the ClickHouse sink from the worker's output topics, committing offsets only after a flush.

The sink sits downstream of Kafka rather than inside the page path: page processing never waits on
ClickHouse, an outage only makes this consumer wait (the sink's backpressure stops its polling
while Kafka keeps the data), and a crash anywhere loses nothing — what was not flushed was not
committed, so it is read again, and ClickHouse's ReplacingMergeTree drops the repeats.
"""
from __future__ import annotations

import asyncio
import logging
import time

import orjson

from stream.analytics import rows

log = logging.getLogger(__name__)

# a document a converter refuses: logged by position and skipped, so one bad output cannot stop the feeder
_CONVERSION_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


class SinkFeeder:
    """One consumer-group member reading the output topics into a Sink (stream/analytics/sink.py)."""

    def __init__(self, sink, bootstrap: str, group_id: str, commit_interval: float, max_fetch_bytes: int = 8 << 20):
        self.sink = sink
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.commit_interval = commit_interval
        self.max_fetch_bytes = max_fetch_bytes
        self.consumed = 0
        self._uncommitted: dict = {}

    async def run(self) -> None:
        """Consume until cancelled; on the way out, flush and commit what was consumed."""
        from aiokafka import AIOKafkaConsumer

        self.kind_of_topic = rows.kind_of_topic() if rows.load_converters() else {}
        consumer = AIOKafkaConsumer(
            *self.kind_of_topic, bootstrap_servers=self.bootstrap, group_id=self.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=self.max_fetch_bytes)
        await self.sink.start()
        await consumer.start()
        try:
            last_commit = time.monotonic()
            while True:
                batches = await consumer.getmany(timeout_ms=int(self.commit_interval * 500) or 100)
                for tp, messages in batches.items():
                    await self._write(tp, messages)
                if self._uncommitted and time.monotonic() - last_commit >= self.commit_interval:
                    await self.commit(consumer)
                    last_commit = time.monotonic()
        finally:
            try:
                await asyncio.shield(self.commit(consumer))
            except Exception as error:  # the next owner of the partitions reads them again
                log.warning("ClickHouse feeder: final commit failed (%s); rows will be re-read", error)
            await consumer.stop()
            await self.sink.stop()

    async def _write(self, tp, messages) -> None:
        docs, offsets = [], []
        for message in messages:
            try:
                docs.append(orjson.loads(message.value))
                offsets.append(message.offset)
            except orjson.JSONDecodeError:
                log.error("ClickHouse feeder: %s[%d]@%d is not JSON; skipped", tp.topic, tp.partition, message.offset)
        kind = self.kind_of_topic[tp.topic]
        if docs:
            try:  # waits while the sink is full
                await self.sink.write(kind, tp.partition, docs, offsets, topic=tp.topic)
            except _CONVERSION_ERRORS:  # find the document at fault; write the others
                for doc, offset in zip(docs, offsets):
                    try:
                        await self.sink.write(kind, tp.partition, [doc], [offset], topic=tp.topic)
                    except _CONVERSION_ERRORS as error:
                        log.error("ClickHouse feeder: %s[%d]@%d has no rows (%s: %s); skipped", tp.topic,
                                  tp.partition, offset, type(error).__name__, error)
        self._uncommitted[tp] = messages[-1].offset + 1
        self.consumed += len(messages)

    async def commit(self, consumer) -> None:
        """Flush on commit: offsets are committed only for rows already in ClickHouse."""
        if not self._uncommitted:
            return
        offsets, self._uncommitted = self._uncommitted, {}
        await self.sink.flush()
        try:
            await consumer.commit(offsets)
        except Exception as error:  # e.g. partitions moved in a rebalance: their rows are simply re-read
            log.warning("ClickHouse feeder: commit failed (%s); rows will be re-read", error)
