"""Kazakhstan's working days, as data, and the two deadlines of a cameral audit that count them.

Working days are Monday to Friday except the days off. The days off of a year are built from:

1. the public holidays fixed by law, from the `holidays` package (``holidays.KZ``, which follows the
   Law on holidays and the Labour Code; well kept and updated when the law changes);
2. our data file (stream/audit/data/kz_calendar.json, or CUSTOMS_AUDIT_CALENDAR), which says what the
   package cannot know: the first day of Kurban Ait as announced for the year (the package only
   estimates Islamic dates), the days moved by government decree, and changes of the law the installed
   package may not have yet (Constitution Day of 30 August dropped from 2026);
3. the Labour Code rule that a holiday falling on a Saturday or Sunday gives a day off on the next
   working day, except the religious holidays (Orthodox Christmas, Kurban Ait), which never move.

Only the years listed in the data file are covered. A date outside them is a `CalendarError`, never a
guess: next year's decree is published late in the year, and a deadline counted over an unknown year
could be a day off by a week.

A year can be in the file before everything about it is known: its ``provisional`` list names what is
not yet (the government decree on transfers of days off not published, Kurban Ait only the expected
date). Such a year is answered from its statutory days off; the calendar logs one warning per year the
first time it answers for it, and `WorkingCalendar.provisional_years` / `provisional_between` say which
answers may still move, so `customs-stream audit deadlines` marks them. When the decree is published, add
its transfers and empty the list.

Deadlines (Customs Code art. 417; seeds 001 and 004): ``comply_by`` is the 20th working day counted
from the day after the notification was delivered; ``answer_by`` is the 10th working day counted from
the day after the explanation was received. The day after counts as the first when it is a working day.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import holidays

DATA_FILE = Path(__file__).parent / "data" / "kz_calendar.json"
COMPLY_WORKING_DAYS = 20
ANSWER_WORKING_DAYS = 10
_ONE_DAY = dt.timedelta(days=1)
log = logging.getLogger(__name__)


class CalendarError(ValueError):
    """A date outside the calendar's years, or a calendar file that cannot be used."""


