"""Issue 8 on the real embedded broker: a worker fed hostile pages, an oversized message, a backlog
settled at once, and a broker that starts again, keeps declaring every valid order once."""
from __future__ import annotations

import json
import time

import pytest

from tests.fixtures.broker import start_broker, stop_broker_process
from tests.fixtures.builders import manifest, order
from tests.fixtures.pipeline import produce, read_all, start_worker, stop_worker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

OUT = ("declarations", "rejections", "stock.movements")
PAGE_BYTES = 60_000


def refs(docs, topic):
    return [d.get("order_id") or d.get("ref") for d in docs[topic]]


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening")
    broker = start_broker(partitions=2)
    process = start_worker(broker.url, tmp, tmp / "worker.log", CUSTOMS_PARTITIONS=2, CUSTOMS_PAGE_BYTES=PAGE_BYTES,
                           CUSTOMS_PENDING_HOLD_SECONDS=3600)
    try:
        yield broker, process, tmp / "worker.log"
    finally:
        stop_worker(process)
        stop_broker_process(broker.process)


def test_hostile_oversized_and_backlogged_input_loses_nothing_and_the_worker_lives(worker):
    broker, process, log_path = worker
    wh = "KZ-H1"
    key = wh.encode()
    hostile = order("H1-deep", ("H1-A", 1), wh=wh)
    hostile["extra"] = json.loads("[" * 300 + "]" * 300)
    page = {"schema": "page/1", "items": [order("H1-1", ("H1-A", 1), wh=wh), hostile, order("H1-2", ("H1-A", 1), wh=wh)]}
    big = json.dumps({"schema": "page/1", "items": [order(f"H1-big-{i}", ("H1-A", 1), wh=wh) for i in range(400)]})
    # 300 orders wait for goods that arrive later: their settlement is one record larger than a page
    waiting = [{"schema": "page/1", "items": [order(f"H1-w-{n}-{i}", ("H1-LATE", 1), wh=wh) for i in range(100)]}
               for n in range(3)]
    produce(broker.bootstrap, "goods.inbound", [manifest("H1-M", ("H1-A", 10), wh=wh)], key=key)
    produce(broker.bootstrap, "orders", [json.dumps(page).encode(), big.encode(), *waiting,
                                         order("H1-wrong-key", ("H1-A", 1), wh="KZ-ELSEWHERE")], key=key)
    produce(broker.bootstrap, "goods.inbound", [manifest("H1-M-late", ("H1-LATE", 300), wh=wh)], key=key)
    wanted = {"H1-1", "H1-2"} | {f"H1-w-{n}-{i}" for n in range(3) for i in range(100)}
    docs = read_all(broker.bootstrap, OUT, lambda d: wanted <= set(refs(d, "declarations")), timeout=90, idle=1.0)
    declared = refs(docs, "declarations")
    assert wanted <= set(declared) and len([r for r in declared if r.startswith("H1-")]) == len(wanted)
    reasons = {(r["ref"], r["reason"]) for r in docs["rejections"]}
    assert ("H1-deep", "internal_error") in reasons and ("H1-wrong-key", "wrong_key") in reasons
    assert any(r["reason"] == "too_large" and f"more than the {PAGE_BYTES}" in r["detail"] for r in docs["rejections"])
    assert not any(r.startswith("H1-big-") for r in declared)
    assert process.poll() is None, log_path.read_text()[-3000:]
    assert "MessageSizeTooLarge" not in log_path.read_text()


def test_a_broker_that_starts_again_empty_has_its_new_log_read_from_the_start(tmp_path):
    broker = start_broker(partitions=1)
    process = start_worker(broker.url, tmp_path, tmp_path / "worker.log", CUSTOMS_PARTITIONS=1)
    try:
        wh = "KZ-R1"
        produce(broker.bootstrap, "goods.inbound", [manifest("R1-M", ("R1-A", 100), wh=wh)], key=wh.encode())
        produce(broker.bootstrap, "orders", [order(f"R1-old-{i}", ("R1-A", 1), wh=wh) for i in range(5)],
                key=wh.encode())
        read_all(broker.bootstrap, OUT, lambda d: {f"R1-old-{i}" for i in range(5)} <= set(refs(d, "declarations")))
        port = broker.port
        stop_broker_process(broker.process)
        time.sleep(1.0)
        broker = start_broker(partitions=1, port=port)  # memory-only: every log starts again at offset 0
        new = [f"R1-new-{i}" for i in range(8)]
        produce(broker.bootstrap, "goods.inbound", [manifest("R1-M2", ("R1-A", 100), wh=wh)], key=wh.encode())
        produce(broker.bootstrap, "orders", [order(oid, ("R1-A", 1), wh=wh) for oid in new], key=wh.encode())
        docs = read_all(broker.bootstrap, OUT, lambda d: set(new) <= set(refs(d, "declarations")), timeout=120)
        assert set(new) <= set(refs(docs, "declarations")), (tmp_path / "worker.log").read_text()[-3000:]
        assert process.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        assert "the log started again" in (tmp_path / "worker.log").read_text()
    finally:
        stop_worker(process)
        stop_broker_process(broker.process)
