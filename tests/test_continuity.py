"""Input offsets are applied without holes (stream/runtime/continuity.py), alone and inside the
worker's page pipeline; the broker probe against the real embedded broker."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from stream.runtime.continuity import BrokerProbe, Continuity
from stream.runtime.pipeline import Pipeline
from stream.runtime.state import PartitionState
from stream.warehouse.agents import WarehouseDomain
from stream.warehouse.stock import Stock
from tests.fixtures.harness import FakeOutputs
from tests.fixtures.builders import WH, fake_assess, manifest, order


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(first_offset=None, **kwargs):
    """A Continuity whose seeks are recorded and whose broker answers ``first_offset``."""
    seeks, probes = [], []

    async def seek(topic, partition, offset):
        seeks.append((topic, partition, offset))

    async def probe(topic, partition, offset):
        probes.append((topic, partition, offset))
        if isinstance(first_offset, Exception):
            raise first_offset
        return first_offset

    clock = Clock()
    return Continuity(seek, probe, clock=clock, **kwargs), seeks, probes, clock


def admit(continuity, expected, offset, topic="orders", partition=1):
    return asyncio.run(continuity.admit(topic, partition, expected, offset))


def test_the_expected_offset_and_redeliveries_pass_without_asking_anyone():
    continuity, seeks, probes, _ = make()
    assert admit(continuity, None, 0)  # the partition's first page of this topic, at the start of its log
    assert admit(continuity, 7, 7)
    assert admit(continuity, 7, 3)
    assert seeks == [] and probes == []


def test_a_skipped_offset_sends_the_consumer_back_and_holds_later_messages():
    continuity, seeks, probes, clock = make(first_offset=12)  # the broker holds 12: it was skipped
    assert not admit(continuity, 12, 14)
    assert probes == [("orders", 1, 12)] and seeks == [("orders", 1, 12)]
    assert not admit(continuity, 12, 15)  # fetched before the seek: passed over, no second seek
    assert seeks == [("orders", 1, 12)]
    assert admit(continuity, 12, 12)  # read again in order
    assert continuity.holes == {}
    assert admit(continuity, 13, 13)


def test_the_seek_is_repeated_then_given_up_so_a_partition_never_stops_for_good():
    continuity, seeks, probes, clock = make(first_offset=12, retry_after=1.0, max_seeks=3)
    assert not admit(continuity, 12, 14)
    clock.now += 0.5
    assert not admit(continuity, 12, 14)
    assert len(seeks) == 1
    clock.now += 0.6
    assert not admit(continuity, 12, 14)
    clock.now += 1.0
    asyncio.run(continuity.retry_due())  # the timer repeats it even when no message arrives
    assert len(seeks) == 3
    clock.now += 1.0
    asyncio.run(continuity.retry_due())
    assert len(seeks) == 3  # at most max_seeks
    assert admit(continuity, 12, 14)  # given up: the next message is processed
    assert continuity.holes == {} and len(probes) == 1


def test_the_first_messages_of_a_partition_never_applied_are_read_again_when_dropped():
    continuity, seeks, probes, clock = make(first_offset=0)  # the log starts at 0; 0..2 were dropped
    assert not admit(continuity, None, 3, topic="taxfree.cancellations", partition=0)
    assert seeks == [("taxfree.cancellations", 0, 0)]
    assert not admit(continuity, None, 4, topic="taxfree.cancellations", partition=0)  # fetched before the seek
    assert admit(continuity, None, 0, topic="taxfree.cancellations", partition=0)
    assert probes == [("taxfree.cancellations", 0, 0)]  # the start of the log is asked once
    assert continuity.holes == {}


def test_a_partition_never_applied_whose_log_starts_later_goes_on_at_its_start():
    continuity, seeks, probes, _ = make(first_offset=40)  # offsets 0..39 deleted by retention
    assert admit(continuity, None, 40)
    assert seeks == [] and probes == [("orders", 1, 0)]
    unanswered, seeks, probes, _ = make(first_offset=RuntimeError("no broker"))
    assert admit(unanswered, None, 40)  # no answer: taken as the start, as before
    assert admit(unanswered, None, 41) and len(probes) == 1


def test_a_real_hole_in_the_log_is_accepted_at_once():
    continuity, seeks, _, _ = make(first_offset=14)  # offsets 12 and 13 are transaction markers
    assert admit(continuity, 12, 14)
    assert seeks == []


def test_records_deleted_by_retention_move_the_target_forward():
    continuity, seeks, _, _ = make(first_offset=20)  # 12..19 deleted; 20.. exist but were skipped
    assert not admit(continuity, 12, 25)
    assert seeks == [("orders", 1, 20)]
    assert admit(continuity, 12, 20)
    assert continuity.holes == {}


def test_a_broker_that_does_not_answer_leaves_the_decision_to_the_seeks():
    continuity, seeks, _, _ = make(first_offset=ConnectionError("down"))
    assert not admit(continuity, 12, 14)
    assert seeks == [("orders", 1, 12)]


def test_forgotten_partitions_drop_their_holes():
    continuity, _, _, _ = make(first_offset=None)
    admit(continuity, 12, 14, partition=1)
    admit(continuity, 3, 5, partition=2)
    continuity.forget([1])
    assert list(continuity.holes) == [("orders", 2)]


def make_watched(position, first_offset=None, **kwargs):
    continuity, seeks, probes, clock = make(first_offset, **kwargs)

    async def where(topic, partition):
        return position[(topic, partition)]

    continuity.position = where
    return continuity, seeks, clock


def test_a_partition_read_past_the_due_offset_with_nothing_delivered_is_sought_back():
    """The last manifest of a wave dropped by the consumer: no later message shows a hole."""
    position = {("goods.inbound", 3): 3, ("orders", 3): 25}
    continuity, seeks, clock = make_watched(position, first_offset=2, stall_after=15.0)
    due = [("goods.inbound", 3, 2), ("orders", 3, 25)]
    asyncio.run(continuity.watch(due))
    assert seeks == []  # the clock starts at the first look
    clock.now += 10
    asyncio.run(continuity.watch(due))
    assert seeks == []  # not long enough
    clock.now += 6
    asyncio.run(continuity.watch(due))
    assert seeks == [("goods.inbound", 3, 2)]  # orders are caught up: position == due
    asyncio.run(continuity.watch(due))
    assert len(seeks) == 1  # one hole at a time
    assert admit(continuity, 2, 2, topic="goods.inbound", partition=3)
    assert continuity.holes == {}


def test_a_consumer_position_that_never_comes_does_not_hold_the_other_partitions():
    """aiokafka's `position` waits for a position it does not know; `watch` runs under the pipeline's
    lock, so it gives such a partition up after `position_timeout` and looks at the next one."""
    position = {("orders", 3): 25}
    continuity, seeks, clock = make_watched(position, first_offset=2, stall_after=15.0, position_timeout=0.05)
    answer = continuity.position

    async def where(topic, partition):
        if partition == 1:
            await asyncio.sleep(3600)  # never answers
        return await answer(topic, partition)

    continuity.position = where
    due = [("orders", 1, 7), ("orders", 3, 2)]
    asyncio.run(continuity.watch(due))
    clock.now += 16
    asyncio.run(asyncio.wait_for(continuity.watch(due), timeout=5))
    assert seeks == [("orders", 3, 2)]  # partition 1 skipped after its timeout, partition 3 sought back


def test_a_partition_that_keeps_receiving_is_not_stalled():
    position = {("orders", 1): 40}
    continuity, seeks, clock = make_watched(position, stall_after=15.0)
    for _ in range(5):
        clock.now += 10
        continuity.seen("orders", 1)
        asyncio.run(continuity.watch([("orders", 1, 30)]))  # behind, but messages are arriving
    assert seeks == []


def test_a_partition_never_applied_is_due_from_the_start_of_its_log():
    position = {("goods.inbound", 0): 4}
    continuity, seeks, clock = make_watched(position, first_offset=2, stall_after=1.0)
    asyncio.run(continuity.watch([("goods.inbound", 0, None)]))
    clock.now += 2
    asyncio.run(continuity.watch([("goods.inbound", 0, None)]))
    assert seeks == [("goods.inbound", 0, 2)]  # offsets 0 and 1 were deleted by retention
    assert admit(continuity, None, 2, topic="goods.inbound", partition=0)
    assert continuity.holes == {}


def test_a_stalled_partition_whose_seeks_are_spent_is_let_go_and_watched_again():
    position = {("orders", 2): 9}
    continuity, seeks, clock = make_watched(position, stall_after=5.0, retry_after=1.0, max_seeks=2)
    due = [("orders", 2, 7)]
    asyncio.run(continuity.watch(due))
    clock.now += 5
    asyncio.run(continuity.watch(due))
    clock.now += 1
    asyncio.run(continuity.retry_due())
    assert len(seeks) == 2
    clock.now += 1
    asyncio.run(continuity.retry_due())
    assert continuity.holes == {} and len(seeks) == 2  # given up, logged
    clock.now += 5
    asyncio.run(continuity.watch(due))
    assert len(seeks) == 3  # and tried again after another wait


def test_every_page_records_its_offset_even_when_it_changes_nothing():
    partition = PartitionState(Stock)
    body = partition.state.begin(0.0).body()
    record = partition.next_record(body, "orders", 5)
    assert record == {"v": 2, "seq": 1, "offsets": {"orders": 5}, "body": {}}
    partition.apply_record(record)
    assert partition.next_offset("orders") == 6 and partition.next_offset("goods.inbound") is None
    assert partition.state.begin(0.0).body(page=False) is None  # a tick that changes nothing writes nothing


@pytest.mark.parametrize("dropped", [(3, 4), (0, 1)], ids=["later", "the partition's first"])
def test_the_pipeline_reads_again_what_the_consumer_dropped_and_declares_every_order_once(dropped):
    """A consumer that drops two messages once (as faust-streaming did after a rebalance; the first two of
    a partition nothing was applied from, as seen once with a worker taking over after a SIGKILL): the
    processor seeks back, the dropped pages are processed in order, every offset is acknowledged
    once and contiguously, every order is declared exactly once."""

    pages = [("goods.inbound", 0, manifest("M-1", ("S1", 100)))]
    pages += [("orders", i, {"schema": "page/1", "items": [order(f"O-{i}-{j}", ("S1", 1)) for j in range(3)]})
              for i in range(8)]
    outputs = FakeOutputs(auto=True)
    records, acked, seeks = {}, [], []

    class DroppingConsumer:
        """Delivers the orders from a position; drops offsets 3 and 4 the first time round."""

        def __init__(self):
            self.position = {"goods.inbound": 0, "orders": 0}
            self.dropped = False

        def next(self):
            for topic, offset, doc in pages:
                if offset == self.position[topic]:
                    self.position[topic] += 1
                    if topic == "orders" and offset in dropped and not self.dropped:
                        if offset == dropped[1]:
                            self.dropped = True
                        return self.next()
                    return topic, offset, doc
            return None

    consumer = DroppingConsumer()

    async def seek(topic, partition, offset):
        seeks.append((topic, offset))
        consumer.position[topic] = offset

    async def probe(topic, partition, offset):
        return offset  # the broker holds every offset

    def acker(topic, offset):
        async def ack():
            acked.append((topic, offset))
        return ack

    async def go():
        proc = Pipeline(WarehouseDomain(assess=fake_assess, hold_seconds=3600), outputs=outputs,
                        records=lambda: records, max_in_flight=4,
                        write_record=lambda partition, key, value: records.__setitem__(key, value),
                        continuity=Continuity(seek, probe))
        while (message := consumer.next()) is not None:
            topic, offset, doc = message
            await proc.page(topic, 0, offset, WH.encode(), orjson.dumps(doc), ack=acker(topic, offset))
        await proc.drain()
        await proc.stop()

    asyncio.run(go())
    assert seeks == [("orders", dropped[0])]
    assert [offset for topic, offset in acked if topic == "orders"] == list(range(8))
    declared = [doc["order_id"] for topic, doc in outputs.sent if topic == "declarations"]
    assert sorted(declared) == sorted(f"O-{i}-{j}" for i in range(8) for j in range(3))
    partition = PartitionState(Stock)
    for key in sorted(records):
        partition.apply_record(orjson.loads(records[key]))
    assert partition.state.on_hand((WH, "S1")) == 100 - 24
    assert partition.next_offset("orders") == 8


@pytest.mark.broker
def test_the_probe_reads_the_first_offset_the_real_broker_holds(broker):
    async def go():
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            for i in range(5):
                await producer.send_and_wait("orders", b'{"n": %d}' % i, partition=2)
        finally:
            await producer.stop()
        probe = BrokerProbe(broker.bootstrap, timeout=1.0)
        try:
            return [await probe("orders", 2, offset) for offset in (0, 3, 4, 5)]
        finally:
            await probe.stop()

    assert asyncio.run(go()) == [0, 3, 4, None]  # nothing at the end of the log


def test_the_pipeline_reads_again_a_dropped_last_manifest_and_declares_the_orders_waiting_for_it():

    pages = [("goods.inbound", 0, manifest("M-1", ("S1", 2))),
             ("orders", 0, order("O-1", ("S1", 2))), ("orders", 1, order("O-2", ("S1", 3))),
             ("goods.inbound", 1, manifest("M-2", ("S1", 5)))]  # the consumer drops this one
    outputs = FakeOutputs(auto=True)
    records, seeks = {}, []
    position = {"goods.inbound": 0, "orders": 0}
    clock = Clock()

    async def seek(topic, partition, offset):
        seeks.append((topic, offset))
        position[topic] = offset

    async def where(topic, partition):
        return position[topic]

    async def probe(topic, partition, offset):
        return offset

    async def deliver(proc, skip=()):
        for topic, offset, doc in pages:
            if offset == position[topic]:
                position[topic] += 1
                if (topic, offset) not in skip:
                    await proc.page(topic, 0, offset, WH.encode(), orjson.dumps(doc))

    async def go():
        continuity = Continuity(seek, probe, where, stall_after=15.0, clock=clock)
        proc = Pipeline(WarehouseDomain(assess=fake_assess, hold_seconds=3600), outputs=outputs,
                        records=lambda: records, max_in_flight=4,
                        write_record=lambda partition, key, value: records.__setitem__(key, value),
                        continuity=continuity)
        await deliver(proc, skip={("goods.inbound", 1)})
        await proc.watch({0})
        clock.now += 20
        await proc.watch({0})
        assert seeks == [("goods.inbound", 1)]
        await deliver(proc)
        await proc.drain()
        await proc.stop()

    asyncio.run(go())
    declared = [doc["order_id"] for topic, doc in outputs.sent if topic == "declarations"]
    assert declared == ["O-1", "O-2"]
