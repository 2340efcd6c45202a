"""The Kazakhstan working-day calendar against the official calendars, year by year, and the deadlines.

Sources (the days off a five-day week gets; each test names its own):
- 2024: the Ministry of Labour's production calendar for 2024 (help.inbuh.kz, "Баланс рабочего времени на
  2024 год": 248 working days, built on the Spiritual Administration's estimate of Kurban Ait on Monday
  17 June), corrected by the Ministry's statement of 7 June 2024 (alau.kz, "Отмена выходного дня на Курбан
  айт"): Kurban Ait fell on Sunday 16 June, religious holidays do not move, so 17 June was worked -> 249.
  Decree transfer: Saturday 4 May worked, Wednesday 8 May off (Government decree, adilet G24G0000109).
- 2025: calendar of days off and holidays for 2025 (pobipb.kz: 246 working days) and the list of transfers
  (ZTB News): 1-4 January off, Sunday 5 January worked (decree adilet G24G0000436), 10 March, 24-25 March,
  7 July, 1 September, 27 October; Kurban Ait Friday 6 June.
- 2026: the egov.kz calendar for 2026 (inform.kz, 2 January 2026): 9 March, 23-25 March, 11 May, 6 July,
  26 October; Kurban Ait Wednesday 27 May; Orthodox Christmas Wednesday 7 January. It also showed Monday
  31 August off for Constitution Day (Sunday 30 August), which the Ministry of Labour withdrew after the
  referendum of 15 March 2026 (taspanews.kz, 18 March 2026): 31 August 2026 is a working day.
- 2027 (provisional): no production calendar and no government decree on transfers of days off for 2027
  were published as of 2026-12-01, so the expected calendar is the statutory one: the Law on holidays as
  amended for the new Constitution (Constitution Day Monday 15 March, no 30 August), the Labour Code carry
  of a holiday on a weekend (Saturday 2 January -> Monday 4 January, Sunday 21 March -> Wednesday 24 March,
  Saturday 1 May -> Monday 3 May, Sunday 9 May -> Monday 10 May), Orthodox Christmas Thursday 7 January,
  Kurban Ait expected on Sunday 16 May (religious: no carry). 261 weekdays - 14 = 247 working days.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import logging

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.audit.calendar import (
    ANSWER_WORKING_DAYS,
    COMPLY_WORKING_DAYS,
    DATA_FILE,
    CalendarError,
    answer_by,
    build_calendar,
    comply_by,
    default_calendar,
    load_calendar,
)

D = dt.date.fromisoformat
DATA = json.loads(DATA_FILE.read_text(encoding="utf-8"))
CAL = default_calendar()

OFFICIAL_WEEKDAYS_OFF = {
    2024: ["2024-01-01", "2024-01-02", "2024-03-08", "2024-03-21", "2024-03-22", "2024-03-25", "2024-05-01",
           "2024-05-07", "2024-05-08", "2024-05-09", "2024-07-08", "2024-08-30", "2024-10-25", "2024-12-16"],
    2025: ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-07", "2025-03-10", "2025-03-21", "2025-03-24",
           "2025-03-25", "2025-05-01", "2025-05-07", "2025-05-09", "2025-06-06", "2025-07-07", "2025-09-01",
           "2025-10-27", "2025-12-16"],
    2026: ["2026-01-01", "2026-01-02", "2026-01-07", "2026-03-09", "2026-03-23", "2026-03-24", "2026-03-25",
           "2026-05-01", "2026-05-07", "2026-05-11", "2026-05-27", "2026-07-06", "2026-10-26", "2026-12-16"],
    2027: ["2027-01-01", "2027-01-04", "2027-01-07", "2027-03-08", "2027-03-15", "2027-03-22", "2027-03-23",
           "2027-03-24", "2027-05-03", "2027-05-07", "2027-05-10", "2027-07-06", "2027-10-25", "2027-12-16"],
}
OFFICIAL_WORKED_WEEKENDS = {2024: ["2024-05-04"], 2025: ["2025-01-05"], 2026: [], 2027: []}
OFFICIAL_WORKING_DAYS = {2024: 249, 2025: 246, 2026: 247, 2027: 247}
# working days per month of the statutory 2027 calendar (five-day week)
WORKING_DAYS_2027 = [18, 20, 18, 22, 18, 22, 21, 22, 22, 20, 22, 22]


@pytest.mark.parametrize("year", sorted(OFFICIAL_WEEKDAYS_OFF))
def test_days_off_equal_the_official_calendar(year):
    assert [d.isoformat() for d in CAL.non_working_weekdays(year)] == OFFICIAL_WEEKDAYS_OFF[year]
    assert sorted(d.isoformat() for d in CAL.working_weekends if d.year == year) == OFFICIAL_WORKED_WEEKENDS[year]
    assert CAL.working_days_in(year) == OFFICIAL_WORKING_DAYS[year]


def test_the_calendar_covers_exactly_the_years_of_its_file():
    assert CAL.years == {2024, 2025, 2026, 2027}
    assert CAL.provisional_years == {2027}  # no decree on transfers of days off for 2027 yet


def test_2027_month_by_month():
    for month, expected in enumerate(WORKING_DAYS_2027, start=1):
        first = D(f"2027-{month:02d}-01")
        days = [first + dt.timedelta(days=i) for i in range(31) if (first + dt.timedelta(days=i)).month == month]
        assert sum(CAL.is_working_day(d) for d in days) == expected, month


def test_2027_statutory_days_off_and_weekend_carries():
    statutory_weekdays = ["2027-01-01", "2027-01-07", "2027-03-08", "2027-03-15", "2027-03-22", "2027-03-23",
                          "2027-05-07", "2027-07-06", "2027-10-25", "2027-12-16"]
    assert all(not CAL.is_working_day(D(d)) for d in statutory_weekdays)
    # a holiday on a weekend gives the next working day off
    carries = {"2027-01-02": "2027-01-04",   # New Year, Saturday -> Monday
               "2027-03-21": "2027-03-24",   # Nauryz, Sunday -> past Monday 22 and Tuesday 23, to Wednesday
               "2027-05-01": "2027-05-03",   # Unity Day, Saturday -> Monday
               "2027-05-09": "2027-05-10"}   # Victory Day, Sunday -> Monday
    for holiday, moved in carries.items():
        assert D(holiday).weekday() >= 5 and not CAL.is_working_day(D(moved)), holiday
    assert CAL.is_working_day(D("2027-01-05")) and CAL.is_working_day(D("2027-03-25"))
    # Kurban Ait (expected Sunday 16 May) is religious: Monday 17 May is worked
    assert DATA["years"]["2027"]["kurban_ait"] == "2027-05-16"
    assert CAL.is_working_day(D("2027-05-17"))
    # Constitution Day has moved to 15 March: 30 August 2027 (Monday) is a working day
    assert CAL.is_working_day(D("2027-08-30"))
    assert "not published" in DATA["years"]["2027"]["decree"]


def test_2027_agrees_with_the_holidays_package():
    # 0.109 follows the amended Law for 2027 and carries the same weekends; only its Eid al-Adha is estimated
    package = holidays.country_holidays("KZ", years=2027, language="en_US")
    weekday_days = sorted(d for d, name in package.items() if d.weekday() < 5 and "Eid al-Adha" not in name)
    assert weekday_days == CAL.non_working_weekdays(2027)
    assert any("estimated" in name for name in package.get_list(D("2027-05-16")))


def test_a_provisional_year_warns_once_and_is_named(caplog):
    cal = build_calendar(DATA)  # a fresh calendar: the shared one may have warned already
    with caplog.at_level(logging.WARNING, logger="stream.audit.calendar"):
        assert comply_by(D("2026-11-02"), cal) == D("2026-11-30")   # 2026 only: no warning
        assert not caplog.records
        assert comply_by(D("2026-12-10"), cal) == D("2027-01-13")
        assert answer_by(D("2026-12-24"), cal) == D("2027-01-12")  # 25, 28-31 Dec, 5, 6, 8, 11, 12 Jan
        cal.working_days_in(2027)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2027 is provisional" in warnings[0].getMessage()
    assert "decree" in warnings[0].getMessage()
    assert cal.provisional_between(D("2026-12-10"), D("2027-01-13")) == [2027]
    assert cal.provisional_between(D("2026-03-02"), D("2026-04-03")) == []
    assert cal.provisional_reasons(2026) == ()
    # once the decree is in the file, the year is final
    data = copy.deepcopy(DATA)
    data["years"]["2027"]["provisional"] = []
    assert build_calendar(data).provisional_years == frozenset()


def test_religious_holidays_on_a_weekend_do_not_move():
    # Orthodox Christmas on Sunday 7 January 2024, Kurban Ait on Sunday 16 June 2024
    assert CAL.is_working_day(D("2024-01-08"))
    assert CAL.is_working_day(D("2024-06-17"))


def test_holidays_on_a_weekend_move_to_the_next_working_day():
    # Nauryz 21-23 March 2026 is Saturday to Monday: two days move past Monday 23 to Tuesday and Wednesday
    assert not CAL.is_working_day(D("2026-03-24")) and not CAL.is_working_day(D("2026-03-25"))
    assert CAL.is_working_day(D("2026-03-26"))
    # Capital Day on Saturday 6 July 2024 -> Monday 8 July
    assert not CAL.is_working_day(D("2024-07-08"))


def test_constitution_day_2026_is_gone_whatever_the_package_says():
    assert CAL.is_working_day(D("2026-08-31"))
    data = copy.deepcopy(DATA)
    data["years"]["2026"]["not_holidays"] = []
    package_2026 = holidays.country_holidays("KZ", years=2026, observed=False)
    old_law = build_calendar(data)
    # with the package's own list (0.109 already dropped 30 August) the day stays worked; the data file
    # keeps the result independent of the package version
    assert old_law.is_working_day(D("2026-08-31")) == (D("2026-08-30") not in package_2026)


def test_agrees_with_the_holidays_package_where_the_package_knows_the_decrees():
    # the package carries the decrees up to 2025 and the weekend rule; our data must not contradict it
    for year in (2024, 2025):
        package = holidays.country_holidays("KZ", years=year)
        weekday_days = sorted(d for d in package if d.weekday() < 5)
        assert weekday_days == CAL.non_working_weekdays(year), year


def test_a_date_outside_the_years_is_an_error_never_a_guess():
    with pytest.raises(CalendarError, match="2028"):
        CAL.is_working_day(D("2028-01-04"))
    with pytest.raises(CalendarError, match="2023"):
        comply_by(D("2023-12-29"))
    # a deadline that runs into the next, unknown year is an error too
    with pytest.raises(CalendarError, match="2028-01-01"):
        comply_by(D("2027-12-10"))


# -- deadlines ------------------------------------------------------------------------------------

def test_comply_by_counts_20_working_days_from_the_day_after_delivery():
    # delivered Monday 2 March 2026: 3-6 (4), 10-13 (8; 9 March off), 16-20 (13), 26-27 (15; 23-25 off),
    # 30-31 (17), 1-3 April (20)
    assert comply_by(D("2026-03-02")) == D("2026-04-03")
    # delivered on a Friday: the count starts on Monday
    assert comply_by(D("2026-01-30")) == D("2026-02-27")
    # delivered on a day off: the same count from the next working day
    assert comply_by(D("2026-01-01")) == comply_by(D("2026-01-04"))


def test_answer_by_counts_10_working_days_from_the_day_after_receipt():
    # received Friday 20 March 2026: 26, 27, 30, 31 March, 1, 2, 3, 6, 7, 8 April
    assert answer_by(D("2026-03-20")) == D("2026-04-08")
    # received Wednesday 29 April 2026: 30 April, 4, 5, 6, 8, 12, 13, 14, 15, 18 May
    assert answer_by(D("2026-04-29")) == D("2026-05-18")


def test_deadlines_across_a_decree_transfer():
    # Saturday 4 May 2024 was worked: it counts; Wednesday 8 May was not
    assert CAL.nth_working_day_after(D("2024-05-03"), 1) == D("2024-05-04")
    assert CAL.nth_working_day_after(D("2024-05-07"), 1) == D("2024-05-10")


@given(st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2027, 11, 1)))
def test_deadline_is_the_nth_working_day(day):
    for n, deadline in ((COMPLY_WORKING_DAYS, comply_by(day)), (ANSWER_WORKING_DAYS, answer_by(day))):
        assert CAL.is_working_day(deadline)
        between = [day + dt.timedelta(days=i) for i in range(1, (deadline - day).days + 1)]
        assert sum(CAL.is_working_day(d) for d in between) == n


# -- the data file ---------------------------------------------------------------------------------

@pytest.mark.parametrize("break_it, message", [
    (lambda d: d["years"]["2026"].pop("kurban_ait"), "kurban_ait"),
    (lambda d: d["years"]["2026"].__setitem__("kurban_ait", "2025-06-06"), "not in 2026"),
    (lambda d: d["years"]["2025"]["transfers"][0].__setitem__("day_off", "2025-02-30"), "day_off"),
    (lambda d: d["years"]["2025"]["transfers"][0].__setitem__("working_day", "2025-01-06"), "weekend day"),
    (lambda d: d.__setitem__("years", {}), "non-empty"),
    (lambda d: d["years"].__setitem__("26", d["years"].pop("2026")), "four-digit"),
    (lambda d: d["years"]["2027"].__setitem__("provisional", "decree not published"), "expected a list"),
    (lambda d: d["years"]["2027"].__setitem__("provisional", [""]), "provisional\\[0\\]"),
    (lambda d: d["years"].__setitem__("2027", []), "expected an object"),
])
def test_a_broken_calendar_file_is_refused_with_the_problem_named(break_it, message):
    data = copy.deepcopy(DATA)
    break_it(data)
    with pytest.raises(CalendarError, match=message):
        build_calendar(data)


def test_a_missing_or_malformed_file_is_named(tmp_path):
    with pytest.raises(CalendarError, match="cannot read"):
        load_calendar(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(CalendarError, match="not valid JSON"):
        load_calendar(bad)


def test_a_new_year_is_data_only(tmp_path):
    data = copy.deepcopy(DATA)
    data["years"]["2028"] = {"kurban_ait": "2028-05-04", "transfers": [
        {"working_day": "2028-01-08", "day_off": "2028-01-06", "decree": "a decree to come"}]}
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    extended = load_calendar(path)
    assert extended.covers(D("2028-03-01")) and 2028 not in extended.provisional_years
    # Constitution Day on Wednesday 15 March 2028, Kurban Ait on Thursday 4 May; the decree's days
    assert not extended.is_working_day(D("2028-03-15")) and not extended.is_working_day(D("2028-05-04"))
    assert not extended.is_working_day(D("2028-01-06")) and extended.is_working_day(D("2028-01-08"))
    # 14-31 December 2027: 13 (16 December off); 2028: 3-4 January off (for New Year on Saturday and Sunday),
    # 5 (14), 6 off (decree), 7 off (Christmas), Saturday 8 worked (15), 10-14 (16-20)
    assert comply_by(D("2027-12-13"), extended) == D("2028-01-14")


# -- what counts over January 2027 -------------------------------------------------------------------

def test_audit_deadlines_command_answers_january_2027_and_marks_it_provisional():
    from click.testing import CliRunner

    from stream.cli import main

    result = CliRunner().invoke(main, ["audit", "deadlines", "--delivered", "2026-12-10",
                                       "--explanation-received", "2026-12-24"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out == {"comply_by": "2027-01-13", "answer_by": "2027-01-12", "provisional": True}
    assert "provisional" in result.stderr and "2027" in result.stderr
    # a count that stays in a final year is the exact contract, unmarked
    result = CliRunner().invoke(main, ["audit", "deadlines", "--delivered", "2026-11-02"])
    assert json.loads(result.stdout) == {"comply_by": "2026-11-30", "answer_by": None}
    # 2028 is not in the file: still an error
    result = CliRunner().invoke(main, ["audit", "deadlines", "--delivered", "2027-12-20"])
    assert result.exit_code == 2 and "outside the working-day calendar" in result.output


def test_taxfree_invoices_for_2026q4_are_due_in_january_2027():
    import orjson
    from click.testing import CliRunner

    from stream.cli import main
    from stream.taxfree.operator import Final, invoices

    finals = [Final("TF-Q4-1", "refund", "123456789012", "ref-1", 1655172, 248276, 1406896, D("2026-11-20")),
              Final("TF-Q4-2", "refusal", "123456789012", "ref-2", 0, 0, 0, D("2026-12-01"))]
    got = invoices(finals, "2026Q4")
    # issued Thursday 31 December; 1 January off, 2-3 weekend, 4 January off (for Saturday 2 January),
    # 5 and 6 worked, 7 January off (Orthodox Christmas), 8 January the third working day
    assert [(i["trading_entity_bin"], i["issued_on"], i["due_by"], i["vat_confirmed"]) for i in got] == [
        ("123456789012", "2026-12-31", "2027-01-08", "16551.72")]
    decisions = [{"schema": "taxfree-decision/1", "document_id": "TF-Q4-1", "decision": "refund", "reasons": [],
                  "vat": "16551.72", "commission": "2482.76", "refund": "14068.96", "pay_from": "2026-12-04",
                  "pay_by": "2027-02-20", "trading_entity_bin": "123456789012", "buyer_ref": "ref-1",
                  "decided_on": "2026-11-20"}]
    result = CliRunner().invoke(main, ["taxfree", "invoices", "--quarter", "2026Q4", "--decisions", "-"],
                                input=b"".join(orjson.dumps(d) + b"\n" for d in decisions))
    assert result.exit_code == 0, result.output
    [invoice] = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert invoice["due_by"] == "2027-01-08" and invoice["quarter"] == "2026Q4"


def test_an_audit_case_notified_in_december_2026_runs_into_2027():
    from stream.audit.cases import decide
    from stream.audit.events import parse_event

    def ev(kind, on, **fields):
        doc = {"schema": "audit-event/1", "case_id": "CASE-J", "kind": kind, "on": on, **fields}
        return parse_event(json.dumps(doc).encode())

    opened = decide(None, ev("opened", "2026-12-01", declaration_id="D-J", findings="under the index",
                             additional_accruals="1000.00"), D("2026-12-10")).versions[-1]
    notified = decide(opened, ev("notification_delivered", "2026-12-10"), D("2026-12-10"))
    assert notified.problem is None and notified.versions[-1].comply_by == D("2027-01-13")
    disputed = decide(notified.versions[-1], ev("explanation_received", "2026-12-24"), D("2026-12-24"))
    assert disputed.problem is None and disputed.versions[-1].answer_by == D("2027-01-12")
    # nothing by comply_by: unfulfilled the day after
    late = decide(notified.versions[-1], ev("paid", "2027-01-14", amount="1000.00"), D("2027-01-14"))
    assert late.problem[0] == "deadline_passed"
    assert [(v.state, v.changed_by) for v in late.versions] == [("unfulfilled", "comply_by_passed")]
