"""The local-content step of `make demo`: two products either side of Order No. 169-NK.

Both are the README's worked example: a table that keeps its CT-KZ share when the production-cost
formula replaces the EXW one on 2024-04-28, and a chair that loses it, with what would restore it.
"""
from __future__ import annotations

from typing import Callable

from stream.localcontent.share import assess

DAYS = ("2024-04-27", "2024-04-28")


def example_products() -> list[dict]:
    """The two requests of the README's worked example (calculated_on is set per day)."""
    return [
        {"schema": "local-content-request/1", "product_id": "TABLE-OAK-1", "product_type": "furniture",
         "calculated_on": DAYS[1], "vat_payer": True, "production_cost": "800000.00", "margin": "200000.00",
         "materials": [{"name": "beech board", "origin": "RU", "cost": "300000.00"},
                       {"name": "fittings", "origin": "KZ", "cost": "50000.00"}]},
        {"schema": "local-content-request/1", "product_id": "CHAIR-STEEL-2", "product_type": "furniture",
         "calculated_on": DAYS[1], "vat_payer": True, "production_cost": "600000.00", "margin": "300000.00",
         "materials": [{"name": "steel tube", "origin": "CN", "cost": "330000.00"},
                       {"name": "upholstery fabric", "origin": "TR", "cost": "30000.00"},
                       {"name": "foam", "origin": "KZ", "cost": "45000.00"}]},
    ]


def _verdict(answer: dict) -> str:
    if answer["eligible"] is None:
        return "no threshold"
    return "eligible" if answer["eligible"] else "NOT eligible"


def demo_step(echo: Callable[[str], object]) -> None:
    """Answer both products on the last day of the EXW formula and the first of the new one, and
    print one line per product and day, then what would restore the product that falls short."""
    echo("")
    echo("=== local content (CT-KZ): the formula of Order No. 169-NK from 2024-04-28 ===")
    echo(f"  {'product':<15}{'day':<12}{'formula':<17}{'share':>8}{'other':>9}{'threshold':>11}  verdict")
    restore = []
    for product in example_products():
        for day in DAYS:
            answer = assess(dict(product, calculated_on=day))
            if answer["schema"] != "local-content/1":
                echo(f"  {product['product_id']:<15}{day:<12}rejected: {answer['reason']}")
                continue
            other = answer["share_exw_pct"] if answer["formula"] == "production_cost" \
                else answer["share_production_cost_pct"]
            threshold = "-" if answer["threshold_pct"] is None else answer["threshold_pct"] + "%"
            echo(f"  {answer['product_id']:<15}{day:<12}{answer['formula']:<17}{answer['share_pct'] + '%':>8}"
                 f"{other + '%':>9}{threshold:>11}  {_verdict(answer)}")
            if answer["to_qualify"] is not None:
                restore.append(answer)
    for answer in restore:
        qualify = answer["to_qualify"]
        echo(f"  {answer['product_id']} qualifies again with at most {qualify['max_foreign_materials_cost']} KZT "
             f"of foreign materials (substitute {qualify['min_domestic_substitution']} KZT with domestic ones)")
    echo("  ('other': the share under the formula not in force; thresholds are unconfirmed placeholders)")
