"""The warehouse agent: goods.inbound and orders in; declarations, rejections, stock.movements out.

One Faust agent (concurrency 1) consumes both co-partitioned inputs, so the pages of a partition are
applied strictly in order. For each page (a `page/1` message or a single document):

1. parse and validate every item; invalid ones become `rejection/1`;
2. a stock transaction (stream/warehouse/stock.py) receives manifests, reserves stock for orders
   (or parks them as pending), and the assessor prices all candidates of the page in one batch;
3. the transaction's record is applied to the in-memory state at once (the next page reads it),
   and the outputs are handed to the producer;
4. a committer task, in page order, awaits the delivery of each page's outputs, then writes the
   page's record to the `stock` table as ONE changelog message, then acknowledges the input message
   (only acknowledged offsets are committed, and Faust flushes the changelog before committing).

Steps 1-3 of the next pages overlap step 4 of earlier ones, with at most `CUSTOMS_PAGES_IN_FLIGHT` pages
(and ticks) between processing and their record. What is durable stays what the serial order
gave: a record is written only after its page's outputs are acknowledged, records are written in
sequence order, and an input offset is committed only after its record. A crash loses the
in-memory state of unrecorded pages; their offsets are not committed, so they are processed again
from the recorded state and repeat the same outputs (same deterministic declaration ids).
Partitions are drained (every record written) before they are revoked or reassigned.

At-least-once with idempotent effects: a page whose record reached the changelog is skipped when
redelivered (its outputs were delivered before the record was written); a page whose record did
not is processed again and repeats the same outputs. Manifests and orders repeated by a feed are
caught by id and content digest.

Every page has a record, so the state knows the last offset it applied of each input; a message
that arrives past the next one (faust-streaming can drop messages around a rebalance) is not
processed, and the consumer reads again from the missing offset (stream/warehouse/continuity.py).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import orjson

from stream._gc import gc_paused
from stream.broker import DECLARATIONS, INBOUND, MOVEMENTS, ORDERS, REJECTIONS, STOCK_TABLE
from stream.contracts.validate import parse_json_line, ref_of, validate, validate_document
from stream.warehouse.continuity import BrokerProbe, Continuity
from stream.warehouse.stock import Stock, Txn

log = logging.getLogger(__name__)

EXPECTED = {INBOUND: "goods-manifest/1", ORDERS: "order/1"}
# pages (and ticks) processed whose outputs are still being delivered, before the next page waits
MAX_IN_FLIGHT = 4
# seconds to wait for a page's outputs to be acknowledged before sending them again
DELIVERY_TIMEOUT = 60.0


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
    """Produces a transaction's outputs in batches on one aiokafka producer."""

    def __init__(self, bootstrap: str, max_bytes: int):
        self.bootstrap = bootstrap
        self.max_bytes = max_bytes
        self.batch_bytes = max(max_bytes, 1 << 20)
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
            )
            await producer.start()
            self.producer = producer

    async def stop(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()

    async def send(self, partition: int, per_topic: dict[str, list[tuple[bytes, bytes]]]) -> list[asyncio.Future]:
        """Hand the messages to the producer; the futures resolve when the broker acknowledged them."""
        if self.producer is None:
            await self.start()
        producer = self.producer
        futures = []
        for topic, messages in per_topic.items():
            if not messages:
                continue
            batch = producer.create_batch()
            append = batch.append
            for key, value in messages:
                if append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    append = batch.append
                    if append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"a {topic} message of {len(value)} bytes exceeds the batch size")
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def deliver(self, partition: int, per_topic: dict[str, list[tuple[bytes, bytes]]]) -> None:
        """Send and await the broker's acknowledgement of every message."""
        futures = await self.send(partition, per_topic)
        if futures:
            await asyncio.gather(*futures)


@dataclass(slots=True)
class Flight:
    """A processed page (or tick) on its way out: outputs sent, record not yet written."""
    partition: int
    per_topic: dict[str, list[tuple[bytes | None, bytes]]]
    record_key: bytes | None = None
    record_value: bytes | None = None
    ack: Callable[[], Awaitable[Any]] | None = None
    counts: tuple | None = None  # metrics, counted once delivered
    futures: list | None = field(default_factory=list)  # None: to be sent (again)


