"""The outputs' producer: one aiokafka producer, messages sent in batches per topic and partition."""
from __future__ import annotations

import asyncio

# topic -> [(key, value)], or [(key, value, partition)]: a message may name its partition (a claim sent to
# the partition of the receipt it names); without one it goes to the input's partition
Messages = dict[str, list[tuple]]


class Outputs:
    """Produces the effects' outputs in batches on one aiokafka producer."""

    def __init__(self, bootstrap: str, page_bytes: int, compression: str | None = None):
        self.bootstrap = bootstrap
        self.compression = compression  # aiokafka's compression_type (CUSTOMS_OUTPUT_COMPRESSION)
        self.batch_bytes = max(page_bytes, 1 << 20)
        self.max_message_bytes = self.batch_bytes - 4096  # what one message may take of a batch
        self.producer = None
        self._starting: asyncio.Lock | None = None

    async def start(self) -> None:
        """Start the producer once. The app's start task and the first page may both get here: without
        the lock each made a producer, the second replaced the first, and the first (with the page's
        messages in it) was collected with its sender task, so the page's deliveries never resolved
        and the worker stalled (seen after a restart, when pages are waiting at once)."""
        from aiokafka import AIOKafkaProducer

        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.producer is not None:
                return
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks=1, linger_ms=5,
                max_batch_size=self.batch_bytes, max_request_size=self.batch_bytes + (1 << 16),
                compression_type=self.compression,
            )
            await producer.start()
            self.producer = producer

    async def stop(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()

    def oversized(self, per_topic: Messages) -> str | None:
        """What is wrong when a message cannot fit a batch (the pipeline rejects its input instead)."""
        limit = self.max_message_bytes
        for topic, messages in per_topic.items():
            for message in messages:
                value = message[1]
                if len(value) > limit:
                    return f"a {topic} message of {len(value)} bytes exceeds the batch size ({limit} bytes)"
        return None

    async def send(self, partition: int, per_topic: Messages) -> list[asyncio.Future]:
        """Hand the messages to the producer; the futures resolve when the broker acknowledged them.
        Messages were checked by `oversized` before: each fits an empty batch."""
        if self.producer is None:
            await self.start()
        producer = self.producer
        futures = []
        for topic, messages in per_topic.items():
            if not messages:
                continue
            if len(messages[0]) == 3:  # each names its partition: one batch per partition
                routed: dict[int, list] = {}
                for key, value, to in messages:
                    routed.setdefault(to, []).append((key, value))
                for to, some in routed.items():
                    futures += await self.send(to, {topic: some})
                continue
            batch = producer.create_batch()
            append = batch.append
            for key, value in messages:
                if append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    append = batch.append
                    if append(key=key, value=value, timestamp=None) is None:  # `oversized` let it through
                        raise RuntimeError(f"a {topic} message of {len(value)} bytes does not fit an empty batch")
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures
