"""The local-content rules as effective-dated data: which formula, VAT rate and threshold hold on a date.

Three CSV files (formats in schemas/local-content-*-csv.json), shipped in stream/localcontent/data/
and replaceable as a whole or one by one (``customs-stream local-content --rules DIR``):

- ``formulas.csv``  ``id,valid_from,valid_to,formula,legal_basis``: ``exw`` or ``production_cost``;
- ``vat.csv``       ``id,valid_from,valid_to,rate_pct,legal_basis``: the VAT rate added to the EXW price;
- ``thresholds.csv`` ``product_type,valid_from,valid_to,threshold_pct,status,source``: the share a
  product type needs for CT-KZ, ``confirmed`` or ``unconfirmed``.

Periods are inclusive at both ends. Formula and VAT periods must follow each other without gaps or
overlaps; their common span is how far the data is vouched for, so a date outside it is refused
rather than answered under rules nobody confirmed. Threshold periods of one product type must not
overlap; a type (or date) without a threshold row has no threshold. Every refusal names the file and
the line.
"""
from __future__ import annotations

import bisect
import csv
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from stream.rules.csv_files import rows_of

DATA_DIR = Path(__file__).parent / "data"
FILES = ("formulas.csv", "vat.csv", "thresholds.csv")
FORMULAS = ("exw", "production_cost")
STATUSES = ("confirmed", "unconfirmed")

FORMULA_COLUMNS = ("id", "valid_from", "valid_to", "formula", "legal_basis")
VAT_COLUMNS = ("id", "valid_from", "valid_to", "rate_pct", "legal_basis")
THRESHOLD_COLUMNS = ("product_type", "valid_from", "valid_to", "threshold_pct", "status", "source")

# The same patterns as schemas/local-content-*-csv.json (fullmatch: anchored, no trailing newline).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}").fullmatch
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch
_PERCENT = re.compile(r"(?:100(?:\.00?)?|[1-9]?[0-9](?:\.[0-9]{1,2})?)").fullmatch
_TYPE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}").fullmatch
_TEXT_MAX = 1000


class RulesError(ValueError):
    """A local-content data file is not in the documented format (the message names file and line)."""


class RulesNotInForce(LookupError):
    """No formula or VAT rate in the data covers the date."""


@dataclass(frozen=True)
class Period:
    id: str
    valid_from: dt.date
    valid_to: dt.date
    value: str  # the formula name, or the rate / threshold as a decimal string
    basis: str  # legal basis, or source of a threshold
    status: str = "confirmed"
    line: int = 0


@dataclass(frozen=True)
class Threshold:
    pct: Decimal
    status: str
    source: str


def _date(text: str, column: str, where: str) -> dt.date:
    if _DATE(text) is None:
        raise RulesError(f"{where}: {column} {text[:40]!r} is not a YYYY-MM-DD date")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise RulesError(f"{where}: {column} {text!r} is not a possible date") from None


def _rows(path: Path, columns: tuple[str, ...]):
    """The shared CSV reader, with unreadable files refused as RulesError like every other fault."""
    try:
        for line, row in rows_of(path, columns, RulesError):
            if None in row:  # csv.DictReader files the cells past the header under None: a stray comma
                raise RulesError(f"{path}:{line}: {len(row) - 1 + len(row[None])} cells, the header names "
                                 f"{len(row) - 1} (quote a text that holds a comma)")
            yield line, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RulesError(f"{path}: cannot be read as UTF-8 CSV ({type(exc).__name__}: {str(exc)[:120]})") from None


def _text(text: str, column: str, where: str) -> str:
    if not 1 <= len(text) <= _TEXT_MAX:
        raise RulesError(f"{where}: {column} must be 1 to {_TEXT_MAX} characters")
    return text


def _percent(text: str, column: str, where: str) -> str:
    if _PERCENT(text) is None:
        raise RulesError(f"{where}: {column} {text[:40]!r} is not a percentage 0..100 with at most 2 decimals")
    return text


def _span(row: dict[str, str], where: str) -> tuple[dt.date, dt.date]:
    start = _date(row["valid_from"], "valid_from", where)
    end = _date(row["valid_to"], "valid_to", where)
    if end < start:
        raise RulesError(f"{where}: valid_to {end} is before valid_from {start}")
    return start, end


def _ordered(periods: list[Period], path: Path, contiguous: bool) -> list[Period]:
    """Periods sorted by start; overlaps (and, when ``contiguous``, gaps) are refused by line."""
    periods = sorted(periods, key=lambda p: p.valid_from)
    for before, after in zip(periods, periods[1:]):
        if after.valid_from <= before.valid_to:
            raise RulesError(f"{path}:{after.line}: {after.valid_from}..{after.valid_to} overlaps "
                             f"line {before.line} ({before.valid_from}..{before.valid_to})")
        if contiguous and after.valid_from != before.valid_to + dt.timedelta(days=1):
            raise RulesError(f"{path}:{after.line}: starts {after.valid_from}, but line {before.line} ends "
                             f"{before.valid_to}: the days between have no rule")
    return periods