class Processor:
    """The worker's state per partition and the page/tick processing around it."""

    def __init__(self, *, assess: Callable[[list[dict]], list[dict]], outputs: Outputs, hold_seconds: float,
                 write_record: Callable[[int, bytes, bytes], None], records: Callable[[], Any],
                 metrics: Any = None, max_in_flight: int = MAX_IN_FLIGHT,
                 value_of: Callable[[int, str, str], int] | None = None, continuity: Continuity | None = None):
        self.assess = assess
        self.continuity = continuity
        self.value_of = value_of
        self.outputs = outputs
        self.hold_seconds = hold_seconds
        self.write_record = write_record
        self.records = records
        self.metrics = metrics
        self.states: dict[int, Stock] = {}
        self.lock = asyncio.Lock()
        self.pages = 0
        self.max_in_flight = max(1, max_in_flight)
        self.flights: asyncio.Queue[Flight] | None = None
        self.committer: asyncio.Task | None = None

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
        records = self.records()
        for key in sorted(k for k in list(records.keys()) if k.startswith(prefix)):
            stock.apply(orjson.loads(records[key]))
        if stock.seq:
            log.info("partition %d: state rebuilt from %d records", partition, stock.seq)
        return stock

    def forget(self, partitions) -> None:
        partitions = list(partitions)
        for partition in partitions:
            self.states.pop(partition, None)
        if self.continuity is not None:
            self.continuity.forget(partitions)

    # -- processing --------------------------------------------------------------------------

    async def page(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                   ack: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Process one input message; ``ack`` is awaited once its record is written (or it was applied)."""
        async with self.lock:
            stock = self.state(partition)
            if self.continuity is not None:
                self.continuity.seen(topic, partition)
            if stock.applied(topic, offset):
                # redelivered after its record was made: acknowledged behind the records in flight
                await self._launch(Flight(partition, {}, ack=ack))
                return
            if self.continuity is not None and not await self.continuity.admit(
                    topic, partition, stock.next_offset(topic), offset):
                return  # not processed, not acknowledged: it is read again after the earlier ones
            started = time.perf_counter()
            with gc_paused():  # the page's objects are gone (all but its outputs) when GC resumes
                flight, lines = self._process(stock, topic, partition, offset, value)
            flight.ack = ack
            if self.metrics is not None:
                kind = "manifest" if topic == INBOUND else "order"
                self.metrics.record_ingested(kind, lines)
                self.metrics.observe_batch(kind + "_page", time.perf_counter() - started)
            await self._launch(flight)
            self.pages += 1

    def _process(self, stock: Stock, topic: str, partition: int, offset: int, value: bytes | None) -> tuple[Flight, int]:
        """One input message as a transaction: the flight to launch and the lines it brought in."""
        txn = stock.begin(time.time())
        try:
            parse_message(value, topic, txn)
            if topic == INBOUND:
                txn.retry_pending()
            flight = self._prepare(txn, partition, (topic, offset))
        except Exception as exc:  # a defect must not stop the partition: reject the message
            log.exception("partition %d offset %d of %s failed", partition, offset, topic)
            txn = stock.begin(time.time())
            txn.reject(None, "internal_error", f"message at {topic}[{partition}]@{offset} could not be processed: "
                       f"{type(exc).__name__}: {exc}"[:500])
            flight = self._prepare(txn, partition, (topic, offset))
        return flight, txn.manifest_lines if topic == INBOUND else txn.order_lines

    async def tick(self) -> None:
        """Retry and expire pending orders of every partition this worker holds."""
        async with self.lock:
            pending = 0
            for partition, stock in list(self.states.items()):
                if stock.pending:
                    with gc_paused():
                        txn = stock.begin(time.time())
                        txn.retry_pending()
                        txn.expire(self.hold_seconds)
                        flight = self._prepare(txn, partition, None)
                    await self._launch(flight)
                pending += len(stock.pending)
            if self.metrics is not None:
                self.metrics.set_pending(pending)
                for wh, row in self.totals().items():
                    self.metrics.set_stock(wh, row["on_hand"], row["value_tiyn"])

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
                stock = self.state(partition)
                due.extend((topic, partition, stock.next_offset(topic)) for topic in EXPECTED)
            await self.continuity.watch(due)

    def _prepare(self, txn: Txn, partition: int, src) -> Flight:
        """Decide the transaction: assess, settle, serialise the outputs and apply the record in memory."""
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
        per_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
        if out.declarations:
            per_topic[DECLARATIONS] = [(d["warehouse_id"].encode(), dumps(d)) for d in out.declarations]
        if out.rejections:
            per_topic[REJECTIONS] = [(None, dumps(r)) for r in out.rejections]
        if movements:
            per_topic[MOVEMENTS] = [(m["warehouse_id"].encode(), dumps(m)) for m in movements]
        limit = self.outputs.max_message_bytes
        for topic, messages in per_topic.items():
            for _, value in messages:
                if len(value) > limit:
                    raise ValueError(f"a {topic} message of {len(value)} bytes exceeds the batch size")
        flight = Flight(partition, per_topic)
        if self.metrics is not None:
            flight.counts = _counts(out)
        if record is not None:
            flight.record_key = f"{partition}:{record['seq']:012d}".encode()
            flight.record_value = dumps(record)
            stock.apply(record)  # last: the next transaction reads it; durable once the committer wrote it
        return flight

    # -- delivery, records, acknowledgements -------------------------------------------------

    async def _launch(self, flight: Flight) -> None:
        """Send the flight's outputs and queue it for the committer (waits while too many are in flight)."""
        if self.committer is None or self.committer.done():
            if self.committer is not None and not self.committer.cancelled() and self.committer.exception():
                raise RuntimeError("the committer failed") from self.committer.exception()
            if self.flights is None:
                self.flights = asyncio.Queue(self.max_in_flight)
            self.committer = asyncio.ensure_future(self._commit_loop())
        if flight.per_topic:
            try:
                flight.futures = await self.outputs.send(flight.partition, flight.per_topic)
            except Exception as exc:  # the committer sends them again
                log.warning("partition %d: outputs not sent (%s: %s)", flight.partition, type(exc).__name__, exc)
                flight.futures = None
        await self.flights.put(flight)

    async def _commit_loop(self) -> None:
        flights = self.flights
        while True:
            flight = await flights.get()
            try:
                await self._land(flight)
            finally:
                flights.task_done()

    async def _land(self, flight: Flight) -> None:
        """Await delivery (sending again until the broker takes it), then write the record, then ack."""
        attempt = 0
        while True:
            try:
                if flight.futures is None:
                    flight.futures = await self.outputs.send(flight.partition, flight.per_topic)
                if flight.futures:
                    # aiokafka fails a batch after its request timeout; this bounds a sender that died
                    # (asyncio.wait, not wait_for: wait_for in 3.11 can swallow a cancellation)
                    done, late = await asyncio.wait(flight.futures, timeout=DELIVERY_TIMEOUT)
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
                            flight.partition, type(exc).__name__, exc, attempt)
                await asyncio.sleep(min(0.05 * 2 ** attempt, 5.0))
                flight.futures = None
        if flight.record_key is not None:
            self.write_record(flight.partition, flight.record_key, flight.record_value)
        if flight.ack is not None:
            await flight.ack()
        if flight.counts is not None:
            self._count(flight.counts)

    async def drain(self) -> None:
        """Wait until every processed page has its outputs delivered, its record written and is acked."""
        if self.flights is not None and self.committer is not None and not self.committer.done():
            await self.flights.join()

    async def stop(self) -> None:
        committer, self.committer = self.committer, None
        if committer is not None and not committer.done():
            committer.cancel()
            await asyncio.wait([committer], timeout=5.0)
        self.flights = None

    def _count(self, counts) -> None:
        m = self.metrics
        by_wh, reasons = counts
        for wh, (count, duty, excise, vat) in by_wh.items():
            m.record_declarations(wh, count, duty, excise, vat)
        for reason, count in reasons.items():
            m.record_rejections(reason, count)

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for stock in self.states.values():
            for wh, row in stock.totals(self.value_of).items():
                acc = out.setdefault(wh, dict.fromkeys(row, 0))
                for k, v in row.items():
                    acc[k] += v
        return out


