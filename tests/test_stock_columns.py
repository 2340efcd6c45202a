"""The warehouse's columns kernel (ext/columns.pyx) against its twin and against the old path.

- compiled vs twin, byte for byte: declaration/2 and stock-movement/1 writers on generated pages and
  on hostile strings (escapes, control characters, non-ASCII, lone surrogates: orjson's bytes or
  orjson's error), and the page reservation on random columns;
- old path vs new path, on generated feeds (valid and spoiled items): the worker's outputs
  (declarations, movements, rejections) and record bodies equal what the dict path gives
  (``settle`` without ``write``, ``orjson.dumps`` of every dict, each order reserved on its own).
"""
from __future__ import annotations

import importlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from stream import _backend, settings as stream_settings
from stream.declaration.v2 import DeclarationBuilder, Source, declaration_doc
from stream.loadgen import FeedConfig, generate
from stream.runtime.topics import DECLARATIONS, MOVEMENTS, REJECTIONS
from stream.warehouse import _columns_py as twin, agents, columns
from stream.warehouse.stock import Candidate, Txn, _need
from tests.fixtures.builders import fake_assess

try:
    compiled = importlib.import_module("stream.warehouse._columns")
except ImportError:  # the guard test below says why this must not happen outside pure-Python runs
    compiled = None

needs_compiled = pytest.mark.skipif(compiled is None, reason="compiled kernel not built")
KERNELS = [pytest.param(twin, id="twin"), pytest.param(compiled, id="compiled", marks=needs_compiled)]
SECRET = b"columns-test-secret"
AT = "2026-11-21T05:00:00.000000Z"


def test_compiled_kernel_is_used_unless_pure_python_is_asked_for():
    if _backend.PURE_PYTHON:
        assert columns.backend() == "python"
    else:
        assert compiled is not None, "stream.warehouse._columns is missing: run `make build`"
        assert columns.backend() == "compiled"


# -- the old path, as it was: one reservation per order, dicts serialised by orjson ----------------

def _old_order(self: Txn, order: dict) -> None:
    """Txn.order before columns: the order reserved on arrival (``_reserve`` over its need)."""
    from stream.warehouse.stock import PENDING, digest

    oid = order["order_id"]
    dig = digest(order)
    seen = self._order_status(oid)
    if seen is not None:
        if seen[1] != dig:
            self.reject(oid, "conflicting_duplicate", f"order {oid} was received before with different content")
        return
    self.order_lines += len(order["lines"])
    need = _need(order)
    if self._reserve(need):
        self._candidates.append(Candidate(order, list(need.items()), dig, False))
        self.o[oid] = [PENDING, dig]
    else:
        self.o[oid] = [PENDING, dig]
        self.padd[oid] = [self.now, self._kept(order)]


class OldDomain(agents.WarehouseDomain):
    """The worker's domain with the dict path: ``settle`` builds dicts, every output is orjson.dumps."""

    def _decide(self, txn, page):
        requests = txn.requests()
        if requests:
            txn.settle(self.assess(requests), requests, self.declarations)
        movements = txn.movements(agents._now_iso())
        out = txn.out
        per_topic = {}
        if out.declarations:
            per_topic[DECLARATIONS] = [(d["warehouse_id"].encode(), orjson.dumps(d)) for d in out.declarations]
        if out.rejections:
            per_topic[REJECTIONS] = [(None, orjson.dumps(r)) for r in out.rejections]
        if movements:
            per_topic[MOVEMENTS] = [(m["warehouse_id"].encode(), orjson.dumps(m)) for m in movements]
        return agents.Effects(per_topic, txn.body(page=page), agents._counts(out) if self.metrics is not None else None)


