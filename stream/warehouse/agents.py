"""The warehouse agent: goods.inbound and orders in; declarations, rejections, stock.movements out.

One Faust agent (concurrency 1) consumes both co-partitioned inputs, so the pages of a partition are
applied strictly in order. For each page (a `page/1` message or a single document):

1. parse and validate every item; invalid ones become `rejection/1`;
2. a stock transaction (stream/warehouse/stock.py) receives manifests, reserves stock for orders
   (or parks them as pending), and the assessor prices all candidates of the page in one batch;
3. the outputs are produced and their delivery awaited;
4. the transaction's record goes to the `stock` table as ONE changelog message, then is applied.

At-least-once with idempotent effects: a page whose record reached the changelog is skipped when
redelivered (its outputs were delivered before the record was written); a page whose record did
not is processed again and repeats the same outputs (same deterministic declaration ids). Manifests
and orders repeated by a feed are caught by id and content digest.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any, Callable

import orjson

from stream.broker import DECLARATIONS, INBOUND, MOVEMENTS, ORDERS, REJECTIONS, STOCK_TABLE
from stream.contracts.reasons import rejection
from stream.contracts.validate import parse_json_line, ref_of, validate, validate_document
from stream.warehouse.stock import Stock, Txn

log = logging.getLogger(__name__)

EXPECTED = {INBOUND: "goods-manifest/1", ORDERS: "order/1"}


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_message(raw: bytes | None, topic: str, txn: Txn) -> int:
    """Feed one input message (a document or a page) into ``txn``; invalid items are rejected.

    Returns the number of items seen.
    """
    expected = EXPECTED[topic]
    if raw is None:
        txn.reject(None, "malformed_json", "empty message")
        return 1
    doc = parse_json_line(raw)
    if isinstance(doc, tuple):
        txn.reject(None, *doc)
        return 1
    problem = validate(doc)
    if problem is not None:
        txn.reject(ref_of(doc), *problem)
        return 1
    items = doc["items"] if doc["schema"] == "page/1" else (doc,)
    paged = doc["schema"] == "page/1"
    accept = txn.receive if expected == "goods-manifest/1" else txn.order
    for item in items:
        if paged:
            problem = validate_document(item)
            if problem is not None:
                txn.reject(ref_of(item), *problem)
                continue
        if item["schema"] != expected:
            txn.reject(ref_of(item), "unknown_schema",
                       f"schema: {item['schema']!r} is not accepted on topic {topic} (expected {expected!r})")
            continue
        accept(item)
    return len(items)


class Outputs:
    """Produces a transaction's outputs in batches on one aiokafka producer and awaits delivery."""

    def __init__(self, bootstrap: str, max_bytes: int):
        self.bootstrap = bootstrap
        self.max_bytes = max_bytes
        self.producer = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks=1, linger_ms=2,
            max_batch_size=min(self.max_bytes, 512 * 1024), max_request_size=max(self.max_bytes, 1 << 20) + (1 << 16),
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()

    async def send(self, partition: int, per_topic: dict[str, list[tuple[bytes, bytes]]]) -> None:
        if self.producer is None:
            await self.start()
        producer = self.producer
        futures = []
        for topic, messages in per_topic.items():
            if not messages:
                continue
            batch = producer.create_batch()
            for key, value in messages:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"a {topic} message of {len(value)} bytes exceeds the batch size")
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        if futures:
            await asyncio.gather(*futures)


