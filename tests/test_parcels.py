"""The parcel flow (stream/declaration/parcels.py) on the runtime pipeline, in-process: declarations/2 for
valid parcels, rejections with reasons, redeliveries and crashes that declare nothing twice, bounded state."""
from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.contracts.reasons import REASONS
from stream.declaration.ids import declaration_id
from stream.declaration.parcels import ParcelsState, parcels_domain
from stream.money import parse_tiyn, percent_of
from stream.runtime.topics import DECLARATIONS, PARCELS, REJECTIONS
from stream.settings import Settings
from tests.fixtures.harness import DomainHarness
from tests.schema_oracle import schema_validator

DECLARATION_2 = schema_validator("declaration-2.json")
IIN = "900101300123"
DAY = 86_400.0


def parcel(n: int, price: str = "150.00", **changes) -> dict:
    doc = {"schema": "assessment-request/1", "order_id": f"PX-{n}", "flow": "parcel", "marketplace": "temu",
           "ordered_at": "2026-11-21T10:00:00+05:00", "buyer": {"iin": IIN, "name": "Aigerim S."},
           "lines": [{"sku": f"SKU-{n}", "qty": 2, "unit_price": price, "currency": "EUR",
                      "description": "Men's cotton T-shirt, knitted", "hs_code": "6109100000", "origin": "CN",
                      "unit_weight_kg": "0.180"}]}
    doc.update(changes)
    return doc


def page(*items) -> dict:
    return {"schema": "page/1", "items": list(items)}


@pytest.fixture(scope="module")
def domain_factory():
    from stream.declaration.engine import Assessor
    from stream.rules import load_rules

    cfg = Settings()
    assessor = Assessor(load_rules(cfg))

    def make(**changes):
        domain = parcels_domain(cfg, assessor=assessor)
        domain.operator_bin = "123456789012"
        for name, value in changes.items():
            setattr(domain, name, value)
        return domain
    return make


def test_parcels_are_declared_as_declaration_2(domain_factory):
    with DomainHarness(domain_factory()) as h:
        h.feed(PARCELS, page(parcel(1), parcel(2, price="10.00")), key=b"P-1")
        h.feed(PARCELS, parcel(3, price="400.00"), key=b"PX-3")
        declared = h.sent(DECLARATIONS)
        assert [d["order_id"] for d in declared] == ["PX-1", "PX-2", "PX-3"]
        for doc in declared:
            DECLARATION_2.validate(doc)
            assert doc["flow"] == "parcel" and doc["warehouse_id"] is None
            assert doc["operator_bin"] == "123456789012" and doc["declaration_id"] == declaration_id(doc["order_id"])
            assert len(doc["buyer_ref"]) == 64
        # EUR 20 is under the EUR 200 per parcel; above it the 2026-07 rules charge 5% of the whole value
        # (more than EUR 1 per kg here) and VAT 16% on value + duty, exactly
        assert declared[1]["duty"] == "0.00" and declared[1]["vat"] == "0.00"
        value = parse_tiyn(declared[2]["customs_value"])
        duty = percent_of(value, "5")
        assert declared[2]["rule_set"] == "eaeu-ecommerce-2026-07"
        assert parse_tiyn(declared[2]["duty"]) == duty
        assert parse_tiyn(declared[2]["vat"]) == percent_of(value + duty, "16")
        # the IIN and the name never leave the worker, nor does any record carry them
        everything = orjson.dumps(h.outputs.sent) + b"".join(v for _, _, v in h.changelog)
        assert IIN.encode() not in everything and b"Aigerim" not in everything


def test_bad_parcels_are_rejected_alone(domain_factory):
    with DomainHarness(domain_factory()) as h:
        h.feed(PARCELS, page(parcel(1), parcel(2, flow="warehouse"), {"schema": "order/1"}, parcel(3, qty=1),
                             parcel(4, lines=[]), parcel(5, operator_bin="12"), parcel(6)), key=b"P")
        h.feed(PARCELS, b"{oops", key=b"P")
        h.feed(PARCELS, page(), key=b"P")
        assert [d["order_id"] for d in h.sent(DECLARATIONS)] == ["PX-1", "PX-3", "PX-6"]
        reasons = [(r["ref"], r["reason"]) for r in h.sent(REJECTIONS)]
        assert reasons == [("PX-2", "unknown_flow"), (None, "unknown_schema"), ("PX-4", "empty_lines"),
                           ("PX-5", "invalid_code"), (None, "malformed_json"), (None, "empty_lines")]
        for rejected in h.sent(REJECTIONS):
            assert rejected["reason"] in REASONS and IIN not in rejected["detail"]


def test_no_operator_no_declaration(domain_factory):
    with DomainHarness(domain_factory(operator_bin="")) as h:
        h.feed(PARCELS, page(parcel(1), parcel(2, operator_bin="123456789012")), key=b"P")
        assert [d["order_id"] for d in h.sent(DECLARATIONS)] == ["PX-2"]
        assert [r["reason"] for r in h.sent(REJECTIONS)] == ["missing_field"]


