"""The domestic-value share of a product on a date (CT-KZ), under both formulas, and what would qualify it.

All money is integer tiyn; shares are `Decimal` percentages rounded half up to two places by
`stream.money.share_pct` (the local-content/1 contract, schemas/local-content-1.json):

- ``C_foreign`` = cost of the materials whose origin is not KZ;
- ``exw_price`` = production cost + margin, plus VAT at the rate in force when ``vat_payer``
  (``percent_of``: rounded half up to the tiyn);
- ``share_exw_pct`` = (1 - C_foreign / exw_price) x 100, ``share_production_cost_pct`` =
  (1 - C_foreign / production_cost) x 100;
- ``formula`` and ``share_pct`` follow the rules data on ``calculated_on`` (EXW until 2024-04-27,
  production cost from 2024-04-28 under Order No. 169-NK);
- ``eligible`` = share_pct >= threshold_pct, the figures as printed (null without a threshold).

When a product falls short, the answer gives the most foreign-materials cost that qualifies under
the formula in force with every other figure unchanged (foreign materials replaced by domestic
ones at the same cost, so the denominator stays), and the substitution that gets there.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from stream.contracts.reasons import rejection
from stream.localcontent.contract import DOMESTIC, ref_of, validate_request
from stream.localcontent.rules import LocalContentRules, RulesNotInForce, load_rules
from stream.money import format_tiyn, parse_tiyn, percent_of, share_pct
from stream.settings import env

SCHEMA = "local-content/1"
FORMULA_NAMES = {"exw": "EXW price", "production_cost": "production cost"}

_default_rules: LocalContentRules | None = None


def default_rules() -> LocalContentRules:
    """The rules `assess` uses when given none: the shipped files, with those of the directory in
    CUSTOMS_LOCAL_CONTENT_RULES (when set) replacing them; loaded once."""
    global _default_rules
    if _default_rules is None:
        _default_rules = load_rules(env("CUSTOMS_LOCAL_CONTENT_RULES") or None)
    return _default_rules


def _share(foreign: int, whole: int) -> Decimal:
    return share_pct(Decimal(whole - foreign), Decimal(whole))


def max_foreign_cost(whole: int, threshold: Decimal) -> int:
    """The largest C_foreign (tiyn) whose share of ``whole`` (tiyn), rounded half up to two places,
    reaches ``threshold``: round(100 (W - C) / W) >= T  <=>  100 (W - C) / W >= T - 0.005
    <=>  C <= W (20001 - 200 T) / 20000, so the floor of that (exact integers, T with 2 places)."""
    hundredths = int(threshold * 100)
    return whole * (20001 - 2 * hundredths) // 20000


def _pct(value: Decimal) -> str:
    return f"{value:.2f}"


def _explanation(doc: dict, answer: dict, figures: dict, rules: LocalContentRules, basis: str,
                 threshold_source: str | None) -> str:
    """Plain sentences: the share in force and its arithmetic, the other formula, the verdict."""
    formula = answer["formula"]
    share_of = {"exw": answer["share_exw_pct"], "production_cost": answer["share_production_cost_pct"]}
    denominator = {"exw": answer["exw_price"], "production_cost": answer["production_cost"]}
    foreign = answer["foreign_materials_cost"]
    vat = (f" + VAT {answer['vat_pct']}% {figures['vat']}" if doc["vat_payer"]
           else " (no VAT: not a VAT payer)")
    exw = f"EXW price {answer['exw_price']} = production cost {answer['production_cost']} + margin {figures['margin']}{vat}"
    sentences = [
        f"On {answer['calculated_on']} the share is computed on the {FORMULA_NAMES[formula]} ({basis}): "
        f"(1 - {foreign} / {denominator[formula]}) x 100 = {share_of[formula]}%, "
        f"{foreign} being the cost of the materials not of KZ origin."]
    change = Decimal(share_of["production_cost"]) - Decimal(share_of["exw"])
    moved = f"{'down' if change < 0 else 'up'} {_pct(abs(change))} points"
    if formula == "production_cost":
        effect = f"moves the share {moved}" if change else "leaves the share as it is"
        sentences.append(f"The former formula on the {exw} gives {share_of['exw']}%: dropping VAT and margin "
                         f"from the denominator {effect}.")
    else:
        switch = next((day for day, name in rules.formula_switches() if name == "production_cost"), None)
        since = f" in force from {switch}" if switch is not None else ""
        sentences.append(f"Here the {exw}. The production-cost formula{since} (no VAT, no margin in the "
                         f"denominator) gives {share_of['production_cost']}%, {moved if change else 'the same'}.")
    if answer["threshold_pct"] is None:
        sentences.append(f"No threshold is known for product type {doc['product_type']!r} on this date, so "
                         f"eligibility is not decided.")
        return " ".join(sentences) + " Amounts in KZT."
    unconfirmed = f" (unconfirmed: {threshold_source})" if answer["threshold_status"] == "unconfirmed" else ""
    sentences.append(f"Threshold for {doc['product_type']}: {answer['threshold_pct']}%{unconfirmed}.")
    if answer["eligible"]:
        sentences.append(f"Eligible: {answer['share_pct']}% reaches it.")
    else:
        short = Decimal(answer["threshold_pct"]) - Decimal(answer["share_pct"])
        qualify = answer["to_qualify"]
        sentences.append(
            f"Not eligible: {answer['share_pct']}% is {_pct(short)} points short. It qualifies with at most "
            f"{qualify['max_foreign_materials_cost']} of foreign materials, e.g. by replacing at least "
            f"{qualify['min_domestic_substitution']} of them with domestic (KZ) materials at the same cost.")
    return " ".join(sentences) + " Amounts in KZT."


def assess(request: object, rules: LocalContentRules | None = None) -> dict:
    """One `local-content/1` answer for a parsed request, or a `rejection/1` when it cannot be answered."""
    rules = rules if rules is not None else default_rules()
    problem = validate_request(request)
    ref = ref_of(request)
    if problem is not None:
        return rejection(ref, *problem)
    day = dt.date.fromisoformat(request["calculated_on"])
    try:
        formula_period = rules.formula_on(day)
        vat_period = rules.vat_on(day)
    except RulesNotInForce as exc:
        return rejection(ref, "no_local_content_rules", f"calculated_on: {exc}")

    production_cost = parse_tiyn(request["production_cost"])
    margin = parse_tiyn(request["margin"])
    foreign = sum(parse_tiyn(m["cost"]) for m in request["materials"] if m["origin"] != DOMESTIC)
    if foreign > production_cost:
        return rejection(ref, "foreign_cost_exceeds_production_cost",
                         f"materials: foreign materials cost {format_tiyn(foreign)}, more than the production "
                         f"cost {format_tiyn(production_cost)}")
    vat_pct = Decimal(vat_period.value) if request["vat_payer"] else Decimal(0)
    vat = percent_of(production_cost + margin, vat_pct)
    exw = production_cost + margin + vat
    shares = {"exw": _share(foreign, exw), "production_cost": _share(foreign, production_cost)}
    formula = formula_period.value
    threshold = rules.threshold_on(request["product_type"], day)

    def reaches(share: Decimal) -> bool | None:
        return None if threshold is None else share >= threshold.pct

    eligible = reaches(shares[formula])
    to_qualify = None
    if eligible is False:
        most = max_foreign_cost(exw if formula == "exw" else production_cost, threshold.pct)
        to_qualify = {"max_foreign_materials_cost": format_tiyn(most),
                      "min_domestic_substitution": format_tiyn(foreign - most)}
    answer = {
        "schema": SCHEMA,
        "product_id": request["product_id"],
        "product_type": request["product_type"],
        "calculated_on": request["calculated_on"],
        "formula": formula,
        "share_pct": _pct(shares[formula]),
        "share_exw_pct": _pct(shares["exw"]),
        "share_production_cost_pct": _pct(shares["production_cost"]),
        "exw_price": format_tiyn(exw),
        "production_cost": format_tiyn(production_cost),
        "foreign_materials_cost": format_tiyn(foreign),
        "vat_pct": _pct(vat_pct),
        "threshold_pct": None if threshold is None else _pct(threshold.pct),
        "threshold_status": None if threshold is None else threshold.status,
        "eligible": eligible,
        "eligible_exw": reaches(shares["exw"]),
        "eligible_production_cost": reaches(shares["production_cost"]),
        "to_qualify": to_qualify,
        "rules": {"formula": formula_period.id, "vat": vat_period.id},
    }
    figures = {"margin": format_tiyn(margin), "vat": format_tiyn(vat)}
    answer["explanation"] = _explanation(request, answer, figures, rules, formula_period.basis,
                                         None if threshold is None else threshold.source)
    return answer
