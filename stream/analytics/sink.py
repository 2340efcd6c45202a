"""The ClickHouse sink: declarations, declaration lines, stock movements and rejections, written in
batches with columnar inserts (clickhouse-driver, native protocol).

- Buffers per (table, stream partition). A buffer is sealed when it reaches `batch_rows` rows or
  `max_age` seconds, or when `flush()` is called (the worker does on commit); one flusher task
  writes sealed batches in order, merging consecutive batches of a table into one insert.
- A failed insert is retried with exponential backoff (and a fresh connection) until it succeeds.
  Nothing is dropped: rows being retried still count against `max_rows`, and `write()` waits while
  the buffered rows would exceed it (backpressure).
- Retrying an insert that did reach the server before the connection broke writes those rows again;
  the tables are ReplacingMergeTree keyed by declaration / movement / rejection id, so each row is
  counted once after deduplication (`FINAL`).
- Money arrives as decimal strings ("123.45") and is stored as exact integer tiyn (Int64).
- With clickhouse-driver's NumPy extra (`clickhouse-driver[numpy]`, which needs pandas) columns go
  as NumPy arrays; without it as plain lists (`columnar=True`). Both are tested.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import orjson

from stream.analytics import schema

log = logging.getLogger(__name__)

KINDS = ("declaration", "movement", "rejection")

# table -> ordered (column, type); type is one of str, int, date, datetime, strarray.
# Columns with defaults (ingested_at) and MATERIALIZED / ALIAS columns are not sent.
TABLE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "declarations": (
        ("declaration_id", "str"), ("order_id", "str"), ("warehouse_id", "str"), ("operator_bin", "str"),
        ("flow", "str"), ("declared_at", "date"), ("rule_set", "str"), ("lines", "int"),
        ("customs_value_tiyn", "int"), ("duty_tiyn", "int"), ("excise_tiyn", "int"), ("vat_tiyn", "int"),
        ("total_tiyn", "int"), ("fx", "str"), ("flags", "strarray"), ("stream_partition", "int"),
    ),
    "declaration_lines": (
        ("declaration_id", "str"), ("line_no", "int"), ("order_id", "str"), ("warehouse_id", "str"),
        ("declared_at", "date"), ("sku", "str"), ("hs_code", "str"), ("hs_source", "str"), ("qty", "int"),
        ("value_tiyn", "int"), ("duty_tiyn", "int"), ("excise_tiyn", "int"), ("vat_tiyn", "int"),
    ),
    "stock_movements": (
        ("movement_id", "str"), ("warehouse_id", "str"), ("sku", "str"), ("kind", "str"), ("qty", "int"),
        ("at", "datetime"), ("ref", "str"), ("stream_partition", "int"),
    ),
    "rejections": (
        ("rejection_id", "str"), ("ref", "str"), ("reason", "str"), ("detail", "str"), ("at", "datetime"),
        ("stream_partition", "int"),
    ),
}

INSERT_SQL = {table: f"INSERT INTO {table} ({', '.join(name for name, _ in columns)}) VALUES"
              for table, columns in TABLE_COLUMNS.items()}


class SinkError(RuntimeError):
    pass


# --- conversions -----------------------------------------------------------------------------

def to_tiyn(amount) -> int:
    """Exact KZT amount ("123.45", Decimal) -> integer tiyn. Floats are refused."""
    if isinstance(amount, str):
        if len(amount) > 3 and amount[-3] == "." and amount[-2:].isdigit():  # "123.45": the contract's form
            try:
                return int(amount[:-3] + amount[-2:]) if amount[-4:-3].isdigit() else _bad(amount)
            except ValueError:
                pass  # e.g. "1_0.00", "1.2.34": the general parser names the problem
        text = amount.strip()
        negative = text.startswith("-")
        if negative or text.startswith("+"):
            text = text[1:]
        whole, _, frac = text.partition(".")
        if not (whole or frac) or not (whole.isdigit() or whole == "") or not (frac.isdigit() or frac == ""):
            raise ValueError(f"not a decimal amount: {amount!r}")
        if len(frac) > 2:
            if frac[2:].strip("0"):
                raise ValueError(f"amount has more than two decimals: {amount!r}")
            frac = frac[:2]
        value = int(whole or "0") * 100 + int(frac.ljust(2, "0"))
        return -value if negative else value
    if isinstance(amount, Decimal):
        scaled = amount * 100
        if scaled != scaled.to_integral_value():
            raise ValueError(f"amount has more than two decimals: {amount!r}")
        return int(scaled)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"money must be a decimal string or Decimal, not {type(amount).__name__}")
    return amount * 100


def _bad(amount):
    raise ValueError(f"not a decimal amount: {amount!r}")


_dates: dict[str, date] = {}


def to_date(value) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    cached = _dates.get(value)
    if cached is None:
        cached = date.fromisoformat(value[:10])
        if len(_dates) < 100_000:
            _dates[value] = cached
    return cached


def to_epoch(value) -> int:
    """RFC 3339 timestamp (with offset) or aware datetime -> Unix seconds (UTC)."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return int(value.timestamp())


