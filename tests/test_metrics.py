"""stream/metrics.py: what the worker records is what /metrics exposes, money exact."""
from __future__ import annotations

import urllib.request
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream import metrics
from stream.analytics.server import free_port
from stream.metrics import EXPORTED, OTHER, Metrics

KNOWN = ("KZ-ALA-CW-01", "W")


def samples(registry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def record_everything(m: Metrics) -> None:
    m.record_ingested("manifest", 120)
    m.record_ingested("order", 7)
    m.record_declarations("KZ-ALA-CW-01", 3, duty_tiyn=12345, excise_tiyn=0, vat_tiyn=98701)
    m.record_rejections("unknown_sku", 2)
    m.set_pending(5)
    m.set_stock("KZ-ALA-CW-01", units=118, value_tiyn=5_634_512)
    m.observe_batch("assess", 0.004)
    m.set_lag("orders", 3, 42)
    m.observe_sink(1500, 0.12)
    m.record_sink_rows("declarations", 1000)
    m.record_sink_retry()
    m.record_input_gap("orders", "sought")
    m.record_quarantined("orders", "snappy")


def test_recorded_figures_are_exposed():
    m = Metrics(CollectorRegistry(), warehouses=KNOWN)
    record_everything(m)
    got = samples(m.registry)
    assert got[("customs_ingested_lines_total", (("kind", "manifest"),))] == 120
    assert got[("customs_declarations_total", (("warehouse_id", "KZ-ALA-CW-01"),))] == 3
    liab = {tax: got[("customs_liabilities_kzt_total", (("tax", tax), ("warehouse_id", "KZ-ALA-CW-01")))]
            for tax in ("duty", "excise", "vat")}
    assert liab == {"duty": 123.45, "excise": 0.0, "vat": 987.01}
    assert got[("customs_rejections_total", (("reason", "unknown_sku"),))] == 2
    assert got[("customs_pending_orders", ())] == 5
    assert got[("customs_stock_units", (("warehouse_id", "KZ-ALA-CW-01"),))] == 118
    assert got[("customs_stock_value_kzt", (("warehouse_id", "KZ-ALA-CW-01"),))] == 56345.12
    assert got[("customs_batch_seconds_count", (("stage", "assess"),))] == 1
    assert got[("customs_consumer_lag", (("partition", "3"), ("topic", "orders")))] == 42
    assert got[("customs_sink_queue_rows", ())] == 1500
    assert got[("customs_sink_flush_seconds_count", ())] == 1
    assert got[("customs_sink_rows_total", (("kind", "declarations"),))] == 1000
    assert got[("customs_sink_retries_total", ())] == 1
    assert got[("customs_input_gaps_total", (("outcome", "sought"), ("topic", "orders")))] == 1


def test_exported_list_is_exactly_what_is_exposed():
    m = Metrics(CollectorRegistry(), warehouses=KNOWN)
    record_everything(m)
    names = {name for name, _ in samples(m.registry) if not name.endswith("_created")}
    assert names == set(EXPORTED)


def test_money_totals_are_exact_integers_not_float_sums():
    m = Metrics(CollectorRegistry(), warehouses=KNOWN)
    float_total = 0.0
    for _ in range(100_000):
        m.record_declarations("W", 1, duty_tiyn=1, excise_tiyn=0, vat_tiyn=7)
        float_total += 0.01
    assert float_total != 1000.0  # what accumulating floats would have exposed
    assert m.money.liabilities_tiyn("W", "duty") == 100_000
    got = samples(m.registry)
    assert got[("customs_liabilities_kzt_total", (("tax", "duty"), ("warehouse_id", "W")))] == 1000.0
    assert Decimal(repr(got[("customs_liabilities_kzt_total", (("tax", "vat"), ("warehouse_id", "W")))])) == Decimal("7000")


def test_money_refuses_floats():
    m = Metrics(CollectorRegistry(), warehouses=KNOWN)
    with pytest.raises(TypeError):
        m.record_declarations("W", 1, duty_tiyn=1.5, excise_tiyn=0, vat_tiyn=0)
    with pytest.raises(TypeError):
        m.set_stock("W", 1, value_tiyn=10.0)
    assert m.money.liabilities_tiyn("W", "duty") == 0


def test_stock_value_is_a_gauge_set_not_added():
    m = Metrics(CollectorRegistry(), warehouses=KNOWN)
    m.set_stock("W", 10, 1000)
    m.set_stock("W", 4, 401)
    got = samples(m.registry)
    assert got[("customs_stock_units", (("warehouse_id", "W"),))] == 4
    assert got[("customs_stock_value_kzt", (("warehouse_id", "W"),))] == 4.01


def test_module_functions_and_http_server():
    """The worker's calls go to the default registry, served over HTTP on the metrics port."""
    metrics.record_declarations("KZ-TEST-HTTP", 2, duty_tiyn=501, excise_tiyn=2, vat_tiyn=3)
    metrics.record_ingested("order", 9)
    port = free_port()
    server, thread = metrics.start_server(port, addr="127.0.0.1")
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    # not a configured warehouse (CUSTOMS_METRICS_WAREHOUSES): counted as `other`
    assert 'warehouse_id="KZ-TEST-HTTP"' not in body
    assert 'customs_declarations_total{warehouse_id="other"}' in body
    assert metrics.start_server(0) is None


def test_warehouse_labels_are_bounded_and_other_adds_up():
    m = Metrics(CollectorRegistry(), warehouses=["KZ-ALA-CW-01"])
    for i in range(5000):
        m.record_declarations(f"KZ-W-{i}", 1, duty_tiyn=1, excise_tiyn=0, vat_tiyn=2)
        m.set_stock(f"KZ-W-{i}", 3, 100)
    m.set_stock("KZ-W-7", 1, 50)  # a later value of one warehouse replaces its own, not the others'
    m.record_declarations("KZ-ALA-CW-01", 2, duty_tiyn=5, excise_tiyn=0, vat_tiyn=0)
    m.set_stock("KZ-ALA-CW-01", 10, 999)
    got = samples(m.registry)
    labels = {dict(labels).get("warehouse_id") for _, labels in got} - {None}
    assert labels == {"KZ-ALA-CW-01", OTHER}
    assert got[("customs_declarations_total", (("warehouse_id", OTHER),))] == 5000
    assert got[("customs_stock_units", (("warehouse_id", OTHER),))] == 3 * 4999 + 1
    assert got[("customs_stock_value_kzt", (("warehouse_id", OTHER),))] == (100 * 4999 + 50) / 100
    assert got[("customs_stock_units", (("warehouse_id", "KZ-ALA-CW-01"),))] == 10
    assert got[("customs_liabilities_kzt_total", (("tax", "duty"), ("warehouse_id", OTHER)))] == 50.0
    assert len(got) < 60


def test_warehouses_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("CUSTOMS_METRICS_WAREHOUSES", "KZ-A, KZ-B")
    m = Metrics(CollectorRegistry())
    assert (m.warehouse_label("KZ-A"), m.warehouse_label("KZ-B"), m.warehouse_label("KZ-C")) == ("KZ-A", "KZ-B", OTHER)
