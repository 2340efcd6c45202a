"""The warehouse's pure stock logic: receipts, declarations, pending orders, idempotency, replay."""
from __future__ import annotations

import orjson
from hypothesis import given, settings, strategies as st

from stream.declaration.ids import declaration_id
from stream.runtime.state import PartitionState
from stream.warehouse.stock import DECLARED, PENDING, REJECTED, Stock
from tests.fixtures.builders import BIN, WH, conserved, fake_assess, manifest, order

class Log:
    """Runs transactions the way the worker does and keeps every record (the changelog)."""

    def __init__(self):
        self.partition = PartitionState(Stock)
        self.records = []
        self.out = []

    @property
    def stock(self) -> Stock:
        return self.partition.state

    def page(self, docs=(), now=0.0, topic="orders", offset=None, tick_hold=None, requests_seen=None):
        txn = self.stock.begin(now)
        for doc in docs:
            (txn.receive if doc["schema"] == "goods-manifest/1" else txn.order)(doc)
        if topic == "goods.inbound" or tick_hold is not None:
            txn.retry_pending()
        if tick_hold is not None:
            txn.expire(tick_hold)
        requests = txn.requests()
        if requests_seen is not None:
            requests_seen.extend(requests)
        txn.settle(fake_assess(requests))
        check_available_cache(txn)
        movements = txn.movements("2026-11-21T05:00:00Z")
        body = txn.body(page=offset is not None)
        if body is not None or offset is not None:
            record = self.partition.next_record(body, topic if offset is not None else None, offset)
            record = orjson.loads(orjson.dumps(record))  # what the changelog carries
            self.partition.apply_record(record)
            self.records.append(record)
        txn.out.movements = movements
        self.out.append(txn.out)
        return txn.out


def check_available_cache(txn):
    """The transaction's running availability equals its definition for every key it touched."""
    s = txn.stock
    for key, cached in txn.availability.items():
        assert cached == (s.received.get(key, 0) + txn.recv.get(key, 0) - s.declared.get(key, 0)
                          - txn.decl.get(key, 0) - txn.reserved.get(key, 0)), key
    assert all(v == 0 for v in txn.reserved.values())  # every reservation was settled


def test_receive_then_declare_enriches_from_manifest():
    log = Log()
    log.page([manifest("M-1", ("AX-1", 10), ("AX-2", 1))], topic="goods.inbound")
    seen = []
    out = log.page([order("O-1", ("AX-1", 2), ("AX-1", 1))], requests_seen=seen)
    assert [d["order_id"] for d in out.declarations] == ["O-1"]
    decl = out.declarations[0]
    assert decl["declaration_id"] == declaration_id("O-1")
    assert decl["warehouse_id"] == WH and decl["operator_bin"] == BIN
    line = seen[0]["lines"][0]
    assert seen[0]["schema"] == "assessment-request/1" and seen[0]["flow"] == "warehouse"
    assert line["description"] == "Goods AX-1" and line["origin"] == "CN" and line["unit_price"] == "5.10"
    assert line["unit_weight_kg"] == "0.180" and line["category"] == "apparel" and "operator_bin" not in line
    assert log.stock.on_hand((WH, "AX-1")) == 7 and log.stock.declared[(WH, "AX-1")] == 3
    assert log.stock.orders["O-1"][0] == DECLARED
    mv = {m["sku"]: m for m in out.movements}
    assert mv["AX-1"]["declared_qty"] == 3 and mv["AX-1"]["on_hand"] == 7 and mv["AX-1"]["received"] == 10
    conserved(log.stock)


def test_redelivered_manifest_and_order_change_nothing():
    log = Log()
    m = manifest("M-1", ("AX-1", 5))
    log.page([m, m], topic="goods.inbound")
    log.page([m], topic="goods.inbound")
    assert log.stock.received[(WH, "AX-1")] == 5
    o = order("O-1", ("AX-1", 2))
    assert len(log.page([o, o]).declarations) == 1
    again = log.page([o])
    assert again.declarations == [] and again.rejections == []
    assert log.stock.declared[(WH, "AX-1")] == 2


def test_same_id_other_content_is_conflicting_duplicate():
    log = Log()
    log.page([manifest("M-1", ("AX-1", 5))], topic="goods.inbound")
    out = log.page([manifest("M-1", ("AX-1", 50))], topic="goods.inbound")
    assert [r["reason"] for r in out.rejections] == ["conflicting_duplicate"]
    assert log.stock.received[(WH, "AX-1")] == 5
    log.page([order("O-1", ("AX-1", 1))])
    out = log.page([order("O-1", ("AX-1", 2))])
    assert [(r["ref"], r["reason"]) for r in out.rejections] == [("O-1", "conflicting_duplicate")]
    assert log.stock.declared[(WH, "AX-1")] == 1


