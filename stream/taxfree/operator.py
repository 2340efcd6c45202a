"""The operator's duties: quarterly invoices to trading entities and the monthly report to the State
Revenue authority, from the final decisions (ClickHouse table taxfree_decisions, or decision JSON
lines for an offline run). Both read the same rows and aggregate them here, in exact tiyn.

- Invoice (`taxfree-invoice/1`), per trading entity and quarter: the VAT confirmed for compensation
  by refunds decided in the quarter (the entity pays it to the operator), the commission and the
  refunds inside it; issued on the quarter's last day, payable within 3 working days (Kazakhstan's
  working-day calendar of stream/audit/calendar.py).
- Report (`taxfree-report/1`), per month, due by the 15th of the next month: the participating
  trading entities with their VAT received and VAT compensated, documents refunded and refused,
  distinct buyers (by keyed pseudonym), and the operator's turnover = VAT received - VAT compensated.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from stream.money import format_tiyn, parse_tiyn

INVOICE_PAYMENT_WORKING_DAYS = 3
REPORT_DUE_DAY = 15


@dataclass(frozen=True)
class Final:
    """One document's final decision, as the duties need it."""
    document_id: str
    decision: str
    bin: str
    buyer_ref: str
    vat: int
    commission: int
    refund: int
    decided_on: date


def quarter_range(quarter: str) -> tuple[date, date]:
    m = re.fullmatch(r"([0-9]{4})Q([1-4])", quarter)
    if m is None:
        raise ValueError(f"{quarter!r} is not a quarter like 2026Q3")
    first = date(int(m.group(1)), 3 * int(m.group(2)) - 2, 1)
    return first, first + relativedelta(months=3) - timedelta(days=1)


def month_range(month: str) -> tuple[date, date]:
    m = re.fullmatch(r"([0-9]{4})-(0[1-9]|1[0-2])", month)
    if m is None:
        raise ValueError(f"{month!r} is not a month like 2026-08")
    first = date(int(m.group(1)), int(m.group(2)), 1)
    return first, first + relativedelta(months=1) - timedelta(days=1)


def finals_from_decisions(decisions) -> list[Final]:
    """The final decisions among `taxfree-decision/1` documents (the last one per document wins)."""
    last: dict[str, dict] = {}
    for d in decisions:
        if d.get("schema") == "taxfree-decision/1" and d["decision"] != "pending":
            last[d["document_id"]] = d
    return [Final(d["document_id"], d["decision"], d.get("trading_entity_bin") or "", d.get("buyer_ref") or "",
                  parse_tiyn(d["vat"]), parse_tiyn(d["commission"]), parse_tiyn(d["refund"]),
                  date.fromisoformat(d["decided_on"])) for d in last.values() if d.get("decided_on")]


FINALS_SQL = (
    "SELECT document_id, decision, trading_entity_bin, buyer_ref, vat_tiyn, commission_tiyn, refund_tiyn, "
    "decided_on FROM taxfree_decisions FINAL WHERE stage = 1 AND decided_on >= %(first)s AND decided_on <= %(last)s "
    "ORDER BY document_id")


def finals_from_clickhouse(url: str, first: date, last: date) -> list[Final]:
    from stream.analytics import schema

    client = schema.client(schema.parse_url(url), connect_timeout=5)
    try:
        rows = client.execute(FINALS_SQL, {"first": first, "last": last})
    finally:
        client.disconnect()
    return [Final(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6]), r[7]) for r in rows]


def invoices(finals: list[Final], quarter: str, calendar=None) -> list[dict]:
    first, last = quarter_range(quarter)
    if calendar is None:
        from stream.audit.calendar import default_calendar
        calendar = default_calendar()
    due_by = calendar.nth_working_day_after(last, INVOICE_PAYMENT_WORKING_DAYS)
    per_bin: dict[str, list[Final]] = {}
    for f in finals:
        if f.decision == "refund" and first <= f.decided_on <= last:
            per_bin.setdefault(f.bin, []).append(f)
    result = []
    for bin_, refunds in sorted(per_bin.items()):
        result.append({
            "schema": "taxfree-invoice/1", "invoice_id": f"TF-INV-{quarter}-{bin_}", "quarter": quarter,
            "trading_entity_bin": bin_, "documents": len(refunds),
            "vat_confirmed": format_tiyn(sum(f.vat for f in refunds)),
            "commission": format_tiyn(sum(f.commission for f in refunds)),
            "refunded": format_tiyn(sum(f.refund for f in refunds)),
            "issued_on": last.isoformat(), "due_by": due_by.isoformat(),
        })
    return result


def report(finals: list[Final], month: str) -> dict:
    first, last = month_range(month)
    in_month = [f for f in finals if first <= f.decided_on <= last]
    refunds = [f for f in in_month if f.decision == "refund"]
    per_bin: dict[str, list[Final]] = {}
    for f in refunds:
        per_bin.setdefault(f.bin, []).append(f)
    received = sum(f.vat for f in refunds)
    compensated = sum(f.refund for f in refunds)
    return {
        "schema": "taxfree-report/1", "month": month,
        "due_by": (last + timedelta(days=REPORT_DUE_DAY)).isoformat(),
        "participants": [{"trading_entity_bin": bin_, "documents": len(fs),
                          "vat_received": format_tiyn(sum(f.vat for f in fs)),
                          "vat_compensated": format_tiyn(sum(f.refund for f in fs))}
                         for bin_, fs in sorted(per_bin.items())],
        "documents": len(refunds), "refusals": len(in_month) - len(refunds),
        "buyers": len({f.buyer_ref for f in refunds if f.buyer_ref}),
        "vat_received": format_tiyn(received), "vat_compensated": format_tiyn(compensated),
        "operator_turnover": format_tiyn(received - compensated),
    }
