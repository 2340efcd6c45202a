"""Two workers share the partitions; one is killed with SIGKILL mid-stream. After the rebalance every
valid order is declared exactly once per distinct id, and stock is conserved per (warehouse, sku)."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import orjson
import pytest

from stream.declaration.ids import declaration_id
from stream.loadgen import FeedConfig, generate, produce
from tests.fixtures.broker import start_broker, stop_broker_process
from tests.fixtures.pipeline import read_all, start_worker, stop_worker

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_sigkill_one_of_two_workers_mid_stream(tmp_path):
    broker = start_broker(partitions=4)
    workers = [start_worker(broker.url, tmp_path, tmp_path / f"worker-{n}.log", CUSTOMS_PARTITIONS=4,
                            CUSTOMS_PENDING_HOLD_SECONDS=600) for n in range(2)]
    try:
        cfg = FeedConfig(orders=6000, page_size=40, warehouses=4, skus=800, seed=11, wave_orders=1500,
                         unclassified_rate=0.0)
        pages = list(generate(cfg))
        manifests = [item for p in pages if p.topic == "goods.inbound" for item in orjson.loads(p.value)["items"]]
        orders = [item for p in pages if p.topic == "orders" for item in orjson.loads(p.value)["items"]]
        # wait until both workers are in the group and serving (a first small wave is declared)
        asyncio.run(produce(pages[:1], broker.bootstrap))
        time.sleep(8)
        killed = threading.Event()

        def kill_later():
            time.sleep(4)
            os.kill(workers[1].pid, signal.SIGKILL)  # mid-stream, no goodbye
            killed.set()

        killer = threading.Thread(target=kill_later)
        killer.start()
        asyncio.run(produce(pages[1:], broker.bootstrap, rate=1200))  # ~8 s of feed
        killer.join()
        assert killed.is_set() and workers[1].wait(5) == -signal.SIGKILL

        wanted = {o["order_id"] for o in orders}
        docs = read_all(broker.bootstrap, ("declarations", "rejections", "stock.movements"),
                        lambda d: wanted <= {x["order_id"] for x in d["declarations"]}, timeout=150, idle=2.0)
        declared = {}
        for d in docs["declarations"]:
            assert d["declaration_id"] == declaration_id(d["order_id"])  # a repeat carries the same id
            declared.setdefault(d["order_id"], d)
        missing = sorted(wanted - set(declared))
        by_wh = {}
        for o in orders:
            if o["order_id"] in set(missing):
                by_wh[o["warehouse_id"]] = by_wh.get(o["warehouse_id"], 0) + 1
        assert not missing, (f"{len(missing)} orders never declared, per warehouse {by_wh}, e.g. {missing[:3]}; "
                             f"rejections {docs['rejections'][:3]}")
        assert len({d["declaration_id"] for d in docs["declarations"]}) == len(wanted)
        assert docs["rejections"] == []
        repeats = len(docs["declarations"]) - len(wanted)
        print(f"declarations: {len(docs['declarations'])} messages, {len(wanted)} distinct ids, {repeats} repeated")

        received, units = {}, {}
        for m in manifests:
            for line in m["lines"]:
                key = (m["warehouse_id"], line["sku"])
                received[key] = received.get(key, 0) + line["qty"]
        for o in orders:
            for line in o["lines"]:
                key = (o["warehouse_id"], line["sku"])
                units[key] = units.get(key, 0) + line["qty"]
        last = {}
        for mv in docs["stock.movements"]:
            key = (mv["warehouse_id"], mv["sku"])
            if key not in last or mv["seq"] >= last[key]["seq"]:
                last[key] = mv
        assert set(last) == set(received)
        for key, mv in last.items():
            assert mv["received"] == received[key], key
            assert mv["declared"] == units.get(key, 0), key
            assert mv["on_hand"] == mv["received"] - mv["declared"] >= 0, key
        assert workers[0].poll() is None, "the survivor died"
    finally:
        for worker in workers:
            stop_worker(worker)
        stop_broker_process(broker.process)
