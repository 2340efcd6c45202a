"""Pure-Python twin of the columns kernel (ext/columns.pyx): the same functions, the same results.

- ``declaration``: one declaration/2 document as bytes: ``orjson.dumps`` of
  `stream.declaration.v2.declaration_doc` (the reference the compiled writer is held to);
- ``movement``: one stock-movement/1 document as bytes (``orjson.dumps`` of `movement_doc`);
- ``reserve``: the page's orders reserved in order against the available units (see there).
"""
from __future__ import annotations

import orjson

_dumps = orjson.dumps


def declaration(head: tuple, assessment: dict, asked_lines: list, codes: list, permille: list, weights: dict,
                weight) -> bytes:
    """``head``, assessment/1 and request lines -> declaration/2 bytes (``weights``: the builder's
    cache of ``weight(qty, unit_weight_kg)``, which the compiled writer reads first)."""
    from stream.declaration.v2 import declaration_doc

    return _dumps(declaration_doc(head, assessment, asked_lines, codes, permille, weight))


def movement_doc(warehouse_id: str, sku: str, at: str, partition: int, seq: int, received_qty: int,
                 declared_qty: int, received: int, declared: int) -> dict:
    """stock-movement/1: what one transaction moved for one (warehouse, sku) and the totals after it."""
    return {"schema": "stock-movement/1", "warehouse_id": warehouse_id, "sku": sku, "at": at,
            "partition": partition, "seq": seq, "received_qty": received_qty, "declared_qty": declared_qty,
            "received": received, "declared": declared, "on_hand": received - declared}


def movement(warehouse_id: str, sku: str, at: str, partition: int, seq: int, received_qty: int, declared_qty: int,
             received: int, declared: int) -> bytes:
    return _dumps(movement_doc(warehouse_id, sku, at, partition, seq, received_qty, declared_qty, received,
                               declared))


def reserve(avail: list, slots: list, qty: list, starts: list) -> list:
    """Reserve the page's orders in order: order ``k`` has the lines ``starts[k]:starts[k+1]``, each
    a slot (an index into ``avail``, the units available per (warehouse, sku); -1: a SKU never
    received) and a quantity. An order is reserved when every slot it names is known and covers the
    units all its lines need of it (lines repeating a SKU add up); then ``avail`` is reduced by them.
    Returns per order 1 (reserved) or 0 (not: it waits), and leaves ``avail`` as reduced."""
    out = []
    for k in range(len(starts) - 1):
        lo, hi = starts[k], starts[k + 1]
        ok = 1
        for i in range(lo, hi):
            slot = slots[i]
            if slot < 0:
                ok = 0
                break
        if ok:
            for i in range(lo, hi):
                avail[slots[i]] -= qty[i]
            for i in range(lo, hi):
                if avail[slots[i]] < 0:
                    ok = 0
                    break
            if not ok:
                for i in range(lo, hi):
                    avail[slots[i]] += qty[i]
        out.append(ok)
    return out
