"""The demo's risk step: score a generated feed with planted fraud and show the top of the audit list."""
from __future__ import annotations

from collections import Counter
from typing import Callable

from stream.money import format_kzt, parse_tiyn

DEMO_SEED = 42  # neither a tuning seed nor the holdout of `bench risk`


def risk_demo_step(echo: Callable[[str], None] = print, declarations: int = 4000, top: int = 10) -> dict:
    """Score ``declarations`` generated declarations (the offline twin of the risk agent) and echo the
    highest scores as the audit team would work them; returns the figures shown."""
    from stream.audit.risk_offline import OfflineScorer
    from stream.declaration.engine import Assessor
    from stream.loadgen import RiskFeedConfig, risk_feed
    from stream.rules import load_rules

    assessor = Assessor(load_rules())
    feed = list(risk_feed(RiskFeedConfig(declarations=declarations, seed=DEMO_SEED, days=8), assessor))
    outputs = list(OfflineScorer(assessor).score_documents([doc for doc, _ in feed]))
    truth = {doc["order_id"]: t for doc, t in feed}
    scores = [o for o in outputs if o.get("schema") == "risk-score/1"]
    ranked = sorted((o for o in scores if o["hits"]), key=lambda o: (-o["score"], o["declaration_id"]))
    hits = Counter(h["indicator"] for o in scores for h in o["hits"])
    selected = Counter(o["selected"] for o in scores if o["selected"])
    echo("")
    echo("=== post-release control: the audit list (risk scores) ===")
    echo(f"declarations scored   {len(scores):>8,}   with a hit {len(ranked):,}; selected: risk "
         f"{selected['risk']:,}, random {selected['random']:,}")
    echo("hits by indicator     " + ", ".join(f"{k} {v:,}" for k, v in hits.most_common()))
    echo(f"  {'order':<22}{'score':>7}{'revenue at risk (KZT)':>24}  {'selected':<9}{'indicators':<52}{'planted'}")
    for o in ranked[:top]:
        planted = truth[o["order_id"]].fraud or "-"
        indicators = ",".join(h["indicator"] for h in o["hits"])
        echo(f"  {o['order_id']:<22}{o['score']:>7.3f}{format_kzt(parse_tiyn(o['revenue_at_risk'])):>24}  "
             f"{o['selected'] or '-':<9}{indicators:<52}{planted}")
    found = sum(1 for o in ranked[:top] if truth[o["order_id"]].fraud)
    echo(f"  {found} of the top {min(top, len(ranked))} are planted frauds (ground truth of the generator)")
    return {"scored": len(scores), "with_hits": len(ranked), "top_frauds": found, "hits": dict(hits),
            "selected": dict(selected)}
