"""The tax-free pilot's rules as effective-dated data (stream/taxfree/data/rules.json by default).

Every figure the decision uses (VAT rate, the operator's commission, MCI and the minimum purchase,
pilot airports, EAEU states, payment window, validity) is a list of periods in the rules file; the
period in force on a date is the latest one starting on or before it. A file that is malformed, or
a commission above the Order's 20% cap, is refused with a `RulesError` naming the problem: the
commands turn it into a clear message and a non-zero exit, the worker does not start.
"""
from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from dateutil.relativedelta import relativedelta

from stream.money import decimal_of, parse_tiyn, round_tiyn

DEFAULT_RULES = Path(__file__).parent / "data" / "rules.json"

# The Order caps the operator's commission at 20% of the VAT confirmed for compensation.
COMMISSION_CAP_PCT = Decimal(20)

# Kazakhstan keeps one time zone (UTC+5) since 2024: calendar dates of timestamps are taken there.
KZ_TIME = timezone(timedelta(hours=5))

_LISTS = ("vat_rate_pct", "commission_pct", "minimum_purchase_mci", "pilot_airports", "eaeu_states",
          "payment_window", "validity_months_after_issue_month")


class RulesError(ValueError):
    """The rules file (or an override) cannot be used; the message says why."""


def kz_date(timestamp: str) -> date:
    """The calendar date in Kazakhstan of a validated RFC 3339 timestamp."""
    return datetime.fromisoformat(timestamp.replace("z", "Z")).astimezone(KZ_TIME).date()


@lru_cache(maxsize=4096)  # documents of a day share their dates: dateutil once per date
def end_of_validity(issued_on: date, months_after: int = 3) -> date:
    """The last day of the `months_after`-th month after the month of issue (2026-08-15 -> 2026-11-30)."""
    return issued_on.replace(day=1) + relativedelta(months=months_after + 1) - timedelta(days=1)


@lru_cache(maxsize=4096)
def add_months(day: date, months: int) -> date:
    """The same day `months` later, or that month's last day when it has no such day."""
    return day + relativedelta(months=months)


def check_commission(pct: Decimal) -> Decimal:
    if not isinstance(pct, Decimal) or not pct.is_finite() or pct < 0:
        raise RulesError(f"commission rate {pct} is not a non-negative percentage")
    if pct > COMMISSION_CAP_PCT:
        raise RulesError(
            f"commission rate {pct}% exceeds the cap of {COMMISSION_CAP_PCT}% of the confirmed VAT "
            "(MinFin Order No. 363): refusing to run")
    return pct


@dataclass(frozen=True)
class Period:
    starts: date
    value: object
    confirmed: bool


class Schedule:
    """One effective-dated figure: the value in force on a date."""

    def __init__(self, name: str, periods: list[Period]):
        if not periods:
            raise RulesError(f"rules: {name} has no periods")
        periods = sorted(periods, key=lambda p: p.starts)
        for a, b in zip(periods, periods[1:]):
            if a.starts == b.starts:
                raise RulesError(f"rules: {name} has two periods from {a.starts}")
        self.name = name
        self.periods = periods
        self._starts = [p.starts for p in periods]

    def period(self, on: date) -> Period | None:
        i = bisect.bisect_right(self._starts, on) - 1
        return self.periods[i] if i >= 0 else None

    def at(self, on: date):
        p = self.period(on)
        return None if p is None else p.value


@dataclass(frozen=True)
class Rules:
    vat_rate_pct: Schedule
    commission_pct: Schedule
    mci_kzt: dict[int, int]                # year -> tiyn
    mci_confirmed: dict[int, bool]
    minimum_purchase_mci: Schedule
    pilot_airports: Schedule
    eaeu_states: Schedule
    payment_window: Schedule
    validity: Schedule
    source: str

    def commission_on(self, on: date, override: Decimal | None = None) -> Decimal | None:
        return override if override is not None else self.commission_pct.at(on)

    def minimum_tiyn(self, on: date) -> int | None:
        """The minimum purchase in force on `on` in tiyn (MCI of that year x the MCI count), or None."""
        count = self.minimum_purchase_mci.at(on)
        mci = self.mci_kzt.get(on.year)
        if count is None or mci is None:
            return None
        return round_tiyn(Decimal(mci) * count / 100)

    def max_commission(self) -> Decimal:
        return max((p.value for p in self.commission_pct.periods), default=Decimal(0))


def _date(text: object, where: str) -> date:
    try:
        return date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else _fail()
    except ValueError:
        raise RulesError(f"rules: {where}: {text!r} is not a YYYY-MM-DD date") from None


def _fail():
    raise ValueError