class Processor:
    """The worker's state per partition and the page/tick processing around it."""

    def __init__(self, *, assess: Callable[[list[dict]], list[dict]], outputs: Outputs, hold_seconds: float,
                 write_record: Callable[[int, bytes, bytes], None], records: Callable[[], Any],
                 metrics: Any = None):
        self.assess = assess
        self.outputs = outputs
        self.hold_seconds = hold_seconds
        self.write_record = write_record
        self.records = records
        self.metrics = metrics
        self.states: dict[int, Stock] = {}
        self.lock = asyncio.Lock()
        self.pages = 0

    # -- state per partition -----------------------------------------------------------------

    def state(self, partition: int) -> Stock:
        stock = self.states.get(partition)
        if stock is None:
            stock = self.states[partition] = self.rebuild(partition)
        return stock

    def rebuild(self, partition: int) -> Stock:
        """Fold the partition's records (recovered by Faust from the changelog) into a Stock."""
        prefix = f"{partition}:".encode()
        stock = Stock()
        for key in sorted(k for k in list(self.records().keys()) if k.startswith(prefix)):
            stock.apply(orjson.loads(self.records()[key]))
        if stock.seq:
            log.info("partition %d: state rebuilt from %d records", partition, stock.seq)
        return stock

    def forget(self, partitions) -> None:
        for partition in partitions:
            self.states.pop(partition, None)

    # -- processing --------------------------------------------------------------------------

    async def page(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        async with self.lock:
            stock = self.state(partition)
            if stock.applied(topic, offset):
                return  # redelivered after its record was written: outputs went out before
            started = time.perf_counter()
            txn = stock.begin(time.time())
            try:
                parse_message(value, topic, txn)
                if topic == INBOUND:
                    txn.retry_pending()
                await self._finish(txn, partition, (topic, offset))
            except Exception as exc:  # a defect must not stop the partition: reject the message
                log.exception("partition %d offset %d of %s failed", partition, offset, topic)
                txn = stock.begin(time.time())
                txn.reject(None, "malformed_json" if isinstance(exc, (ValueError, KeyError, TypeError)) else
                           "unknown_schema", f"message at {topic}[{partition}]@{offset} could not be processed: "
                           f"{type(exc).__name__}: {exc}"[:500])
                await self._finish(txn, partition, (topic, offset))
            if self.metrics is not None:
                kind = "manifest" if topic == INBOUND else "order"
                self.metrics.record_ingested(kind, txn.manifest_lines if topic == INBOUND else txn.order_lines)
                self.metrics.observe_batch(kind + "_page", time.perf_counter() - started)
            self.pages += 1

    async def tick(self) -> None:
        """Retry and expire pending orders of every partition this worker holds."""
        async with self.lock:
            pending = 0
            for partition, stock in list(self.states.items()):
                if stock.pending:
                    txn = stock.begin(time.time())
                    txn.retry_pending()
                    txn.expire(self.hold_seconds)
                    await self._finish(txn, partition, None)
                pending += len(stock.pending)
            if self.metrics is not None:
                self.metrics.set_pending(pending)
                for wh, row in self.totals().items():
                    self.metrics.set_stock(wh, row["on_hand"], 0)

    async def _finish(self, txn: Txn, partition: int, src) -> None:
        stock = txn.stock
        requests = txn.requests()
        if requests:
            started = time.perf_counter()
            txn.settle(self.assess(requests))
            if self.metrics is not None:
                self.metrics.observe_batch("assess", time.perf_counter() - started)
        movements = txn.movements(partition, _now_iso())
        record = txn.record(src)
        out = txn.out
        dumps = orjson.dumps
        per_topic: dict[str, list[tuple[bytes, bytes]]] = {}
        if out.declarations:
            per_topic[DECLARATIONS] = [(d["warehouse_id"].encode(), dumps(d)) for d in out.declarations]
        if out.rejections:
            per_topic[REJECTIONS] = [(None, dumps(r)) for r in out.rejections]
        if movements:
            per_topic[MOVEMENTS] = [(m["warehouse_id"].encode(), dumps(m)) for m in movements]
        await self.outputs.send(partition, per_topic)
        if record is not None:
            self.write_record(partition, f"{partition}:{record['seq']:012d}".encode(), dumps(record))
            stock.apply(record)
        if self.metrics is not None:
            self._count(out)

    def _count(self, out) -> None:
        m = self.metrics
        by_wh: dict[str, list[int]] = {}
        for d in out.declarations:
            row = by_wh.setdefault(d["warehouse_id"], [0, 0, 0, 0])
            row[0] += 1
            row[1] += _tiyn(d["duty"])
            row[2] += _tiyn(d["excise"])
            row[3] += _tiyn(d["vat"])
        for wh, (count, duty, excise, vat) in by_wh.items():
            m.record_declarations(wh, count, duty, excise, vat)
        reasons: dict[str, int] = {}
        for r in out.rejections:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        for reason, count in reasons.items():
            m.record_rejections(reason, count)

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for stock in self.states.values():
            for wh, row in stock.totals().items():
                acc = out.setdefault(wh, dict.fromkeys(row, 0))
                for k, v in row.items():
                    acc[k] += v
        return out


def _tiyn(amount: str) -> int:
    """"123.45" -> 12345 (exact; amounts in assessment/1 have exactly two decimals)."""
    whole, _, frac = amount.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def install(app, processor_factory: Callable[[Any], Processor], partitions: int, tick_seconds: float):
    """Declare the table, the agent, the timer and the rebalance hooks on a Faust app."""
    table = app.Table(STOCK_TABLE, default=None, partitions=partitions, key_type=bytes, value_type=bytes,
                      help="stock transactions per partition: one record per page (folded into stock)")

    def write_record(partition: int, key: bytes, value: bytes) -> None:
        table.data[key] = value
        table.send_changelog(partition, key, value, key_serializer="raw", value_serializer="raw")

    processor = processor_factory(dict(write_record=write_record, records=lambda: table.data))
    inputs = app.topic(INBOUND, ORDERS, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw", partitions=partitions)

    @app.agent(inputs, concurrency=1, name="warehouse")
    async def warehouse(stream):
        async for event in stream.events():
            message = event.message
            await processor.page(message.topic, message.partition, message.offset, message.key, message.value)

    @app.timer(tick_seconds)
    async def pending_tick():
        if processor.states:
            await processor.tick()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender, revoked, **kwargs):
        async with processor.lock:
            processor.forget({tp.partition for tp in revoked if tp.topic in (INBOUND, ORDERS)})

    @app.on_partitions_assigned.connect
    async def on_assigned(sender, assigned, **kwargs):
        # a partition we keep stays valid; one that comes back is rebuilt after recovery
        async with processor.lock:
            held = {tp.partition for tp in assigned if tp.topic in (INBOUND, ORDERS)}
            processor.forget([p for p in list(processor.states) if p not in held])

    return processor, table
