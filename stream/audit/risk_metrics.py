"""Prometheus metrics of the risk agent (prometheus-client), named `customs_risk_*`.

- `customs_risk_declarations_total{outcome}` (counter): declarations read, by what became of them:
  `scored`, `rejected` (a rejection/1 went out), `duplicate` (a redelivery, scored before), `not_v2`
  (a declaration/1 without what scoring needs; skipped);
- `customs_risk_hits_total{indicator}` (counter): indicator hits;
- `customs_risk_selected_total{selected}` (counter): declarations selected for audit, `risk` or `random`;
- `customs_risk_revenue_at_risk_kzt_total{indicator}` (counter): revenue at risk of the hits, and
  `customs_risk_selected_revenue_at_risk_kzt_total` of the selected declarations: exact integer tiyn
  accumulated, exposed in KZT at scrape time (no float is ever summed).

Counted once the outputs of a declaration were acknowledged (``Domain.on_delivered``), so a
declaration repeated after a crash is counted again only if its outputs were sent again.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily

from stream.audit.risk_score import INDICATORS

OUTCOMES = ("scored", "rejected", "duplicate", "not_v2")

# sample name -> type: what the dashboard customs-risk.json may query (tests/test_risk_agent.py holds them together)
EXPORTED: dict[str, str] = {
    "customs_risk_declarations_total": "counter",
    "customs_risk_hits_total": "counter",
    "customs_risk_selected_total": "counter",
    "customs_risk_revenue_at_risk_kzt_total": "counter",
    "customs_risk_selected_revenue_at_risk_kzt_total": "counter",
}


@dataclass
class RiskCounts:
    """What one declaration did, for the metrics (Effects.counts)."""

    outcome: str
    hits: list[tuple[str, int]] = field(default_factory=list)  # (indicator, revenue at risk in tiyn)
    selected: str | None = None
    selected_revenue: int = 0  # tiyn


class _Revenue:
    """Exact tiyn totals per indicator, exposed in KZT."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.per_indicator = {name: 0 for name in INDICATORS}
        self.selected = 0

    def add(self, hits: list[tuple[str, int]], selected: int) -> None:
        with self._lock:
            for indicator, tiyn in hits:
                self.per_indicator[indicator] += tiyn
            self.selected += selected

    def collect(self):
        with self._lock:
            per_indicator, selected = dict(self.per_indicator), self.selected
        family = CounterMetricFamily("customs_risk_revenue_at_risk_kzt", "revenue at risk of risk hits, KZT",
                                     labels=["indicator"])
        for indicator, tiyn in per_indicator.items():
            family.add_metric([indicator], tiyn / 100)  # exposition only: exact below 2**53 tiyn
        yield family
        family = CounterMetricFamily("customs_risk_selected_revenue_at_risk_kzt",
                                     "revenue at risk of the declarations selected for audit, KZT")
        family.add_metric([], selected / 100)
        yield family


class RiskMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.declarations = Counter("customs_risk_declarations_total", "declarations read by the risk agent",
                                    ["outcome"], registry=registry)
        self.hits = Counter("customs_risk_hits_total", "risk indicator hits", ["indicator"], registry=registry)
        self.selected = Counter("customs_risk_selected_total", "declarations selected for audit",
                                ["selected"], registry=registry)
        for outcome in OUTCOMES:
            self.declarations.labels(outcome)
        for indicator in INDICATORS:
            self.hits.labels(indicator)
        for selected in ("risk", "random"):
            self.selected.labels(selected)
        self.revenue = _Revenue()
        registry.register(self.revenue)

    def record(self, counts: RiskCounts) -> None:
        self.record_many((counts,))

    def record_many(self, many) -> None:
        """Count a page's declarations: one increment per label, not per declaration."""
        outcomes: dict[str, int] = {}
        hits: dict[str, int] = {}
        selected: dict[str, int] = {}
        revenue: list[tuple[str, int]] = []
        selected_revenue = 0
        for counts in many:
            outcomes[counts.outcome] = outcomes.get(counts.outcome, 0) + 1
            for indicator, _ in counts.hits:
                hits[indicator] = hits.get(indicator, 0) + 1
            if counts.selected is not None:
                selected[counts.selected] = selected.get(counts.selected, 0) + 1
            revenue.extend(counts.hits)
            selected_revenue += counts.selected_revenue
        for counter, totals in ((self.declarations, outcomes), (self.hits, hits), (self.selected, selected)):
            for label, n in totals.items():
                counter.labels(label).inc(n)
        self.revenue.add(revenue, selected_revenue)


_default: RiskMetrics | None = None


def default_metrics() -> RiskMetrics:
    """The process-wide metrics on the default registry (created once: a registry refuses duplicates)."""
    global _default
    if _default is None:
        _default = RiskMetrics()
    return _default
