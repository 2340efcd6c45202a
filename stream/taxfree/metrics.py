"""Prometheus metrics of the tax-free domain, all named `customs_taxfree_*`.

Labels are bounded: the decision kind (3 values), the refusal reason (the 9 codes of DESIGN 8.2)
and the rejection reason (the REASONS table); never a document id, BIN or anything personal.
Money totals are integer tiyn exposed in KZT at scrape time (as stream/metrics.py does), so no
float is ever accumulated.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, Metric

from stream.money import parse_tiyn

EXPORTED: dict[str, str] = {
    "customs_taxfree_documents_total": "counter",
    "customs_taxfree_decisions_total": "counter",
    "customs_taxfree_refusals_total": "counter",
    "customs_taxfree_rejections_total": "counter",
    "customs_taxfree_vat_refunded_kzt_total": "counter",
    "customs_taxfree_commission_kzt_total": "counter",
}


class _Money:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.refunded = 0
        self.commission = 0

    def add(self, refunded: int, commission: int) -> None:
        with self._lock:
            self.refunded += refunded
            self.commission += commission

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            refunded, commission = self.refunded, self.commission
        yield CounterMetricFamily("customs_taxfree_vat_refunded_kzt", "VAT refunded to buyers (KZT)",
                                  value=refunded / 100)
        yield CounterMetricFamily("customs_taxfree_commission_kzt", "Operator commission withheld on refunds (KZT)",
                                  value=commission / 100)

    def describe(self) -> Iterable[Metric]:
        return self.collect()


class TaxfreeMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.documents = Counter("customs_taxfree_documents", "Tax-free documents accepted", registry=registry)
        self.decisions = Counter("customs_taxfree_decisions", "Tax-free decisions published, by kind",
                                 ["decision"], registry=registry)
        self.refusals = Counter("customs_taxfree_refusals", "Tax-free refusals, by reason (all that apply)",
                                ["reason"], registry=registry)
        self.rejections = Counter("customs_taxfree_rejections", "Tax-free inputs rejected, by reason",
                                  ["reason"], registry=registry)
        self.money = _Money()
        registry.register(self.money)

    def record(self, documents: int, decisions: list[dict], rejections: list[dict]) -> None:
        """Count what was delivered: `documents` newly accepted, the decisions and rejections published."""
        if documents:
            self.documents.inc(documents)
        refunded = commission = 0
        for decision in decisions:
            kind = decision["decision"]
            self.decisions.labels(kind).inc()
            if kind == "refund":
                refunded += parse_tiyn(decision["refund"])
                commission += parse_tiyn(decision["commission"])
            for reason in decision["reasons"]:
                self.refusals.labels(reason).inc()
        for r in rejections:
            self.rejections.labels(r["reason"]).inc()
        if refunded or commission:
            self.money.add(refunded, commission)


_default: TaxfreeMetrics | None = None
_lock = threading.Lock()


def default() -> TaxfreeMetrics:
    """The process-wide tax-free metrics in prometheus-client's default registry."""
    global _default
    with _lock:
        if _default is None:
            _default = TaxfreeMetrics()
        return _default
