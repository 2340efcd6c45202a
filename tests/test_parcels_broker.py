"""The parcel flow on a real broker: a worker running `parcels_domain` is SIGKILLed mid-stream; a new one
declares every parcel, none twice differently, and no IIN reaches an output topic."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest

from stream.declaration.ids import declaration_id
from stream.runtime.topics import DECLARATIONS, PARCELS, REJECTIONS
from tests.fixtures.broker import start_broker, stop_broker_process
from tests.fixtures.pipeline import FAST_GROUP_ENV, read_all, stop_worker
from tests.schema_oracle import schema_validator

pytestmark = [pytest.mark.broker, pytest.mark.slow]

IIN = "900101300123"
DECLARATION_2 = schema_validator("declaration-2.json")
# the worker the integrator will start with `--domains` once the parcel flow is wired into load_domains
WORKER = """
import asyncio, faust
from stream import metrics, settings
from stream.app import create_app
from stream.broker import bootstrap_of, ensure_topics
from stream.declaration.parcels import parcels_domain
from stream.runtime.app import table_of
from stream.runtime.topics import topic_plan

cfg = settings.load()
domain = parcels_domain(cfg)
asyncio.run(ensure_topics(bootstrap_of(cfg.broker), topic_plan(cfg.partitions, cfg.app_id, (table_of(domain),))))
faust.Worker(create_app(cfg, [domain], metrics=metrics), loglevel="INFO", quiet=True).execute_from_commandline()
"""


def start_parcels_worker(broker_url: str, tmp_path, name: str) -> subprocess.Popen:
    env = dict(os.environ, **FAST_GROUP_ENV, KAFKA_BROKER=broker_url, CUSTOMS_DATA_DIR=str(tmp_path),
               CUSTOMS_PARTITIONS="2", CUSTOMS_PARCEL_OPERATOR_BIN="123456789012", CUSTOMS_APP_ID="parcels-test")
    log = open(tmp_path / f"{name}.log", "ab")
    try:
        return subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=env, start_new_session=True)
    finally:
        log.close()


def parcel(n: int) -> dict:
    return {"schema": "assessment-request/1", "order_id": f"PB-{n}", "flow": "parcel", "marketplace": "temu",
            "ordered_at": "2026-11-21T10:00:00+05:00", "buyer": {"iin": IIN, "name": "Aigerim S."},
            "lines": [{"sku": f"SKU-{n}", "qty": 1 + n % 3, "unit_price": f"{20 + 13 * n}.50", "currency": "USD",
                       "description": "Wireless earbuds with charging case", "hs_code": "8518300000",
                       "origin": "CN", "unit_weight_kg": "0.120"}]}


def send(bootstrap: str, messages: list[tuple[bytes, bytes]], pause: float) -> None:
    from aiokafka import AIOKafkaProducer

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(PARCELS, value, key=key)
                await asyncio.sleep(pause)
        finally:
            await producer.stop()

    asyncio.run(go())


def test_parcels_on_a_real_broker_survive_a_sigkill(tmp_path):
    broker = start_broker(partitions=2)
    worker = start_parcels_worker(broker.url, tmp_path, "worker-1")
    try:
        pages = [(f"PAGE-{p}".encode(), orjson.dumps({"schema": "page/1", "items": [parcel(10 * p + i)
                                                                                  for i in range(10)]}))
                 for p in range(30)]
        bad = [(b"BAD-1", orjson.dumps({**parcel(999), "flow": "warehouse"})), (b"BAD-2", b"{not json")]
        send(broker.bootstrap, pages[:2] + bad, pause=0.0)
        # wait until the worker serves, then kill it in the middle of the rest
        read_all(broker.bootstrap, (DECLARATIONS,), lambda d: len(d[DECLARATIONS]) >= 20, timeout=90)
        killed = threading.Event()

        def kill_later():
            time.sleep(1.0)
            os.kill(worker.pid, signal.SIGKILL)
            killed.set()

        killer = threading.Thread(target=kill_later)
        killer.start()
        send(broker.bootstrap, pages[2:] + pages[:3], pause=0.08)  # the first pages come again: a feed's retry
        killer.join()
        assert killed.is_set() and worker.wait(10) == -signal.SIGKILL
        worker = start_parcels_worker(broker.url, tmp_path, "worker-2")

        wanted = {f"PB-{n}" for n in range(300)}
        docs = read_all(broker.bootstrap, (DECLARATIONS, REJECTIONS),
                        lambda d: wanted <= {x["order_id"] for x in d[DECLARATIONS]}, timeout=150, idle=3.0)
        declared: dict[str, dict] = {}
        for doc in docs[DECLARATIONS]:
            DECLARATION_2.validate(doc)
            assert doc["declaration_id"] == declaration_id(doc["order_id"]) and doc["warehouse_id"] is None
            # a declaration repeated after the kill is the same declaration
            assert declared.setdefault(doc["order_id"], doc) == doc
        assert set(declared) == wanted
        assert {r["reason"] for r in docs[REJECTIONS]} == {"unknown_flow", "malformed_json"}
        everything = orjson.dumps(docs)
        assert IIN.encode() not in everything and b"Aigerim" not in everything
    finally:
        stop_worker(worker)
        stop_broker_process(broker.process)
