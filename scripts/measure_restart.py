"""How long a worker killed after N orders takes to declare again (issue 8.8), before/after in one run.

For each mode: a fresh embedded broker, one worker, N orders from the load generator, then the
worker is killed (SIGKILL: no clean leave from the group) and a new one started; the figure is the
time from the new worker's start to its first declaration of an order produced after the kill.

    .venv/bin/python scripts/measure_restart.py --orders 2000000

Modes: ``before`` runs the group timeouts and changelog of the code before issue 8 (session 60 s,
heartbeat 3 s, rebalance 10 s, no snapshots); ``after`` the current defaults (snapshots every
CUSTOMS_SNAPSHOT_RECORDS records, session 10 s, heartbeat 1 s, rebalance 3 s).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.broker import Broker  # noqa: E402
from stream.loadgen import FeedConfig, generate, produce  # noqa: E402
from stream.settings import ENVIRONMENT  # noqa: E402

MODES = {
    "before": {"CUSTOMS_SESSION_TIMEOUT_SECONDS": "60", "CUSTOMS_HEARTBEAT_SECONDS": "3",
               "CUSTOMS_REBALANCE_TIMEOUT_SECONDS": "10", "CUSTOMS_SNAPSHOT_RECORDS": "0"},
    "after": {name: ENVIRONMENT[name][0] for name in ("CUSTOMS_SESSION_TIMEOUT_SECONDS", "CUSTOMS_HEARTBEAT_SECONDS",
                                                      "CUSTOMS_REBALANCE_TIMEOUT_SECONDS", "CUSTOMS_SNAPSHOT_RECORDS")},
}


def start_worker(broker: Broker, data: Path, env: dict, log: Path) -> subprocess.Popen:
    full = dict(os.environ, KAFKA_BROKER=broker.url, CUSTOMS_DATA_DIR=str(data), CUSTOMS_WEB_PORT="0",
                CUSTOMS_METRICS_PORT="0", CLICKHOUSE_URL="", CUSTOMS_PARTITIONS=str(broker.partitions), **env)
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "stream", "worker", "--loglevel", "info"], env=full,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def outputs_count(bootstrap: str, partitions: int) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in ("declarations", "rejections") for p in range(partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def marker(bootstrap: str, order_id: str) -> None:
    """A manifest and an order for a warehouse of its own, produced after the kill."""
    from aiokafka import AIOKafkaProducer

    wh = "KZ-RESTART-01"
    manifest = {"schema": "goods-manifest/1", "manifest_id": f"M-{order_id}", "operator_bin": "123456789012",
                "warehouse_id": wh, "marketplace": "aliexpress", "arrived_at": "2026-11-20T08:15:00Z",
                "lines": [{"sku": "RESTART-SKU", "description": "Men's cotton T-shirt", "hs_code": "6109100000",
                           "origin": "CN", "qty": 10, "unit_price": "4.35", "currency": "USD",
                           "unit_weight_kg": "0.180"}]}
    order = {"schema": "order/1", "order_id": order_id, "marketplace": "aliexpress", "warehouse_id": wh,
             "ordered_at": "2026-11-21T10:00:00+05:00", "buyer": {"iin": "900101300123", "name": "A"},
             "lines": [{"sku": "RESTART-SKU", "qty": 1, "unit_price": "5.10", "currency": "USD"}]}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("goods.inbound", orjson.dumps(manifest), key=wh.encode())
        await producer.send_and_wait("orders", orjson.dumps(order), key=wh.encode())
    finally:
        await producer.stop()


async def restart_and_wait(broker: Broker, data: Path, env: dict, order_id: str, timeout: float):
    """Start the new worker, produce the marker, wait for its answer: (seconds, topic, the new worker)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=16 << 20)
    await consumer.start()
    second = None
    try:
        tps = [TopicPartition(t, p) for t in ("declarations", "rejections") for p in range(broker.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # resolved now: only what comes after the restart is read
        started = time.monotonic()
        second = start_worker(broker, data, env, data / "worker-2.log")
        await marker(broker.bootstrap, order_id)
        wanted = order_id.encode()
        while time.monotonic() - started < timeout:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, messages in batch.items():
                if any(wanted in m.value for m in messages):
                    return time.monotonic() - started, tp.topic, second
        return None, None, second
    finally:
        await consumer.stop()


def run(mode: str, orders: int, partitions: int, workdir: Path) -> dict:
    env = MODES[mode]
    data = workdir / mode
    data.mkdir(parents=True, exist_ok=True)
    broker = Broker(partitions=partitions, log_path=str(data / "broker.log")).start()
    first = second = None
    try:
        first = start_worker(broker, data, env, data / "worker-1.log")
        fed = time.monotonic()
        pages = list(generate(FeedConfig(orders=orders, page_size=1000, warehouses=8)))
        asyncio.run(produce(pages, broker.bootstrap))
        last, stable_since = -1, time.monotonic()
        while True:  # the orders answered (declared, rejected; the rest pending) and nothing more coming
            time.sleep(2.0)
            count = asyncio.run(outputs_count(broker.bootstrap, partitions))
            print(f"{mode}: {count} outputs", file=sys.stderr, flush=True)
            if count != last:
                last, stable_since = count, time.monotonic()
            elif count >= orders * 0.5 and time.monotonic() - stable_since > 8:
                break
            if time.monotonic() - fed > 3600:
                raise TimeoutError(f"{count} outputs after an hour")
        feed_seconds = time.monotonic() - fed - 8
        stop(first, signal.SIGKILL)  # no clean leave: the group waits for the session timeout
        order_id = f"RESTART-{mode}-{int(time.time())}"
        seconds, topic, second = asyncio.run(restart_and_wait(broker, data, env, order_id, timeout=900))
        return {"mode": mode, "orders": orders, "outputs": last, "feed_s": round(feed_seconds, 1),
                "restart_s": None if seconds is None else round(seconds, 1), "answered_on": topic, "env": env}
    finally:
        for process in (first, second):
            if process is not None:
                stop(process, signal.SIGKILL)
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--modes", default="before,after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="restart-") as tmp:
        for mode in args.modes.split(","):
            print(orjson.dumps(run(mode, args.orders, args.partitions, Path(tmp))).decode(), flush=True)


if __name__ == "__main__":
    main()
