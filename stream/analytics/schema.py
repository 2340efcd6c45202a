"""The ClickHouse schema: DDL files in schemas/clickhouse/ (shipped in the package as
stream/analytics/sql/, a link to them), applied in file-name order.

Every statement is `CREATE ... IF NOT EXISTS`, so applying the schema twice is harmless. The SQL is
the subset that Debian's clickhouse-server 18.16 and the current clickhouse/clickhouse-server image
both accept: no LowCardinality, DateTime64, TTL or column codecs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

SQL_DIR = Path(__file__).parent / "sql"

TABLES = ("declarations", "declaration_lines", "stock_movements", "rejections")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    database: str
    user: str = "default"
    password: str = ""

    @property
    def url(self) -> str:
        return f"clickhouse://{self.host}:{self.port}/{self.database}"


def parse_url(url: str) -> Endpoint:
    """clickhouse://[user[:password]@]host[:port][/database] (native protocol; port 9000 by default)."""
    parsed = urlparse(url)
    if parsed.scheme != "clickhouse":
        raise ValueError(f"not a clickhouse:// URL: {url!r}")
    if not parsed.hostname:
        raise ValueError(f"no host in ClickHouse URL: {url!r}")
    database = unquote(parsed.path.lstrip("/")) or "default"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise ValueError(f"unsupported database name in ClickHouse URL: {database!r}")
    return Endpoint(
        host=parsed.hostname,
        port=parsed.port or 9000,
        database=database,
        user=unquote(parsed.username) if parsed.username else "default",
        password=unquote(parsed.password) if parsed.password else "",
    )


def sql_files() -> list[Path]:
    files = sorted(SQL_DIR.glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no ClickHouse DDL found in {SQL_DIR}")
    return files


def statements(text: str) -> list[str]:
    """Split a DDL file into statements: drop `--` comment lines, split on `;` at a line end."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    parts = re.split(r";\s*(?:\n|$)", "\n".join(lines))
    return [part.strip() for part in parts if part.strip()]


def all_statements() -> list[str]:
    result: list[str] = []
    for path in sql_files():
        result.extend(statements(path.read_text(encoding="utf-8")))
    return result


def client(endpoint: Endpoint, database: str | None = None, **kwargs):
    from clickhouse_driver import Client

    return Client(
        endpoint.host,
        port=endpoint.port,
        database=database or endpoint.database,
        user=endpoint.user,
        password=endpoint.password,
        client_name="customs-stream",
        **kwargs,
    )


def apply(url: str, connect_timeout: float = 10.0) -> list[str]:
    """Create the database named in `url` and every table; returns the statements executed."""
    endpoint = parse_url(url)
    executed = []
    admin = client(endpoint, database="default", connect_timeout=connect_timeout)
    try:
        create_db = f"CREATE DATABASE IF NOT EXISTS {endpoint.database}"
        admin.execute(create_db)
        executed.append(create_db)
    finally:
        admin.disconnect()
    conn = client(endpoint, connect_timeout=connect_timeout)
    try:
        for statement in all_statements():
            conn.execute(statement)
            executed.append(statement)
    finally:
        conn.disconnect()
    return executed
