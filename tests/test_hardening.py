"""Issue 8, the pipeline's items: hostile or unlucky input must never stop a worker, lose an order or
leak a buyer's data. Each defect is reproduced in-process on the real pipeline (DomainHarness), and
the ones that live in the transport on the real broker (tests/test_hardening_broker.py)."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from stream.warehouse.agents import WarehouseDomain
from tests.fixtures.builders import WH, fake_assess, manifest, order, warehouse_harness


def warehouse(**kwargs):
    return WarehouseDomain(assess=kwargs.pop("assess", fake_assess), hold_seconds=kwargs.pop("hold_seconds", 3600.0),
                           **kwargs)


def nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


# -- 4: one hostile item must not lose its page ------------------------------------------------

def test_a_hostile_item_is_rejected_alone_and_the_valid_items_of_its_page_are_declared():
    hostile = order("H-deep", ("S1", 1))
    hostile["extra"] = nested(300)  # orjson reads 1024 levels, writes 254: the content digest fails
    with warehouse_harness(warehouse()) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 10)))
        page = {"schema": "page/1", "items": [order("H-1", ("S1", 1)), hostile, order("H-2", ("S1", 1)),
                                              order("H-3", ("S1", 1))]}
        h.feed("orders", json.dumps(page).encode(), key=WH.encode())  # orjson cannot write it
        assert sorted(d["order_id"] for d in h.sent("declarations")) == ["H-1", "H-2", "H-3"]
        rejections = h.sent("rejections")
        assert [(r["ref"], r["reason"]) for r in rejections] == [("H-deep", "internal_error")]
        assert h.recovered().state.on_hand((WH, "S1")) == 7


# -- 5: input size is enforced before parsing ----------------------------------------------------

class CountingDomain:
    """Wraps a domain and counts the messages it was asked to handle."""

    def __init__(self, inner):
        self.inner, self.handled = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def handle(self, state, topic, key, value, now):
        self.handled += 1
        return self.inner.handle(state, topic, key, value, now)


def test_a_message_over_the_page_limit_is_refused_as_too_large_before_it_is_parsed():
    domain = CountingDomain(warehouse())
    with warehouse_harness(domain, max_input_bytes=20_000) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 10)))
        big = {"schema": "page/1", "items": [order(f"B-{i}", ("S1", 1)) for i in range(200)]}
        raw = json.dumps(big).encode()
        assert len(raw) > 20_000
        h.feed("orders", raw, key=WH.encode())
        h.feed("orders", order("B-ok", ("S1", 1)))
        assert domain.handled == 2  # the big page never reached the parser
        [refused] = h.sent("rejections")
        assert refused["reason"] == "too_large" and refused["ref"] is None
        assert f"{len(raw)} bytes" in refused["detail"] and "20000" in refused["detail"]
        assert [d["order_id"] for d in h.sent("declarations")] == ["B-ok"]
        assert h.recovered().applied("orders", 0)  # recorded: not read again after a restart


# -- 3: changelog records are bounded whatever the page or the backlog ----------------------------

def test_a_backlog_settled_at_once_is_recorded_in_bounded_parts_that_recover_together():
    limit = 8_000
    with warehouse_harness(warehouse(), max_record_bytes=limit) as h:
        for n in range(6):  # 240 orders wait for a manifest
            h.feed("orders", {"schema": "page/1", "items": [order(f"W-{n}-{i}", ("LATE", 1)) for i in range(40)]})
        h.feed("goods.inbound", manifest("M-late", ("LATE", 1000)))  # declares all of them in one transaction
        assert len(h.sent("declarations")) == 240
        assert max(len(value) for _, _, value in h.changelog) <= limit
        live = h.state()
        got = h.recovered().state
        assert got.declared == live.declared == {(WH, "LATE"): 240}
        assert got.orders == live.orders and not got.pending


def test_a_record_whose_parts_were_not_all_written_is_not_applied():
    with warehouse_harness(warehouse(), max_record_bytes=3_000) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 500)))
        h.feed("orders", {"schema": "page/1", "items": [order(f"P-{i}", ("S1", 1)) for i in range(200)]})
        parts = [key for _, key, _ in h.changelog if b"." in key]
        assert len(parts) > 1
        del h.records[parts[0]]  # the worker died while the parts went out
        recovered = h.recovered()
        assert recovered.seq == 1 and recovered.state.declared == {}  # the page is handled again


def test_every_changelog_message_of_a_split_record_is_what_the_schema_says():
    from tests.schema_oracle import schema_validator

    validator = schema_validator("state-record-2.json")
    with warehouse_harness(warehouse(), max_record_bytes=3_000) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 500)))
        h.feed("orders", {"schema": "page/1", "items": [order(f"P-{i}", ("S1", 1)) for i in range(200)]})
        for _, key, value in h.changelog:
            validator.validate(json.loads(value))
        assert sum(b"." in key for _, key, _ in h.changelog) > 1


# -- 7: the cost of a manifest does not grow with the pending backlog ------------------------------

def test_a_manifest_retries_only_the_pending_orders_waiting_for_what_it_brought():
    with warehouse_harness(warehouse()) as h:
        h.feed("orders", {"schema": "page/1", "items": [order(f"Q-{i}", ("ELSEWHERE", 1)) for i in range(500)]})
        h.feed("orders", {"schema": "page/1", "items": [order("Q-b1", ("B", 1)), order("Q-b2", ("B", 2), ("C", 1))]})
        stock = h.state()
        assert len(stock.pending) == 502
        txn = stock.begin(1.0)
        txn.receive(manifest("M-B", ("B", 5)))
        txn.retry_pending(txn.received_keys())
        assert txn.examined == 2  # the orders waiting for B, not the 500 waiting for something else
        assert [c.order["order_id"] for c in txn.candidates] == ["Q-b1"]  # Q-b2 still lacks C
        h.feed("goods.inbound", manifest("M-B", ("B", 5)))
        assert [d["order_id"] for d in h.sent("declarations")] == ["Q-b1"]
        h.feed("goods.inbound", manifest("M-C", ("C", 5)))
        assert [d["order_id"] for d in h.sent("declarations")] == ["Q-b1", "Q-b2"]
        assert h.recovered().state.waiting_for(("KZ-ALA-CW-01", "ELSEWHERE")) == h.state().waiting_for(
            ("KZ-ALA-CW-01", "ELSEWHERE"))


def test_expiry_looks_only_at_the_orders_old_enough():
    with warehouse_harness(warehouse(hold_seconds=100.0)) as h:
        for n in range(5):
            h.now = float(n * 100)
            h.feed("orders", {"schema": "page/1", "items": [order(f"E-{n}-{i}", ("NONE", 1)) for i in range(50)]})
        stock = h.state()
        txn = stock.begin(250.0)
        txn.expire(100.0)
        assert txn.examined == 101  # 100 old enough, and the first one that is not
        h.tick(now=250.0)
        assert len(h.sent("rejections")) == 100 and len(h.state().pending) == 150


# -- 9: no buyer's data in a changelog record ------------------------------------------------------

def test_pending_orders_keep_a_keyed_pseudonym_of_the_buyer_never_the_iin_or_the_name():
    from stream.declaration.v2 import buyer_ref

    secret = b"test-secret"
    with warehouse_harness(warehouse(buyer_secret=secret)) as h:
        waiting = order("PD-1", ("LATER", 1))
        waiting["buyer"] = {"iin": "880514300456", "name": "Zhanna K."}
        h.feed("orders", waiting)
        h.feed("goods.inbound", manifest("M-L", ("LATER", 1)))
        h.tick(now=10.0)
        for _, _, value in h.changelog:
            assert b"880514300456" not in value and b"Zhanna" not in value
        [pending_record] = [json.loads(v) for _, _, v in h.changelog if b"padd" in v]
        kept = pending_record["body"]["padd"]["PD-1"][1]
        assert "buyer" not in kept and kept["buyer_ref"] == buyer_ref("880514300456", secret)
        assert [d["order_id"] for d in h.sent("declarations")] == ["PD-1"]
        assert h.recovered().state.orders["PD-1"][0] == "D"


# -- 11 (the key): a message is keyed by the warehouse its documents name --------------------------

def test_an_item_whose_warehouse_is_not_the_message_key_is_rejected_and_the_others_go_on():
    with warehouse_harness(warehouse()) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 10)), key=WH.encode())
        h.feed("goods.inbound", manifest("M-2", ("S1", 10), wh="KZ-OTHER"), key=WH.encode())
        h.feed("orders", {"schema": "page/1", "items": [order("K-1", ("S1", 1)), order("K-2", ("S1", 1), wh="KZ-OTHER")]},
               key=WH.encode())
        h.feed("orders", order("K-3", ("S1", 1)), key=None)
        rejected = {(r["ref"], r["reason"]) for r in h.sent("rejections")}
        assert rejected == {("M-2", "wrong_key"), ("K-2", "wrong_key"), ("K-3", "wrong_key")}
        detail = [r["detail"] for r in h.sent("rejections") if r["ref"] == "K-2"][0]
        assert "KZ-OTHER" in detail and WH in detail
        assert [d["order_id"] for d in h.sent("declarations")] == ["K-1"]
        assert h.recovered().state.received == {(WH, "S1"): 10}


# -- 6: an input log that starts again is detected, never skipped in silence ----------------------

class FakeLog:
    """What the broker holds at an offset: the digest of the message there (stands in for BrokerProbe)."""

    def __init__(self):
        self.values: dict[tuple[str, int, int], bytes] = {}

    async def digest_at(self, topic, partition, offset):
        from stream.runtime.state import message_digest

        value = self.values.get((topic, partition, offset))
        return None if value is None else message_digest(value)


def test_a_log_that_starts_again_is_read_from_its_start_and_a_plain_redelivery_is_not():
    log = FakeLog()
    with warehouse_harness(warehouse(), log_probe=log) as h:
        first = [manifest("OLD-M", ("S1", 5)), order("OLD-1", ("S1", 1)), order("OLD-2", ("S1", 1))]
        topics = ["goods.inbound", "orders", "orders"]
        for topic, doc in zip(topics, first):
            raw = json.dumps(doc).encode()
            offset = h.feed(topic, raw, key=WH.encode())
            log.values[(topic, 0, offset)] = raw
        # a plain redelivery (the log still holds what was applied): acknowledged, not handled again
        h.crash()
        h.feed("orders", order("OLD-2", ("S1", 1)), offset=1)
        assert [d["order_id"] for d in h.sent("declarations")] == ["OLD-1", "OLD-2"]
        # the broker starts again, empty: the same offsets now hold other messages
        log.values.clear()
        h.rebalance()  # the group forms again on the new broker
        h.feed("orders", order("NEW-1", ("S1", 1)), offset=0)
        h.feed("orders", order("NEW-2", ("S1", 1)), offset=1)
        assert [d["order_id"] for d in h.sent("declarations")] == ["OLD-1", "OLD-2", "NEW-1", "NEW-2"]
        recovered = h.recovered()
        assert recovered.state.declared == {(WH, "S1"): 4} and recovered.offsets["orders"] == 1


# -- 8: state and changelog stay bounded: snapshots replace old records, order ids kept for a window --

def test_a_snapshot_replaces_the_records_before_it_and_recovery_gives_the_same_state():
    with warehouse_harness(warehouse(), snapshot_every=10) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 100)))
        for i in range(25):
            h.feed("orders", order(f"S-{i}", ("S1", 1)))
        h.feed("orders", order("S-wait", ("NONE", 1)))
        h.tick(now=1.0)  # the timer takes the snapshot
        live = h.state()
        heads = sorted(key for key in h.records if b"." not in key)
        assert len(heads) == 1  # one snapshot record, the older ones deleted from the table
        assert json.loads(h.records[heads[0]])["snapshot"] is True
        recovered = h.recovered()
        assert recovered.state.snapshot() == live.snapshot() and recovered.offsets == {"goods.inbound": 0,
                                                                                       "orders": 25}
        h.feed("orders", order("S-1", ("S1", 1)), offset=1)  # a redelivery is still recognised
        h.crash()
        h.feed("orders", order("S-1", ("S1", 1)))  # a feed repeating an order: caught by id
        assert sorted(d["order_id"] for d in h.sent("declarations")) == sorted(f"S-{i}" for i in range(25))


def test_order_ids_are_kept_for_the_window_and_forgotten_after_it():
    with warehouse_harness(warehouse(order_ids_seconds=1000.0)) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 100)))
        h.now = 10.0
        h.feed("orders", order("W-old", ("S1", 1)))
        h.now = 900.0
        h.feed("orders", order("W-new", ("S1", 1)))
        h.feed("orders", order("W-pending", ("NONE", 1)))
        h.tick(now=1500.0)
        stock = h.state()
        assert "W-old" not in stock.orders and "W-new" in stock.orders and "W-pending" in stock.orders
        assert h.recovered().state.orders.keys() == stock.orders.keys()
        h.feed("orders", order("W-new", ("S1", 1)))  # inside the window: recognised
        assert [d["order_id"] for d in h.sent("declarations")] == ["W-old", "W-new"]


# -- the whole: random pages (valid, malformed, hostile, oversized, mis-keyed) through the pipeline --

_kinds = st.sampled_from(["valid", "valid", "valid", "malformed_item", "hostile", "wrong_key", "duplicate"])
_message = st.one_of(
    st.tuples(st.just("page"), st.lists(_kinds, min_size=1, max_size=6)),
    st.tuples(st.just("garbage"), st.binary(max_size=40)),
    st.tuples(st.just("oversized"), st.just([])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_message, min_size=1, max_size=8), st.booleans())
def test_random_feeds_declare_every_valid_order_once_and_reject_every_bad_item_by_its_ref(messages, crash):
    valid, bad = set(), set()
    n = 0
    with warehouse_harness(warehouse(), max_input_bytes=30_000, max_record_bytes=6_000) as h:
        h.feed("goods.inbound", manifest("FZ-M", ("FZ", 10_000)))
        for i, (kind, content) in enumerate(messages):
            if kind == "garbage":
                h.feed("orders", content, key=WH.encode())
                continue
            if kind == "oversized":
                items = [order(f"FZ-big-{i}-{j}", ("FZ", 1)) for j in range(150)]
                h.feed("orders", json.dumps({"schema": "page/1", "items": items}).encode(), key=WH.encode())
                continue
            items = []
            for item_kind in content:
                n += 1
                oid = f"FZ-{n}"
                doc = order(oid, ("FZ", 1))
                if item_kind == "valid":
                    valid.add(oid)
                elif item_kind == "duplicate" and valid:
                    doc = order(sorted(valid)[0], ("FZ", 1))  # the same order again: declared once
                elif item_kind == "malformed_item":
                    doc["lines"][0]["qty"] = "two"
                    bad.add(oid)
                elif item_kind == "hostile":
                    doc["extra"] = json.loads("[" * 300 + "]" * 300)
                    bad.add(oid)
                else:
                    doc = order(oid, ("FZ", 1), wh="KZ-ELSEWHERE")
                    bad.add(oid)
                items.append(doc)
            h.feed("orders", json.dumps({"schema": "page/1", "items": items}).encode(), key=WH.encode())
            if crash and i % 3 == 2:
                h.crash()
        declared = [d["order_id"] for d in h.sent("declarations")]
        assert sorted(declared) == sorted(valid)  # every valid order once, nothing else
        rejected_refs = {r["ref"] for r in h.sent("rejections")}
        assert bad <= rejected_refs
        assert not any(r.startswith("FZ-big-") for r in declared)
        assert h.recovered().state.declared.get((WH, "FZ"), 0) == len(valid)