class Metrics:
    """Takes the domain's metric calls (so the counts are computed, and compared)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _run(dom, pages, monkeypatch, old: bool):
    monkeypatch.setattr(agents, "_now_iso", lambda: AT)
    if old:
        monkeypatch.setattr(Txn, "order", _old_order)
    states, seen = {}, []
    now = 1_800_000_000.0
    for n, page in enumerate(pages):
        state = states.get(page.key)
        if state is None:
            state = states[page.key] = dom.new_state(len(states))
        effects = dom.handle(state, page.topic, page.key, page.value, now)
        if effects.body is not None:
            state.apply(effects.body)
        seen.append((effects.outputs, orjson.dumps(effects.body), effects.counts))
        if n % 7 == 6:  # now and then a tick: retries and expiry through the same columns
            for state in states.values():
                ticked = dom.tick(state, now)
                if ticked is not None:
                    if ticked.body is not None:
                        state.apply(ticked.body)
                    seen.append((ticked.outputs, orjson.dumps(ticked.body), ticked.counts))
        now += 7.0
    monkeypatch.undo()
    return seen, {key: orjson.dumps(state.snapshot()) for key, state in states.items()}


def _feed(**kwargs) -> list:
    cfg = dict(orders=1500, page_size=100, warehouses=2, skus=300, wave_orders=500, invalid_rate=0.05)
    cfg.update(kwargs)
    pages = list(generate(FeedConfig(**cfg)))
    # orders before their goods too, and every page twice (redeliveries, conflicting duplicates)
    orders = [p for p in pages if p.topic == "orders"]
    return orders[:3] + pages + pages[::5]


@pytest.fixture(scope="module")
def real_assessor():
    from stream.declaration.engine import Assessor
    from stream.rules import load_rules

    return Assessor(load_rules(stream_settings.load()))


@pytest.mark.parametrize("seed", [3, 11])
def test_new_path_equals_old_path_byte_for_byte(real_assessor, monkeypatch, seed):
    """Declarations, movements, rejections, bodies and final state: the same bytes either way."""
    def make(cls):
        return cls(assess=lambda docs: real_assessor.assess(docs, validated=True), hold_seconds=30.0,
                   buyer_secret=SECRET, order_ids_seconds=600.0, metrics=Metrics())

    pages = _feed(seed=seed)
    new, new_state = _run(make(agents.WarehouseDomain), pages, monkeypatch, old=False)
    old, old_state = _run(make(OldDomain), pages, monkeypatch, old=True)
    assert len(new) == len(old)
    declared = pending_seen = 0
    for (new_out, new_body, new_counts), (old_out, old_body, old_counts) in zip(new, old):
        assert new_out == old_out
        assert new_body == old_body
        assert new_counts == old_counts and new_counts is not None
        declared += len(new_out.get(DECLARATIONS, ()))
        pending_seen += b'"padd"' in new_body
    assert new_state == old_state
    assert declared > 500 and pending_seen  # the feed exercised declarations and pending orders


@needs_compiled
@pytest.mark.parametrize("seed", [2, 13])
def test_compiled_kernel_equals_twin_on_generated_feeds(real_assessor, monkeypatch, seed):
    """The whole worker on the compiled kernel and on its twin (reservation, requests, settle, the
    declaration heads and bytes, movements): the same outputs, bodies and state, byte for byte."""
    from stream.declaration import v2
    from stream.warehouse import stock

    def make():
        return agents.WarehouseDomain(assess=lambda docs: real_assessor.assess(docs, validated=True),
                                      hold_seconds=25.0, buyer_secret=SECRET, order_ids_seconds=500.0,
                                      metrics=Metrics())

    pages = _feed(seed=seed, skus=120)
    monkeypatch.setattr(stock, "_columns", compiled)
    monkeypatch.setattr(v2, "_writer", lambda: compiled)
    on_compiled = _run(make(), pages, monkeypatch, old=False)
    monkeypatch.setattr(stock, "_columns", twin)
    monkeypatch.setattr(v2, "_writer", lambda: twin)
    on_twin = _run(make(), pages, monkeypatch, old=False)
    assert on_compiled == on_twin
    assert sum(len(out.get(DECLARATIONS, ())) for out, _, _ in on_twin[0]) > 300


@needs_compiled
@settings(max_examples=200, deadline=None)
@given(secret=st.binary(max_size=100), iins=st.lists(st.text(max_size=14), min_size=1, max_size=4),
       refs=st.lists(st.none() | st.text(max_size=8), min_size=4, max_size=4))
def test_declaration_heads_compiled_equal_the_builders(secret, iins, refs):
    """The compiled writer's heads (HMAC from the keyed inner/outer hashes, the declaration id from
    the seeded hash) equal DeclarationBuilder._head (hmac, declaration_id) for any secret."""
    builder = DeclarationBuilder(secret=secret)
    sources = []
    for n, iin in enumerate(iins):
        request = {"order_id": f"O-{iin}", "ordered_at": "2026-11-02T09:00:00+05:00", "marketplace": refs[n % 4],
                   "lines": []}
        if n % 2:
            request["buyer"] = {"iin": iin}
        else:
            request["buyer_ref"] = refs[(n + 1) % 4]
        assessment = {"order_id": request["order_id"], "lines": [], "flags": [],
                      **dict.fromkeys(("flow", "declared_at", "rule_set", "currency", "fx", "customs_value",
                                       "duty", "excise", "vat", "total"), "x")}
        sources.append(Source(assessment, request, None if n == 3 else "WH", "123456789012", refs[n % 4]))
    args = (sources, [], [], {}, builder._weight, builder._head, builder._hashers)
    assert compiled.declarations(*args) == twin.declarations(*args)


def test_new_path_equals_old_path_with_the_fake_assessor_rejecting(monkeypatch):
    """Assessor rejections give the reservation back, in both paths alike."""
    def assess(requests):
        out = fake_assess(requests)
        return [r if n % 3 else {"schema": "rejection/1", "ref": q["order_id"], "reason": "unsupported_currency",
                                 "detail": "x"} for n, (r, q) in enumerate(zip(out, requests))]

    def make(cls):
        return cls(assess=assess, hold_seconds=20.0, buyer_secret=SECRET)

    pages = _feed(seed=5, skus=40, orders=800)
    new, new_state = _run(make(agents.WarehouseDomain), pages, monkeypatch, old=False)
    old, old_state = _run(make(OldDomain), pages, monkeypatch, old=True)
    assert new == old and new_state == old_state


# -- compiled vs twin: the writers ---------------------------------------------------------------

def _sources(real_assessor, pages) -> list[tuple]:
    """(head, assessment, request lines, codes, permille) of every declaration the pages make."""
    builder = DeclarationBuilder(secret=SECRET)
    got = []

    def capture(sources):
        for source in sources:
            lines = source.request["lines"]
            codes, permille = builder.classifier.classify_batch([line["description"] for line in lines],
                                                                [line.get("category") for line in lines])
            got.append((builder._head(source), source.assessment, lines, list(codes), permille.tolist()))
        return builder.build_many(sources)

    dom = agents.WarehouseDomain(assess=lambda docs: real_assessor.assess(docs, validated=True), hold_seconds=30.0,
                                 buyer_secret=SECRET)
    dom.declarations.build_many = capture
    states = {}
    for page in pages:
        state = states.setdefault(page.key, dom.new_state(0))
        txn = state.begin(1.8e9)
        agents.parse_message(page.value, page.topic, txn, page.key)
        requests = txn.requests()
        if requests:
            txn.settle(dom.assess(requests), requests, dom.declarations)
        state.apply(txn.body())
    return got


@needs_compiled
def test_declaration_writer_compiled_equals_twin_on_generated_pages(real_assessor):
    builder = DeclarationBuilder(secret=SECRET)
    sources = _sources(real_assessor, list(generate(FeedConfig(orders=600, page_size=100, skus=200, seed=9))))
    assert len(sources) > 300
    classified = 0
    for head, assessment, lines, codes, permille in sources:
        expected = orjson.dumps(declaration_doc(head, assessment, lines, codes, permille, builder._weight))
        assert twin.declaration(head, assessment, lines, codes, permille, builder._weights, builder._weight) == expected
        assert compiled.declaration(head, assessment, lines, codes, permille, builder._weights,
                                    builder._weight) == expected
        classified += b'"hs_classified"' in expected
    assert classified  # the optional fields were written too


def test_write_many_equals_build_many(real_assessor):
    """The builder's bytes are orjson.dumps of its dicts (either backend)."""
    builder = DeclarationBuilder(secret=SECRET)
    pairs = []
    for head, assessment, lines, _, _ in _sources(real_assessor, list(generate(FeedConfig(orders=300, page_size=100,
                                                                                          skus=100, seed=4)))):
        request = {"order_id": head[0], "ordered_at": head[6], "marketplace": head[4], "buyer_ref": head[5],
                   "lines": lines}
        pairs.append(Source(assessment, request, head[2], head[3]))
    assert [orjson.dumps(d) for d in builder.build_many(pairs)] == builder.write_many(pairs)


TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12)
VALUE = st.one_of(TEXT, st.none(), st.integers(-(1 << 70), 1 << 70), st.booleans(),
                  st.floats(allow_nan=False), st.lists(TEXT, max_size=3),
                  st.dictionaries(TEXT, TEXT, max_size=3), st.dictionaries(TEXT, st.lists(st.integers()), max_size=2))


def _both(call):
    """The result of ``call`` as bytes or as the type of its error."""
    try:
        return call()
    except Exception as exc:  # orjson's errors are part of the contract: same type either way
        return type(exc)


@needs_compiled
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(head=st.tuples(*([VALUE] * 7)), fields=st.lists(VALUE, min_size=10, max_size=10),
       lines=st.lists(st.tuples(st.lists(TEXT, min_size=7, max_size=7), TEXT, st.integers(1, 10**6), TEXT, TEXT,
                                st.sampled_from(["declared", "classified"]), st.integers(0, 1000)), max_size=3),
       flags=st.lists(TEXT, max_size=3))
def test_declaration_writer_compiled_equals_twin_on_any_strings(head, fields, lines, flags):
    names = ("flow", "declared_at", "rule_set", "currency", "fx", "customs_value", "duty", "excise", "vat", "total")
    assessment = dict(zip(names, fields), flags=flags, lines=[])
    asked, codes, permille = [], [], []
    for texts, origin, qty, weight, description, source, conf in lines:
        line = dict(zip(("sku", "hs_code", "hs_source", "value", "duty", "excise", "vat"), texts))
        line["hs_source"] = source
        assessment["lines"].append(line)
        asked.append({"origin": origin, "qty": qty, "unit_weight_kg": weight, "description": description})
        codes.append(texts[1][::-1])
        permille.append(conf)
    weights = {}

    def weight(q, w):
        return f"{w}x{q}"

    expected = _both(lambda: twin.declaration(head, assessment, asked, codes, permille, weights, weight))
    assert _both(lambda: compiled.declaration(head, assessment, asked, codes, permille, weights, weight)) == expected