def test_pending_then_declared_when_goods_arrive():
    log = Log()
    out = log.page([order("O-1", ("AX-1", 3))], now=10.0)
    assert out.declarations == [] and log.stock.pending.keys() == {"O-1"}
    assert log.stock.orders["O-1"][0] == PENDING
    log.page([manifest("M-1", ("AX-1", 2))], topic="goods.inbound", now=11.0)
    assert "O-1" in log.stock.pending  # 2 < 3: still waiting
    out = log.page([manifest("M-2", ("AX-1", 1))], topic="goods.inbound", now=12.0)
    assert [d["order_id"] for d in out.declarations] == ["O-1"]
    assert not log.stock.pending and log.stock.on_hand((WH, "AX-1")) == 0
    conserved(log.stock)


def test_pending_oldest_first_and_never_negative():
    log = Log()
    log.page([order("O-1", ("AX-1", 2))], now=1)
    log.page([order("O-2", ("AX-1", 2))], now=2)
    out = log.page([manifest("M-1", ("AX-1", 3))], topic="goods.inbound", now=3)
    assert [d["order_id"] for d in out.declarations] == ["O-1"]
    assert list(log.stock.pending) == ["O-2"] and log.stock.on_hand((WH, "AX-1")) == 1


def test_pending_rejected_after_hold_with_reason():
    log = Log()
    log.page([manifest("M-1", ("AX-1", 1))], topic="goods.inbound")
    log.page([order("O-short", ("AX-1", 5)), order("O-unknown", ("NOPE", 1))], now=100.0)
    assert log.page(now=150.0, tick_hold=60.0).rejections == []  # not yet
    out = log.page(now=161.0, tick_hold=60.0)
    reasons = {r["ref"]: r["reason"] for r in out.rejections}
    assert reasons == {"O-short": "insufficient_stock", "O-unknown": "unknown_sku"}
    assert not log.stock.pending and log.stock.orders["O-short"][0] == REJECTED
    assert log.stock.on_hand((WH, "AX-1")) == 1
    # a late arrival does not resurrect a rejected order
    out = log.page([manifest("M-2", ("AX-1", 10))], topic="goods.inbound", now=170.0)
    assert out.declarations == []


def test_tick_declares_pending_covered_before_expiring():
    log = Log()
    log.page([order("O-1", ("AX-1", 1))], now=0)
    # stock arrives in a transaction that does not retry (e.g. the order page was first)
    log.page([manifest("M-1", ("AX-1", 1))], topic="orders", now=1)
    out = log.page(now=1000, tick_hold=60)
    assert [d["order_id"] for d in out.declarations] == ["O-1"] and out.rejections == []


def test_assessor_rejection_releases_the_reservation():
    log = Log()
    log.page([manifest("M-1", ("AX-1", 2))], topic="goods.inbound")
    out = log.page([order("O-bad", ("AX-1", 2), currency="XXX"), order("O-good", ("AX-1", 2))])
    assert [r["reason"] for r in out.rejections] == ["unsupported_currency"]
    # O-good was decided before O-bad was assessed: it waits, and the next tick declares it
    assert log.stock.on_hand((WH, "AX-1")) == 2
    out = log.page(now=1, tick_hold=300)
    assert [d["order_id"] for d in out.declarations] == ["O-good"]
    assert log.stock.orders["O-bad"][0] == REJECTED


def test_offsets_mark_applied_pages():
    log = Log()
    log.page([manifest("M-1", ("AX-1", 2))], topic="goods.inbound", offset=7)
    assert log.partition.applied("goods.inbound", 7) and not log.partition.applied("goods.inbound", 8)
    assert not log.partition.applied("orders", 0)
    assert log.records[-1]["offsets"] == {"goods.inbound": 7} and log.stock.seq == 1


def test_empty_transaction_writes_no_record():
    log = Log()
    log.page([])
    assert log.records == []


def test_snapshot_round_trip():
    log = Log()
    log.page([manifest("M-1", ("AX-1", 2), ("AX-2", 4))], topic="goods.inbound", offset=3)
    log.page([order("O-1", ("AX-1", 1)), order("O-2", ("AX-3", 1))], offset=9, now=5.0)
    snap = orjson.loads(orjson.dumps(log.stock.snapshot()))
    copy = Stock.from_snapshot(snap)
    assert vars(copy) == vars(log.stock)
    assert copy.seq == 2 and copy.pending.keys() == {"O-2"} and copy.on_hand((WH, "AX-1")) == 1