@dataclass(frozen=True)
class WorkingCalendar:
    years: frozenset[int]
    days_off: frozenset[dt.date]          # Monday-Friday days that are not worked
    working_weekends: frozenset[dt.date]  # Saturdays and Sundays worked by decree
    source: str = ""
    # (year, what is not yet known about it) for the years answered provisionally
    provisional: tuple[tuple[int, tuple[str, ...]], ...] = ()
    _warned: set = field(default_factory=set, compare=False, hash=False, repr=False)
    _provisional_years: frozenset = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_provisional_years", frozenset(year for year, _ in self.provisional))

    @property
    def provisional_years(self) -> frozenset[int]:
        """The covered years whose days off may still change (decree not published, dates expected)."""
        return self._provisional_years

    def provisional_reasons(self, year: int) -> tuple[str, ...]:
        """What is not yet known about ``year`` (empty for a final year)."""
        return next((reasons for y, reasons in self.provisional if y == year), ())

    def provisional_between(self, first: dt.date, last: dt.date) -> list[int]:
        """The provisional years a count from ``first`` to ``last`` (inclusive) went through."""
        return sorted(y for y in self.provisional_years if min(first, last).year <= y <= max(first, last).year)

    @property
    def first_year(self) -> int:
        return min(self.years)

    @property
    def last_year(self) -> int:
        return max(self.years)

    def covers(self, day: dt.date) -> bool:
        return day.year in self.years

    def _require(self, day: dt.date) -> None:
        if day.year not in self.years:
            covered = ", ".join(str(y) for y in sorted(self.years))
            raise CalendarError(
                f"{day.isoformat()} is outside the working-day calendar (years {covered}); add {day.year} "
                f"to the calendar file when its decree on days off is published")
        if day.year in self._provisional_years and day.year not in self._warned:
            self._warned.add(day.year)
            log.warning("working-day calendar: %d is provisional (%s); deadlines counted over it may move",
                        day.year, "; ".join(self.provisional_reasons(day.year)))

    def is_working_day(self, day: dt.date) -> bool:
        self._require(day)
        if day in self.working_weekends:
            return True
        return day.weekday() < 5 and day not in self.days_off

    def nth_working_day_after(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th working day counted from the day after ``day`` (``n`` >= 1)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        self._require(day)
        counted = 0
        current = day
        while counted < n:
            current += _ONE_DAY
            if self.is_working_day(current):
                counted += 1
        return current

    def working_days_in(self, year: int) -> int:
        day = dt.date(year, 1, 1)
        self._require(day)
        count = 0
        while day.year == year:
            count += self.is_working_day(day)
            day += _ONE_DAY
        return count

    def non_working_weekdays(self, year: int) -> list[dt.date]:
        """The Monday-Friday days off of ``year``, in order (what a production calendar shows in red)."""
        self._require(dt.date(year, 1, 1))
        return sorted(d for d in self.days_off if d.year == year)


def comply_by(delivered: dt.date, calendar: WorkingCalendar | None = None) -> dt.date:
    """Last day to pay the accruals or explain: the 20th working day from the day after delivery."""
    return (calendar or default_calendar()).nth_working_day_after(delivered, COMPLY_WORKING_DAYS)


def answer_by(received: dt.date, calendar: WorkingCalendar | None = None) -> dt.date:
    """Last day for customs to answer an explanation: the 10th working day from the day after receipt."""
    return (calendar or default_calendar()).nth_working_day_after(received, ANSWER_WORKING_DAYS)


# -- building the calendar -----------------------------------------------------------------------

def _date(value: object, where: str) -> dt.date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise CalendarError(f"{where}: expected a possible YYYY-MM-DD date")


def _year_days(year: int, entry: dict, religious_names: tuple[str, ...], where: str) -> tuple[set, set]:
    """(weekday days off, worked weekend days) of one year."""
    if not isinstance(entry, dict):
        raise CalendarError(f"{where}: expected an object")
    law = holidays.country_holidays("KZ", years=year, observed=False, language="en_US")
    # name -> religious? for every holiday day of the year (weekends included, before moving)
    holiday_days: dict[dt.date, bool] = {}
    for day, name in law.items():
        if "Eid al-Adha" in name:
            continue  # the package estimates it; the data file has the announced date
        holiday_days[day] = any(r in name for r in religious_names)
    worked = set(getattr(law, "weekend_workdays", set()))
    worked = {d for d in worked if d.year == year}

    kurban = _date(entry.get("kurban_ait"), f"{where}.kurban_ait")
    if kurban.year != year:
        raise CalendarError(f"{where}.kurban_ait: {kurban} is not in {year}")
    holiday_days[kurban] = True
    for i, change in enumerate(entry.get("not_holidays", [])):
        day = _date(change.get("date") if isinstance(change, dict) else None, f"{where}.not_holidays[{i}].date")
        holiday_days.pop(day, None)
    for i, extra in enumerate(entry.get("holidays", [])):
        if not isinstance(extra, dict):
            raise CalendarError(f"{where}.holidays[{i}]: expected an object")
        day = _date(extra.get("date"), f"{where}.holidays[{i}].date")
        holiday_days[day] = bool(extra.get("religious", False))

    for i, reason in enumerate(entry.get("provisional", [])):
        if not isinstance(reason, str) or not reason.strip():
            raise CalendarError(f"{where}.provisional[{i}]: expected a non-empty text naming what is not yet known")

    off = {d for d in holiday_days if d.weekday() < 5}
    # a holiday on a weekend gives the next working day off (religious ones excepted), in date order
    for day in sorted(holiday_days):
        if day.weekday() < 5 or holiday_days[day]:
            continue
        moved = day + _ONE_DAY
        while moved.weekday() >= 5 or moved in off or moved in holiday_days:
            moved += _ONE_DAY
        off.add(moved)
    for i, transfer in enumerate(entry.get("transfers", [])):
        if not isinstance(transfer, dict):
            raise CalendarError(f"{where}.transfers[{i}]: expected an object")
        working = _date(transfer.get("working_day"), f"{where}.transfers[{i}].working_day")
        day_off = _date(transfer.get("day_off"), f"{where}.transfers[{i}].day_off")
        if working.weekday() < 5 or day_off.weekday() >= 5:
            raise CalendarError(f"{where}.transfers[{i}]: a decree moves a weekend day ({working}) onto a weekday "
                                f"({day_off})")
        worked.add(working)
        off.add(day_off)
    return off, worked


def build_calendar(data: dict, source: str = "") -> WorkingCalendar:
    if not isinstance(data, dict) or not isinstance(data.get("years"), dict) or not data["years"]:
        raise CalendarError(f"{source or 'calendar'}: expected an object with a non-empty 'years' object")
    religious = data.get("religious", ["Orthodox Christmas", "Eid al-Adha"])
    if not isinstance(religious, list) or not all(isinstance(r, str) and r for r in religious):
        raise CalendarError(f"{source or 'calendar'}: 'religious' must be a list of holiday names")
    years: set[int] = set()
    days_off: set[dt.date] = set()
    worked: set[dt.date] = set()
    provisional: list[tuple[int, tuple[str, ...]]] = []
    for key, entry in data["years"].items():
        if not (isinstance(key, str) and key.isdigit() and len(key) == 4):
            raise CalendarError(f"{source or 'calendar'}: year {key!r} is not a four-digit year")
        year = int(key)
        if not isinstance(entry, dict):
            raise CalendarError(f"{source or 'calendar'}: years.{key}: expected an object")
        if not isinstance(entry.get("provisional", []), list):
            raise CalendarError(f"{source or 'calendar'}: years.{key}.provisional: expected a list")
        off, on = _year_days(year, entry, tuple(religious), f"{source or 'calendar'}: years.{key}")
        years.add(year)
        days_off |= off
        worked |= on
        if entry.get("provisional"):
            provisional.append((year, tuple(entry["provisional"])))
    return WorkingCalendar(frozenset(years), frozenset(days_off), frozenset(worked), source,
                           tuple(sorted(provisional)))


def load_calendar(path: str | Path | None = None) -> WorkingCalendar:
    """The calendar of a data file (default: CUSTOMS_AUDIT_CALENDAR, else the shipped one)."""
    if path is None:
        from stream.settings import env
        path = env("CUSTOMS_AUDIT_CALENDAR") or DATA_FILE
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read the calendar file ({exc.strerror})") from None
    except ValueError as exc:
        raise CalendarError(f"{path}: not valid JSON ({exc})") from None
    return build_calendar(data, str(path))


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    return load_calendar()
