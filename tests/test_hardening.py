"""Issue 8, the pipeline's items: hostile or unlucky input must never stop a worker, lose an order or
leak a buyer's data. Each defect is reproduced in-process on the real pipeline (DomainHarness), and
the ones that live in the transport on the real broker (tests/test_hardening_broker.py)."""
from __future__ import annotations

import json

from stream.warehouse.agents import WarehouseDomain
from tests.fixtures.builders import WH, fake_assess, manifest, order
from tests.fixtures.harness import DomainHarness


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
    with DomainHarness(warehouse()) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 10)))
        page = {"schema": "page/1", "items": [order("H-1", ("S1", 1)), hostile, order("H-2", ("S1", 1)),
                                              order("H-3", ("S1", 1))]}
        h.feed("orders", json.dumps(page).encode())  # orjson cannot write it
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
    with DomainHarness(domain, max_input_bytes=20_000) as h:
        h.feed("goods.inbound", manifest("M-1", ("S1", 10)))
        big = {"schema": "page/1", "items": [order(f"B-{i}", ("S1", 1)) for i in range(200)]}
        raw = json.dumps(big).encode()
        assert len(raw) > 20_000
        h.feed("orders", raw)
        h.feed("orders", order("B-ok", ("S1", 1)))
        assert domain.handled == 2  # the big page never reached the parser
        [refused] = h.sent("rejections")
        assert refused["reason"] == "too_large" and refused["ref"] is None
        assert f"{len(raw)} bytes" in refused["detail"] and "20000" in refused["detail"]
        assert [d["order_id"] for d in h.sent("declarations")] == ["B-ok"]
        assert h.recovered().applied("orders", 0)  # recorded: not read again after a restart