_skus = st.sampled_from(["S1", "S2", "S3", "S4"])
_whs = st.sampled_from(["W1", "W2"])
_lines = st.lists(st.tuples(_skus, st.integers(1, 5)), min_size=1, max_size=3)
_event = st.one_of(
    st.tuples(st.just("m"), st.integers(0, 6), _whs, _lines),
    st.tuples(st.just("o"), st.integers(0, 12), _whs, _lines),
    st.tuples(st.just("tick"), st.just(0), _whs, st.just([])),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_event, max_size=6), max_size=12))
def test_conservation_idempotency_and_replay(pages):
    """Any interleaving, with redeliveries and id reuse: stock never negative, received = on hand +
    declared, each order declared at most once, declared units = units of distinct declared orders,
    and replaying the records on an empty state gives the same state."""
    log = Log()
    content = {}
    for i, page in enumerate(pages):
        docs = []
        tick = False
        for kind, n, wh, lines in page:
            if kind == "m":
                docs.append(content.setdefault(("m", n), manifest(f"M-{n}", *lines, wh=wh)))
            elif kind == "o":
                docs.append(content.setdefault(("o", n), order(f"O-{n}", *lines, wh=wh)))
            else:
                tick = True
        topic = "goods.inbound" if any(d["schema"] == "goods-manifest/1" for d in docs) else "orders"
        log.page(docs, now=float(i), topic=topic, tick_hold=5.0 if tick else None)
        conserved(log.stock)
    declared_ids = [d["order_id"] for out in log.out for d in out.declarations]
    assert len(declared_ids) == len(set(declared_ids))
    units = {}
    for oid in declared_ids:
        doc = content[("o", int(oid[2:]))]
        for line in doc["lines"]:
            key = (doc["warehouse_id"], line["sku"])
            units[key] = units.get(key, 0) + line["qty"]
    assert units == {k: v for k, v in log.stock.declared.items() if v}
    received = {}
    for (kind, _), doc in content.items():
        if kind == "m":
            for line in doc["lines"]:
                key = (doc["warehouse_id"], line["sku"])
                received[key] = received.get(key, 0) + line["qty"]
    assert received == log.stock.received
    replayed = PartitionState(Stock)
    for record in log.records + log.records[:3]:  # replaying a record twice changes nothing
        replayed.apply_record(record)
    assert vars(replayed.state) == vars(log.stock)


def test_goods_under_control_are_valued_at_their_manifest_price():
    import datetime as dt

    from stream.rules.fx import RateNotFound
    from stream.warehouse.valuation import StockValuer

    stock = Stock()
    txn = stock.begin(0.0)
    txn.receive({"manifest_id": "M-V", "warehouse_id": "W1", "operator_bin": "123456789012", "lines": [
        {"sku": "A", "qty": 10, "unit_price": "4.35", "currency": "USD", "description": "T-shirt", "origin": "CN",
         "unit_weight_kg": "0.2"},
        {"sku": "B", "qty": 3, "unit_price": "100", "currency": "KZT", "description": "Pen", "origin": "CN",
         "unit_weight_kg": "0.01"}]})
    stock.apply(txn.body())

    per_unit_tiyn = {("4.35", "USD"): 870, ("100", "KZT"): 10000}  # a stand-in rate of KZT 2.00 per USD

    def value_of(units, unit_price, currency):
        return units * per_unit_tiyn[(unit_price, currency)]

    totals = stock.totals(value_of)["W1"]
    assert totals["on_hand"] == 13
    assert totals["value_tiyn"] == 10 * 870 + 3 * 10000
    assert stock.totals()["W1"]["value_tiyn"] == 0  # no valuer, no value

    class Rates:
        asked = []

        def rate_micro(self, currency, day):
            self.asked.append((currency, day))
            if currency != "USD":
                raise RateNotFound("unsupported_currency", currency)
            return 478_250_000  # KZT 478.25

    valuer = StockValuer(Rates(), today=lambda: dt.date(2026, 11, 21))
    # 10 x USD 4.35 x 478.25 = KZT 20 803.875, half up to the tiyn
    assert valuer(10, "4.35", "USD") == 2_080_388
    assert valuer(3, "0.01", "USD") == 1435  # KZT 14.3475 -> 14.35
    assert valuer(1, "1", "XAU") == 0
    assert Rates.asked[0] == ("USD", dt.date(2026, 11, 21))