def _declaration_rows(docs: list[dict], partition: int):
    decl = []
    lines = []
    for doc in docs:
        declaration_id = doc["declaration_id"]
        order_id = doc["order_id"]
        warehouse_id = doc["warehouse_id"]
        declared_at = to_date(doc["declared_at"])
        doc_lines = doc.get("lines") or ()
        duty, excise, vat = to_tiyn(doc["duty"]), to_tiyn(doc["excise"]), to_tiyn(doc["vat"])
        total = to_tiyn(doc["total"]) if "total" in doc else duty + excise + vat
        decl.append((
            declaration_id, order_id, warehouse_id, doc.get("operator_bin") or "", doc.get("flow") or "",
            declared_at, doc.get("rule_set") or "", len(doc_lines), to_tiyn(doc["customs_value"]),
            duty, excise, vat, total, orjson.dumps(doc.get("fx") or {}, option=orjson.OPT_SORT_KEYS).decode(),
            list(doc.get("flags") or ()), partition))
        for line_no, line in enumerate(doc_lines):
            lines.append((
                declaration_id, line_no, order_id, warehouse_id, declared_at, line.get("sku") or "",
                line.get("hs_code") or "", line.get("hs_source") or "", int(line.get("qty") or 0),
                to_tiyn(line["value"]), to_tiyn(line["duty"]), to_tiyn(line["excise"]), to_tiyn(line["vat"])))
    return {"declarations": decl, "declaration_lines": lines}


def _movements(doc: dict, partition: int):
    """(movement_id, kind, qty) of one movement document. Two shapes are accepted:
    {movement_id, kind, qty, ...} (one movement), and the worker's `stock-movement/1`
    {partition, seq, received_qty, declared_qty, ...} (what one stock transaction moved for one
    warehouse and sku), whose id is derived from partition, transaction seq, warehouse and sku."""
    if "movement_id" in doc:
        yield doc["movement_id"], doc["kind"], int(doc["qty"])
        return
    base = f"p{doc.get('partition', partition)}-s{doc['seq']}-{doc['warehouse_id']}-{doc['sku']}"
    for kind in ("received", "declared", "returned"):
        qty = int(doc.get(f"{kind}_qty") or 0)
        if qty:
            yield f"{base}-{kind}", kind, qty


def _movement_rows(docs: list[dict], partition: int):
    rows = []
    for doc in docs:
        warehouse_id, sku, at, ref = doc["warehouse_id"], doc["sku"], to_epoch(doc["at"]), str(doc.get("ref") or "")
        for movement_id, kind, qty in _movements(doc, partition):
            rows.append((movement_id, warehouse_id, sku, kind, qty, at, ref, partition))
    return {"stock_movements": rows}


def rejection_id(doc: dict) -> str:
    """The document's own id, else a digest of its whole content (a redelivery has the same)."""
    own = doc.get("rejection_id") or doc.get("id")
    if own:
        return str(own)
    return hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def _rejection_rows(docs: list[dict], partition: int):
    now = int(time.time())
    rows = []
    for doc in docs:
        at = doc.get("at")
        rows.append((rejection_id(doc), str(doc.get("ref") or ""), doc["reason"], str(doc.get("detail") or ""),
                     to_epoch(at) if at else now, partition))
    return {"rejections": rows}


CONVERTERS = {"declaration": _declaration_rows, "movement": _movement_rows, "rejection": _rejection_rows}


