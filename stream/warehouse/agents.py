"""The warehouse domain: goods.inbound and orders in; declarations, rejections, stock.movements out.

The first domain on the shared runtime (stream/runtime/): the runtime consumes both co-partitioned
inputs, keeps one `Stock` per partition (stream/warehouse/stock.py) rebuilt from the `stock` table's
changelog, and delivers the outputs before each record. This module is the page handler: for each
input message (a `page/1` or a single document)

1. parse and validate every item; invalid ones become `rejection/1`;
2. a stock transaction receives manifests, reserves stock for orders (or parks them as pending),
   and the assessor prices all candidates of the page in one batch;
3. the transaction's body (its effects on the stock) and its outputs are handed to the runtime.

The timer retries pending orders the stock now covers and rejects those that waited the hold
time. Manifests and orders repeated by a feed are caught by id and content digest in the stock.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, Callable

import orjson

from stream.declaration.v2 import DeclarationBuilder
from stream.money import parse_tiyn
from stream.runtime.domain import Effects
from stream.runtime.topics import DECLARATIONS, INBOUND, MOVEMENTS, ORDERS, REJECTIONS, STOCK_TABLE
from stream.warehouse.intake import parse_message
from stream.warehouse.stock import Outcome, Stock, Txn

log = logging.getLogger(__name__)


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tick_seconds(hold_seconds: float) -> float:
    """How often pending orders are re-checked: a quarter of the hold time, within [0.2 s, 5 s]."""
    return min(max(hold_seconds / 4, 0.2), 5.0)


class WarehouseDomain:
    """Customs warehouse stock per partition; declarations when buyers' orders are covered."""

    name = "warehouse"
    table = STOCK_TABLE  # the changelog `{app_id}-stock-changelog` predates the runtime: kept
    inputs = (INBOUND, ORDERS)
    outputs = (DECLARATIONS, REJECTIONS, MOVEMENTS)
    rejections = REJECTIONS

    def __init__(self, *, assess: Callable[[list[dict]], list[dict]], hold_seconds: float,
                 metrics: Any = None, value_of: Callable[[int, str, str], int] | None = None,
                 buyer_secret: bytes | None = None, order_ids_seconds: float = 7 * 86400.0):
        self.assess = assess
        self.order_ids_seconds = order_ids_seconds  # how long an order id is remembered
        self.buyer_secret = buyer_secret  # None: CUSTOMS_BUYER_SECRET
        self.hold_seconds = hold_seconds
        self.tick_seconds = tick_seconds(hold_seconds)
        self.metrics = metrics
        self.value_of = value_of
        # declaration/2: what a post-release check needs (marketplace, buyer_ref, per-line facts)
        self.declarations = DeclarationBuilder(secret=buyer_secret)

    def new_state(self, partition: int) -> Stock:
        return Stock(partition, self.buyer_secret)

    def handle(self, state: Stock, topic: str, key: bytes | None, value: bytes | None, now: float) -> Effects:
        started = time.perf_counter()
        txn = state.begin(now)
        parse_message(value, topic, txn, key)
        if topic == INBOUND:
            txn.retry_pending(txn.received_keys())
        effects = self._decide(txn, page=True)
        if self.metrics is not None:
            kind = "manifest" if topic == INBOUND else "order"
            self.metrics.record_ingested(kind, txn.manifest_lines if topic == INBOUND else txn.order_lines)
            self.metrics.observe_batch(kind + "_page", time.perf_counter() - started)
        return effects

    def tick(self, state: Stock, now: float) -> Effects | None:
        oldest = state.oldest_order_time()
        forget = oldest is not None and oldest < now - self.order_ids_seconds
        if not state.pending and not forget:
            return None
        txn = state.begin(now)
        if state.pending:
            txn.retry_pending()
            txn.expire(self.hold_seconds)
        if forget:
            txn.forget_order_ids(now - self.order_ids_seconds)
        return self._decide(txn, page=False)

    def _decide(self, txn: Txn, page: bool) -> Effects:
        """Assess, settle and serialise the outputs; the body is applied by the runtime."""
        requests = txn.requests()
        if requests:
            started = time.perf_counter()
            txn.settle(self.assess(requests), requests, self.declarations, write=True)
            if self.metrics is not None:
                self.metrics.observe_batch("assess", time.perf_counter() - started)
        movements = txn.movement_values(_now_iso())
        out = txn.out
        dumps = orjson.dumps
        per_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
        if out.written:  # declaration/2 bytes from the columns kernel, keyed by warehouse
            keys: dict[str, bytes] = {}
            per_topic[DECLARATIONS] = [(keys.get(wh) or keys.setdefault(wh, wh.encode()), value)
                                       for (wh, _, _, _), value in zip(out.declared, out.written)]
        if out.declarations:
            per_topic.setdefault(DECLARATIONS, []).extend((d["warehouse_id"].encode(), dumps(d))
                                                          for d in out.declarations)
        if out.rejections:
            per_topic[REJECTIONS] = [(None, dumps(r)) for r in out.rejections]
        if movements:
            per_topic[MOVEMENTS] = movements
        counts = _counts(out) if self.metrics is not None else None
        return Effects(per_topic, txn.body(page=page), counts)

    def on_delivered(self, counts) -> None:
        m = self.metrics
        by_wh, reasons = counts
        for wh, (count, duty, excise, vat) in by_wh.items():
            m.record_declarations(wh, count, duty, excise, vat)
        for reason, count in reasons.items():
            m.record_rejections(reason, count)

    def observe(self, states: dict[int, Stock]) -> None:
        """Gauges after each tick: pending orders, and stock (units, value) per warehouse."""
        if self.metrics is None:
            return
        self.metrics.set_pending(sum(len(stock.pending) for stock in states.values()))
        # the valuer's answers depend on the day (its rate): the totals are kept per partition and
        # only what changed since the last tick is valued again, unless the day changed
        today = getattr(self.value_of, "today", None)
        token = (id(self.value_of), today()) if today is not None else ("none",) if self.value_of is None else None
        for wh, row in totals(states.values(), self.value_of, token).items():
            self.metrics.set_stock(wh, row["on_hand"], row["value_tiyn"])