def _counts(out) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Declarations (count, duty, excise, VAT in tiyn) per warehouse and rejections per reason."""
    by_wh: dict[str, list[int]] = {}
    for d in out.declarations:
        row = by_wh.get(d["warehouse_id"])
        if row is None:
            row = by_wh[d["warehouse_id"]] = [0, 0, 0, 0]
        row[0] += 1
        row[1] += _tiyn(d["duty"])
        row[2] += _tiyn(d["excise"])
        row[3] += _tiyn(d["vat"])
    reasons: dict[str, int] = {}
    for r in out.rejections:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return by_wh, reasons


def _tiyn(amount: str) -> int:
    """"123.45" -> 12345 (exact; amounts in assessment/1 have exactly two decimals)."""
    if amount[-3:-2] == ".":
        return int(amount.replace(".", "", 1))
    whole, _, frac = amount.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def install(app, processor_factory: Callable[[Any], Processor], partitions: int, tick_seconds: float,
            bootstrap: str | None = None, metrics: Any = None):
    """Declare the table, the agent, the timer and the rebalance hooks on a Faust app. With
    ``bootstrap``, holes in the input offsets are checked against the broker (continuity.py)."""
    from faust.types import TP

    table = app.Table(STOCK_TABLE, default=None, partitions=partitions, key_type=bytes, value_type=bytes,
                      help="stock transactions per partition: one record per page (folded into stock)")

    def write_record(partition: int, key: bytes, value: bytes) -> None:
        table.data[key] = value
        table.send_changelog(partition, key, value, key_serializer="raw", value_serializer="raw")

    async def seek(topic: str, partition: int, offset: int) -> None:
        await app.consumer.seek(TP(topic, partition), offset)

    async def position(topic: str, partition: int) -> int | None:
        return await app.consumer.position(TP(topic, partition))

    continuity = Continuity(seek, BrokerProbe(bootstrap) if bootstrap else None, position, metrics=metrics)
    processor = processor_factory(dict(write_record=write_record, records=lambda: table.data, continuity=continuity))
    inputs = app.topic(INBOUND, ORDERS, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw", partitions=partitions)

    @app.agent(inputs, concurrency=1, name="warehouse")
    async def warehouse(stream):
        # acknowledged by the committer once the page's record is written (not when the next arrives)
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            await processor.page(message.topic, message.partition, message.offset, message.key, message.value,
                                 ack=lambda event=event: manual.ack(event))
            if processor.metrics is not None:  # messages behind the partition's end, once per page
                highwater = app.consumer.highwater(message.tp)
                if highwater is not None:
                    processor.metrics.set_lag(message.topic, message.partition, max(highwater - message.offset - 1, 0))

    @app.timer(tick_seconds)
    async def pending_tick():
        if processor.states:
            await processor.tick()
        if not app.rebalancing:
            held = {tp.partition for tp in app.consumer.assignment() if tp.topic in (INBOUND, ORDERS)}
            if held:
                await processor.watch(held)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender, revoked, **kwargs):
        async with processor.lock:
            await processor.drain()  # every processed page's record written before the partition goes
            processor.forget({tp.partition for tp in revoked if tp.topic in (INBOUND, ORDERS)})

    @app.on_partitions_assigned.connect
    async def on_assigned(sender, assigned, **kwargs):
        # a partition we keep stays valid; one that comes back is rebuilt after recovery
        async with processor.lock:
            await processor.drain()
            held = {tp.partition for tp in assigned if tp.topic in (INBOUND, ORDERS)}
            processor.forget([p for p in list(processor.states) if p not in held])

    return processor, table
