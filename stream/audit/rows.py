"""The case agent's ClickHouse rows: `audit.cases` (audit-case/1 snapshots) -> table `audit_cases`.

Registered with the analytics sink (stream/analytics/rows.py) on import; the sink imports this module by
itself. One row per snapshot; the table keeps the highest version of each case (303_audit_cases.sql).
Money as integer tiyn; dates not reached yet as 1970-01-01; no findings text (it may quote a person).
"""
from __future__ import annotations

import datetime as dt

from stream.analytics.rows import Source, Table, integer, register, text, tiyn, to_date
from stream.runtime.topics import AUDIT_CASES

NOT_YET = dt.date(1970, 1, 1)

CASES_TABLE = Table("audit_cases", (
    ("case_id", "str"), ("declaration_id", "str"), ("state", "str"), ("source", "str"), ("opened_on", "date"),
    ("delivered_on", "date"), ("comply_by", "date"), ("explanation_received_on", "date"), ("answer_by", "date"),
    ("closed_on", "date"), ("accruals_tiyn", "int"), ("paid_tiyn", "int"), ("outstanding_tiyn", "int"),
    ("overdue", "int"), ("version", "int"), ("changed_by", "str"), ("risk_profile", "str"),
    ("stream_partition", "int"),
), ddl="303_audit_cases.sql")


def _day(value) -> dt.date:
    return NOT_YET if value is None else to_date(value)


def case_rows(docs: list[dict], source: Source) -> dict[str, list[tuple]]:
    rows = []
    for doc in docs:
        if doc.get("schema") != "audit-case/1":
            raise ValueError(f"{AUDIT_CASES}: not an audit-case/1 document")
        if not isinstance(doc.get("overdue"), bool):
            raise TypeError("overdue: not a boolean")
        risk = doc.get("risk")
        profile = text(risk.get("profile"), "risk.profile") if isinstance(risk, dict) else ""
        rows.append((
            text(doc["case_id"], "case_id"), text(doc["declaration_id"], "declaration_id"), text(doc["state"], "state"),
            text(doc["source"], "source"), to_date(doc["opened_on"]), _day(doc["delivered_on"]),
            _day(doc["comply_by"]), _day(doc["explanation_received_on"]), _day(doc["answer_by"]),
            _day(doc["closed_on"]), tiyn(doc["additional_accruals"]), tiyn(doc["paid"]), tiyn(doc["outstanding"]),
            int(doc["overdue"]), integer(doc["version"], "version"), text(doc["changed_by"], "changed_by"), profile,
            source.partition))
    return {"audit_cases": rows}


register("audit_case", topic=AUDIT_CASES, tables=(CASES_TABLE,), convert=case_rows)
