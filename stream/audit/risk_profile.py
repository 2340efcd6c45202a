"""Risk profiles: the scorer's thresholds, windows, audit capacity and random rate, as effective-dated data.

The file (stream/audit/data/risk_profiles.json, replaceable through CUSTOMS_RISK_PROFILES) lists profiles
with inclusive validity dates; the one in force on a declaration's `declared_at` scores it, and every
risk-score/1 names it. Decimals are strings in the file and `Decimal`s here: a profile is compared with
money and ratios, never with floats read from JSON.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from stream.settings import env

DEFAULT_PATH = Path(__file__).parent / "data" / "risk_profiles.json"


class ProfileError(ValueError):
    """A risk profile file that cannot be used (named by file and field)."""


@dataclass(frozen=True)
class IndexRule:
    """When an index of prices or weights is far enough under its median to be a finding."""

    max_ratio: Decimal   # the line's value (or weight) per unit is at most this share of the index median
    min_z: Decimal       # and at least this many robust standard deviations (log scale) under it
    full_z: Decimal      # the confidence reaches 1 here
    min_spread: Decimal  # floor of the log-scale spread: a tight index does not turn noise into certainty


@dataclass(frozen=True)
class Profile:
    id: str
    valid_from: dt.date
    valid_to: dt.date
    min_samples: int
    heading_confidence: Decimal  # a heading's index mixes codes of different price levels: its findings weigh less
    undervaluation: IndexRule
    weight_mismatch: IndexRule
    min_classifier_confidence: Decimal
    split_window_days: int
    split_max_parcels: int
    split_min_parcel_share: Decimal
    split_full_parcels: int
    trader_window_days: int
    trader_min_declarations: int
    trader_min_hit_rate: Decimal
    trader_max_score: Decimal
    revenue_scale_tiyn: int
    zero_revenue_weight: Decimal
    threshold: Decimal
    daily_capacity: int
    random_rate: Decimal


def _decimal(section: dict, name: str, where: str, lo: str = "0", hi: str | None = None) -> Decimal:
    text = section.get(name)
    if not isinstance(text, str):
        raise ProfileError(f"{where}.{name}: expected a decimal string")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ProfileError(f"{where}.{name}: {text[:40]!r} is not a decimal") from None
    if not value.is_finite() or value < Decimal(lo) or (hi is not None and value > Decimal(hi)):
        raise ProfileError(f"{where}.{name}: {text!r} is outside {lo}..{hi or 'any'}")
    return value


def _int(section: dict, name: str, where: str, lo: int = 0) -> int:
    value = section.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ProfileError(f"{where}.{name}: expected an integer >= {lo}")
    return value


def _section(entry: dict, name: str, where: str) -> dict:
    section = entry.get(name)
    if not isinstance(section, dict):
        raise ProfileError(f"{where}.{name}: expected an object")
    return section


def _date(value, default: dt.date, where: str) -> dt.date:
    if value is None:
        return default
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: expected YYYY-MM-DD or null") from None


def _index_rule(entry: dict, name: str, where: str) -> IndexRule:
    section = _section(entry, name, where)
    where = f"{where}.{name}"
    return IndexRule(_decimal(section, "max_ratio", where, "0", "1"), _decimal(section, "min_z", where),
                     _decimal(section, "full_z", where, "0.000001"), _decimal(section, "min_spread", where, "0.000001"))


def _parse(entry: object, where: str) -> Profile:
    if not isinstance(entry, dict):
        raise ProfileError(f"{where}: expected an object")
    ident = entry.get("id")
    if not isinstance(ident, str) or not ident:
        raise ProfileError(f"{where}.id: expected a non-empty string")
    where = f"{where} ({ident})"
    index = _section(entry, "index", where)
    split = _section(entry, "splitting", where)
    trader = _section(entry, "trader_risk", where)
    scoring = _section(entry, "scoring", where)
    selection = _section(entry, "selection", where)
    revenue_scale = _decimal(scoring, "revenue_scale_kzt", where + ".scoring", "0.01")
    if revenue_scale != revenue_scale.quantize(Decimal("0.01")):
        raise ProfileError(f"{where}.scoring.revenue_scale_kzt: at most two decimals")
    return Profile(
        id=ident,
        valid_from=_date(entry.get("valid_from"), dt.date.min, f"{where}.valid_from"),
        valid_to=_date(entry.get("valid_to"), dt.date.max, f"{where}.valid_to"),
        min_samples=_int(index, "min_samples", where + ".index", 1),
        heading_confidence=_decimal(index, "heading_confidence", where + ".index", "0", "1"),
        undervaluation=_index_rule(entry, "undervaluation", where),
        weight_mismatch=_index_rule(entry, "weight_mismatch", where),
        min_classifier_confidence=_decimal(_section(entry, "misclassification", where), "min_confidence",
                                           where + ".misclassification", "0", "1"),
        split_window_days=_int(split, "window_days", where + ".splitting", 1),
        split_max_parcels=_int(split, "max_parcels", where + ".splitting", 2),
        split_min_parcel_share=_decimal(split, "min_parcel_share", where + ".splitting", "0", "1"),
        split_full_parcels=_int(split, "full_parcels", where + ".splitting", 2),
        trader_window_days=_int(trader, "window_days", where + ".trader_risk", 1),
        trader_min_declarations=_int(trader, "min_declarations", where + ".trader_risk", 1),
        trader_min_hit_rate=_decimal(trader, "min_hit_rate", where + ".trader_risk", "0", "1"),
        trader_max_score=_decimal(trader, "max_trader_score", where + ".trader_risk", "0", "1"),
        revenue_scale_tiyn=int(revenue_scale * 100),
        zero_revenue_weight=_decimal(scoring, "zero_revenue_weight", where + ".scoring", "0", "1"),
        threshold=_decimal(selection, "threshold", where + ".selection", "0", "1"),
        daily_capacity=_int(selection, "daily_capacity", where + ".selection", 0),
        random_rate=_decimal(selection, "random_rate", where + ".selection", "0", "1"),
    )


class Profiles:
    """The profiles of one file, looked up by date."""

    def __init__(self, profiles: list[Profile]):
        self.profiles = sorted(profiles, key=lambda p: p.valid_from)
        for a, b in zip(self.profiles, self.profiles[1:]):
            if b.valid_from <= a.valid_to:
                raise ProfileError(f"risk profiles {a.id} and {b.id} overlap")
        ids = [p.id for p in self.profiles]
        if len(set(ids)) != len(ids):
            raise ProfileError("two risk profiles share an id")
        self._by_day: dict[dt.date, Profile | None] = {}  # a memo: every declaration asks for its day's

    def in_force(self, day: dt.date) -> Profile | None:
        try:
            return self._by_day[day]
        except KeyError:
            pass
        found = next((p for p in self.profiles if p.valid_from <= day <= p.valid_to), None)
        if len(self._by_day) >= 10_000:
            self._by_day.clear()
        self._by_day[day] = found
        return found


def load_profiles(path: str | Path | None = None) -> Profiles:
    """The profiles of ``path`` (default: CUSTOMS_RISK_PROFILES, else the shipped file)."""
    chosen = Path(path) if path is not None else Path(env("CUSTOMS_RISK_PROFILES") or DEFAULT_PATH)
    try:
        data = json.loads(chosen.read_text(encoding="utf-8"))
    except (OSError, ValueError) as problem:
        raise ProfileError(f"{chosen}: {problem}") from None
    entries = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ProfileError(f"{chosen}: expected an object with a non-empty list 'profiles'")
    return Profiles([_parse(entry, f"{chosen.name}: profiles[{i}]") for i, entry in enumerate(entries)])