def _dated(path: Path, columns: tuple[str, ...], value_of) -> list[Period]:
    periods, seen = [], {}
    for line, row in _rows(path, columns):
        where = f"{path}:{line}"
        if _ID(row["id"]) is None:
            raise RulesError(f"{where}: id {row['id'][:40]!r} is not an identifier")
        if row["id"] in seen:
            raise RulesError(f"{where}: id {row['id']!r} is already used on line {seen[row['id']]}")
        seen[row["id"]] = line
        start, end = _span(row, where)
        periods.append(Period(row["id"], start, end, value_of(row, where),
                              _text(row["legal_basis"], "legal_basis", where), line=line))
    if not periods:
        raise RulesError(f"{path}: no rows")
    return _ordered(periods, path, contiguous=True)


def _formula(row: dict[str, str], where: str) -> str:
    if row["formula"] not in FORMULAS:
        raise RulesError(f"{where}: formula {row['formula'][:40]!r} is not one of {', '.join(FORMULAS)}")
    return row["formula"]


def load_formulas(path: Path) -> list[Period]:
    return _dated(path, FORMULA_COLUMNS, _formula)


def load_vat(path: Path) -> list[Period]:
    return _dated(path, VAT_COLUMNS, lambda row, where: _percent(row["rate_pct"], "rate_pct", where))


def load_thresholds(path: Path) -> dict[str, list[Period]]:
    by_type: dict[str, list[Period]] = {}
    for line, row in _rows(path, THRESHOLD_COLUMNS):
        where = f"{path}:{line}"
        product_type = row["product_type"]
        if _TYPE(product_type) is None:
            raise RulesError(f"{where}: product_type {product_type[:40]!r} is not lower-case letters, digits, "
                             f"'_', '.' or '-' (1 to 100)")
        start, end = _span(row, where)
        if row["status"] not in STATUSES:
            raise RulesError(f"{where}: status {row['status'][:40]!r} is not one of {', '.join(STATUSES)}")
        by_type.setdefault(product_type, []).append(Period(
            product_type, start, end, _percent(row["threshold_pct"], "threshold_pct", where),
            _text(row["source"], "source", where), row["status"], line))
    return {kind: _ordered(periods, path, contiguous=False) for kind, periods in by_type.items()}


def _in_force(periods: list[Period], day: dt.date) -> Period | None:
    index = bisect.bisect_right([p.valid_from for p in periods], day) - 1
    if index >= 0 and day <= periods[index].valid_to:
        return periods[index]
    return None


class LocalContentRules:
    """The formulas, VAT rates and thresholds, looked up by date."""

    def __init__(self, formulas: list[Period], vat: list[Period], thresholds: dict[str, list[Period]]):
        self.formulas = formulas
        self.vat = vat
        self.thresholds = thresholds
        self.first_day = max(formulas[0].valid_from, vat[0].valid_from)
        self.last_day = min(formulas[-1].valid_to, vat[-1].valid_to)

    def formula_on(self, day: dt.date) -> Period:
        return self._covered(self.formulas, day)

    def vat_on(self, day: dt.date) -> Period:
        return self._covered(self.vat, day)

    def _covered(self, periods: list[Period], day: dt.date) -> Period:
        period = _in_force(periods, day) if self.first_day <= day <= self.last_day else None
        if period is None:
            raise RulesNotInForce(f"the local-content rules cover {self.first_day} to {self.last_day}, "
                                  f"not {day}")
        return period

    def formula_switches(self) -> list[tuple[dt.date, str]]:
        """(first day, formula) of each formula period, for explanations and reports."""
        return [(p.valid_from, p.value) for p in self.formulas]

    def threshold_on(self, product_type: str, day: dt.date) -> Threshold | None:
        period = _in_force(self.thresholds.get(product_type, []), day)
        if period is None:
            return None
        return Threshold(Decimal(period.value), period.status, period.basis)


def load_rules(directory: str | Path | None = None) -> LocalContentRules:
    """The shipped rules, with each file present in ``directory`` replacing its shipped namesake."""
    paths = {name: DATA_DIR / name for name in FILES}
    if directory is not None:
        directory = Path(directory)
        if not directory.is_dir():
            raise RulesError(f"{directory}: not a directory (expected one holding any of {', '.join(FILES)})")
        found = {name: directory / name for name in FILES if (directory / name).is_file()}
        if not found:
            raise RulesError(f"{directory}: holds none of {', '.join(FILES)}")
        paths.update(found)
    return LocalContentRules(load_formulas(paths["formulas.csv"]), load_vat(paths["vat.csv"]),
                             load_thresholds(paths["thresholds.csv"]))
