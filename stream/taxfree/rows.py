"""The tax-free domain's ClickHouse rows: one per `taxfree-decision/1` (table taxfree_decisions,
schemas/clickhouse/201_taxfree_decisions.sql). Registered with the analytics sink on import; the
sink imports this module by itself. The decision carries no personal data (the buyer is
`buyer_ref`, a keyed hash), so neither does the row."""
from __future__ import annotations

from datetime import date

from stream.analytics.rows import Source, Table, register, tiyn, to_date

DECISIONS_TABLE = Table("taxfree_decisions", (
    ("document_id", "str"), ("decision", "str"), ("stage", "int"), ("reasons", "strarray"),
    ("trading_entity_bin", "str"), ("buyer_ref", "str"), ("vat_tiyn", "int"), ("commission_tiyn", "int"),
    ("refund_tiyn", "int"), ("pay_from", "date"), ("pay_by", "date"), ("decided_on", "date"),
    ("stream_partition", "int"),
), ddl="201_taxfree_decisions.sql")

NO_DATE = date(1970, 1, 1)
STAGES = {"pending": 0, "refund": 1, "refusal": 1}


def decision_rows(docs: list[dict], source: Source) -> dict[str, list[tuple]]:
    rows = []
    for doc in docs:
        kind = doc["decision"]
        if kind not in STAGES:
            raise ValueError(f"decision: {kind!r} is not refund, refusal or pending")
        reasons = doc["reasons"]
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise TypeError("reasons: expected an array of strings")
        rows.append((
            doc["document_id"], kind, STAGES[kind], list(reasons), doc.get("trading_entity_bin") or "",
            doc.get("buyer_ref") or "", tiyn(doc["vat"]), tiyn(doc["commission"]), tiyn(doc["refund"]),
            to_date(doc["pay_from"]) if doc["pay_from"] else NO_DATE,
            to_date(doc["pay_by"]) if doc["pay_by"] else NO_DATE,
            to_date(doc["decided_on"]) if doc.get("decided_on") else NO_DATE, source.partition))
    return {"taxfree_decisions": rows}


register("taxfree_decision", topic="taxfree.decisions", tables=(DECISIONS_TABLE,), convert=decision_rows)
