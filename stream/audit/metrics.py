"""Prometheus metrics of the case agent (prometheus-client), named `customs_audit_*`.

- `customs_audit_cases{partition, state}` (gauge): cases per state in each partition this worker holds,
  `customs_audit_overdue_cases{partition}` (gauge): cases whose deadline passed without the act it waited
  for (stream/audit/cases.py says which);
- `customs_audit_case_changes_total{changed_by}` (counter): snapshots published, by event kind or deadline;
- `customs_audit_rejections_total{reason}` (counter): audit events and selections rejected;
- `customs_audit_accruals_paid_kzt_total` and `customs_audit_accruals_notified_kzt_total` (counters):
  exact integer-tiyn totals, exposed in KZT at scrape time (no float is ever accumulated).

Gauges are set after every timer run from the partitions the worker holds (the runtime's ``observe``
hook); a partition that moved to another worker loses its series here, so summing over workers counts
each case once.
"""
from __future__ import annotations

import threading

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily

STATES = ("opened", "notified", "complied", "disputed", "explanation_accepted", "unfulfilled")

# sample name -> type: what the dashboard customs-audit.json may query (tests hold the two together)
EXPORTED: dict[str, str] = {
    "customs_audit_cases": "gauge",
    "customs_audit_overdue_cases": "gauge",
    "customs_audit_case_changes_total": "counter",
    "customs_audit_rejections_total": "counter",
    "customs_audit_accruals_paid_kzt_total": "counter",
    "customs_audit_accruals_notified_kzt_total": "counter",
}


class _Money:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.paid = 0      # tiyn
        self.notified = 0  # tiyn

    def add(self, paid: int, notified: int) -> None:
        with self._lock:
            self.paid += paid
            self.notified += notified

    def collect(self):
        with self._lock:
            paid, notified = self.paid, self.notified
        for name, tiyn, text in (("customs_audit_accruals_paid_kzt", paid, "additional accruals paid, KZT"),
                                 ("customs_audit_accruals_notified_kzt", notified,
                                  "additional accruals of delivered notifications, KZT")):
            family = CounterMetricFamily(name, text)
            family.add_metric([], tiyn / 100)  # exposition only: exact below 2**53 tiyn
            yield family


class CaseMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.cases = Gauge("customs_audit_cases", "audit cases per state, per partition held",
                           ["partition", "state"], registry=registry)
        self.overdue = Gauge("customs_audit_overdue_cases", "audit cases past a deadline without its act",
                             ["partition"], registry=registry)
        self.changes = Counter("customs_audit_case_changes_total", "audit case snapshots published",
                               ["changed_by"], registry=registry)
        self.rejections = Counter("customs_audit_rejections_total", "audit events and selections rejected",
                                  ["reason"], registry=registry)
        self.money = _Money()
        registry.register(self.money)
        self._partitions: set[str] = set()

    def record(self, counts: "CaseCounts") -> None:
        for changed_by in counts.changes:
            self.changes.labels(changed_by).inc()
        for reason in counts.rejections:
            self.rejections.labels(reason).inc()
        if counts.paid or counts.notified:
            self.money.add(counts.paid, counts.notified)

    def observe(self, per_partition: dict[int, tuple[dict[str, int], int]]) -> None:
        """Set the gauges from the partitions this worker holds now: {partition: (cases per state, overdue)};
        a partition no longer held loses its series."""
        held = {str(p) for p in per_partition}
        for label in self._partitions - held:
            for state in STATES:
                self.cases.remove(label, state)
            self.overdue.remove(label)
        for partition, (per_state, overdue) in per_partition.items():
            label = str(partition)
            for state in STATES:
                self.cases.labels(label, state).set(per_state.get(state, 0))
            self.overdue.labels(label).set(overdue)
        self._partitions = held


class CaseCounts:
    """What one message or tick did, for the metrics (Effects.counts)."""
    __slots__ = ("changes", "rejections", "paid", "notified")

    def __init__(self):
        self.changes: list[str] = []
        self.rejections: list[str] = []
        self.paid = 0
        self.notified = 0
