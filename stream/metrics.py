"""Prometheus metrics of a worker (prometheus-client), all named `customs_*`.

The worker calls the module-level functions; `start_server(port)` serves them on /metrics.

Money is kept exact: running totals are Python integers in tiyn (1/100 KZT) and are divided by 100
only when Prometheus scrapes them (a custom collector), so no float is ever accumulated and the
exposed KZT figure is the exact total rounded once at exposition.

Each figure a dashboard queries is listed in `EXPORTED` (tests/test_dashboards.py holds the
dashboards to it, and tests/test_metrics.py holds it to what is really exposed).

Label values are bounded: a warehouse id is a label value only when it is configured
(CUSTOMS_METRICS_WAREHOUSES, or `Metrics(warehouses=...)`); every other warehouse is counted as
`other` (OTHER). Gauges of warehouses that share `other` are summed from each warehouse's own
latest value, never overwritten by the last one. Per-warehouse detail for any number of warehouses
is in ClickHouse (declarations, declaration_lines, stock_movements by warehouse_id). With 50k
warehouses the scrape went from 350k series (23.5 MB) to a few dozen.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from stream.money import TIYN_PER_KZT

# Batch stages and sink flushes: from sub-millisecond pages to multi-second stalls.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TAXES = ("duty", "excise", "vat")
OTHER = "other"  # the label value of every warehouse not configured

# sample name (as seen by PromQL) -> type; what dashboards may query.
EXPORTED: dict[str, str] = {
    "customs_ingested_lines_total": "counter",
    "customs_declarations_total": "counter",
    "customs_liabilities_kzt_total": "counter",
    "customs_rejections_total": "counter",
    "customs_pending_orders": "gauge",
    "customs_stock_units": "gauge",
    "customs_stock_value_kzt": "gauge",
    "customs_batch_seconds_bucket": "histogram",
    "customs_batch_seconds_sum": "histogram",
    "customs_batch_seconds_count": "histogram",
    "customs_consumer_lag": "gauge",
    "customs_sink_queue_rows": "gauge",
    "customs_sink_flush_seconds_bucket": "histogram",
    "customs_sink_flush_seconds_sum": "histogram",
    "customs_sink_flush_seconds_count": "histogram",
    "customs_sink_rows_total": "counter",
    "customs_sink_retries_total": "counter",
    "customs_input_gaps_total": "counter",
    "customs_quarantined_batches_total": "counter",
}


def tiyn_to_kzt(tiyn: int) -> float:
    """Exposition only: Prometheus samples are floats. Exact for totals below 2**53 tiyn."""
    return tiyn / TIYN_PER_KZT


def _whole_tiyn(value: object, name: str) -> int:
    if value.__class__ is not int:
        raise TypeError(f"{name} must be an integer amount of tiyn, not {type(value).__name__}")
    return value


class _MoneyCollector:
    """Exact integer-tiyn totals exposed in KZT at scrape time, and the stock gauges.

    Stock is kept per warehouse (its latest units and value) and summed per label value when
    scraped, so warehouses that share the `other` label add up instead of overwriting each other.
    """

    def __init__(self, label_of) -> None:
        self._label_of = label_of
        self._lock = threading.Lock()
        self._liabilities: dict[tuple[str, str], int] = {}  # (label, tax) -> tiyn
        self._stock: dict[str, tuple[int, int]] = {}  # warehouse_id -> (units, tiyn)

    def add_liabilities(self, warehouse_id: str, duty: int, excise: int, vat: int) -> None:
        label = self._label_of(warehouse_id)
        with self._lock:
            for tax, amount in zip(TAXES, (duty, excise, vat)):
                key = (label, tax)
                self._liabilities[key] = self._liabilities.get(key, 0) + amount

    def set_stock(self, warehouse_id: str, units: int, tiyn: int) -> None:
        with self._lock:
            self._stock[warehouse_id] = (units, tiyn)

    def liabilities_tiyn(self, warehouse_id: str, tax: str) -> int:
        with self._lock:
            return self._liabilities.get((self._label_of(warehouse_id), tax), 0)

    def _stock_by_label(self) -> dict[str, tuple[int, int]]:
        totals: dict[str, tuple[int, int]] = {}
        with self._lock:
            items = list(self._stock.items())
        for warehouse_id, (units, tiyn) in items:
            label = self._label_of(warehouse_id)
            known_units, known_tiyn = totals.get(label, (0, 0))
            totals[label] = (known_units + units, known_tiyn + tiyn)
        return totals

    def stock_value_tiyn(self, warehouse_id: str) -> int:
        return self._stock_by_label().get(self._label_of(warehouse_id), (0, 0))[1]

    def stock_units(self, warehouse_id: str) -> int:
        return self._stock_by_label().get(self._label_of(warehouse_id), (0, 0))[0]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            liabilities = dict(self._liabilities)
        stock = self._stock_by_label()
        family = CounterMetricFamily(
            "customs_liabilities_kzt",
            "Duty, excise and VAT assessed on declarations, KZT (exact tiyn totals)",
            labels=["warehouse_id", "tax"],
        )
        for (warehouse_id, tax), tiyn in sorted(liabilities.items()):
            family.add_metric([warehouse_id, tax], tiyn_to_kzt(tiyn))
        yield family
        gauge = GaugeMetricFamily(
            "customs_stock_value_kzt",
            "Customs value of goods under customs control, KZT",
            labels=["warehouse_id"],
        )
        for label, (_, tiyn) in sorted(stock.items()):
            gauge.add_metric([label], tiyn_to_kzt(tiyn))
        yield gauge
        units = GaugeMetricFamily(
            "customs_stock_units", "Units of goods under customs control", labels=["warehouse_id"])
        for label, (count, _) in sorted(stock.items()):
            units.add_metric([label], count)
        yield units

    def describe(self) -> Iterable[Metric]:
        yield CounterMetricFamily("customs_liabilities_kzt", "", labels=["warehouse_id", "tax"])
        yield GaugeMetricFamily("customs_stock_value_kzt", "", labels=["warehouse_id"])
        yield GaugeMetricFamily("customs_stock_units", "", labels=["warehouse_id"])


class Metrics:
    """One set of worker metrics in one registry (the process default, or a private one in tests)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY, warehouses: Iterable[str] | None = None) -> None:
        if warehouses is None:
            from stream.settings import env

            warehouses = [w.strip() for w in env("CUSTOMS_METRICS_WAREHOUSES").split(",")]
        self.warehouses = frozenset(w for w in warehouses if w)
        self.registry = registry
        self.ingested = Counter(
            "customs_ingested_lines", "Feed lines ingested, by feed kind (manifest, order)",
            ["kind"], registry=registry)
        self.declarations = Counter(
            "customs_declarations", "Declarations emitted", ["warehouse_id"], registry=registry)
        self.rejections = Counter(
            "customs_rejections", "Rejections emitted, by reason code", ["reason"], registry=registry)
        self.pending = Gauge(
            "customs_pending_orders", "Orders waiting for stock", registry=registry)
        self.batch_seconds = Histogram(
            "customs_batch_seconds", "Processing time of one batch, by stage", ["stage"],
            buckets=LATENCY_BUCKETS, registry=registry)
        self.lag = Gauge(
            "customs_consumer_lag", "Consumer lag in messages, by topic and partition",
            ["topic", "partition"], registry=registry)
        self.sink_queue = Gauge(
            "customs_sink_queue_rows", "Rows buffered in the ClickHouse sink", registry=registry)
        self.sink_flush = Histogram(
            "customs_sink_flush_seconds", "Duration of one successful sink flush (insert)",
            buckets=LATENCY_BUCKETS, registry=registry)
        self.sink_rows = Counter(
            "customs_sink_rows", "Rows written to ClickHouse, by table kind", ["kind"], registry=registry)
        self.sink_retries = Counter(
            "customs_sink_retries", "Failed sink inserts that were retried", registry=registry)
        self.input_gaps = Counter(
            "customs_input_gaps", "Input messages delivered past an offset not yet applied, by topic and outcome "
            "(sought: read again from the missing offset; stalled: read past it with nothing delivered, read again; "
            "accepted: not in the log; given_up: never delivered)",
            ["topic", "outcome"], registry=registry)
        self.quarantined = Counter(
            "customs_quarantined_batches", "Input record batches that could not be decoded (e.g. an unknown codec), "
            "skipped so that every other partition flows; by topic and codec (stream/runtime/quarantine.py)",
            ["topic", "codec"], registry=registry)
        self.money = _MoneyCollector(self.warehouse_label)
        registry.register(self.money)

    def warehouse_label(self, warehouse_id: str) -> str:
        """The label value of a warehouse: its id when configured, else `other` (bounded series)."""
        return warehouse_id if warehouse_id in self.warehouses else OTHER

    # --- what the worker calls -------------------------------------------------------------
    def record_ingested(self, kind: str, lines: int) -> None:
        self.ingested.labels(kind).inc(lines)

    def record_declarations(self, warehouse_id: str, count: int, duty_tiyn: int, excise_tiyn: int,
                            vat_tiyn: int) -> None:
        amounts = [_whole_tiyn(value, name) for name, value in
                   (("duty_tiyn", duty_tiyn), ("excise_tiyn", excise_tiyn), ("vat_tiyn", vat_tiyn))]
        self.declarations.labels(self.warehouse_label(warehouse_id)).inc(count)
        self.money.add_liabilities(warehouse_id, *amounts)

    def record_rejections(self, reason: str, count: int) -> None:
        self.rejections.labels(reason).inc(count)

    def set_pending(self, count: int) -> None:
        self.pending.set(count)

    def set_stock(self, warehouse_id: str, units: int, value_tiyn: int) -> None:
        if units.__class__ is not int:
            raise TypeError(f"units must be an int, not {type(units).__name__}")
        self.money.set_stock(warehouse_id, units, _whole_tiyn(value_tiyn, "value_tiyn"))

    def observe_batch(self, stage: str, seconds: float) -> None:
        self.batch_seconds.labels(stage).observe(seconds)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(topic, str(partition)).set(lag)

    def observe_sink(self, queue_rows: int, flush_seconds: float | None = None) -> None:
        self.sink_queue.set(queue_rows)
        if flush_seconds is not None:
            self.sink_flush.observe(flush_seconds)

    def record_sink_rows(self, kind: str, rows: int) -> None:
        self.sink_rows.labels(kind).inc(rows)

    def record_sink_retry(self) -> None:
        self.sink_retries.inc()

    def record_input_gap(self, topic: str, outcome: str) -> None:
        self.input_gaps.labels(topic, outcome).inc()

    def record_quarantined(self, topic: str, codec: str) -> None:
        self.quarantined.labels(topic, codec).inc()


