"""The worker on the real embedded broker: manifests and orders in, declarations out."""
from __future__ import annotations

import time

import pytest

from stream.declaration.ids import declaration_id
from tests.fixtures.broker import start_broker, stop_broker_process
from tests.fixtures.pipeline import produce, read_all, start_worker, stop_worker
from tests.schema_oracle import schema_validator
from tests.fixtures.builders import manifest, order

pytestmark = [pytest.mark.broker, pytest.mark.slow]

HOLD = 4.0
OUT = ("declarations", "rejections", "stock.movements")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    broker = start_broker(partitions=2)
    worker = start_worker(broker.url, tmp, tmp / "worker.log", CUSTOMS_PENDING_HOLD_SECONDS=HOLD,
                          CUSTOMS_PARTITIONS=2)
    try:
        yield broker
        assert worker.poll() is None, (tmp / "worker.log").read_text()[-3000:]
    finally:
        stop_worker(worker)
        stop_broker_process(broker.process)


def refs(docs, topic):
    return [d.get("order_id") or d.get("ref") for d in docs[topic]]


def last_movement(docs, wh, sku):
    rows = [m for m in docs["stock.movements"] if m["warehouse_id"] == wh and m["sku"] == sku]
    return max(rows, key=lambda m: m["seq"]) if rows else None


def test_manifest_then_orders_declared(pipeline):
    wh = "KZ-T1"
    produce(pipeline.bootstrap, "goods.inbound",
            [{"schema": "page/1", "items": [manifest("T1-M1", ("T1-A", 5), wh=wh), manifest("T1-M2", ("T1-B", 2), wh=wh)]}],
            key=wh.encode())
    produce(pipeline.bootstrap, "orders",
            [{"schema": "page/1", "items": [order("T1-O1", ("T1-A", 2), wh=wh), order("T1-O2", ("T1-B", 1), ("T1-A", 1), wh=wh)]},
             order("T1-O3", ("T1-A", 1), wh=wh)], key=wh.encode())
    # outputs on different topics arrive in no set order: keep reading a moment for the movements
    docs = read_all(pipeline.bootstrap, OUT, lambda d: {"T1-O1", "T1-O2", "T1-O3"} <= set(refs(d, "declarations")),
                    idle=1.0)
    declared = {d["order_id"]: d for d in docs["declarations"] if d["order_id"].startswith("T1-")}
    assert set(declared) == {"T1-O1", "T1-O2", "T1-O3"}
    d = declared["T1-O2"]
    assert d["schema"] == "declaration/2" and d["flow"] == "warehouse" and d["declared_at"] == "2026-11-21"
    assert d["declaration_id"] == declaration_id("T1-O2") and d["warehouse_id"] == wh
    assert d["operator_bin"] == "123456789012"
    assert d["lines"][0]["hs_code"] == "6109100000" and d["lines"][0]["hs_source"] == "declared"
    assert last_movement(docs, wh, "T1-A")["on_hand"] == 1
    # declaration/2 carries what a later check needs: per line quantity, origin, weight and description
    assert [(line["sku"], line["qty"]) for line in d["lines"]] == [("T1-B", 1), ("T1-A", 1)]
    assert all(line["origin"] and line["weight_kg"] and line["description"] for line in d["lines"])
    assert d["marketplace"] and "buyer" not in d
    for topic, schema_file in (("declarations", "declaration-2.json"), ("stock.movements", "stock-movement-1.json"),
                               ("rejections", "rejection-1.json")):
        validator = schema_validator(schema_file)
        for doc in docs[topic]:
            validator.validate(doc)  # what the worker emits is what the contract says
    assert last_movement(docs, wh, "T1-B") == {**last_movement(docs, wh, "T1-B"), "received": 2, "declared": 1,
                                               "on_hand": 1}


def test_redelivery_is_idempotent(pipeline):
    wh = "KZ-T2"
    m = manifest("T2-M1", ("T2-A", 3), wh=wh)
    o = order("T2-O1", ("T2-A", 2), wh=wh)
    produce(pipeline.bootstrap, "goods.inbound", [m, m], key=wh.encode())
    produce(pipeline.bootstrap, "orders", [o], key=wh.encode())
    read_all(pipeline.bootstrap, OUT, lambda d: "T2-O1" in refs(d, "declarations"))
    # the feed sends everything again, one by one and inside a page
    produce(pipeline.bootstrap, "goods.inbound", [m, {"schema": "page/1", "items": [m]}], key=wh.encode())
    produce(pipeline.bootstrap, "orders", [o, {"schema": "page/1", "items": [o, o]}, order("T2-O2", ("T2-A", 1), wh=wh)],
            key=wh.encode())
    docs = read_all(pipeline.bootstrap, OUT, lambda d: "T2-O2" in refs(d, "declarations"), idle=1.0)
    assert refs(docs, "declarations").count("T2-O1") == 1
    assert [r for r in docs["rejections"] if (r["ref"] or "").startswith("T2-")] == []
    assert last_movement(docs, wh, "T2-A") == {**last_movement(docs, wh, "T2-A"), "received": 3, "declared": 3,
                                               "on_hand": 0}


