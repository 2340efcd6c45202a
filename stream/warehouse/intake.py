"""Warehouse intake: one input message (a `page/1` or a single document) into a stock transaction.

Every item is parsed and validated against its contract by the feed reader (stream/contracts/reader.py:
compiled fast path, the pure validators for anything it cannot vouch for); an invalid item becomes
`rejection/1` and the page's other items go on.
"""
from __future__ import annotations

import logging

from stream.contracts.reader import Rejection, read_message
from stream.contracts.validate import ref_of
from stream.runtime.topics import INBOUND, ORDERS
from stream.warehouse.stock import Txn

log = logging.getLogger(__name__)

# the document schema each input topic accepts
ACCEPTED_SCHEMA = {INBOUND: "goods-manifest/1", ORDERS: "order/1"}


def parse_message(raw: bytes | None, topic: str, txn: Txn, key: bytes | None = None) -> int:
    """Feed one input message (a document or a page) into ``txn``; invalid items are rejected, and
    so is an item whose ``warehouse_id`` is not the message ``key`` (inputs are keyed by warehouse:
    a mis-keyed message would put part of a warehouse's stock in another partition).

    Returns the number of items seen.
    """
    expected = ACCEPTED_SCHEMA[topic]
    if raw is None:
        txn.reject(None, "malformed_json", "empty message")
        return 1
    items = read_message(raw, expected)  # items of any feed contract are validated; the topic's is checked below
    accept = txn.receive if expected == "goods-manifest/1" else txn.order
    for item in items:
        if item.__class__ is Rejection:
            txn.reject(*item)
            continue
        if item["schema"] != expected:
            txn.reject(ref_of(item), "unknown_schema",
                       f"schema: {item['schema']!r} is not accepted on topic {topic} (expected {expected!r})")
            continue
        if key != item["warehouse_id"].encode():
            shown = "no key" if key is None else f"key {key[:64].decode('utf-8', 'replace')!r}"
            txn.reject(ref_of(item), "wrong_key", f"warehouse_id {item['warehouse_id']!r} arrived with {shown}: "
                       f"{topic} is keyed by warehouse_id")
            continue
        try:  # one item the stock cannot take is rejected alone; the page's other items go on
            accept(item)
        except Exception as exc:  # receive/order fail before they change the transaction (digest first)
            log.exception("%s item %s could not be processed", topic, ref_of(item))
            txn.reject(ref_of(item), "internal_error", f"the item could not be processed ({type(exc).__name__}); "
                       "the operators have the log")
    return len(items)
