"""Compressed feeds (issue 8 item 1): every Kafka codec is read, and a batch that still cannot be
decoded is quarantined (a metric, a log line) while the rest of its partition and every other
partition flow.

The broker tests produce with librdkafka (confluent-kafka, the producer many marketplaces run),
in each codec, into the embedded Tansu broker; a worker must declare every order.
"""
from __future__ import annotations

import logging
import struct

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from stream.metrics import Metrics
from stream.runtime import quarantine

CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def batch(base_offset: int, values: list[bytes], codec: str = "none") -> bytearray:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=CODEC_IDS[codec], is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for delta, value in enumerate(values):
        builder.append(delta, timestamp=None, key=b"KZ-ALA-CW-01", value=value, headers=[])
    raw = bytearray(builder.build())
    struct.pack_into(">q", raw, 0, base_offset)  # the base offset is outside the CRC
    return raw


def with_crc(raw: bytearray) -> bytearray:
    struct.pack_into(">I", raw, 17, calc_crc32c(bytes(raw[21:])))
    return raw


def unknown_codec(raw: bytearray) -> bytearray:
    attributes = struct.unpack_from(">h", raw, 21)[0]
    struct.pack_into(">h", raw, 21, (attributes & ~0x07) | 0x06)  # codec 6: no such codec
    return with_crc(raw)


def corrupt_payload(raw: bytearray) -> bytearray:
    raw[-8:] = b"\xff" * 8  # inside the compressed records
    return with_crc(raw)


def bad_crc(raw: bytearray) -> bytearray:
    raw[-1] ^= 0x01
    return raw


def partition_records(data: bytes, fetch_offset: int = 0, check_crcs: bool = True):
    from aiokafka.consumer import fetcher

    return fetcher.PartitionRecords(TopicPartition("orders", 2), MemoryRecords(bytes(data)), [], fetch_offset,
                                    None, None, check_crcs, 0)


@pytest.fixture
def installed():
    registry = CollectorRegistry()
    metrics = Metrics(registry, warehouses=())
    quarantine.reset()
    quarantine.install(metrics)
    yield metrics
    quarantine.reset()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_every_codec_decodes(codec, installed):
    values = [b'{"n": %d}' % i * 20 for i in range(5)]
    got = [r.value for r in partition_records(batch(0, values, codec))]
    assert got == values
    assert quarantine.skipped("orders", 2) == []


@pytest.mark.parametrize("damage,codec", [(unknown_codec, "snappy"), (corrupt_payload, "snappy"),
                                          (corrupt_payload, "zstd"), (corrupt_payload, "lz4"),
                                          (corrupt_payload, "gzip"), (bad_crc, "none")])
def test_an_undecodable_batch_is_skipped_alone(damage, codec, installed, caplog):
    good_before = batch(0, [b"a", b"b"], "zstd")
    broken = damage(batch(2, [b"c" * 50, b"d" * 50, b"e" * 50], codec))
    good_after = batch(5, [b"f"], "lz4")
    with caplog.at_level(logging.ERROR, logger="stream.runtime.quarantine"):
        records = partition_records(good_before + broken + good_after)
        got = [(r.offset, r.value) for r in records]
    assert got == [(0, b"a"), (1, b"b"), (5, b"f")]
    assert records.next_fetch_offset == 6
    [skipped] = quarantine.skipped("orders", 2)
    assert (skipped.first, skipped.last) == (2, 4)
    assert quarantine.resume_offset("orders", 2, 2) == 5 and quarantine.resume_offset("orders", 2, 1) == 1
    assert installed.quarantined.labels("orders", skipped.codec)._value.get() == 1
    [line] = [r for r in caplog.records if "quarantined" in r.getMessage()]
    assert "orders[2] offsets 2-4" in line.getMessage()
    assert b"c" * 10 not in line.getMessage().encode()


def test_install_is_idempotent(installed):
    from aiokafka.consumer import fetcher

    first = fetcher.PartitionRecords
    quarantine.install(installed)
    assert fetcher.PartitionRecords is first


