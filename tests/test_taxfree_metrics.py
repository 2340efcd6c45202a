"""Tax-free metrics: exact money, bounded labels, and the dashboard queries only what is exported."""
from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.contracts.reasons import REASONS
from stream.taxfree import samples
from stream.taxfree.agents import TaxfreeDomain
from stream.taxfree.contracts import REFUSAL_REASONS
from stream.taxfree.decide import Decider
from stream.taxfree.metrics import EXPORTED, TaxfreeMetrics
from stream.taxfree.rules import load
from tests.test_dashboards import DATASOURCE_UIDS, expressions, metric_names, panels

import orjson

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy/grafana/dashboards/customs-taxfree.json"
SELLER = samples.entity("123456789012")


def samples_of(registry) -> dict:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_delivered_effects_are_counted_exactly():
    registry = CollectorRegistry()
    metrics = TaxfreeMetrics(registry)
    domain = TaxfreeDomain(Decider(load(), samples.keyset(SELLER), b"k" * 32), metrics)
    state = domain.new_state(0)
    docs = [samples.document(f"TF-{i}", SELLER, passport=f"P{i:08d}") for i in range(3)]
    docs.append(samples.document("TF-KZ", SELLER, country="KZ", lines=[samples.line("1000.00")]))
    messages = [("taxfree.documents", d) for d in docs] + [
        ("taxfree.confirmations", samples.confirmation(d)) for d in docs[:2]] + [
        ("taxfree.confirmations", samples.confirmation(docs[0]) | {"official_id": "X-1"})]
    for topic, message in messages:
        effects = domain.handle(state, topic, message["document_id"].encode(), orjson.dumps(message), 0.0)
        if effects.body:
            state.apply(effects.body)
        domain.on_delivered(effects.counts)
    got = samples_of(registry)
    assert got[("customs_taxfree_documents_total", ())] == 4
    assert got[("customs_taxfree_decisions_total", (("decision", "pending"),))] == 3
    assert got[("customs_taxfree_decisions_total", (("decision", "refund"),))] == 2
    assert got[("customs_taxfree_refusals_total", (("reason", "below_minimum"),))] == 1
    assert got[("customs_taxfree_refusals_total", (("reason", "buyer_eaeu_citizen"),))] == 1
    assert got[("customs_taxfree_rejections_total", (("reason", "already_confirmed"),))] == 1
    assert got[("customs_taxfree_vat_refunded_kzt_total", ())] == 28137.92  # 2 x 14,068.96
    assert got[("customs_taxfree_commission_kzt_total", ())] == 4965.52
    assert metrics.money.refunded == 2_813_792  # integer tiyn inside
    # bounded labels: decision kinds, refusal codes and rejection codes only, nothing personal
    allowed = {"decision": {"pending", "refund", "refusal"}, "reason": set(REASONS) | set(REFUSAL_REASONS)}
    for name, labels in got:
        for key, value in labels:
            assert value in allowed[key], (name, key, value)
    exposition = generate_latest(registry).decode()
    assert "P00000001" not in exposition and "TF-" not in exposition and SELLER.bin not in exposition


def test_dashboard_queries_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    registry = CollectorRegistry()
    metrics = TaxfreeMetrics(registry)
    metrics.record(1, [{"decision": "refund", "reasons": [], "refund": "1.00", "commission": "0.10"},
                       {"decision": "refusal", "reasons": ["cancelled"], "refund": "0.00", "commission": "0.00"}],
                   [{"reason": "vat_mismatch"}])
    exposed = {name for name, _ in samples_of(registry)}
    queried = set()
    for expr in expressions(dashboard):
        queried |= metric_names(expr)
    assert queried <= exposed
    assert queried == set(EXPORTED)  # every exported figure has its panel
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)) and dashboard["uid"] == "customs-taxfree"
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] in DATASOURCE_UIDS
            assert all(t["datasource"]["uid"] in DATASOURCE_UIDS for t in panel["targets"])
