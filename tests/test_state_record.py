"""The state record's envelope (stream/runtime/state.py, schemas/state-record-2.json) and the
recovery of a changelog written before it existed (tests/fixtures/data/warehouse-changelog-v1.json)."""
from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.runtime.state import PartitionState, UnknownRecordVersion, envelope_of, record_key
from stream.warehouse.agents import WarehouseDomain
from stream.warehouse.stock import Stock
from tests.fixtures.builders import fake_assess, manifest, order, warehouse_harness
from tests.schema_oracle import schema_validator

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "data" / "warehouse-changelog-v1.json").read_text())
RECORD = schema_validator("state-record-2.json")


def rebuilt_from_fixture(partition: int) -> PartitionState:
    state = PartitionState(lambda: Stock(partition))
    for p, _key, record in FIXTURE["changelog"]:
        if p == partition:
            state.apply_record(record)
    return state


@pytest.mark.parametrize("partition", [0, 1])
def test_a_changelog_written_by_the_warehouse_before_the_runtime_recovers_the_same_stock(partition):
    expected = FIXTURE["snapshots"][str(partition)]
    got = rebuilt_from_fixture(partition)
    assert got.seq == expected["seq"] and got.offsets == expected["offsets"]
    snapshot = orjson.loads(orjson.dumps(got.state.snapshot()))
    assert {k: v for k, v in snapshot.items() if k not in ("seq", "ot")} == {
        k: v for k, v in expected.items() if k not in ("seq", "offsets")}
    assert snapshot["ot"] == {}  # ids recorded before times were kept are remembered, not timed out
    assert got.state.seq == expected["seq"]  # stock movements go on numbering where they were


def test_the_recovered_old_state_goes_on_with_new_records():
    with warehouse_harness(WarehouseDomain(assess=fake_assess, hold_seconds=3600)) as h:
        for partition, key, record in FIXTURE["changelog"]:
            h.records[key.encode()] = orjson.dumps(record)
        before = rebuilt_from_fixture(0)
        h.feed("goods.inbound", manifest("M0-new", ("E", 1), wh="KZ-FX-0"), offset=before.offsets["goods.inbound"] + 1)
        h.feed("goods.inbound", manifest("M0-1", ("A", 5), ("B", 2), wh="KZ-FX-0"), offset=0)  # applied long ago
        h.feed("orders", order("O0-8", ("E", 1), wh="KZ-FX-0"), offset=before.offsets["orders"] + 1)
        assert [d["order_id"] for d in h.sent("declarations")] == ["O0-8"]
        movements = h.sent("stock.movements")
        assert movements[0]["seq"] == before.seq + 1 and movements[0]["received"] == 1
        for _, _, value in h.changelog:
            RECORD.validate(orjson.loads(value))
        assert h.recovered().seq == before.seq + 2  # the redelivered manifest wrote no record


def test_records_the_runtime_writes_are_what_the_schema_says():
    with warehouse_harness(WarehouseDomain(assess=fake_assess, hold_seconds=10)) as h:
        h.feed("goods.inbound", {"schema": "page/1", "items": [manifest("M-1", ("S", 2))]})
        h.feed("orders", order("O-1", ("S", 1)))
        h.feed("orders", order("O-2", ("X", 1)))
        h.feed("orders", b"not json")
        h.tick(now=100.0)
        records = [orjson.loads(value) for _, _, value in h.changelog]
        assert len(records) == 5 and [r["seq"] for r in records] == [1, 2, 3, 4, 5]
        for record in records:
            RECORD.validate(record)
        assert records[-1]["offsets"] == {} and records[3].get("body") == {}
        snapshot = h.pipeline.state(0).snapshot_record()
        RECORD.validate(orjson.loads(orjson.dumps(snapshot)))


def test_a_snapshot_record_replaces_everything_before_it():
    with warehouse_harness(WarehouseDomain(assess=fake_assess, hold_seconds=3600)) as h:
        h.feed("goods.inbound", manifest("M-1", ("S", 3)))
        h.feed("orders", order("O-1", ("S", 1)))
        snapshot = orjson.loads(orjson.dumps(h.pipeline.state(0).snapshot_record()))
    state = PartitionState(Stock)
    state.apply_record({"v": 2, "seq": 1, "offsets": {"orders": 0}, "body": {"recv": [["W", "Z", 9]]}})
    state.apply_record({**snapshot, "seq": 2})
    assert state.state.received == {("KZ-ALA-CW-01", "S"): 3} and state.offsets == {"goods.inbound": 0, "orders": 0}


def test_a_record_of_an_unknown_version_is_refused_not_misread():
    with pytest.raises(UnknownRecordVersion):
        envelope_of({"v": 3, "seq": 1, "offsets": {}})
    with pytest.raises(UnknownRecordVersion):
        envelope_of({"v": 1, "seq": 1})


@given(st.integers(0, 99), st.integers(1, 10**11))
def test_record_keys_sort_in_seq_order(partition, seq):
    assert record_key(partition, seq) < record_key(partition, seq + 1)
    assert record_key(partition, seq).startswith(f"{partition}:".encode())