def to_columns(table: str, rows: list[tuple]) -> list[list]:
    if not rows:
        return [[] for _ in TABLE_COLUMNS[table]]
    return [list(column) for column in zip(*rows)]


def to_numpy(table: str, columns: list[list]):
    import numpy as np

    result = []
    for (_, kind), values in zip(TABLE_COLUMNS[table], columns):
        if kind == "int":
            result.append(np.array(values, dtype=np.int64))
        elif kind == "datetime":
            result.append(np.array(values, dtype=np.uint32))  # Unix seconds, written as is
        elif kind == "date":
            result.append(np.array(values, dtype="datetime64[D]"))
        else:  # str, strarray
            array = np.empty(len(values), dtype=object)
            array[:] = values
            result.append(array)
    return result


def numpy_supported() -> bool:
    """clickhouse-driver's NumPy mode needs its `numpy` extra (pandas)."""
    try:
        import clickhouse_driver.numpy.result  # noqa: F401  (imports pandas)
    except ImportError:
        return False
    return True


# --- the sink --------------------------------------------------------------------------------

@dataclass
class _Buffer:
    rows: list[tuple] = field(default_factory=list)
    born: float = field(default_factory=time.monotonic)


@dataclass
class _Batch:
    seq: int
    table: str
    rows: list[tuple]


