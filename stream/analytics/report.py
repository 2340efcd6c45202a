"""Operator queries over the analytics tables, as plain-text tables (the end of `make demo`).

Redelivered rows are collapsed with FINAL, so every figure counts each declaration, line,
movement and rejection once. Money is summed as exact Decimal(38, 2) KZT and printed by
stream/money.py (`format_kzt`: thousands grouped by spaces).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from stream.analytics import schema
from stream.money import format_kzt, round_tiyn

# title -> (column headers, SQL). The SQL runs on ClickHouse 18.16 and current releases alike.
QUERIES: dict[str, tuple[tuple[str, ...], str]] = {
    "Goods under customs control per warehouse and day (units)": (
        ("warehouse", "day", "received", "released", "under control"),
        """
        SELECT warehouse_id, tupleElement(t, 1) AS day, tupleElement(t, 2) AS received,
               tupleElement(t, 3) AS released, under_control
        FROM (
            SELECT warehouse_id,
                   arraySort(groupArray((day, received, released, delta))) AS days,
                   arrayCumSum(arrayMap(x -> tupleElement(x, 4), days)) AS running
            FROM (
                SELECT warehouse_id, day,
                       sumIf(qty, kind = 'received') AS received,
                       sumIf(qty, kind != 'received') AS released,
                       sum(delta) AS delta
                FROM stock_movements FINAL
                GROUP BY warehouse_id, day
            )
            GROUP BY warehouse_id
        )
        ARRAY JOIN days AS t, running AS under_control
        ORDER BY warehouse_id, day
        """,
    ),
    "Duties and taxes per heading and day (KZT)": (
        ("day", "heading", "lines", "customs value", "duty", "excise", "VAT"),
        """
        SELECT declared_at, heading, count() AS lines, sum(value), sum(duty), sum(excise), sum(vat)
        FROM declaration_lines FINAL
        GROUP BY declared_at, heading
        ORDER BY declared_at, sum(duty_tiyn) DESC, heading
        LIMIT 20 BY declared_at
        """,
    ),
    "Declarations per warehouse (KZT)": (
        ("warehouse", "declarations", "lines", "customs value", "duty", "excise", "VAT", "to pay"),
        """
        SELECT warehouse_id, count(), sum(lines), sum(customs_value), sum(duty), sum(excise), sum(vat), sum(total)
        FROM declarations FINAL
        GROUP BY warehouse_id
        ORDER BY warehouse_id
        """,
    ),
    "Throughput: declarations written per minute": (
        ("minute (UTC)", "declarations", "lines"),
        """
        SELECT toStartOfMinute(ingested_at) AS minute, count(), sum(lines)
        FROM declarations FINAL
        GROUP BY minute
        ORDER BY minute DESC
        LIMIT 10
        """,
    ),
    "Rejections by reason": (
        ("reason", "rejections"),
        """
        SELECT reason, count() FROM rejections FINAL GROUP BY reason ORDER BY count() DESC, reason
        """,
    ),
}


# Other analysis queries the system runs (a domain's operator report, its monthly figures), by name:
# (SQL with clickhouse-driver %(name)s parameters, example parameters). A domain registers each one
# beside its converters (stream/<domain>/rows.py) with `register_query`, and tests/test_chdb.py runs
# every one of them, with its example parameters, on a current ClickHouse after the DDL is applied.
ANALYSIS_QUERIES: dict[str, tuple[str, dict]] = {}


def register_query(name: str, sql: str, example_params: dict | None = None) -> None:
    known = ANALYSIS_QUERIES.get(name)
    if known is not None and known[0] != sql:
        raise ValueError(f"analysis query {name!r} is registered twice with different SQL")
    ANALYSIS_QUERIES[name] = (sql, dict(example_params or {}))


def _cell(value) -> str:
    if isinstance(value, Decimal):  # KZT from Decimal(38, 2) columns: exact, written as Kazakhstan does
        return format_kzt(round_tiyn(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def format_table(headers: tuple[str, ...], rows: list[tuple]) -> str:
    cells = [list(headers)] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(value.ljust(width) if i == 0 else value.rjust(width)
                         for i, (value, width) in enumerate(zip(row, widths)))

    out = [line(cells[0]), "  ".join("-" * width for width in widths)]
    out.extend(line(row) for row in cells[1:])
    if not rows:
        out.append("(none)")
    return "\n".join(out)


def run_queries(url: str) -> dict[str, list[tuple]]:
    endpoint = schema.parse_url(url)
    client = schema.client(endpoint, connect_timeout=5, send_receive_timeout=60)
    try:
        return {title: client.execute(sql) for title, (_, sql) in QUERIES.items()}
    finally:
        client.disconnect()


def operator_report(url: str) -> str:
    results = run_queries(url)
    sections = []
    for title, (headers, _) in QUERIES.items():
        sections.append(f"{title}\n{format_table(headers, results[title])}")
    return f"ClickHouse ({url})\n\n" + "\n\n".join(sections) + "\n"
