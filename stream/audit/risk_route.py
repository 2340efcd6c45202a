"""The risk agent's router: `declarations` (one declaration per message, keyed by warehouse or declaration)
re-keyed by `buyer_ref` into `risk.declarations`, as `page/1` pages of the declarations' own bytes.

Why: the runtime makes one changelog record (one produce request) and one acknowledgement per input message,
which costs a worker-sized pipeline ~1.5 ms per message; a page of hundreds of declarations pays it once.
And a buyer's parcels reach `declarations` in the partitions of their warehouses or declaration ids, so one
partition's splitting window never sees them together; here every declaration of one buyer goes to one
partition of `risk.declarations` (crc32 of the buyer_ref; no buyer: of the declaration_id), so splitting holds
however many partitions and agents there are.

At least once: input offsets are committed only after the pages holding them were acknowledged; after a
crash or a rebalance the uncommitted declarations are routed again, to the same partition (the key is
their content), where the scorer's state recognises them by id and digest (`duplicate`, nothing sent).
A message that is not a JSON object (or names a key twice) is forwarded on its own, untouched, to the
partition of its bytes' crc32: the agent answers it with its rejection. Stateless: it runs beside the
agent in each risk worker (consumer group ``<risk app id>-route``), so N workers route N shares.
"""
from __future__ import annotations

import asyncio
import logging
import zlib

import orjson

from stream.contracts.reasons import rejection
from stream.contracts.validate import MAX_PAGE_ITEMS, parse_json_line
from stream.runtime.topics import DECLARATIONS, REJECTIONS, RISK_DECLARATIONS

log = logging.getLogger(__name__)
PAGE_HEAD = b'{"schema":"page/1","items":['
PAGE_TAIL = b"]}"


def route_key(value: bytes | None, doc: object) -> bytes:
    """What decides a declaration's partition: its buyer_ref, else its declaration_id, else its bytes."""
    if isinstance(doc, dict):
        for field in ("buyer_ref", "declaration_id"):
            ref = doc.get(field)
            if isinstance(ref, str):
                return ref.encode()
    return value or b""


def partition_of(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions


def pages_of(values: list[bytes | None], partitions: int, page_bytes: int,
             max_items: int = MAX_PAGE_ITEMS) -> list[tuple[int, bytes | None]]:
    """(partition, message) to send for ``values`` in their order: per partition, pages of at most
    ``max_items`` declarations and ``page_bytes`` bytes; a value that cannot go in a page goes alone."""
    room = page_bytes - len(PAGE_HEAD) - len(PAGE_TAIL)
    open_pages: dict[int, tuple[list[bytes], int]] = {}
    out: list[tuple[int, bytes | None]] = []

    def close(partition: int) -> None:
        items, _ = open_pages.pop(partition)
        out.append((partition, PAGE_HEAD + b",".join(items) + PAGE_TAIL))

    for value in values:
        doc = parse_json_line(value) if value is not None else None
        partition = partition_of(route_key(value, doc), partitions)
        if not isinstance(doc, dict) or len(value) + 1 > room:
            if partition in open_pages:
                close(partition)  # the partition's order stays the input's
            out.append((partition, value))  # alone, as it came: the agent rejects it (or scores it, if large)
            continue
        items, size = open_pages.get(partition, ([], 0))
        if items and (size + len(value) + 1 > room or len(items) >= max_items):
            close(partition)
            items, size = [], 0
        items.append(value)
        open_pages[partition] = (items, size + len(value) + 1)
    for partition in sorted(open_pages):
        close(partition)
    return out


def refuse_oversized(messages, page_bytes: int) -> tuple[list[bytes | None], list[bytes]]:
    """(values to route, rejection/1 documents): a message over the page limit cannot be routed (the producer
    would refuse it again and again); it is answered with `too_large`, as the runtime answers one at its input.
    ``messages`` are (topic, partition, offset, value)."""
    values, refused = [], []
    for topic, partition, offset, value in messages:
        if value is not None and len(value) > page_bytes:
            doc = rejection(None, "too_large", f"message at {topic}[{partition}]@{offset} has {len(value)} bytes, more "
                                              f"than the {page_bytes} allowed")
            doc["source"] = f"{topic}/{partition}/{offset}/0"
            refused.append(orjson.dumps(doc))
        else:
            values.append(value)
    return values, refused


class RiskRouter:
    """One member of the route group: consume `declarations`, produce pages to `risk.declarations`."""

    def __init__(self, bootstrap: str, group_id: str, page_bytes: int, compression: str | None = None,
                 max_records: int = 5000):
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.page_bytes = page_bytes
        self.compression = compression
        self.max_records = max_records
        self.routed = 0

    async def run(self) -> None:
        """Route until cancelled."""
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        consumer = AIOKafkaConsumer(DECLARATIONS, bootstrap_servers=self.bootstrap, group_id=self.group_id,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    max_partition_fetch_bytes=max(self.page_bytes * 4, 4 << 20))
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=0,
                                    max_request_size=self.page_bytes + (1 << 20), max_batch_size=self.page_bytes + 1024,
                                    compression_type=self.compression)
        await producer.start()
        await consumer.start()
        try:
            partitions = len(await producer.partitions_for(RISK_DECLARATIONS))
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=self.max_records)
                if not batches:
                    continue
                values, refused = refuse_oversized(
                    [(m.topic, m.partition, m.offset, m.value) for tp in sorted(batches) for m in batches[tp]],
                    self.page_bytes)
                futures = [await producer.send(RISK_DECLARATIONS, message, partition=partition)
                           for partition, message in pages_of(values, partitions, self.page_bytes)]
                futures += [await producer.send(REJECTIONS, doc) for doc in refused]
                await asyncio.gather(*futures)  # a failure raises: the offsets stay uncommitted
                try:
                    await consumer.commit({tp: messages[-1].offset + 1 for tp, messages in batches.items()})
                except Exception as error:  # e.g. the partitions moved: routed again, recognised as duplicates
                    log.warning("risk route: commit failed (%s: %s); those declarations are routed again",
                                type(error).__name__, error)
                self.routed += len(values) + len(refused)
        finally:
            await consumer.stop()
            await producer.stop()


def run_forever(router: RiskRouter):
    """A coroutine that restarts the router after a failure (its uncommitted input is routed again)."""
    async def go():
        while True:
            try:
                await router.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("risk route failed; starting again in 1 s")
                await asyncio.sleep(1.0)
    return go()
