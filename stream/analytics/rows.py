"""Row converters: how each output topic becomes rows of ClickHouse tables, registered per domain.

The sink (stream/analytics/sink.py) knows nothing about any document: it buffers the rows a
converter made and writes them. Each domain keeps its converters beside itself and registers them
with ONE call, in a module named ``stream/<domain>/rows.py`` (or ``stream/<domain>/<name>_rows.py``),
which `load_converters()` imports by itself::

    # stream/taxfree/rows.py
    from stream.analytics.rows import Table, register, tiyn, to_date

    DECISIONS = Table("taxfree_decisions", (
        ("document_id", "str"), ("decision", "str"), ("refund_tiyn", "int"), ("decided_on", "date"),
    ), ddl="201_taxfree_decisions.sql")

    def decision_rows(docs, source):
        return {"taxfree_decisions": [(d["document_id"], d["decision"], tiyn(d["refund"]),
                                       to_date(d["pay_from"])) for d in docs]}

    register("taxfree_decision", topic="taxfree.decisions", tables=(DECISIONS,), convert=decision_rows)

- ``Table.columns`` are the columns the sink sends, in order: every column of the table's DDL
  file (schemas/clickhouse/<ddl>) except those with DEFAULT, MATERIALIZED or ALIAS
  (tests/test_clickhouse_sink.py checks each registered table against its file). Column kinds:
  ``str``, ``int`` (Int64 and smaller), ``date`` (datetime.date), ``datetime`` (Unix seconds,
  UTC), ``strarray`` (list of str).
- The DDL file is ``CREATE TABLE IF NOT EXISTS`` (applied on every start), a ReplacingMergeTree
  whose sort key ends with an id that is deterministic for the row's cause, so a redelivered
  document replaces its first copy. Number files by domain: 0xx core, 1xx warehouse, 2xx
  tax-free, 3xx audit and risk.
- ``convert(docs, source)`` turns one batch of one topic partition into ``{table: [row tuples]}``;
  ``source`` has the topic, partition and each document's offset in it. It raises on a document it
  cannot convert (then nothing of the batch is buffered). Money is exact integer tiyn: use `tiyn`
  (a KZT decimal string -> int; an int or a float is an error, never scaled). No personal value
  (IIN, name, passport, card token) goes into a row: a keyed pseudonym if one is needed.
- A query the domain runs on its tables (an operator report) is registered in the same module with
  `stream.analytics.report.register_query(name, sql, example_params)`: the tests run every one on
  the live 18.16 server and on a current ClickHouse (chdb).
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from stream.money import parse_tiyn

log = logging.getLogger(__name__)

COLUMN_KINDS = ("str", "int", "date", "datetime", "strarray")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, kind) in the order the sink sends them
    ddl: str  # its CREATE TABLE file in schemas/clickhouse/

    def __post_init__(self) -> None:
        for column, kind in self.columns:
            if kind not in COLUMN_KINDS:
                raise ValueError(f"{self.name}.{column}: unknown column kind {kind!r}")

    @property
    def insert_sql(self) -> str:
        return f"INSERT INTO {self.name} ({', '.join(name for name, _ in self.columns)}) VALUES"


@dataclass(frozen=True)
class Source:
    """Where a batch of documents came from: one partition of one topic, each document's offset."""

    topic: str
    partition: int
    offsets: tuple[int, ...] | None = None  # None: not read from Kafka (a benchmark, a test)


Convert = Callable[[list[dict], Source], dict[str, list[tuple]]]


@dataclass(frozen=True)
class Registration:
    kind: str
    topic: str
    tables: tuple[Table, ...]
    convert: Convert


KINDS: dict[str, Registration] = {}  # kind -> its converter
TABLES: dict[str, Table] = {}  # table name -> spec


def register(kind: str, *, topic: str, tables: tuple[Table, ...], convert: Convert) -> None:
    """Make documents of `topic` (sink kind `kind`) rows of `tables`. One call per topic."""
    for table in tables:
        known = TABLES.get(table.name)
        if known is not None and known != table:
            raise ValueError(f"table {table.name!r} is registered twice with different columns")
    known_kind = KINDS.get(kind)
    if known_kind is not None and known_kind.topic != topic:
        raise ValueError(f"sink kind {kind!r} is already registered for topic {known_kind.topic!r}")
    for other in KINDS.values():
        if other.topic == topic and other.kind != kind:
            raise ValueError(f"topic {topic!r} already has the converter of kind {other.kind!r}: one per topic")
    for table in tables:
        TABLES[table.name] = table
    KINDS[kind] = Registration(kind, topic, tuple(tables), convert)


def kind_of_topic() -> dict[str, str]:
    return {c.topic: c.kind for c in KINDS.values()}


_CORE_MODULES = ("stream.analytics.rejection_rows",)
_loaded = False
# domain converter modules that failed to import: module -> error. Their topics are not consumed
# (so not committed: Kafka keeps the rows until the defect is fixed) and the others go on.
load_errors: dict[str, str] = {}


def load_converters() -> dict[str, Registration]:
    """Import the core converters and every domain's ``rows`` / ``*_rows`` module (once)."""
    global _loaded
    if not _loaded:
        import stream

        for name in _CORE_MODULES:
            importlib.import_module(name)
        for package in pkgutil.iter_modules(stream.__path__):
            if not package.ispkg or package.name == "analytics":
                continue
            try:
                path = [str(p) for p in importlib.import_module(f"stream.{package.name}").__path__]
            except Exception as error:  # noqa: BLE001 - reported below, like a converter module's
                load_errors[f"stream.{package.name}"] = f"{type(error).__name__}: {error}"
                continue
            for module in pkgutil.iter_modules(path):
                if module.name == "rows" or module.name.endswith("_rows"):
                    name = f"stream.{package.name}.{module.name}"
                    try:
                        importlib.import_module(name)
                    except Exception as error:  # noqa: BLE001 - one broken domain must not stop the others
                        load_errors[name] = f"{type(error).__name__}: {error}"
                        log.error("analytics: converters of %s not loaded (%s); its topic is not consumed", name,
                                  load_errors[name])
        _loaded = True
    return KINDS


# -- conversions for converters -------------------------------------------------------------------

def tiyn(amount: str) -> int:
    """A KZT decimal string (``"123.45"``) as integer tiyn. An int is refused, never multiplied by
    100 (tiyn or KZT?), and so is a float (stream/money.py)."""
    return parse_tiyn(amount)


def integer(value: object, what: str) -> int:
    """A JSON integer field as an int: ``2.0`` -> 2 (JSON's integer), anything else an error."""
    if value.__class__ is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"{what}: {type(value).__name__} {value!r} is not an integer")


def text(value: object, what: str, default: str | None = None) -> str:
    """A string field as is; a missing (None) optional one as `default`; anything else an error."""
    if value.__class__ is str:
        return value
    if value is None and default is not None:
        return default
    raise TypeError(f"{what}: {type(value).__name__} is not a string")


_dates: dict[str, date] = {}


def to_date(value) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if value.__class__ is not str:
        raise TypeError(f"not a date: {type(value).__name__}")
    cached = _dates.get(value)
    if cached is None:
        cached = date.fromisoformat(value[:10])
        if len(_dates) < 100_000:
            _dates[value] = cached
    return cached


def to_epoch(value) -> int:
    """RFC 3339 timestamp (with offset) or aware datetime -> Unix seconds (UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("z", "Z"))
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return int(value.timestamp())