@needs_compiled
@settings(max_examples=300)
@given(wh=VALUE, sku=VALUE, at=VALUE, numbers=st.lists(st.integers(-(1 << 65), 1 << 65), min_size=6, max_size=6))
def test_movement_writer_compiled_equals_twin(wh, sku, at, numbers):
    partition, seq, rq, dq, received, declared = numbers
    args = (wh, sku, at, partition, seq, rq, dq, received, declared)
    assert _both(lambda: compiled.movement(*args)) == _both(lambda: twin.movement(*args))


def test_movement_values_are_the_movements_serialised():
    from stream.warehouse.stock import Stock
    from tests.fixtures.builders import manifest, order

    stock = Stock(3)
    txn = stock.begin(0.0)
    txn.receive(manifest("M-1", ("A", 5), ("B\u00e9\"\n", 2)))
    txn.order(order("O-1", ("A", 2)))
    requests = txn.requests()
    txn.settle(fake_assess(requests))
    assert txn.movement_values(AT) == [(m["warehouse_id"].encode(), orjson.dumps(m)) for m in txn.movements(AT)]


# -- compiled vs twin: the reservation ---------------------------------------------------------

@pytest.mark.parametrize("kernel", KERNELS)
def test_reserve_examples(kernel):
    import numpy as np

    def run(avail, slots, qty, starts):
        if kernel is twin:
            return kernel.reserve(avail, slots, qty, starts), avail
        a = np.array(avail, np.int64)
        ok = kernel.reserve(a, *(np.array(c, np.int64) for c in (slots, qty, starts)))
        return ok, a.tolist()

    # order 0 takes 3 of slot 0; order 1 needs 2+2 of slot 0 (only 2 left): waits; order 2 an unknown SKU
    assert run([5, 1], [0, 0, 0, -1, 1], [3, 2, 2, 1, 1], [0, 1, 3, 5]) == ([1, 0, 0], [2, 1])
    assert run([], [], [], [0]) == ([], [])


