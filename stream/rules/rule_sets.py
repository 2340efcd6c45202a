"""Effective-dated rule sets: which parcel regime and VAT rate are in force on a date, per flow."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from stream.core.fixed import REGIME_EXCESS, REGIME_WHOLE_VALUE, parse_micro

FLOWS = ("parcel", "warehouse")
_REGIMES = {"excess": REGIME_EXCESS, "whole_value": REGIME_WHOLE_VALUE}


class RuleSetError(ValueError):
    """The rule-set file is not in the documented format or its periods overlap."""


@dataclass(frozen=True)
class RuleSet:
    id: str
    flow: str
    valid_from: dt.date  # inclusive
    valid_to: dt.date  # inclusive
    vat_pct6: int
    regime: int = 0  # parcel only
    threshold_eur6: int = 0
    threshold_kg6: int = -1  # -1: no weight threshold
    duty_pct6: int = 0
    min_eur_per_kg6: int = 0


def _date(value, default: dt.date, where: str) -> dt.date:
    if value is None:
        return default
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise RuleSetError(f"{where}: {value!r} is not a date") from None


def _parse(entry: dict, where: str) -> RuleSet:
    try:
        flow = entry["flow"]
        if flow not in FLOWS:
            raise RuleSetError(f"{where}: flow must be one of {FLOWS}")
        common = dict(
            id=str(entry["id"]),
            flow=flow,
            valid_from=_date(entry.get("valid_from"), dt.date.min, where),
            valid_to=_date(entry.get("valid_to"), dt.date.max, where),
            vat_pct6=parse_micro(entry["vat_pct"], f"{where}: vat_pct"),
        )
        if flow == "warehouse":
            return RuleSet(**common)
        if entry["regime"] not in _REGIMES:
            raise RuleSetError(f"{where}: regime must be one of {sorted(_REGIMES)}")
        threshold_kg = entry.get("threshold_kg")
        return RuleSet(
            **common,
            regime=_REGIMES[entry["regime"]],
            threshold_eur6=parse_micro(entry["threshold_eur"], f"{where}: threshold_eur"),
            threshold_kg6=-1 if threshold_kg is None else parse_micro(threshold_kg, f"{where}: threshold_kg"),
            duty_pct6=parse_micro(entry["duty_pct"], f"{where}: duty_pct"),
            min_eur_per_kg6=parse_micro(entry["min_eur_per_kg"], f"{where}: min_eur_per_kg"),
        )
    except KeyError as error:
        raise RuleSetError(f"{where}: missing {error.args[0]}") from None
    except ValueError as error:
        if isinstance(error, RuleSetError):
            raise
        raise RuleSetError(f"{where}: {error}") from None


class RuleSets:
    def __init__(self, rule_sets: list[RuleSet]):
        self.by_flow: dict[str, list[RuleSet]] = {flow: [] for flow in FLOWS}
        for rule_set in rule_sets:
            if rule_set.valid_from > rule_set.valid_to:
                raise RuleSetError(f"rule set {rule_set.id}: valid_from after valid_to")
            self.by_flow[rule_set.flow].append(rule_set)
        for flow, sets in self.by_flow.items():
            sets.sort(key=lambda rule_set: rule_set.valid_from)
            for earlier, later in zip(sets, sets[1:]):
                if later.valid_from <= earlier.valid_to:
                    raise RuleSetError(f"rule sets {earlier.id} and {later.id} ({flow}) overlap")
        self._memo: dict[tuple[str, dt.date], RuleSet | None] = {}

    def in_force(self, flow: str, day: dt.date) -> RuleSet | None:
        key = (flow, day)
        if key not in self._memo:
            self._memo[key] = next(
                (rule_set for rule_set in self.by_flow[flow] if rule_set.valid_from <= day <= rule_set.valid_to), None
            )
        return self._memo[key]


def load_rule_sets(path: str | Path) -> RuleSets:
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = document["rule_sets"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RuleSetError(f"{path}: not a rule-set file ({error})") from None
    return RuleSets([_parse(entry, f"{path}: rule set #{index}") for index, entry in enumerate(entries)])