def test_pending_then_declared_when_goods_arrive(pipeline):
    wh = "KZ-T3"
    produce(pipeline.bootstrap, "orders", [order("T3-O1", ("T3-A", 2), wh=wh)], key=wh.encode())
    time.sleep(1.0)
    produce(pipeline.bootstrap, "goods.inbound", [manifest("T3-M1", ("T3-A", 2), wh=wh)], key=wh.encode())
    docs = read_all(pipeline.bootstrap, OUT, lambda d: "T3-O1" in refs(d, "declarations"))
    assert "T3-O1" in refs(docs, "declarations")
    assert "T3-O1" not in refs(docs, "rejections")


def test_pending_then_rejected_after_hold(pipeline):
    wh = "KZ-T4"
    produce(pipeline.bootstrap, "goods.inbound", [manifest("T4-M1", ("T4-A", 1), wh=wh)], key=wh.encode())
    started = time.monotonic()
    produce(pipeline.bootstrap, "orders", [order("T4-short", ("T4-A", 5), wh=wh), order("T4-unknown", ("NOPE", 1), wh=wh)],
            key=wh.encode())
    docs = read_all(pipeline.bootstrap, OUT, lambda d: {"T4-short", "T4-unknown"} <= set(refs(d, "rejections")))
    assert time.monotonic() - started >= HOLD
    reasons = {r["ref"]: r["reason"] for r in docs["rejections"]}
    assert reasons["T4-short"] == "insufficient_stock" and reasons["T4-unknown"] == "unknown_sku"
    assert "T4-short" not in refs(docs, "declarations")
    assert last_movement(docs, wh, "T4-A")["on_hand"] == 1


def test_invalid_input_rejected_and_worker_survives(pipeline):
    wh = "KZ-T5"
    bad_qty = order("T5-bad-qty", ("T5-A", 1), wh=wh)
    bad_qty["lines"][0]["qty"] = 0
    float_money = order("T5-float", ("T5-A", 1), wh=wh)
    float_money["lines"][0]["unit_price"] = 5.1
    produce(pipeline.bootstrap, "orders", [
        b"\xff\xfe not json", b"[1, 2]", b"", {"schema": "order/9", "order_id": "T5-v9"}, bad_qty,
        {"schema": "page/1", "items": [float_money, manifest("T5-wrong-topic", ("T5-A", 1), wh=wh)]},
        {"schema": "page/1", "items": []},
    ], key=wh.encode())
    produce(pipeline.bootstrap, "goods.inbound", [b"{", manifest("T5-M1", ("T5-A", 3), wh=wh)], key=wh.encode())
    produce(pipeline.bootstrap, "orders", [order("T5-ok", ("T5-A", 1), wh=wh)], key=wh.encode())
    docs = read_all(pipeline.bootstrap, OUT, lambda d: "T5-ok" in refs(d, "declarations"), idle=1.0)
    reasons = [(r["ref"], r["reason"]) for r in docs["rejections"]]
    for expected in [("T5-v9", "unknown_schema"), ("T5-bad-qty", "out_of_range"), ("T5-float", "wrong_type"),
                     ("T5-wrong-topic", "unknown_schema")]:
        assert expected in reasons
    assert sum(1 for ref, reason in reasons if ref is None and reason == "malformed_json") >= 3
    assert (None, "not_an_object") in reasons and (None, "empty_lines") in reasons
    for r in docs["rejections"]:
        assert set(r) == {"schema", "ref", "reason", "detail", "source"} and r["schema"] == "rejection/1"
        topic, partition, offset, item = r["source"].split("/")  # the input it answers
        assert topic in ("goods.inbound", "orders", "warehouse.tick")  # an input, or the timer (expiry)
        assert partition.isdigit() and offset.isdigit() and item.isdigit()
    assert "T5-ok" in refs(docs, "declarations")
