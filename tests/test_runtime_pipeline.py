"""The runtime's page pipeline (stream/runtime/pipeline.py) without a broker, driving the warehouse
domain: outputs before records, records in order, acknowledgements after records, crashes anywhere."""
from __future__ import annotations

import asyncio
import random

import orjson

from stream.runtime.pipeline import Pipeline
from stream.runtime.state import PartitionState
from stream.warehouse.agents import WarehouseDomain
from stream.warehouse.stock import DECLARED, Stock
from tests.fixtures.builders import conserved, fake_assess, manifest, order, warehouse_harness
from tests.fixtures.harness import FakeOutputs

WH = "KZ-ALA-CW-01"


def warehouse(assess=fake_assess, hold_seconds=3600.0):
    return WarehouseDomain(assess=assess, hold_seconds=hold_seconds)


def _pipeline_feed(rng):
    """Interleaved manifest and order pages on one partition: (topic, offset, bytes)."""
    feed, offsets, n_orders = [], {"goods.inbound": 0, "orders": 0}, 0
    for wave in range(rng.randint(3, 6)):
        if rng.random() < 0.7:
            items = [manifest(f"M-{wave}-{i}", *[(f"S{rng.randint(1, 4)}", rng.randint(1, 4))]) for i in range(2)]
            feed.append(("goods.inbound", items))
        items = []
        for _ in range(rng.randint(1, 4)):
            items.append(order(f"O-{n_orders}", (f"S{rng.randint(1, 4)}", rng.randint(1, 3))))
            n_orders += 1
        if rng.random() < 0.3 and items:
            items.append(items[0])  # the feed repeats an order
        feed.append(("orders", items))
    out = []
    for topic, items in feed:
        out.append((topic, offsets[topic], orjson.dumps({"schema": "page/1", "items": items})))
        offsets[topic] += 1
    return out


def _run_pipeline(feed, *, records, start, rng=None, crash_after=None):
    """Feed the pages from ``start`` offsets through a Pipeline (max 3 in flight). With ``rng``,
    deliveries are acknowledged in random order and the worker dies after ``crash_after`` steps.
    Returns (records written, acked offsets, outputs)."""
    outputs = FakeOutputs(auto=rng is None)
    written, acked = dict(records), {"goods.inbound": [], "orders": []}
    violations = []

    def write_record(partition, key, value):
        record = orjson.loads(value)
        for oid, (status, _) in record.get("body", {}).get("o", {}).items():
            if status == DECLARED and oid not in outputs.delivered:
                violations.append(f"record {key} declares {oid} before its declaration was acknowledged")
        if written and key <= max(written):
            violations.append(f"record {key} written after {max(written)}")
        written[key] = value

    def acker(topic, offset, key):
        async def ack():
            if key is not None and key not in written:
                violations.append(f"{topic}@{offset} acked before its record")
            acked[topic].append(offset)
        return ack

    async def go():
        pipeline = Pipeline(warehouse(), outputs=outputs, write_record=write_record, records=lambda: written,
                            max_in_flight=3)

        async def feed_all():
            for topic, offset, value in feed:
                if offset >= start[topic]:
                    state = pipeline.state(0)
                    key = f"0:{state.seq + 1:012d}".encode() if not state.applied(topic, offset) else None
                    await pipeline.page(topic, 0, offset, WH.encode(), value, ack=acker(topic, offset, key))

        feeding = asyncio.ensure_future(feed_all())
        steps = 0
        while not feeding.done() or outputs.waiting or pipeline.busy:
            await asyncio.sleep(0)
            steps += 1
            if crash_after is not None and steps >= crash_after:
                feeding.cancel()
                await pipeline.stop()
                return
            if outputs.waiting and rng.random() < 0.5:
                outputs.resolve(rng.randrange(len(outputs.waiting)))
        await feeding
        await pipeline.drain()
        await pipeline.stop()

    asyncio.run(go())
    assert violations == []
    return written, acked, outputs


def _committed(acked, topic):
    """The offset Faust commits: the first not acknowledged (acks are contiguous from 0)."""
    got = sorted(acked[topic])
    assert got == list(range(len(got)))
    return len(got)


def _state(records) -> Stock:
    partition = PartitionState(Stock)
    for key in sorted(records):
        partition.apply_record(orjson.loads(records[key]))
    return partition.state


def test_pipeline_crash_anywhere_loses_nothing_and_counts_once():
    """Pages overlap their delivery; a crash at any point, then recovery from the records written
    and the offsets acknowledged, ends in the state of an uninterrupted run: every order declared
    once, stock conserved, no record ahead of its acknowledged outputs or of an earlier record."""
    for seed in range(40):
        rng = random.Random(seed)
        feed = _pipeline_feed(rng)
        zero = {"goods.inbound": 0, "orders": 0}
        reference = _state(_run_pipeline(feed, records={}, start=zero)[0])
        written, acked, _ = _run_pipeline(feed, records={}, start=zero, rng=rng, crash_after=rng.randint(1, 60))
        start = {topic: _committed(acked, topic) for topic in zero}
        recovered, _, _ = _run_pipeline(feed, records=written, start=start)
        got = _state(recovered)
        assert got.received == reference.received, seed
        assert got.declared == reference.declared, seed
        assert {k: v[0] for k, v in got.orders.items()} == {k: v[0] for k, v in reference.orders.items()}, seed
        conserved(got)