@settings(max_examples=300)
@given(data=st.data())
def test_reserve_compiled_equals_twin_equals_one_order_at_a_time(data):
    slots_n = data.draw(st.integers(1, 6))
    avail = data.draw(st.lists(st.integers(0, 20), min_size=slots_n, max_size=slots_n))
    orders = data.draw(st.lists(st.lists(st.tuples(st.integers(-1, slots_n - 1), st.integers(1, 8)), min_size=1,
                                         max_size=4), max_size=12))
    slots = [s for o in orders for s, _ in o]
    qty = [q for o in orders for _, q in o]
    starts = [0]
    for o in orders:
        starts.append(starts[-1] + len(o))
    # the reference: Txn._reserve's rule, one order at a time over aggregated needs
    ref_avail, ref_ok = list(avail), []
    for o in orders:
        need = {}
        for s, q in o:
            need[s] = need.get(s, 0) + q
        ok = all(s >= 0 and ref_avail[s] >= q for s, q in need.items())
        if ok:
            for s, q in need.items():
                ref_avail[s] -= q
        ref_ok.append(int(ok))
    twin_avail = list(avail)
    assert twin.reserve(twin_avail, slots, qty, starts) == ref_ok and twin_avail == ref_avail
    via = list(avail)
    assert columns.reserve(via, slots, qty, starts) == ref_ok and via == ref_avail


# -- totals kept between ticks -------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["recv", "decl", "facts", "totals", "day"]), st.integers(0, 5),
                                st.integers(1, 9)), max_size=40))
def test_totals_kept_between_calls_equal_a_full_valuation(steps):
    """`Stock.totals` with a token (values only the keys changed since) equals the full pass."""
    from stream.warehouse.stock import Stock

    day = [0]

    def value_of(units, price, currency):
        return units * int(price) * (3 + day[0]) + len(currency)

    stock = Stock(0)
    for kind, sku, n in steps:
        key = ["WH-1" if sku % 2 else "WH-2", f"S-{sku}"]
        if kind == "recv":
            stock.apply({"recv": [[*key, n]], "facts": [[*key, {"unit_price": str(n), "currency": "USD"}]]})
        elif kind == "decl" and stock.on_hand(tuple(key)) >= n:
            stock.apply({"decl": [[*key, n]]})
        elif kind == "facts" and tuple(key) in stock.facts:
            stock.apply({"facts": [[*key, {"unit_price": str(n * 2), "currency": "EUR"}]]})
        elif kind == "day":
            day[0] += 1
        assert stock.totals(value_of, token=("v", day[0])) == stock.totals(value_of)
