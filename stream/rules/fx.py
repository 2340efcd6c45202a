"""Exchange rates: KZT per unit of a currency, by date (National Bank of Kazakhstan rates).

File format (schemas/fx-csv.json): CSV ``date,currency,kzt_per_unit``. The rate for a date is the
latest row on or before it, because the National Bank's rate holds over weekends and holidays.
"""
from __future__ import annotations

import bisect
import datetime as dt
import re
from pathlib import Path

from stream.core.fixed import MICRO, parse_micro
from stream.rules.csv_files import rows_of

COLUMNS = ("date", "currency", "kzt_per_unit")
_CURRENCY = re.compile(r"[A-Z]{3}").fullmatch  # fullmatch: `$` would accept a trailing newline
_MAX_RATE_MICRO = 10**6 * MICRO  # 1,000,000 KZT per unit


class FxError(ValueError):
    """The exchange-rate file is not in the documented format."""


class RateNotFound(LookupError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class ExchangeRates:
    """Rates per currency as sorted (date ordinal, micro-KZT) columns, with a memo per (currency, date)."""

    HOME = "KZT"

    def __init__(self, rates: dict[str, list[tuple[dt.date, int]]]):
        self._days: dict[str, list[int]] = {}
        self._rates: dict[str, list[int]] = {}
        for currency, rows in rates.items():
            rows = sorted(rows)
            self._days[currency] = [day.toordinal() for day, _ in rows]
            self._rates[currency] = [rate for _, rate in rows]
        self._memo: dict[tuple[str, int], int] = {}

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset(self._days) | {self.HOME}

    def rate_micro(self, currency: str, day: dt.date) -> int:
        """KZT per unit * 10**6 in force on ``day``; raises RateNotFound with a rejection reason."""
        ordinal = day.toordinal()
        key = (currency, ordinal)
        rate = self._memo.get(key)
        if rate is not None:
            return rate
        if currency == self.HOME:
            return MICRO
        days = self._days.get(currency)
        if days is None:
            raise RateNotFound("unsupported_currency", f"no exchange rate is known for {currency}")
        index = bisect.bisect_right(days, ordinal) - 1
        if index < 0:
            first = dt.date.fromordinal(days[0]).isoformat()
            raise RateNotFound("no_exchange_rate", f"no {currency} rate on or before {day.isoformat()} (first is {first})")
        rate = self._rates[currency][index]
        self._memo[key] = rate
        return rate


def load_fx(path: str | Path) -> ExchangeRates:
    path = Path(path)
    rates: dict[str, list[tuple[dt.date, int]]] = {}
    seen: set[tuple[str, dt.date]] = set()
    for line_num, row in rows_of(path, COLUMNS, FxError):
        where = f"{path}:{line_num}"
        currency = (row["currency"] or "").strip()
        if not _CURRENCY(currency):
            raise FxError(f"{where}: currency {currency!r} is not an ISO 4217 code")
        try:
            day = dt.date.fromisoformat((row["date"] or "").strip())
            rate = parse_micro((row["kzt_per_unit"] or "").strip(), "kzt_per_unit")
        except ValueError as error:
            raise FxError(f"{where}: {error}") from None
        if not 0 < rate <= _MAX_RATE_MICRO:
            raise FxError(f"{where}: rate must be above 0 and at most 1,000,000 KZT")
        if (currency, day) in seen:
            raise FxError(f"{where}: second rate for {currency} on {day}")
        seen.add((currency, day))
        rates.setdefault(currency, []).append((day, rate))
    if not rates:
        raise FxError(f"{path}: no rows")
    return ExchangeRates(rates)
