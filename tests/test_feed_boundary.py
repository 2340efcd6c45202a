"""The contract boundary inside the real pipeline (in-process, tests/fixtures/harness.py): integral
floats become ints before the stock sees them (no float in any record body or output, after a
tick and a crash too), and a duplicate key rejects only the page item that holds it."""
from __future__ import annotations

import re

import orjson

from stream.warehouse.agents import WarehouseDomain
from tests.fixtures.builders import WH, fake_assess, manifest, order, warehouse_harness


def floats_in(value, path="") -> list[str]:
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in floats_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in floats_in(v, f"{path}[{i}]")]
    return []


def test_no_float_reaches_state_records_or_outputs():
    domain = WarehouseDomain(assess=fake_assess, hold_seconds=5.0)
    with warehouse_harness(domain) as h:
        h.feed("goods.inbound", manifest("F-M1", ("F-A", 10.0), ("F-B", 1e3)))
        h.feed("orders", {"schema": "page/1", "items": [order("F-O1", ("F-A", 2.0)), order("F-O2", ("F-B", 1.0)),
                                                        order("F-O3", ("F-A", 2.5)), order("F-O4", ("F-C", 3.0))]})
        h.tick(now=10.0)  # the pending order expires; valuation runs on the stock
        h.crash()
        h.tick(now=20.0)
        assert sorted(d["order_id"] for d in h.sent("declarations")) == ["F-O1", "F-O2"]
        reasons = {r["ref"]: r["reason"] for r in h.sent("rejections")}
        assert reasons["F-O3"] == "wrong_type"
        assert h.recovered().state.on_hand((WH, "F-A")) == 8
        for _, _, value in h.changelog:  # clock readings (a pending order's first-seen time, the record's
            # `at`, which dates the order ids it remembers) are times, not counts or money
            floats = [p for p in floats_in(orjson.loads(value))
                      if not re.fullmatch(r"\.body\.(padd\.[^.]+\[0\]|at)", p)]
            assert floats == [], value[:300]
        for topic, doc in h.outputs.sent:
            assert floats_in(doc) == [], (topic, doc)


def test_a_duplicate_key_rejects_only_its_item_with_its_ref():
    domain = WarehouseDomain(assess=fake_assess, hold_seconds=3600.0)
    good = orjson.dumps(order("D-1", ("D-A", 1))).decode()
    doubled = orjson.dumps(order("D-2", ("D-A", 1))).decode()[:-1] + ', "warehouse_id": "KZ-OTHER"}'
    with warehouse_harness(domain) as h:
        h.feed("goods.inbound", manifest("D-M", ("D-A", 5)))
        h.feed("orders", f'{{"schema": "page/1", "items": [{good}, {doubled}]}}'.encode(), key=WH.encode())
        assert [d["order_id"] for d in h.sent("declarations")] == ["D-1"]
        [rejected] = h.sent("rejections")
        assert (rejected["ref"], rejected["reason"]) == ("D-2", "duplicate_key")
        assert "warehouse_id" in rejected["detail"]
        h.feed("orders", doubled.encode(), key=WH.encode())  # a single document: the message is rejected
        assert h.sent("rejections")[-1]["reason"] == "duplicate_key"
        assert h.recovered().state.on_hand((WH, "D-A")) == 4