def test_a_redelivered_parcel_is_declared_once(domain_factory):
    with DomainHarness(domain_factory()) as h:
        h.feed(PARCELS, page(parcel(1), parcel(2)), key=b"P")
        h.feed(PARCELS, page(parcel(1), parcel(2), parcel(1)), key=b"P")           # the feed sends it again
        h.feed(PARCELS, parcel(2, price="1.00"), key=b"P")                          # same id, other content
        h.feed(PARCELS, page(parcel(7, currency_missing=True), parcel(7)), key=b"P")  # twice in one page
        assert sorted(d["order_id"] for d in h.sent(DECLARATIONS)) == ["PX-1", "PX-2", "PX-7"]
        assert [r["reason"] for r in h.sent(REJECTIONS)] == ["conflicting_duplicate", "conflicting_duplicate"]


def test_an_assessment_rejection_is_remembered_too(domain_factory):
    with DomainHarness(domain_factory()) as h:
        bad = parcel(1)
        bad["lines"][0]["currency"] = "XXX"
        h.feed(PARCELS, bad, key=b"PX-1")
        h.feed(PARCELS, bad, key=b"PX-1")
        assert [r["reason"] for r in h.sent(REJECTIONS)] == ["unsupported_currency"]


@pytest.mark.parametrize("seed", range(5))
def test_a_crash_anywhere_declares_every_parcel_once(domain_factory, seed):
    rng = random.Random(seed)
    messages = [page(*(parcel(10 * m + i, price=f"{50 + 37 * i}.00") for i in range(5))) for m in range(8)]
    with DomainHarness(domain_factory()) as h:
        position = 0
        crashes = 0
        while position < len(messages):
            h.feed(PARCELS, messages[position], key=b"P", offset=position, drain=rng.random() < 0.5)
            position += 1
            if rng.random() < 0.3 and crashes < 4:
                crashes += 1
                h.crash()
                position = h.pipeline.state(0).offsets.get(PARCELS, -1) + 1
        h.drain()
        declared: dict[str, dict] = {}
        for doc in h.sent(DECLARATIONS):
            # a repeat after a crash is the same declaration, with the same id
            assert declared.setdefault(doc["order_id"], doc) == doc
        assert len(declared) == 40 and not h.sent(REJECTIONS)
        assert len(h.recovered().state.orders) == 40


def test_order_ids_are_forgotten_after_the_dedup_window(domain_factory):
    domain = domain_factory(dedup_days=3)
    with DomainHarness(domain) as h:
        h.now = 10 * DAY
        h.feed(PARCELS, page(parcel(1), parcel(2)), key=b"P")
        h.tick(now=13 * DAY)
        assert len(h.state().orders) == 2
        h.tick(now=14 * DAY)
        assert h.state().orders == {} and h.recovered().state.orders == {}


def test_the_state_survives_its_snapshot():
    state = ParcelsState(0)
    state.apply({"o": {"PX-1": ["D", "abc", 3]}})
    again = ParcelsState(0)
    again.apply(orjson.loads(orjson.dumps(state.snapshot())))
    assert again.orders == state.orders


_junk = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), st.text(max_size=8),
                  st.lists(st.integers(-9, 9), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(-9, 9), max_size=2))


@given(st.one_of(st.binary(max_size=64),
                 st.dictionaries(st.sampled_from(sorted(parcel(1)) + ["x"]), _junk, max_size=4).map(
                     lambda change: orjson.dumps(page(dict(parcel(1), **change)))),
                 st.lists(st.sampled_from(["qty", "unit_price", "currency", "origin", "unit_weight_kg", "hs_code"]),
                          max_size=3).map(lambda keys: orjson.dumps(
                              {**parcel(2), "lines": [{k: v for k, v in parcel(2)["lines"][0].items()
                                                       if k not in keys}]}))))
def test_no_message_crashes_the_flow(domain_factory, raw):
    domain = domain_factory()
    state = domain.new_state(0)
    effects = domain.handle(state, PARCELS, b"P", raw, 0.0)
    for topic, messages in effects.outputs.items():
        for _, value in messages:
            doc = orjson.loads(value)
            if topic == REJECTIONS:
                assert doc["reason"] in REASONS
            else:
                DECLARATION_2.validate(doc)


def test_a_parcel_declaration_has_clickhouse_rows(domain_factory):
    """A parcel has no warehouse: its declaration still becomes a row and its lines (warehouse_id '')."""
    from stream.analytics.rows import Source
    from stream.warehouse.rows import declaration_rows

    with DomainHarness(domain_factory()) as h:
        h.feed(PARCELS, parcel(7, price="400.00"), key=b"PX-7")
        declared = h.sent(DECLARATIONS)
    rows = declaration_rows(declared, Source(DECLARATIONS, 0))
    assert [row[:3] for row in rows["declarations"]] == [(declared[0]["declaration_id"], "PX-7", "")]
    assert len(rows["declaration_lines"]) == 1 and rows["declaration_lines"][0][3] == ""