def totals(stocks, value_of=None, token=None) -> dict[str, dict[str, int]]:
    """Stock totals per warehouse over the partitions given (``token``: see `Stock.totals`)."""
    out: dict[str, dict[str, int]] = {}
    for stock in stocks:
        for wh, row in stock.totals(value_of, token).items():
            acc = out.setdefault(wh, dict.fromkeys(row, 0))
            for k, v in row.items():
                acc[k] += v
    return out


def _counts(out: Outcome) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Declarations (count, duty, excise, VAT in tiyn) per warehouse and rejections per reason."""
    by_wh: dict[str, list[int]] = {}
    declared = out.declared + [(d["warehouse_id"], d["duty"], d["excise"], d["vat"]) for d in out.declarations]
    for wh, duty, excise, vat in declared:
        row = by_wh.get(wh)
        if row is None:
            row = by_wh[wh] = [0, 0, 0, 0]
        row[0] += 1
        row[1] += parse_tiyn(duty)
        row[2] += parse_tiyn(excise)
        row[3] += parse_tiyn(vat)
    reasons: dict[str, int] = {}
    for r in out.rejections:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return by_wh, reasons


def domain(cfg, *, assessor=None, metrics=None) -> WarehouseDomain:
    """The warehouse domain for a worker. ``assessor`` defaults to the rules in ``cfg``."""
    from stream.warehouse.valuation import StockValuer

    if assessor is None:
        from stream.declaration.engine import Assessor
        from stream.rules import load_rules

        assessor = Assessor(load_rules(cfg))
    from stream.settings import env

    return WarehouseDomain(assess=lambda docs: assessor.assess(docs, validated=True),
                           hold_seconds=cfg.pending_hold_seconds, metrics=metrics,
                           value_of=StockValuer(assessor.rules.fx),
                           order_ids_seconds=float(env("CUSTOMS_ORDER_IDS_HOURS")) * 3600.0)