_default: Metrics | None = None
_default_lock = threading.Lock()


def default() -> Metrics:
    """The process-wide metrics in prometheus-client's default registry (created on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Metrics(REGISTRY)
    return _default


def record_ingested(kind: str, lines: int) -> None:
    default().record_ingested(kind, lines)


def record_declarations(warehouse_id: str, count: int, duty_tiyn: int, excise_tiyn: int, vat_tiyn: int) -> None:
    default().record_declarations(warehouse_id, count, duty_tiyn, excise_tiyn, vat_tiyn)


def record_rejections(reason: str, count: int) -> None:
    default().record_rejections(reason, count)


def set_pending(count: int) -> None:
    default().set_pending(count)


def set_stock(warehouse_id: str, units: int, value_tiyn: int) -> None:
    default().set_stock(warehouse_id, units, value_tiyn)


def observe_batch(stage: str, seconds: float) -> None:
    default().observe_batch(stage, seconds)


def set_lag(topic: str, partition: int, lag: int) -> None:
    default().set_lag(topic, partition, lag)


def observe_sink(queue_rows: int, flush_seconds: float | None = None) -> None:
    default().observe_sink(queue_rows, flush_seconds)


def record_sink_rows(kind: str, rows: int) -> None:
    default().record_sink_rows(kind, rows)


def record_input_gap(topic: str, outcome: str) -> None:
    default().record_input_gap(topic, outcome)


def record_sink_retry() -> None:
    default().record_sink_retry()


def record_quarantined(topic: str, codec: str) -> None:
    default().record_quarantined(topic, codec)


def start_server(port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None):
    """Serve /metrics on `addr:port` in a daemon thread (port 0: off; returns None).

    The worker binds CUSTOMS_METRICS_HOST (loopback by default; docker-compose sets 0.0.0.0 so
    Prometheus can scrape it). Returns (server, thread) from prometheus-client.
    """
    if port == 0:
        return None
    from prometheus_client import start_http_server

    default()  # make sure the customs_* metrics exist before the first scrape
    return start_http_server(port, addr=addr, registry=registry or REGISTRY)
