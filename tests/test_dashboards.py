"""Grafana dashboards: valid JSON, provisioned data source, and every metric they query is one the
worker exports (checked against the real exposition of stream/metrics.py)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.metrics import EXPORTED, Metrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
DATASOURCE_UIDS = {source["uid"] for source in yaml.safe_load(
    (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]}
PROMETHEUS_BUILTIN = {"up"}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "max", "min", "count", "histogram_quantile", "le", "without",
                "avg", "on", "ignoring", "group_left", "label_values", "topk", "bottomk", "or", "vector"}


def panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    exprs += [v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
              for v in dashboard.get("templating", {}).get("list", []) if v.get("type") == "query"]
    return exprs


def metric_names(expr: str) -> set[str]:
    """Identifiers in metric position: not inside {...} label matchers, quotes or [ranges]."""
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}", "", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", stripped))
    return {name for name in names if name not in PROMQL_WORDS and not name.startswith("$")} - {"warehouse_id"}


def exported_by_module() -> dict[str, dict[str, str]]:
    """Every metrics module's EXPORTED: stream/metrics.py (the warehouse and the runtime) and each
    domain's ``stream/<domain>/metrics.py`` or ``*_metrics.py`` (their own tests hold them to what
    they expose)."""
    import importlib
    import pkgutil

    import stream

    found = {"stream.metrics": EXPORTED}
    for package in pkgutil.iter_modules(stream.__path__):
        if not package.ispkg:
            continue
        path = [str(p) for p in importlib.import_module(f"stream.{package.name}").__path__]
        for module in pkgutil.iter_modules(path):
            if module.name == "metrics" or module.name.endswith("_metrics"):
                name = f"stream.{package.name}.{module.name}"
                exported = getattr(importlib.import_module(name), "EXPORTED", None)
                if exported:
                    found[name] = exported
    return found


def exposed_names() -> set[str]:
    from tests.test_metrics import record_everything

    m = Metrics(CollectorRegistry())
    record_everything(m)
    text = generate_latest(m.registry).decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


PROVISIONING = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/customs-stream.yml").read_text())


def test_there_are_dashboards():
    """The files are the dashboards Grafana provisions, each with panels that query something."""
    names = {path.name for path in DASHBOARDS}
    assert {"customs-operations.json", "customs-pipeline.json"} <= names
    [provider] = PROVISIONING["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.rsplit("/", 1)[1] in names
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        queried = [p for p in panels(dashboard) if p["type"] != "row" and p.get("targets")]
        assert queried, f"{path.name} has no panel that queries anything"
        assert all(metric_names(t["expr"]) for p in queried for t in p["targets"]), path.name


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in DATASOURCE_UIDS
        assert panel["targets"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in DATASOURCE_UIDS
            assert target["expr"].count("(") == target["expr"].count(")")


def test_dashboard_uids_are_unique():
    uids = [json.loads(path.read_text())["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_every_queried_metric_is_exported():
    exposed = exposed_names()
    queried = set()
    for path in DASHBOARDS:
        for expr in expressions(json.loads(path.read_text())):
            names = metric_names(expr)
            assert names, f"{path.name}: no metric in {expr!r}"
            queried |= names
    exported = set().union(*exported_by_module().values())
    unknown = queried - exported - PROMETHEUS_BUILTIN
    assert not unknown, f"dashboards query metrics no metrics module exports: {unknown}"
    core = queried & set(EXPORTED)
    assert core <= exposed, f"stream/metrics.py lists but does not expose: {core - exposed}"


def test_metric_name_extraction_catches_unknown_names():
    assert metric_names('sum by (tax) (rate(customs_liabilities_kzt_total{warehouse_id=~"$warehouse"}[5m]))') == {
        "customs_liabilities_kzt_total"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(customs_nonexistent_bucket[$__rate_interval])))") \
        == {"customs_nonexistent_bucket"}


def test_dashboards_cover_what_operators_watch():
    queried = set()
    for path in DASHBOARDS:
        for expr in expressions(json.loads(path.read_text())):
            queried |= metric_names(expr)
    for topic, metric in {
        "throughput": "customs_ingested_lines_total",
        "declarations": "customs_declarations_total",
        "goods under customs control": "customs_stock_units",
        "value under control": "customs_stock_value_kzt",
        "liabilities": "customs_liabilities_kzt_total",
        "rejections": "customs_rejections_total",
        "lag": "customs_consumer_lag",
        "batch latency": "customs_batch_seconds_bucket",
        "sink queue": "customs_sink_queue_rows",
        "sink flush latency": "customs_sink_flush_seconds_bucket",
    }.items():
        assert metric in queried, f"no panel for {topic}"
