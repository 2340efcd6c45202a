"""A real Prometheus (Debian's `prometheus` package) scrapes our metrics endpoint, and its HTTP API
returns the figures the process recorded.

Two scraped processes: a running worker (embedded broker, generated feed), and a small process
serving known figures recorded through the module functions the worker calls (exact values).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request

import pytest

from stream.processes import free_port, stop_process

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None)

EXPORTER = textwrap.dedent("""
    import sys, time
    from stream import metrics
    metrics.record_ingested("manifest", 1200)
    metrics.record_ingested("order", 345)
    metrics.record_declarations("KZ-ALA-CW-01", 17, duty_tiyn=1234567, excise_tiyn=0, vat_tiyn=2000001)
    metrics.record_declarations("KZ-AST-CW-02", 3, duty_tiyn=1, excise_tiyn=50000, vat_tiyn=99)
    metrics.record_rejections("insufficient_stock", 4)
    metrics.set_stock("KZ-ALA-CW-01", 855, 40912345)
    metrics.set_pending(6)
    metrics.observe_batch("assess", 0.02)
    metrics.set_lag("orders", 1, 250)
    metrics.observe_sink(777, 0.05)
    metrics.start_server(int(sys.argv[1]), addr="127.0.0.1")
    print("serving", flush=True)
    while True:
        time.sleep(1)
""")


def stop(process: subprocess.Popen) -> None:
    stop_process(process, 15)


@pytest.fixture
def exporter():
    port = free_port()
    env = dict(os.environ, CUSTOMS_METRICS_WAREHOUSES="KZ-ALA-CW-01,KZ-AST-CW-02")  # labels of their own
    process = subprocess.Popen([sys.executable, "-c", EXPORTER, str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert process.stdout.readline().strip() == "serving"
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)
        process.stdout.close()


@pytest.fixture
def prometheus(tmp_path, exporter):
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed (Debian: apt-get install prometheus; `make setup`)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(textwrap.dedent(f"""
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: customs-stream
            static_configs:
              - targets: ["{exporter}"]
    """))
    log = open(tmp_path / "prometheus.log", "wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=tmp_path)
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError((tmp_path / "prometheus.log").read_text(errors="replace")[-2000:])
            try:
                if urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("prometheus not ready")
            time.sleep(0.2)
        yield base
    finally:
        stop(process)


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    return payload["data"]["result"]


def wait_for(base: str, promql: str, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        result = query(base, promql)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"no result for {promql}")
        time.sleep(0.3)


def test_prometheus_scrapes_and_returns_the_figures(prometheus):
    up = wait_for(prometheus, 'up{job="customs-stream"} == 1')
    assert up[0]["value"][1] == "1"
    duty = wait_for(prometheus, 'customs_liabilities_kzt_total{tax="duty"}')
    assert {r["metric"]["warehouse_id"]: r["value"][1] for r in duty} == {"KZ-ALA-CW-01": "12345.67", "KZ-AST-CW-02": "0.01"}
    vat = query(prometheus, 'sum(customs_liabilities_kzt_total{tax="vat"})')
    assert vat[0]["value"][1] == "20001"  # 20000.01 + 0.99
    assert query(prometheus, "sum(customs_declarations_total)")[0]["value"][1] == "20"
    assert query(prometheus, 'customs_ingested_lines_total{kind="manifest"}')[0]["value"][1] == "1200"
    assert query(prometheus, 'customs_rejections_total{reason="insufficient_stock"}')[0]["value"][1] == "4"
    stock = query(prometheus, 'customs_stock_value_kzt{warehouse_id="KZ-ALA-CW-01"}')
    assert stock[0]["value"][1] == "409123.45"
    assert query(prometheus, "customs_stock_units")[0]["value"][1] == "855"
    assert query(prometheus, "customs_pending_orders")[0]["value"][1] == "6"
    assert query(prometheus, 'customs_consumer_lag{topic="orders",partition="1"}')[0]["value"][1] == "250"
    assert query(prometheus, "customs_sink_queue_rows")[0]["value"][1] == "777"
    assert query(prometheus, 'customs_batch_seconds_count{stage="assess"}')[0]["value"][1] == "1"


def test_every_dashboard_query_runs_on_prometheus(prometheus):
    """Each dashboard expression is valid PromQL for this Prometheus, and the instant ones
    (no rate window to fill) already return the exporter's series."""
    from pathlib import Path

    from tests.test_dashboards import DASHBOARDS, expressions

    wait_for(prometheus, 'up{job="customs-stream"} == 1')
    time.sleep(2.5)  # a few scrapes, so rates over a short window have two samples
    for path in DASHBOARDS:
        for expr in expressions(json.loads(Path(path).read_text())):
            if expr.startswith("label_values("):
                metric = expr[len("label_values("):].split(",")[0]
                assert query(prometheus, metric) or not fed(expr), expr
                continue
            promql = as_instant_query(expr).replace("[30s]", "[10s]")
            result = query(prometheus, promql)
            if "[" not in promql and "histogram_quantile" not in promql and fed(expr):
                assert result, f"{path.name}: no data for {expr}"


def dashboard_queries():
    """(dashboard file, panel title, PromQL) of every panel target and template query, every file."""
    from pathlib import Path

    from tests.test_dashboards import DASHBOARDS, expressions, panels

    for path in DASHBOARDS:
        dashboard = json.loads(Path(path).read_text())
        titles = {t["expr"]: p.get("title", "") for p in panels(dashboard) for t in p.get("targets", [])}
        for expr in expressions(dashboard):
            yield Path(path).name, titles.get(expr, "(template variable)"), expr


