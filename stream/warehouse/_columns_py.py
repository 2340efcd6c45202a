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


def reserve_orders(queued: list, facts: dict, known: dict, available, cache: dict, reserved: dict) -> list:
    """A page's orders reserved together, in arrival order, over columns. ``queued`` holds
    (order, digest, its lines' (warehouse, sku) keys); a key is known when ``facts`` (this
    transaction's) or ``known`` (the stock's) has it, and ``available(key)`` gives its units.
    Gathers per line a slot (the key's place in the column of available units; -1: unknown) and
    its quantity, per order where its lines start, and reserves with `reserve`. ``cache`` (the
    transaction's running availability) and ``reserved`` (units reserved per key) are updated.
    Returns per order its need as (key, qty) pairs per line when reserved, else None (it waits)."""
    slot_of: dict = {}
    keys_at: list = []
    avail: list = []
    slots: list = []
    qty: list = []
    starts = [0]
    for order, _, keys in queued:
        for key, line in zip(keys, order["lines"]):
            slot = slot_of.get(key)
            if slot is None:
                if key in facts or key in known:
                    slot = len(avail)
                    avail.append(available(key))
                    keys_at.append(key)
                else:
                    slot = -1
                slot_of[key] = slot
            slots.append(slot)
            qty.append(line["qty"])
        starts.append(len(slots))
    before = list(avail)
    ok = reserve(avail, slots, qty, starts)
    for slot, key in enumerate(keys_at):
        cache[key] = avail[slot]
        taken = before[slot] - avail[slot]
        if taken:
            reserved[key] = reserved.get(key, 0) + taken
    out = []
    for k, (_, _, keys) in enumerate(queued):
        out.append(list(zip(keys, qty[starts[k]:starts[k + 1]])) if ok[k] else None)
    return out


def requests(candidates: list, line_facts: dict, facts_of, fields: tuple) -> list:
    """assessment-request/1 documents for the candidates: each order line enriched with the goods
    facts of its (warehouse, sku) (``fields`` of ``facts_of(key)``, kept per key in ``line_facts``),
    the order's own price and currency; a pending order's buyer_ref, or the buyer, as the order has it."""
    out = []
    for cand in candidates:
        order = cand.order
        wh = order["warehouse_id"]
        lines = []
        for line in order["lines"]:
            sku = line["sku"]
            base = line_facts.get((wh, sku))
            if base is None:
                facts = facts_of((wh, sku))
                base = line_facts[(wh, sku)] = {k: facts[k] for k in fields if k in facts}
            lines.append({**base, "sku": sku, "qty": line["qty"], "unit_price": line["unit_price"],
                          "currency": line["currency"]})
        request = {"schema": "assessment-request/1", "order_id": order["order_id"], "flow": "warehouse",
                   "ordered_at": order["ordered_at"], "marketplace": order["marketplace"], "lines": lines}
        if "buyer" in order:
            request["buyer"] = order["buyer"]
        elif "buyer_ref" in order:  # a pending order keeps only the pseudonym
            request["buyer_ref"] = order["buyer_ref"]
        out.append(request)
    return out


def declarations(sources: list, codes: list, permille: list, weights: dict, weight, head_of, hashers) -> list:
    """declaration/2 bytes for every source (`stream.declaration.v2.Source`), the classifier's codes
    and confidences of all their lines in order: `declaration` of ``head_of(source)`` (the builder's
    head; the compiled writer computes the same from ``hashers``: HMAC-SHA256 inner and outer hashes
    keyed with the buyer secret, and the declaration-id hash seeded with its namespace)."""
    out = []
    at = 0
    for source in sources:
        lines = source.request["lines"]
        count = len(lines)
        out.append(declaration(head_of(source), source.assessment, lines, codes[at:at + count],
                               permille[at:at + count], weights, weight))
        at += count
    return out


def settle(candidates: list, results: list, requests, reserved: dict, decl: dict, avail: dict, o: dict,
           rejections: list, declarations: list, facts_of, sources, source_type, pdel: list, declared: str,
           rejected: str, declaration_id) -> None:
    """The assessor's answers taken, one per candidate (`stream.warehouse.stock.Txn.settle`): an
    assessment/1 turns the candidate's reservation into declared units and its order into a source
    of a declaration/2 (``sources``, with the request answered) or, with ``sources`` None, the
    answer extended in place (declaration/1); anything else is the order's rejection and gives its
    reservation back. Order ids are marked declared or rejected; pending ones leave (``pdel``)."""
    for index, (cand, result) in enumerate(zip(candidates, results)):
        order = cand.order
        oid = order["order_id"]
        if result.get("schema") == "assessment/1":
            for key, qty in cand.need:
                reserved[key] -= qty  # reserved becomes declared: available is unchanged
                decl[key] = decl.get(key, 0) + qty
            wh = order["warehouse_id"]
            operator_bin = facts_of((wh, order["lines"][0]["sku"]))["operator_bin"]
            if sources is not None:
                sources.append(source_type(result, requests[index], wh, operator_bin, order["marketplace"]))
            else:  # the assessor's answer is ours: extend it in place into the declaration
                result["declaration_id"] = declaration_id(oid)
                result["warehouse_id"] = wh
                result["operator_bin"] = operator_bin
                declarations.append(result)
            o[oid] = [declared, cand.digest]
        else:
            for key, qty in cand.need:
                reserved[key] -= qty
                avail[key] += qty
            rejections.append(result)
            o[oid] = [rejected, cand.digest]
        if cand.from_pending:
            pdel.append(oid)