def _pct(value: object, where: str) -> Decimal:
    try:
        pct = decimal_of(value, where)
    except (TypeError, ValueError) as exc:
        raise RulesError(f"rules: {exc}") from None
    if pct < 0 or pct > 100:
        raise RulesError(f"rules: {where}: {value!r} is not a percentage from 0 to 100")
    return pct


def _states(value: object, where: str, width: int) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) == width and v.isalpha()
                                              and v.isupper() for v in value):
        raise RulesError(f"rules: {where}: expected a list of {width}-letter upper-case codes")
    return frozenset(value)


def _window(value: object, where: str) -> tuple[int, int]:
    if not isinstance(value, dict):
        raise RulesError(f"rules: {where}: expected an object with not_before_days and within_months")
    days, months = value.get("not_before_days"), value.get("within_months")
    for name, v in (("not_before_days", days), ("within_months", months)):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 36 * 31:
            raise RulesError(f"rules: {where}.{name}: expected a small non-negative integer")
    return days, months


def _months(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 36:
        raise RulesError(f"rules: {where}: expected a whole number of months from 0 to 36")
    return value


_PARSE = {
    "vat_rate_pct": _pct,
    "commission_pct": _pct,
    "minimum_purchase_mci": _pct,  # a non-negative count of MCI, same form as a percentage
    "pilot_airports": lambda v, w: _states(v, w, 3),
    "eaeu_states": lambda v, w: _states(v, w, 2),
    "payment_window": _window,
    "validity_months_after_issue_month": _months,
}


def parse(data: object, source: str = "<rules>", commission_override: Decimal | None = None) -> Rules:
    if not isinstance(data, dict):
        raise RulesError(f"rules {source}: expected a JSON object")
    schedules = {}
    for name in _LISTS:
        entries = data.get(name)
        if not isinstance(entries, list):
            raise RulesError(f"rules {source}: {name} must be a list of periods")
        periods = []
        for i, entry in enumerate(entries):
            where = f"{name}[{i}]"
            if not isinstance(entry, dict) or "value" not in entry:
                raise RulesError(f"rules {source}: {where} must be an object with from and value")
            periods.append(Period(_date(entry.get("from"), where), _PARSE[name](entry["value"], where),
                                  entry.get("confirmed") is not False))
        schedules[name] = Schedule(name, periods)
    mci, mci_confirmed = {}, {}
    entries = data.get("mci_kzt")
    if not isinstance(entries, list) or not entries:
        raise RulesError(f"rules {source}: mci_kzt must be a list of {{year, value}}")
    for i, entry in enumerate(entries):
        year = entry.get("year") if isinstance(entry, dict) else None
        if not isinstance(year, int) or isinstance(year, bool) or not 1990 <= year <= 2200:
            raise RulesError(f"rules {source}: mci_kzt[{i}].year must be a year")
        try:
            tiyn = parse_tiyn(entry.get("value"))
        except (TypeError, ValueError):
            raise RulesError(f"rules {source}: mci_kzt[{i}].value must be a KZT amount string") from None
        if tiyn <= 0 or year in mci:
            raise RulesError(f"rules {source}: mci_kzt[{i}] is not positive or repeats year {year}")
        mci[year], mci_confirmed[year] = tiyn, entry.get("confirmed") is not False
    for p in schedules["commission_pct"].periods:
        try:
            check_commission(p.value)
        except RulesError as exc:
            raise RulesError(f"rules {source}: commission_pct from {p.starts}: {exc}") from None
    if commission_override is not None:
        check_commission(commission_override)
        schedules["commission_pct"] = Schedule("commission_pct", [Period(date.min, commission_override, True)])
    return Rules(schedules["vat_rate_pct"], schedules["commission_pct"], mci, mci_confirmed,
                 schedules["minimum_purchase_mci"], schedules["pilot_airports"], schedules["eaeu_states"],
                 schedules["payment_window"], schedules["validity_months_after_issue_month"], source)


def load(path: str | Path | None = None, commission_override: Decimal | str | None = None) -> Rules:
    """The rules in `path` (default: CUSTOMS_TAXFREE_RULES, else the shipped file)."""
    if path is None:
        from stream.settings import env
        path = env("CUSTOMS_TAXFREE_RULES") or DEFAULT_RULES
    path = Path(path)
    if isinstance(commission_override, str):
        try:
            commission_override = decimal_of(commission_override, "commission rate")
        except (TypeError, ValueError) as exc:
            raise RulesError(str(exc)) from None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"rules {path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise RulesError(f"rules {path}: not JSON: {exc}") from None
    return parse(data, str(path), commission_override)
