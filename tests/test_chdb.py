"""The analytics on a current ClickHouse, in-process (chdb), next to the live 18.16 server tests of
test_clickhouse_sink.py: the DDL applies twice, the rows the converters make load, and every
operator report query runs and gives the exact figures."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from stream.analytics import report, rows, schema
from stream.analytics.rows import Source
from tests.test_clickhouse_sink import WAREHOUSES, declaration, movement, rejection

chdb_session = pytest.importorskip("chdb.session")


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    session.query("CREATE DATABASE IF NOT EXISTS customs")
    session.query("USE customs")
    try:
        yield session
    finally:
        session.close()


def query(session, sql: str) -> list[list]:
    text = session.query(sql, "JSONCompact").bytes().decode()
    return json.loads(text, parse_float=Decimal)["data"] if text.strip() else []


def literal(value, kind: str) -> str:
    if kind in ("int", "datetime"):
        return str(int(value))
    if kind == "date":
        assert isinstance(value, date)
        return f"'{value.isoformat()}'"
    if kind == "strarray":
        return "[" + ", ".join(literal(v, "str") for v in value) + "]"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def insert(session, kind: str, docs: list[dict], partition: int = 0) -> None:
    converted = rows.load_converters()[kind].convert(docs, Source(rows.KINDS[kind].topic, partition))
    for table_name, table_rows in converted.items():
        if not table_rows:
            continue
        table = rows.TABLES[table_name]
        values = ", ".join("(" + ", ".join(literal(v, k) for v, (_, k) in zip(row, table.columns)) + ")"
                           for row in table_rows)
        session.query(f"{table.insert_sql} {values}")


def test_version_is_current(clickhouse):
    major = int(query(clickhouse, "SELECT version()")[0][0].split(".")[0])
    assert major >= 24


def test_ddl_applies_twice(clickhouse):
    statements = schema.all_statements()
    for statement in statements:
        clickhouse.query(statement)
    tables = [row[0] for row in query(clickhouse, "SHOW TABLES")]
    before = {t: query(clickhouse, f"SHOW CREATE TABLE {t}") for t in tables}
    for statement in statements:
        clickhouse.query(statement)
    assert {t: query(clickhouse, f"SHOW CREATE TABLE {t}") for t in tables} == before
    assert set(schema.TABLES) <= set(tables)
    assert set(rows.load_converters()) and set(rows.TABLES) <= set(tables)
    engines = dict(map(tuple, query(clickhouse, "SELECT name, engine FROM system.tables WHERE database = 'customs'")))
    assert {engines[t] for t in rows.TABLES} == {"ReplacingMergeTree"}


def test_every_report_query_runs_with_exact_figures(clickhouse):
    for statement in schema.all_statements():
        clickhouse.query(statement)
    decls = [declaration(i) for i in range(60)]
    moves = [movement(i) for i in range(30)]
    rejects = [rejection(i) for i in range(6)]
    for attempt in range(2):  # delivered twice: FINAL counts each once
        insert(clickhouse, "declaration", decls, partition=attempt)
        insert(clickhouse, "movement", moves)
        insert(clickhouse, "rejection", rejects)
    results = {title: query(clickhouse, sql) for title, (_, sql) in report.QUERIES.items()}
    assert all(results.values()), [title for title, got in results.items() if not got]
    per_warehouse = {row[0]: row for row in results["Declarations per warehouse (KZT)"]}
    for warehouse in WAREHOUSES:
        mine = [d for d in decls if d["warehouse_id"] == warehouse]
        row = per_warehouse[warehouse]
        assert int(row[1]) == len(mine)
        assert Decimal(str(row[4])) == sum((Decimal(d["duty"]) for d in mine), Decimal(0))
        assert Decimal(str(row[7])) == sum((Decimal(d["total"]) for d in mine), Decimal(0))
    reasons = {row[0]: int(row[1]) for row in results["Rejections by reason"]}
    assert reasons == {"unknown_sku": 3, "invalid_code": 3}
    text = report.format_table(report.QUERIES["Rejections by reason"][0], [tuple(r) for r in results["Rejections by reason"]])
    assert "unknown_sku" in text
    under = results["Goods under customs control per warehouse and day (units)"]
    received = sum(m["received_qty"] for m in moves if m["warehouse_id"] == WAREHOUSES[1])
    assert max(int(row[4]) for row in under if row[0] == WAREHOUSES[1]) == received


def sql_literal(value) -> str:
    if isinstance(value, bool) or value is None:
        raise TypeError(f"no literal for {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_every_registered_analysis_query_runs(clickhouse):
    """Queries other domains register (report.register_query) run on the current ClickHouse too."""
    for statement in schema.all_statements():
        clickhouse.query(statement)
    rows.load_converters()  # domains register their queries beside their converters
    insert(clickhouse, "declaration", [declaration(900)])
    report.register_query("test: declarations per flow", "SELECT flow, count() FROM declarations FINAL "
                          "WHERE declared_at >= %(first)s GROUP BY flow", {"first": date(2026, 11, 1)})
    try:
        for name, (sql, params) in report.ANALYSIS_QUERIES.items():
            query(clickhouse, sql % {key: sql_literal(value) for key, value in params.items()})
        got = query(clickhouse, report.ANALYSIS_QUERIES["test: declarations per flow"][0] % {"first": "'2026-11-01'"})
        assert got and all(row[0] == "warehouse" for row in got)
    finally:
        report.ANALYSIS_QUERIES.pop("test: declarations per flow")
