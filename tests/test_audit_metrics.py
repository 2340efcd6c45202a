"""The case agent's metrics as Prometheus exposes them, and the dashboard customs-audit.json querying only those."""
from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.audit.metrics import EXPORTED, CaseCounts, CaseMetrics
from tests.test_dashboards import expressions, metric_names, panels

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy/grafana/dashboards/customs-audit.json"


def test_every_exported_metric_is_exposed_with_exact_money():
    registry = CollectorRegistry()
    metrics = CaseMetrics(registry)
    counts = CaseCounts()
    counts.changes += ["paid", "paid", "comply_by_passed"]
    counts.rejections.append("overpayment")
    counts.paid, counts.notified = 10, 100_000_003  # tiyn
    metrics.record(counts)
    metrics.record(counts)
    metrics.observe({0: ({"notified": 2, "disputed": 1}, 1), 1: ({"complied": 4}, 0)})
    text = generate_latest(registry).decode()
    names = {s.name: family.type for family in text_string_to_metric_families(text) for s in family.samples}
    for name, kind in EXPORTED.items():
        assert names.get(name) == kind, name
    value = registry.get_sample_value
    assert value("customs_audit_accruals_paid_kzt_total") == 0.2
    assert value("customs_audit_accruals_notified_kzt_total") == 2000000.06
    assert value("customs_audit_case_changes_total", {"changed_by": "paid"}) == 4
    assert value("customs_audit_cases", {"partition": "0", "state": "disputed"}) == 1
    assert value("customs_audit_cases", {"partition": "0", "state": "complied"}) == 0
    # a partition this worker no longer holds loses its series
    metrics.observe({1: ({"complied": 4}, 0)})
    assert value("customs_audit_cases", {"partition": "0", "state": "notified"}) is None
    assert value("customs_audit_overdue_cases", {"partition": "0"}) is None
    assert value("customs_audit_cases", {"partition": "1", "state": "complied"}) == 4


def test_the_dashboard_queries_only_exported_metrics_and_covers_the_cases():
    dashboard = json.loads(DASHBOARD.read_text())
    queried = set()
    for expr in expressions(dashboard):
        names = metric_names(expr)
        assert names, expr
        queried |= names
    assert queried <= set(EXPORTED)
    for watched in ("customs_audit_cases", "customs_audit_overdue_cases", "customs_audit_accruals_paid_kzt_total"):
        assert watched in queried
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)) and dashboard["uid"] == "customs-audit"
