"""The analytics sink, split the quix-streams way: a generic batching sink and a destination.

`BatchingSink` knows rows, not documents or ClickHouse: it turns documents into rows with the
converter registered for their kind (stream/analytics/rows.py: each domain registers its own with
one call), buffers them per (table, stream partition) and hands sealed batches to a destination.
- A buffer is sealed when it reaches `batch_rows` rows or `max_age` seconds, or when `flush()` is
  called (the feeder does before it commits); one flusher task writes sealed batches in order,
  merging consecutive batches of a table into one write.
- A failed write is retried with exponential backoff (jittered, capped at `retry_max`) until it
  succeeds. Nothing is dropped: rows being retried still count against `max_rows`, and `write()`
  waits while the buffered rows would exceed it (backpressure).
- A destination writes one batch, nothing more: ``prepare(table, rows) -> payload`` (may run in
  the sink's thread), ``write(table, payload)`` (raises on failure; the sink retries), ``reset()``
  (drop a broken connection before a retry) and ``close()``. `ClickHouseDestination` is the one
  we ship: columnar inserts over the native protocol (clickhouse-driver), the schema of
  schemas/clickhouse/ applied before the first insert.

Retrying an insert that did reach the server before the connection broke writes those rows again;
the tables are ReplacingMergeTree keyed by a deterministic id, so each row is counted once after
deduplication (`FINAL`). Money arrives as decimal strings and is stored as exact integer tiyn;
with clickhouse-driver's NumPy extra (`clickhouse-driver[numpy]`, which needs pandas) columns go
as NumPy arrays, without it as plain lists (`columnar=True`). Both are tested.

`Sink(url, ...)` is the batching sink on ClickHouse, what the worker's feeder uses.

A domain adds its tables with one call in ``stream/<domain>/rows.py`` (found and imported by the
sink itself; see stream/analytics/rows.py for the full contract)::

    register("taxfree_decision", topic="taxfree.decisions", convert=decision_rows,
             tables=(Table("taxfree_decisions", (("document_id", "str"), ...), ddl="201_taxfree_decisions.sql"),))

and its DDL file beside the others in schemas/clickhouse/ (stream/analytics/sql/ is a link to it:
one copy), which the sink applies before its first write.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from stream.analytics import rows as rows_module
from stream.analytics import schema
from stream.analytics.rows import Source

log = logging.getLogger(__name__)


class SinkError(RuntimeError):
    pass


def convert(kind: str, docs: list[dict], source: Source) -> dict[str, list[tuple]]:
    """The rows of documents of one registered kind (a bad document raises; nothing is kept)."""
    registration = rows_module.load_converters().get(kind)
    if registration is None:
        raise ValueError(f"unknown sink kind {kind!r}; registered: {sorted(rows_module.KINDS)}")
    return registration.convert(docs, source)


def to_columns(table: str, rows: list[tuple]) -> list[list]:
    if not rows:
        return [[] for _ in rows_module.TABLES[table].columns]
    return [list(column) for column in zip(*rows)]


def to_numpy(table: str, columns: list[list]):
    import numpy as np

    result = []
    for (_, kind), values in zip(rows_module.TABLES[table].columns, columns):
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


class ClickHouseDestination:
    """Writes a batch of rows into one ClickHouse table (native protocol, columnar)."""

    def __init__(self, url: str, use_numpy: bool | None = None, connect_timeout: float = 3.0):
        self.url = url
        self.endpoint = schema.parse_url(url)
        self.use_numpy = numpy_supported() if use_numpy is None else use_numpy
        if self.use_numpy and not numpy_supported():
            raise SinkError("NumPy inserts need clickhouse-driver[numpy] (pandas)")
        self.connect_timeout = connect_timeout
        self._client = None
        self._schema_ready = False

    def start(self) -> None:
        """Apply the schema now (raises when ClickHouse does not answer; writes apply it later)."""
        self._ensure_schema()

    def prepare(self, table: str, rows: list[tuple]):
        columns = to_columns(table, rows)
        return to_numpy(table, columns) if self.use_numpy else columns

    def write(self, table: str, payload) -> None:
        self._ensure_schema()
        self._connect().execute(rows_module.TABLES[table].insert_sql, payload, columnar=True, types_check=False)

    def reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # the connection is already gone
                pass

    close = reset

    def _connect(self):
        if self._client is None:
            settings = {"use_numpy": True} if self.use_numpy else {}
            self._client = schema.client(self.endpoint, connect_timeout=self.connect_timeout,
                                         send_receive_timeout=60, settings=settings)
        return self._client

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            schema.apply(self.url, connect_timeout=self.connect_timeout)
            self._schema_ready = True


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


class BatchingSink:
    """Documents -> rows (registered converters) -> batches per (table, partition) -> a destination."""

    def __init__(self, destination, batch_rows: int = 50_000, max_age: float = 2.0, max_rows: int = 1_000_000,
                 metrics=None, retry_initial: float = 0.05, retry_max: float = 5.0):
        if batch_rows <= 0 or max_rows <= 0 or max_age <= 0:
            raise ValueError("batch_rows, max_rows and max_age must be positive")
        self.destination = destination
        self.batch_rows = batch_rows
        self.max_age = max_age
        self.max_rows = max(max_rows, batch_rows)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        if metrics is None:
            from stream import metrics as metrics_module
            metrics = metrics_module.default()
        self.metrics = metrics
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._sealed: collections.deque[_Batch] = collections.deque()
        self._rows = 0  # buffered + sealed + in flight
        self._seq = 0  # last sealed batch
        self._done = 0  # last written batch
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
        try:  # e.g. apply the schema now if ClickHouse answers; otherwise before the first write
            await self._run(self.destination.start)
        except Exception as error:
            log.warning("sink destination not reachable at start (%s); the sink will retry", error)
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
            await asyncio.get_running_loop().run_in_executor(self._executor, self.destination.close)
            self._executor.shutdown(wait=True)

    # --- writing ---
    @property
    def queued_rows(self) -> int:
        return self._rows

    async def write(self, kind: str, partition: int, docs: list[dict], offsets: list[int] | None = None,
                    topic: str | None = None) -> None:
        """Buffer documents of one kind from one stream partition (with their offsets in `topic` when
        read from Kafka); waits while the sink is full."""
        if self._task is None:
            raise SinkError("sink not started")
        if not docs:
            return
        registration = rows_module.load_converters().get(kind)
        if registration is None:
            raise ValueError(f"unknown sink kind {kind!r}; registered: {sorted(rows_module.KINDS)}")
        source = Source(topic or registration.topic, partition, tuple(offsets) if offsets is not None else None)
        tables = registration.convert(docs, source)  # convert first: a bad document changes nothing
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
        payload = await self._run(self.destination.prepare, table, rows)
        while True:
            started = time.perf_counter()
            try:
                await self._run(self.destination.write, table, payload)
                return time.perf_counter() - started
            except Exception as error:
                self.retries += 1
                self.metrics.record_sink_retry()
                log.warning("sink write into %s (%d rows) failed: %s; retrying in %.2fs",
                            table, len(rows), error, delay)
                await self._run(self.destination.reset)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, self.retry_max)



class Sink(BatchingSink):
    """The batching sink on ClickHouse (`url`: clickhouse://host:port/database)."""

    def __init__(self, url: str, batch_rows: int = 50_000, max_age: float = 2.0, max_rows: int = 1_000_000,
                 metrics=None, use_numpy: bool | None = None, retry_initial: float = 0.05,
                 retry_max: float = 5.0, connect_timeout: float = 3.0):
        super().__init__(ClickHouseDestination(url, use_numpy=use_numpy, connect_timeout=connect_timeout),
                         batch_rows=batch_rows, max_age=max_age, max_rows=max_rows, metrics=metrics,
                         retry_initial=retry_initial, retry_max=retry_max)
        self.url = url

    @property
    def use_numpy(self) -> bool:
        return self.destination.use_numpy