# -- the real thing: librdkafka's compressed batches into a running worker -------------------------

def produce_compressed(bootstrap: str, topic: str, codec: str, messages: list, key: bytes) -> None:
    """Produce with librdkafka in one codec; linger so the messages share compressed batches."""
    import orjson

    confluent_kafka = pytest.importorskip("confluent_kafka")
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                                         "linger.ms": 100, "acks": "all", "enable.idempotence": False,
                                         "api.version.request": True})
    failures = []
    for message in messages:
        producer.produce(topic, orjson.dumps(message), key=key,
                         on_delivery=lambda error, _: failures.append(error) if error else None)
    assert producer.flush(30) == 0
    assert not failures, failures


@pytest.fixture(scope="module")
def worker_on_broker(tmp_path_factory):
    from tests.fixtures.broker import start_broker, stop_broker_process
    from tests.fixtures.pipeline import start_worker, stop_worker

    tmp = tmp_path_factory.mktemp("codecs")
    broker = start_broker(partitions=2)
    # outputs compressed by the setting: every test of this module reads them back
    worker = start_worker(broker.url, tmp, tmp / "worker.log", CUSTOMS_PARTITIONS=2, CUSTOMS_PENDING_HOLD_SECONDS=3,
                          CUSTOMS_OUTPUT_COMPRESSION="zstd")
    try:
        yield broker, worker, tmp / "worker.log"
    finally:
        stop_worker(worker)
        stop_broker_process(broker.process)


@pytest.mark.broker
@pytest.mark.slow
def test_a_worker_declares_orders_of_every_codec(worker_on_broker):
    from tests.fixtures.builders import manifest, order
    from tests.fixtures.pipeline import read_all

    broker, worker, log_path = worker_on_broker
    expected = set()
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        wh = f"KZ-{codec.upper()}"
        produce_compressed(broker.bootstrap, "goods.inbound", codec, [manifest(f"{codec}-M", (f"{codec}-A", 50), wh=wh)],
                           key=wh.encode())
        orders = [order(f"{codec}-O{i}", (f"{codec}-A", 1), wh=wh) for i in range(20)]
        orders.append({"schema": "page/1", "items": [order(f"{codec}-P{i}", (f"{codec}-A", 1), wh=wh) for i in range(5)]})
        produce_compressed(broker.bootstrap, "orders", codec, orders, key=wh.encode())
        expected |= {o["order_id"] for o in orders[:-1]} | {f"{codec}-P{i}" for i in range(5)}
    docs = read_all(broker.bootstrap, ("declarations",),
                    lambda d: expected <= {x["order_id"] for x in d["declarations"]}, timeout=120)
    declared = [x["order_id"] for x in docs["declarations"] if x["order_id"] in expected]
    assert sorted(declared) == sorted(expected), (expected - set(declared), log_path.read_text()[-3000:])
    assert worker.poll() is None


@pytest.mark.broker
@pytest.mark.slow
def test_float_quantities_never_reach_state_or_output(worker_on_broker):
    """qty 1.0 is an integer to JSON Schema: it is declared, as the int 1, and the worker's timers
    (valuation, the pending hold) keep running on integer state (the reported crash came ~5 s later)."""
    import time

    from tests.fixtures.builders import manifest, order
    from tests.fixtures.pipeline import produce, read_all

    broker, worker, log_path = worker_on_broker
    wh = "KZ-FLOAT"
    produce(broker.bootstrap, "goods.inbound", [manifest("F-M", ("F-A", 3.0), wh=wh)], key=wh.encode())
    produce(broker.bootstrap, "orders", [order("F-O1", ("F-A", 1.0), wh=wh), order("F-O2", ("F-A", 1.5), wh=wh),
                                         order("F-O3", ("F-MISSING", 2.0), wh=wh)], key=wh.encode())
    docs = read_all(broker.bootstrap, ("declarations", "rejections", "stock.movements"),
                    lambda d: "F-O1" in {x.get("order_id") for x in d["declarations"]}
                    and {"F-O2", "F-O3"} <= {x.get("ref") for x in d["rejections"]}, timeout=60)
    time.sleep(6)  # past the timers that used to raise on a float
    assert worker.poll() is None, log_path.read_text()[-3000:]
    reasons = {x["ref"]: x["reason"] for x in docs["rejections"] if x.get("ref", "").startswith("F-")}
    assert reasons["F-O2"] == "wrong_type"
    movements = [m for m in docs["stock.movements"] if m["warehouse_id"] == wh]
    assert movements
    for m in movements:
        for field_name in ("received_qty", "declared_qty", "received", "declared", "on_hand"):
            assert m[field_name].__class__ is int, m