def test_a_failure_inside_the_domain_rejects_that_message_as_internal_error_and_goes_on():
    calls = []

    def failing_once(requests):
        calls.append(len(requests))
        if len(calls) == 1:
            raise RuntimeError("the tariff file vanished")
        return fake_assess(requests)

    with warehouse_harness(warehouse(assess=failing_once)) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 5)))
        h.feed("orders", order("O-1", ("S1", 1)))
        h.feed("orders", order("O-2", ("S1", 1)))
        rejections = h.sent("rejections")
        assert [(r["reason"], "RuntimeError: the tariff file vanished" in r["detail"]) for r in rejections] == [
            ("internal_error", True)]
        assert h.outputs.delivered == {"O-2"}  # the next message is processed as usual
        assert h.recovered().state.on_hand((WH, "S1")) == 4
        assert [offset for topic, _, offset in h.acked if topic == "orders"] == [0, 1]  # recorded as applied


def test_a_redelivered_message_is_acknowledged_and_changes_nothing():
    with warehouse_harness(warehouse()) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 5)))
        h.feed("orders", order("O-1", ("S1", 2)))
        written = len(h.changelog)
        h.feed("orders", order("O-1", ("S1", 2)), offset=0)  # the same offset again
        assert len(h.changelog) == written and h.acked[-1] == ("orders", 0, 0)
        assert [d["order_id"] for d in h.sent("declarations")] == ["O-1"]


def test_a_crash_before_the_record_repeats_the_same_outputs_and_records_once():
    outputs = FakeOutputs(auto=False)
    with warehouse_harness(warehouse(), outputs=outputs) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 5)), drain=False)
        outputs.resolve(0)
        h.drain()
        h.feed("orders", order("O-1", ("S1", 2)), drain=False)  # sent, never acknowledged
        assert len(h.changelog) == 1
        h.crash()
        outputs.auto = True
        h.feed("orders", order("O-1", ("S1", 2)), offset=0)  # read again from the committed offset
        declarations = h.sent("declarations")
        assert [d["order_id"] for d in declarations] == ["O-1", "O-1"]
        assert declarations[0] == declarations[1]  # same declaration id: consumers deduplicate
        assert h.recovered().state.declared == {(WH, "S1"): 2}


def test_ticks_expire_pending_orders_and_a_tick_with_nothing_to_do_writes_nothing():
    with warehouse_harness(warehouse(hold_seconds=60.0)) as h:
        h.now = 100.0
        h.feed("orders", order("O-1", ("NOPE", 1)))
        h.tick(now=120.0)
        written = len(h.changelog)
        assert h.sent("rejections") == [] and written == 1
        h.tick(now=161.0)
        assert [(r["ref"], r["reason"]) for r in h.sent("rejections")] == [("O-1", "unknown_sku")]
        assert len(h.changelog) == written + 1
        h.tick(now=200.0)
        assert len(h.changelog) == written + 1
        assert not h.recovered().state.pending


def test_each_rejection_names_the_input_it_answers_so_clickhouse_counts_it_once():
    from stream.analytics.rejection_rows import rejection_id

    bad = {"schema": "order/1"}  # the same invalid content twice in a page, and again in a second message
    with warehouse_harness(warehouse(), outputs=FakeOutputs(auto=False)) as h:
        h.feed("orders", {"schema": "page/1", "items": [bad, bad]}, key=WH.encode(), drain=False)
        first = h.sent("rejections")
        h.crash()  # outputs sent, record never written: the message is handled again
        h.feed("orders", {"schema": "page/1", "items": [bad, bad]}, key=WH.encode(), offset=0, drain=False)
        again = h.sent("rejections")[len(first):]
    with warehouse_harness(warehouse()) as h:
        h.feed("orders", {"schema": "page/1", "items": [bad, bad]}, key=WH.encode())
        h.feed("orders", bad, key=WH.encode())
        sources = [r["source"] for r in h.sent("rejections")]
    assert [r["source"] for r in first] == ["orders/0/0/0", "orders/0/0/1"]
    assert again == first  # the repeat is the same rejection, one row in ClickHouse
    assert sources == ["orders/0/0/0", "orders/0/0/1", "orders/0/1/0"]
    ids = {rejection_id(r, "rejections", 0, n) for n, r in enumerate(first + again)}
    assert len(ids) == 2  # two distinct inputs' rejections stay two; their repeats collapse
