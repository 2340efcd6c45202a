"""Worker → output topics → ClickHouse, across a worker killed mid-stream: every declaration and
movement arrives, once after deduplication, with the money of the declarations on the topic."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import orjson
import pytest

from stream.loadgen import FeedConfig, generate, produce
from tests.fixtures.pipeline import read_all, start_worker, stop_worker

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse, pytest.mark.slow]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def tiyn(amount: str) -> int:
    whole, _, fraction = amount.partition(".")
    return int(whole) * 100 + int(fraction)


def test_every_row_reaches_clickhouse_once_across_a_worker_crash(broker, clickhouse_server, clickhouse_url, tmp_path):
    database = clickhouse_url.rsplit("/", 1)[1]

    def scalar(sql: str) -> int:
        return int(clickhouse_server.query(sql, database=database)[0][0])

    env = dict(CLICKHOUSE_URL=clickhouse_url, CUSTOMS_SINK_MAX_AGE_SECONDS="0.5", CUSTOMS_SINK_BATCH_ROWS="300",
               CUSTOMS_PENDING_HOLD_SECONDS="600")
    pages = list(generate(FeedConfig(orders=3000, page_size=50, warehouses=2, skus=300, seed=5, wave_orders=1000)))
    half = len(pages) // 2
    first = start_worker(broker.url, tmp_path, tmp_path / "worker-1.log", **env)
    second = None
    try:
        asyncio.run(produce(pages[:half], broker.bootstrap))
        wait_for(lambda: scalar("SELECT count() FROM declarations") > 0, 90, "the first rows in ClickHouse")
        os.kill(first.pid, signal.SIGKILL)  # whatever it had buffered and not committed is read again
        assert first.wait(10) == -signal.SIGKILL
        second = start_worker(broker.url, tmp_path, tmp_path / "worker-2.log", **env)
        asyncio.run(produce(pages[half:], broker.bootstrap))

        orders = {item["order_id"] for page in pages if page.topic == "orders"
                  for item in orjson.loads(page.value)["items"]}
        docs = read_all(broker.bootstrap, ("declarations", "stock.movements"),
                        lambda d: orders <= {x["order_id"] for x in d["declarations"]}, timeout=150, idle=1.0)
        declarations = {d["declaration_id"]: d for d in docs["declarations"]}
        assert len(declarations) == len(orders)
        movements = {(m["partition"], m["seq"], m["warehouse_id"], m["sku"]) for m in docs["stock.movements"]}

        wait_for(lambda: scalar("SELECT uniqExact(declaration_id) FROM declarations") == len(declarations), 90,
                 "every declaration in ClickHouse")
        assert scalar("SELECT count() FROM declarations FINAL") == len(declarations)
        assert scalar("SELECT sum(duty_tiyn) FROM declarations FINAL") == sum(
            tiyn(d["duty"]) for d in declarations.values())
        assert scalar("SELECT sum(vat_tiyn) FROM declarations FINAL") == sum(tiyn(d["vat"]) for d in declarations.values())
        lines = sum(len(d["lines"]) for d in declarations.values())
        wait_for(lambda: scalar("SELECT count() FROM declaration_lines FINAL") == lines, 60, "every declaration line")
        received = sum(m["received_qty"] for m in docs["stock.movements"]
                       if (m["partition"], m["seq"], m["warehouse_id"], m["sku"]) in movements)
        assert received > 0
        wait_for(lambda: scalar("SELECT uniqExact(movement_id) FROM stock_movements") >= len(movements), 60,
                 "every stock movement")
    finally:
        for worker in (first, second):
            if worker is not None:
                stop_worker(worker)