class Sink:
    def __init__(self, url: str, batch_rows: int = 50_000, max_age: float = 2.0, max_rows: int = 1_000_000,
                 metrics=None, use_numpy: bool | None = None, retry_initial: float = 0.05,
                 retry_max: float = 5.0, connect_timeout: float = 3.0):
        if batch_rows <= 0 or max_rows <= 0 or max_age <= 0:
            raise ValueError("batch_rows, max_rows and max_age must be positive")
        self.url = url
        self.endpoint = schema.parse_url(url)
        self.batch_rows = batch_rows
        self.max_age = max_age
        self.max_rows = max(max_rows, batch_rows)
        self.use_numpy = numpy_supported() if use_numpy is None else use_numpy
        if self.use_numpy and not numpy_supported():
            raise SinkError("NumPy inserts need clickhouse-driver[numpy] (pandas)")
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.connect_timeout = connect_timeout
        if metrics is None:
            from stream import metrics as metrics_module
            metrics = metrics_module.default()
        self.metrics = metrics
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._sealed: collections.deque[_Batch] = collections.deque()
        self._rows = 0  # buffered + sealed + in flight
        self._seq = 0  # last sealed batch
        self._done = 0  # last written batch
        self._client = None
        self._schema_ready = False
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Condition | None = None
        self._closing = False
        self.rows_written: collections.Counter[str] = collections.Counter()
        self.retries = 0

    # --- lifecycle ---
    async def start(self) -> None:
        if self._task is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse-sink")
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._closing = False
        try:  # apply the schema now if ClickHouse answers; otherwise before the first insert
            await self._run(self._ensure_schema)
        except Exception as error:
            log.warning("ClickHouse not reachable at start (%s); the sink will retry", error)
        self._task = asyncio.create_task(self._flusher(), name="clickhouse-sink")

    async def stop(self, timeout: float | None = None) -> None:
        """Write everything buffered, then stop. With a timeout, raises SinkError if rows remain."""
        if self._task is None:
            return
        self._closing = True
        self._seal_all()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            self._task.cancel()
            raise SinkError(f"sink stopped with {self._rows} rows not written to ClickHouse") from None
        finally:
            self._task = None
            await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
            self._executor.shutdown(wait=True)

    # --- writing ---
    @property
    def queued_rows(self) -> int:
        return self._rows

    async def write(self, kind: str, partition: int, docs: list[dict]) -> None:
        """Buffer documents of one kind from one stream partition; waits while the sink is full."""
        if kind not in CONVERTERS:
            raise ValueError(f"unknown sink kind {kind!r}; expected one of {KINDS}")
        if self._task is None:
            raise SinkError("sink not started")
        if not docs:
            return
        tables = CONVERTERS[kind](docs, partition)  # convert first: a bad document changes nothing
        incoming = sum(len(rows) for rows in tables.values())
        if self._rows and self._rows + incoming > self.max_rows:
            async with self._progress:
                while self._rows and self._rows + incoming > self.max_rows:
                    self._seal_all()
                    self._wake.set()
                    await self._progress.wait()
        for table, rows in tables.items():
            if not rows:
                continue
            key = (table, partition)
            buffer = self._buffers.get(key)
            if buffer is None:
                self._buffers[key] = buffer = _Buffer()
                self._wake.set()  # the flusher recomputes when the oldest buffer ages
            buffer.rows.extend(rows)
            self._rows += len(rows)
            if len(buffer.rows) >= self.batch_rows:
                self._seal(key)
                self._wake.set()
        self.metrics.observe_sink(self._rows, None)

    async def flush(self) -> None:
        """Wait until every row written before this call is in ClickHouse."""
        if self._task is None:
            raise SinkError("sink not started")
        self._seal_all()
        target = self._seq
        self._wake.set()
        async with self._progress:
            while self._done < target:
                if self._task.done():
                    self._task.result()
                    raise SinkError("sink flusher stopped")
                await self._progress.wait()

    # --- internals ---
    def _seal(self, key) -> None:
        buffer = self._buffers.pop(key)
        self._seq += 1
        self._sealed.append(_Batch(self._seq, key[0], buffer.rows))

    def _seal_all(self) -> None:
        for key in list(self._buffers):
            self._seal(key)

    def _seal_aged(self) -> float | None:
        """Seal buffers older than max_age; returns seconds until the next one ages (or None)."""
        now = time.monotonic()
        wait = None
        for key, buffer in list(self._buffers.items()):
            remaining = buffer.born + self.max_age - now
            if remaining <= 0:
                self._seal(key)
            elif wait is None or remaining < wait:
                wait = remaining
        return wait

    def _take(self) -> list[_Batch]:
        """Consecutive sealed batches of the first table, up to about 4 x batch_rows rows."""
        first = self._sealed.popleft()
        taken = [first]
        rows = len(first.rows)
        while self._sealed and self._sealed[0].table == first.table and rows < 4 * self.batch_rows:
            batch = self._sealed.popleft()
            taken.append(batch)
            rows += len(batch.rows)
        return taken

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _flusher(self) -> None:
        try:
            await self._flush_loop()
        finally:  # wake writers and flushers waiting on a flusher that stopped
            async with self._progress:
                self._progress.notify_all()

    async def _flush_loop(self) -> None:
        while True:
            wait = self._seal_aged()
            if not self._sealed:
                if self._closing and not self._buffers:
                    return
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                continue
            batches = self._take()
            table = batches[0].table
            if len(batches) == 1:
                rows_list = batches[0].rows
            else:
                rows_list = [row for batch in batches for row in batch.rows]
            rows = len(rows_list)
            seconds = await self._insert_with_retries(table, rows_list)
            self._rows -= rows
            self._done = batches[-1].seq
            self.rows_written[table] += rows
            self.metrics.record_sink_rows(table, rows)
            self.metrics.observe_sink(self._rows, seconds)
            async with self._progress:
                self._progress.notify_all()

    async def _insert_with_retries(self, table: str, rows: list[tuple]) -> float:
        delay = self.retry_initial
        payload = await self._run(self._prepare, table, rows)
        while True:
            started = time.perf_counter()
            try:
                await self._run(self._insert, table, payload)
                return time.perf_counter() - started
            except Exception as error:
                self.retries += 1
                self.metrics.record_sink_retry()
                log.warning("ClickHouse insert into %s (%d rows) failed: %s; retrying in %.2fs",
                            table, len(rows), error, delay)
                await self._run(self._disconnect)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, self.retry_max)

    def _prepare(self, table: str, rows: list[tuple]):
        columns = to_columns(table, rows)
        return to_numpy(table, columns) if self.use_numpy else columns

    def _connect(self):
        if self._client is None:
            settings = {"use_numpy": True} if self.use_numpy else {}
            self._client = schema.client(self.endpoint, connect_timeout=self.connect_timeout,
                                         send_receive_timeout=60, settings=settings)
        return self._client

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # the connection is already gone
                pass

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            schema.apply(self.url, connect_timeout=self.connect_timeout)
            self._schema_ready = True

    def _insert(self, table: str, payload) -> None:
        self._ensure_schema()
        self._connect().execute(INSERT_SQL[table], payload, columnar=True, types_check=False)
