"""Rules as data: the tariff, exchange rates and effective-dated rule sets."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stream.rules.fx import ExchangeRates, load_fx
from stream.rules.rule_sets import RuleSets, load_rule_sets
from stream.rules.tariff import Tariff, load_tariff
from stream.settings import DATA_DIR


@dataclass(frozen=True)
class Rules:
    tariff: Tariff
    fx: ExchangeRates
    rule_sets: RuleSets


def load_rules(settings=None, *, tariff: str | Path | None = None, fx: str | Path | None = None,
               rule_sets: str | Path | None = None) -> Rules:
    """Load the rule data; explicit paths win over settings, settings over the shipped files."""
    def pick(explicit, attribute: str, default: str) -> Path:
        if explicit is not None:
            return Path(explicit)
        if settings is not None:
            return Path(getattr(settings, attribute))
        return DATA_DIR / default

    return Rules(
        tariff=load_tariff(pick(tariff, "tariff_path", "tariff.csv")),
        fx=load_fx(pick(fx, "fx_path", "fx.csv")),
        rule_sets=load_rule_sets(pick(rule_sets, "rule_sets_path", "rule_sets.json")),
    )


__all__ = ["Rules", "load_rules", "Tariff", "ExchangeRates", "RuleSets"]
