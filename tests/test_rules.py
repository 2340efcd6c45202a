"""Rule data loaders: the shipped files load, official-format files drop in, bad files are refused
with the file, line and problem named."""
from __future__ import annotations

import datetime as dt

import pytest

from stream.rules import load_rules
from stream.rules.fx import FxError, RateNotFound, load_fx
from stream.rules.rule_sets import RuleSetError, load_rule_sets
from stream.rules.tariff import TariffError, load_tariff
from stream.settings import DATA_DIR

HEADER = "code,description,ad_valorem_pct,specific_eur,specific_unit,combine,excise_kzt,excise_unit\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_data_loads_and_covers_every_chapter():
    rules = load_rules()
    chapters = {f"{n:02d}" for n in range(1, 98)} - {"77"}
    assert all(rules.tariff.lookup(chapter + "0000") >= 0 for chapter in chapters)
    assert rules.fx.rate_micro("USD", dt.date(2026, 11, 21)) > 0  # a Saturday: Friday's rate holds
    assert rules.rule_sets.in_force("parcel", dt.date(2026, 7, 1)).id == "eaeu-ecommerce-2026-07"


def test_official_format_without_source_column_drops_in(tmp_path):
    tariff = load_tariff(write(tmp_path, "t.csv", HEADER + "61,Apparel,10,,,,,\n6109,T-shirts,10,0.5,piece,max,,\n"))
    assert tariff.codes[tariff.lookup("6109100000")] == "6109"
    assert tariff.codes[tariff.lookup("6110200000")] == "61"
    assert tariff.lookup("9999") == -1


@pytest.mark.parametrize("row, problem", [
    ("6A,Bad,10,,,,,", "not 2-10 digits"),
    ("61,x,1e3,,,,,", "not a non-negative decimal"),
    ("61,x,10,0.5,piece,,,", "needs combine max or sum"),
    ("61,x,10,,,max,,", "combine is only for rows with both parts"),
    ("61,x,,0.5,,,,", "specific_eur and specific_unit go together"),
    ("61,x,,0.5,box,,,", "units must be"),
    ("22,x,,,,,100,", "excise_kzt and excise_unit go together"),
    ("22,x,,,,,100,pair", "excise_unit must be kg, piece or litre"),
    ("61,x,1001,,,,,", "rate out of range"),
    ("61,x", "2 cells, the header names 8"),
])
def test_bad_tariff_rows_are_refused_with_their_line(tmp_path, row, problem):
    path = write(tmp_path, "t.csv", HEADER + "01,Animals,5,,,,,\n" + row + "\n")
    with pytest.raises(TariffError, match=problem) as caught:
        load_tariff(path)
    assert f"{path}:3" in str(caught.value)


def test_tariff_needs_its_columns_and_unique_codes(tmp_path):
    with pytest.raises(TariffError, match="missing columns combine"):
        load_tariff(write(tmp_path, "a.csv", "code,description,ad_valorem_pct,specific_eur,specific_unit\n61,x,1,,\n"))
    with pytest.raises(TariffError, match="duplicate code 61"):
        load_tariff(write(tmp_path, "b.csv", HEADER + "61,x,1,,,,,\n61,y,2,,,,,\n"))


def test_rates_latest_on_or_before_and_refusals(tmp_path):
    fx = load_fx(write(tmp_path, "fx.csv", "date,currency,kzt_per_unit\n2026-01-02,USD,500\n2026-01-05,USD,501.5\n"))
    assert fx.rate_micro("USD", dt.date(2026, 1, 4)) == 500_000_000
    assert fx.rate_micro("USD", dt.date(2026, 1, 5)) == 501_500_000
    assert fx.rate_micro("KZT", dt.date(1990, 1, 1)) == 1_000_000
    with pytest.raises(RateNotFound) as early:
        fx.rate_micro("USD", dt.date(2026, 1, 1))
    assert early.value.reason == "no_exchange_rate"
    with pytest.raises(RateNotFound) as unknown:
        fx.rate_micro("EUR", dt.date(2026, 1, 5))
    assert unknown.value.reason == "unsupported_currency"


@pytest.mark.parametrize("row, problem", [
    ("2026-02-30,USD,500", "day is out of range"),
    ("2026-01-02,usd,500", "not an ISO 4217 code"),
    ("2026-01-02,USD,0", "above 0"),
    ("2026-01-02,USD,-1", "not a non-negative decimal"),
    ("2026-01-01,USD,500", "second rate for USD"),
    ("2026-01-03,USD", "2 cells, the header names 3"),
])
def test_bad_rate_rows_are_refused_with_their_line(tmp_path, row, problem):
    path = write(tmp_path, "fx.csv", "date,currency,kzt_per_unit\n2026-01-01,USD,499\n" + row + "\n")
    with pytest.raises(FxError, match=problem) as caught:
        load_fx(path)
    assert f"{path}:3" in str(caught.value)


def test_rule_sets_must_not_overlap(tmp_path):
    text = ('{"rule_sets": [{"id": "a", "flow": "warehouse", "valid_to": "2026-01-31", "vat_pct": "12"},'
            ' {"id": "b", "flow": "warehouse", "valid_from": "2026-01-31", "vat_pct": "16"}]}')
    with pytest.raises(RuleSetError, match="overlap"):
        load_rule_sets(write(tmp_path, "r.json", text))
    shipped = load_rule_sets(DATA_DIR / "rule_sets.json")
    assert shipped.in_force("warehouse", dt.date(2025, 12, 31)).vat_pct6 == 12_000_000
    assert shipped.in_force("warehouse", dt.date(2026, 1, 1)).vat_pct6 == 16_000_000
