"""audit.cases -> the ClickHouse table audit_cases (stream/audit/rows.py): exact money, the latest version
of each case after FINAL, no findings text; against a real local ClickHouse server."""
from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from stream.analytics import schema
from stream.analytics.rows import Source, load_converters
from stream.analytics.sink import Sink, convert
from stream.audit.cases import decide
from stream.audit.events import event_of
from stream.audit.rows import CASES_TABLE, NOT_YET
from stream.metrics import Metrics


def snapshots() -> list[dict]:
    """Every snapshot of a case notified, paid in part, then in full."""
    case = None
    docs = []
    for n, (kind, on, fields) in enumerate([
            ("opened", "2026-03-02", {"declaration_id": "D-1", "findings": "Aigerim S. declared 5.10 USD",
                                      "additional_accruals": "1000.05"}),
            ("notification_delivered", "2026-03-02", {}),
            ("paid", "2026-03-05", {"amount": "0.05"}),
            ("paid", "2026-03-06", {"amount": "1000"})]):
        event = event_of({"schema": "audit-event/1", "case_id": "CASE-D-1", "kind": kind, "on": on,
                          "event_id": f"E{n}", **fields})
        case = decide(case, event, dt.date(2026, 3, 20)).versions[-1]
        docs.append(case.to_doc())
    return docs


def test_rows_are_exact_and_carry_no_findings():
    load_converters()
    docs = snapshots()
    rows = convert("audit_case", docs, Source("audit.cases", 3))["audit_cases"]
    columns = [name for name, _ in CASES_TABLE.columns]
    first, last = (dict(zip(columns, row)) for row in (rows[0], rows[-1]))
    assert first["delivered_on"] == NOT_YET and first["state"] == "opened" and first["accruals_tiyn"] == 100005
    assert last["state"] == "complied" and last["paid_tiyn"] == 100005 and last["outstanding_tiyn"] == 0
    assert last["comply_by"] == dt.date(2026, 4, 3) and last["version"] == 4 and last["stream_partition"] == 3
    assert not any("Aigerim" in str(value) for row in rows for value in row)
    for bad in ({"paid": 10.5}, {"overdue": "no"}, {"version": 1.5}, {"schema": "audit-event/1"}):
        with pytest.raises((TypeError, ValueError)):
            convert("audit_case", [{**docs[0], **bad}], Source("audit.cases", 0))


@pytest.mark.clickhouse
def test_the_table_keeps_the_latest_version_of_each_case(clickhouse_url):
    docs = snapshots()

    async def run():
        sink = Sink(clickhouse_url, use_numpy=False, metrics=Metrics(CollectorRegistry()))
        await sink.start()
        await sink.write("audit_case", 0, docs)
        await sink.write("audit_case", 0, docs[1:3])  # repeated after a crash
        await sink.stop()

    asyncio.run(run())
    client = schema.client(schema.parse_url(clickhouse_url))
    try:
        got = client.execute("SELECT case_id, state, version, accruals, paid, outstanding, toString(comply_by), "
                             "toString(delivered_on) FROM audit_cases FINAL")
    finally:
        client.disconnect()
    assert got == [("CASE-D-1", "complied", 4, Decimal("1000.05"), Decimal("1000.05"), Decimal("0.00"),
                    "2026-04-03", "2026-03-02")]