# Metrics modules whose domains the worker of test_prometheus_scrapes_a_running_worker runs with a
# feed: every panel that queries only their metrics must show data. A domain joins by running its
# agents in that worker (--domains) with a feed of its own and adding its metrics module here; until
# then its panels are sent to the same Prometheus and must be valid PromQL there.
FED_METRICS_MODULES = ("stream.metrics",)


def fed(expr: str) -> bool:
    from tests.test_dashboards import exported_by_module, metric_names

    modules = exported_by_module()
    names = metric_names(as_instant_query(expr)) - {"up"}
    fed_names = set().union(*(modules[m] for m in FED_METRICS_MODULES))
    return names <= fed_names


def as_instant_query(expr: str) -> str:
    """A dashboard expression with Grafana's variables filled in as the dashboard would."""
    import re

    if expr.startswith("label_values("):
        return expr[len("label_values("):].split(",")[0].strip()
    for variable, value in (("$__rate_interval", "30s"), ("$__interval", "15s"), ("$__range", "1h")):
        expr = expr.replace(variable, value)
    return re.sub(r'(=~|!~|=|!=)"\$[A-Za-z_]+"', lambda m: m.group(1) + '".+"' if "~" in m.group(1) else
                  m.group(1) + '""', expr)


@pytest.mark.broker
@pytest.mark.clickhouse
def test_prometheus_scrapes_a_running_worker(broker, clickhouse_url, tmp_path):
    """The real thing: a worker on the embedded broker declares a generated feed (its ClickHouse sink
    on); Prometheus scrapes its metrics port and returns the worker's declaration count and
    liabilities, and every panel of every dashboard in deploy/grafana/dashboards/ has data."""
    pytest.importorskip("stream.loadgen")
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed")
    metrics_port = free_port()
    env = dict(os.environ, KAFKA_BROKER=broker.url, CUSTOMS_PARTITIONS=str(broker.partitions),
               CUSTOMS_METRICS_PORT=str(metrics_port), CUSTOMS_WEB_PORT=str(free_port()),
               CUSTOMS_DATA_DIR=str(tmp_path / "worker"), CLICKHOUSE_URL=clickhouse_url,
               CUSTOMS_PENDING_HOLD_SECONDS="2",  # spoiled orders short of stock are rejected soon
               CUSTOMS_SESSION_TIMEOUT_SECONDS="6", CUSTOMS_HEARTBEAT_SECONDS="0.5",
               CUSTOMS_REBALANCE_TIMEOUT_SECONDS="2", CUSTOMS_COMMIT_INTERVAL_SECONDS="1.0")
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "stream", "worker"], env=env, stdin=subprocess.DEVNULL,
                              stdout=log, stderr=log, start_new_session=True)
    log.close()
    prom = None
    try:
        deadline = time.monotonic() + 60
        while True:  # the worker serves metrics once it runs
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).read()
                break
            except OSError:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "worker metrics port never answered"
                time.sleep(0.3)
        subprocess.run([sys.executable, "-m", "stream", "loadgen", "--broker", broker.url, "--orders", "300",
                        "--page-size", "100", "--invalid-rate", "0.05"], env=env, check=True, capture_output=True, timeout=120)
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(textwrap.dedent(f"""
            global: {{scrape_interval: 1s, evaluation_interval: 1s}}
            scrape_configs:
              - job_name: customs-stream
                static_configs: [{{targets: ["127.0.0.1:{metrics_port}"]}}]
        """))
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:  # until the whole feed is declared or rejected, as the worker itself counts it
            body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).read().decode()
            declared = sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                           if line.startswith("customs_declarations_total{"))
            rejected = sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                           if line.startswith("customs_rejections_total{"))
            if declared + rejected >= 300:
                break
            assert time.monotonic() < deadline, f"worker declared {declared}, rejected {rejected} of 300"
            time.sleep(0.5)
        time.sleep(2.5)  # a scrape after the last declaration
        got = wait_for(base, "sum(customs_declarations_total)")
        assert float(got[0]["value"][1]) == declared > 0
        duty = float(wait_for(base, 'sum(customs_liabilities_kzt_total{tax="duty"})')[0]["value"][1])
        exposed = sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                      if line.startswith("customs_liabilities_kzt_total{tax=\"duty\""))
        assert duty == pytest.approx(exposed, abs=0.005) and duty > 0
        assert float(wait_for(base, 'sum(customs_ingested_lines_total{kind="order"})')[0]["value"][1]) > 0
        # consumer lag is reported per input partition the worker read (0 once it has caught up)
        lag = wait_for(base, 'customs_consumer_lag{topic="orders"}')
        assert lag and all(float(series["value"][1]) >= 0 for series in lag)
        # every dashboard panel, as Grafana would query it, returns data from this worker
        empty, checked = [], 0
        for name, title, expr in dashboard_queries():
            if not fed(expr):
                query(base, as_instant_query(expr))  # valid PromQL for this Prometheus (status success)
                continue
            checked += 1
            try:  # a rate needs two scrapes inside its window: give it a few
                wait_for(base, as_instant_query(expr), timeout=15)
            except AssertionError:
                empty.append((name, title, expr))
        assert not empty, f"panels with no data after a feed: {empty}"
        assert checked >= 20  # the warehouse's and the pipeline's panels
    finally:
        if prom is not None:
            stop(prom)
        stop(worker)