def produce_raw_batches(bootstrap: str, topic: str, partition: int, batches: list[bytes]) -> list[int]:
    """Send record batches as they are (a broken one included) in Produce requests; their error codes."""
    import asyncio

    from aiokafka import AIOKafkaClient
    from aiokafka.protocol.produce import ProduceRequest

    async def go():
        client = AIOKafkaClient(bootstrap_servers=bootstrap)
        await client.bootstrap()
        try:
            await client.force_metadata_update()
            node = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            codes = []
            for raw in batches:
                response = await client.send(node, ProduceRequest(None, 1, 10_000, [(topic, [(partition, bytes(raw))])]))
                codes.append(response.topics[0][1][0][1])
            return codes
        finally:
            await client.close()

    return asyncio.run(go())


@pytest.mark.broker
def test_a_corrupt_batch_on_the_broker_is_quarantined_and_everything_else_read(broker, installed):
    """Tansu stores a batch whose compressed payload is corrupt; a consumer reads every good record of
    that partition and of the others, and the bad batch is counted and named."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    codes = produce_raw_batches(broker.bootstrap, "orders", 1, [
        batch(0, [b"p1-before"], "zstd"), corrupt_payload(batch(0, [b"x" * 40, b"y" * 40], "lz4")),
        batch(0, [b"p1-after"], "gzip")])
    assert codes == [0, 0, 0]
    assert produce_raw_batches(broker.bootstrap, "orders", 0, [batch(0, [b"p0-a", b"p0-b"], "snappy")]) == [0]

    async def consume():
        consumer = AIOKafkaConsumer("orders", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        got = []
        try:
            for _ in range(40):
                for tp, messages in (await consumer.getmany(timeout_ms=250)).items():
                    got.extend((tp.partition, m.value) for m in messages)
                if len(got) >= 4:
                    break
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(consume())
    assert sorted(got) == [(0, b"p0-a"), (0, b"p0-b"), (1, b"p1-after"), (1, b"p1-before")]
    [skipped] = quarantine.skipped("orders", 1)
    assert (skipped.first, skipped.last, skipped.codec) == (1, 2, "lz4")
    assert installed.quarantined.labels("orders", "lz4")._value.get() == 1


@pytest.mark.broker
@pytest.mark.slow
def test_a_worker_quarantines_a_corrupt_batch_and_declares_the_rest(worker_on_broker):
    """The worker (its app factory installs the quarantine) skips the bad batch alone: the orders
    before and after it on the same partition, and those of the other partition, are declared."""

    import orjson
    from aiokafka.partitioner import murmur2

    from tests.fixtures.builders import manifest, order
    from tests.fixtures.pipeline import produce, read_all

    broker, worker, log_path = worker_on_broker
    wh, other = "KZ-QUARANTINE", "KZ-QUARANTINE-2"
    partition = (murmur2(wh.encode()) & 0x7FFFFFFF) % broker.partitions
    produce(broker.bootstrap, "goods.inbound", [manifest("Q-M", ("Q-A", 10), wh=wh)], key=wh.encode())
    produce(broker.bootstrap, "goods.inbound", [manifest("Q2-M", ("Q2-A", 10), wh=other)], key=other.encode())

    def orders_batch(*order_ids: str) -> bytearray:
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=CODEC_IDS["lz4"], is_transactional=False,
                                            producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
        for delta, order_id in enumerate(order_ids):
            builder.append(delta, timestamp=None, key=wh.encode(), value=orjson.dumps(order(order_id, ("Q-A", 1), wh=wh)),
                           headers=[])
        return bytearray(builder.build())

    codes = produce_raw_batches(broker.bootstrap, "orders", partition, [
        orders_batch("Q-O1", "Q-O2"), corrupt_payload(orders_batch("Q-LOST1", "Q-LOST2")), orders_batch("Q-O3")])
    assert codes == [0, 0, 0]
    produce(broker.bootstrap, "orders", [order("Q2-O1", ("Q2-A", 1), wh=other)], key=other.encode())
    wanted = {"Q-O1", "Q-O2", "Q-O3", "Q2-O1"}
    docs = read_all(broker.bootstrap, ("declarations",), lambda d: wanted <= {x["order_id"] for x in d["declarations"]},
                    timeout=60, idle=1.0)
    declared = [x["order_id"] for x in docs["declarations"] if x["order_id"].startswith("Q")]
    assert sorted(declared) == sorted(wanted), log_path.read_text()[-3000:]
    assert worker.poll() is None
    log = log_path.read_text(errors="replace")
    assert f"quarantined an undecodable record batch: orders[{partition}]" in log
    assert "Q-LOST" not in log  # the log names offsets, never a record's content


@pytest.mark.broker
@pytest.mark.slow
def test_outputs_are_compressed_by_the_setting(worker_on_broker, monkeypatch):
    """CUSTOMS_OUTPUT_COMPRESSION=zstd: the declarations the worker writes arrive in zstd batches."""
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.consumer import fetcher

    from tests.fixtures.builders import manifest, order
    from tests.fixtures.pipeline import produce

    broker, worker, _ = worker_on_broker
    wh = "KZ-OUT-ZSTD"
    produce(broker.bootstrap, "goods.inbound", [manifest("Z-M", ("Z-A", 5), wh=wh)], key=wh.encode())
    produce(broker.bootstrap, "orders", [order(f"Z-O{i}", ("Z-A", 1), wh=wh) for i in range(3)], key=wh.encode())
    codecs = []

    class RecordingMemoryRecords:
        def __init__(self, data):
            self._records = MemoryRecords(data)

        def has_next(self):
            return self._records.has_next()

        def __getattr__(self, name):  # size_in_bytes and the rest, as they are
            return getattr(self._records, name)

        def next_batch(self):
            batch = self._records.next_batch()
            if batch is not None:
                codecs.append(quarantine.codec_of(batch))
            return batch

    monkeypatch.setattr(fetcher, "MemoryRecords", RecordingMemoryRecords)

    async def consume():
        consumer = AIOKafkaConsumer("declarations", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        seen = set()
        try:
            for _ in range(200):
                for messages in (await consumer.getmany(timeout_ms=300)).values():
                    seen |= {m.value for m in messages}
                if sum(b'"Z-O' in value for value in seen) >= 3:
                    break
        finally:
            await consumer.stop()
        return seen

    seen = asyncio.run(consume())
    assert sum(b'"Z-O' in value for value in seen) == 3
    assert codecs and set(codecs) == {"zstd"}, codecs


# -- fuzz: random pages, every codec, through the real worker --------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_examples = iter(range(10**6))
ITEM_KINDS = {  # kind -> expected outcome: None (declared) or the rejection reason
    "valid": None, "integral_float_qty": None, "fractional_qty": "wrong_type", "money_as_number": "wrong_type",
    "duplicate_key": "duplicate_key", "bad_iin": "invalid_code",
}


def item_json(kind: str, order_id: str, wh: str, sku: str) -> str:
    import orjson

    from tests.fixtures.builders import order

    doc = order(order_id, (sku, 1), wh=wh)
    if kind == "integral_float_qty":
        doc["lines"][0]["qty"] = 1.0
    elif kind == "fractional_qty":
        doc["lines"][0]["qty"] = 1.5
    elif kind == "money_as_number":
        doc["lines"][0]["unit_price"] = 5.1
    elif kind == "bad_iin":
        doc["buyer"]["iin"] = "9001013001"
    text = orjson.dumps(doc).decode()
    if kind == "duplicate_key":
        text = text[:-1] + ', "marketplace": "elsewhere"}'
    return text


@pytest.mark.broker
@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(codec=st.sampled_from(["none", "gzip", "snappy", "lz4", "zstd"]),
       messages=st.lists(st.lists(st.sampled_from(sorted(ITEM_KINDS)), min_size=1, max_size=4), min_size=1, max_size=6),
       malformed=st.integers(0, 2))
def test_fuzz_pages_of_every_codec_through_a_worker(worker_on_broker, codec, messages, malformed):
    """Random pages (valid, malformed, hostile) in a random codec: every valid order declared once,
    every invalid item rejected with its own ref and reason, the worker never exits."""
    import orjson

    from tests.fixtures.builders import manifest
    from tests.fixtures.pipeline import produce, read_all

    broker, worker, log_path = worker_on_broker
    n = next(_examples)
    wh, sku = f"KZ-FZ-{n}", f"FZ{n}-A"
    produce(broker.bootstrap, "goods.inbound", [manifest(f"FZ{n}-M", (sku, 10_000), wh=wh)], key=wh.encode())
    # the two input topics are read independently: the goods must be in before the orders come
    read_all(broker.bootstrap, ("stock.movements",), lambda d: any(m["warehouse_id"] == wh for m in d["stock.movements"]),
             timeout=60)
    expected: dict[str, str | None] = {}
    raw_messages = []
    for m, kinds in enumerate(messages):
        items = []
        for i, kind in enumerate(kinds):
            order_id = f"FZ{n}-{m}-{i}"
            expected[order_id] = ITEM_KINDS[kind]
            items.append(item_json(kind, order_id, wh, sku))
        raw_messages.append(items[0] if len(items) == 1 and kinds[0] != "duplicate_key" else
                            '{"schema": "page/1", "items": [' + ", ".join(items) + "]}")
    raw_messages += ['{"schema": "order/1", "order_id": "broken'] * malformed

    confluent_kafka = pytest.importorskip("confluent_kafka")
    # murmur2, the Java client's and aiokafka's partitioner: the manifest above went through aiokafka, and
    # librdkafka's default (consistent_random, CRC32) would put this warehouse's orders on another partition
    producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec,
                                         "linger.ms": 50, "partitioner": "murmur2_random"})
    for raw in raw_messages:
        producer.produce("orders", raw.encode(), key=wh.encode())
    assert producer.flush(30) == 0
    del producer  # librdkafka's threads end with it

    def settled(docs) -> bool:
        seen = {d["order_id"] for d in docs["declarations"]} | {r["ref"] for r in docs["rejections"]}
        return set(expected) <= seen

    docs = read_all(broker.bootstrap, ("declarations", "rejections"), settled, timeout=90, idle=1.0)
    declared = [d["order_id"] for d in docs["declarations"] if d["order_id"] in expected]
    rejected = {r["ref"]: r for r in docs["rejections"] if r["ref"] in expected}
    assert worker.poll() is None, log_path.read_text(errors="replace")[-3000:]
    for order_id, outcome in expected.items():
        if outcome is None:
            assert declared.count(order_id) == 1, (order_id, codec)
            assert order_id not in rejected
        else:
            assert order_id not in declared
            assert rejected[order_id]["reason"] == outcome, rejected[order_id]
            assert "9001013001" not in rejected[order_id]["detail"]
    orjson.dumps(docs)  # every output was JSON


def test_output_compression_setting(monkeypatch):
    from stream.settings import Settings, output_compression

    assert output_compression("none") is None and output_compression(" ZSTD ") == "zstd"
    with pytest.raises(ValueError, match="CUSTOMS_OUTPUT_COMPRESSION"):
        output_compression("brotli")
    monkeypatch.setenv("CUSTOMS_OUTPUT_COMPRESSION", "lz4")
    assert Settings().output_compression == "lz4"
