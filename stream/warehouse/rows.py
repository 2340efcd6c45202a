"""The warehouse's ClickHouse rows: declarations and their lines, stock movements.

Registered with the analytics sink (stream/analytics/rows.py) on import; the sink imports this
module by itself.
- `declarations` topic: `assessment/1` + ids (declaration-1.json) and `declaration/2`
  (declaration-2.json; a parcel's has `warehouse_id` null, its rows ''). A line's `qty` is taken from the line: declaration/2 carries it, an
  assessment/1 line does not (its qty is then 0: the document did not say).
- `stock.movements` topic: `stock-movement/1`, what one stock transaction moved for one
  (warehouse, sku); its received and declared quantities become one row each, with an id from
  (partition, transaction seq, warehouse, sku, kind), so a repeated transaction replaces its rows.
"""
from __future__ import annotations

import orjson

from stream.analytics.rows import Source, Table, integer, register, text, tiyn, to_date, to_epoch
from stream.runtime.topics import DECLARATIONS, MOVEMENTS

DECLARATIONS_TABLE = Table("declarations", (
    ("declaration_id", "str"), ("order_id", "str"), ("warehouse_id", "str"), ("operator_bin", "str"),
    ("flow", "str"), ("declared_at", "date"), ("rule_set", "str"), ("lines", "int"),
    ("customs_value_tiyn", "int"), ("duty_tiyn", "int"), ("excise_tiyn", "int"), ("vat_tiyn", "int"),
    ("total_tiyn", "int"), ("fx", "str"), ("flags", "strarray"), ("stream_partition", "int"),
), ddl="001_declarations.sql")
LINES_TABLE = Table("declaration_lines", (
    ("declaration_id", "str"), ("line_no", "int"), ("order_id", "str"), ("warehouse_id", "str"),
    ("declared_at", "date"), ("sku", "str"), ("hs_code", "str"), ("hs_source", "str"), ("qty", "int"),
    ("value_tiyn", "int"), ("duty_tiyn", "int"), ("excise_tiyn", "int"), ("vat_tiyn", "int"),
), ddl="002_declaration_lines.sql")
MOVEMENTS_TABLE = Table("stock_movements", (
    ("movement_id", "str"), ("warehouse_id", "str"), ("sku", "str"), ("kind", "str"), ("qty", "int"),
    ("at", "datetime"), ("ref", "str"), ("stream_partition", "int"),
), ddl="003_stock_movements.sql")

MOVEMENT_KINDS = ("received", "declared")


def declaration_rows(docs: list[dict], source: Source) -> dict[str, list[tuple]]:
    partition = source.partition
    decl = []
    lines = []
    for doc in docs:
        declaration_id = text(doc["declaration_id"], "declaration_id")
        order_id = text(doc["order_id"], "order_id")
        # the parcel flow has no warehouse (declaration/2 says null): its rows carry ''
        warehouse_id = text(doc["warehouse_id"], "warehouse_id", "")
        declared_at = to_date(doc["declared_at"])
        doc_lines = doc.get("lines") or ()
        if not isinstance(doc_lines, list):
            raise TypeError("lines: not an array")
        flags = doc.get("flags") or []
        if not isinstance(flags, list) or not all(flag.__class__ is str for flag in flags):
            raise TypeError("flags: not an array of strings")
        duty, excise, vat = tiyn(doc["duty"]), tiyn(doc["excise"]), tiyn(doc["vat"])
        total = tiyn(doc["total"]) if "total" in doc else duty + excise + vat
        decl.append((
            declaration_id, order_id, warehouse_id, text(doc.get("operator_bin"), "operator_bin", ""),
            text(doc.get("flow"), "flow", ""), declared_at, text(doc.get("rule_set"), "rule_set", ""), len(doc_lines),
            tiyn(doc["customs_value"]), duty, excise, vat, total,
            orjson.dumps(doc.get("fx") or {}, option=orjson.OPT_SORT_KEYS).decode(), list(flags), partition))
        for line_no, line in enumerate(doc_lines):
            qty = line.get("qty")
            lines.append((
                declaration_id, line_no, order_id, warehouse_id, declared_at, text(line.get("sku"), "sku", ""),
                text(line.get("hs_code"), "hs_code", ""), text(line.get("hs_source"), "hs_source", ""),
                0 if qty is None else integer(qty, f"lines[{line_no}].qty"),
                tiyn(line["value"]), tiyn(line["duty"]), tiyn(line["excise"]), tiyn(line["vat"])))
    return {"declarations": decl, "declaration_lines": lines}


def movement_rows(docs: list[dict], source: Source) -> dict[str, list[tuple]]:
    rows = []
    for doc in docs:
        warehouse_id, sku = text(doc["warehouse_id"], "warehouse_id"), text(doc["sku"], "sku")
        at, ref = to_epoch(doc["at"]), text(doc.get("ref"), "ref", "")
        partition = integer(doc.get("partition", source.partition), "partition")
        base = f"p{partition}-s{integer(doc['seq'], 'seq')}-{warehouse_id}-{sku}"
        for kind in MOVEMENT_KINDS:
            qty = integer(doc.get(f"{kind}_qty") or 0, f"{kind}_qty")
            if qty:
                rows.append((f"{base}-{kind}", warehouse_id, sku, kind, qty, at, ref, source.partition))
    return {"stock_movements": rows}


register("declaration", topic=DECLARATIONS, tables=(DECLARATIONS_TABLE, LINES_TABLE), convert=declaration_rows)
register("movement", topic=MOVEMENTS, tables=(MOVEMENTS_TABLE,), convert=movement_rows)
