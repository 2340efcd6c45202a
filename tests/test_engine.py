"""The assessment engine end to end on small rule files whose answers are worked out by hand."""
from __future__ import annotations

import copy
import datetime as dt
import importlib

import numpy as np
import pytest

from stream.core import _assess_py
from stream.core.assess import AssessKernel
from stream.declaration.engine import LOW_CONFIDENCE_FLAG, Assessor, declared_date
from stream.rules import load_rules

TARIFF = """code,description,ad_valorem_pct,specific_eur,specific_unit,combine,excise_kzt,excise_unit
42,Bags,5,,,,,
61,Knitted apparel,10,,,,,
6109,T-shirts,10,0.5,piece,max,,
64,Footwear,,1.5,pair,,,
2203,Beer,,0.2,litre,,50,litre
84,Machines,0,,,,,
"""
FX = """date,currency,kzt_per_unit
2025-12-01,EUR,500
2025-12-01,USD,450
2026-01-02,EUR,510
2026-01-02,USD,460.5
2026-06-01,EUR,520
2026-06-01,USD,470
"""


class KeywordClassifier:
    """A stand-in for the real classifier where a test needs a known answer."""

    def classify_batch(self, descriptions, categories=None):
        codes = ["640399" if "boot" in d.lower() else "6109" if "shirt" in d.lower() else "8471" for d in descriptions]
        confidence = np.array([900 if "boot" in d.lower() or "shirt" in d.lower() else 100 for d in descriptions],
                              dtype=np.int32)
        return codes, confidence


@pytest.fixture
def rules(tmp_path):
    (tmp_path / "tariff.csv").write_text(TARIFF)
    (tmp_path / "fx.csv").write_text(FX)
    return load_rules(tariff=tmp_path / "tariff.csv", fx=tmp_path / "fx.csv")


@pytest.fixture
def assessor(rules):
    return Assessor(rules, classifier=KeywordClassifier())


def request(order_id="O-1", *, flow="warehouse", ordered_at="2026-02-10T10:00:00+05:00", declared_at=None, lines=None):
    doc = {"schema": "assessment-request/1", "order_id": order_id, "flow": flow, "ordered_at": ordered_at,
           "lines": lines or [line()]}
    if declared_at:
        doc["declared_at"] = declared_at
    return doc


def line(sku="SKU-1", *, qty=1, price="10.00", currency="USD", hs="6109100000", weight="0.200", description="T-shirt",
         **extra):
    result = {"sku": sku, "qty": qty, "unit_price": price, "currency": currency, "description": description,
              "origin": "CN", "unit_weight_kg": weight, **extra}
    if hs is not None:
        result["hs_code"] = hs
    return result


def test_warehouse_line_worked_by_hand(assessor):
    [result] = assessor.assess([request(lines=[line(qty=3, price="12.00")])])
    # 3 x 12.00 USD x 460.5 = 16,578.00; duty max(10% = 1,657.80, 3 x EUR 0.5 x 510 = 765.00) = 1,657.80
    # VAT 16% of 18,235.80 = 2,917.728 -> 2,917.73
    assert result["schema"] == "assessment/1"
    assert result["rule_set"] == "kz-warehouse-vat16"
    assert result["fx"] == {"EUR": "510.00", "USD": "460.50"}
    assert (result["customs_value"], result["duty"], result["excise"], result["vat"], result["total"]) == (
        "16578.00", "1657.80", "0.00", "2917.73", "4575.53")
    assert result["lines"] == [{"sku": "SKU-1", "hs_code": "6109100000", "hs_source": "declared", "value": "16578.00",
                                "duty": "1657.80", "excise": "0.00", "vat": "2917.73"}]


def test_specific_minimum_wins_on_cheap_goods(assessor):
    [result] = assessor.assess([request(lines=[line(qty=3, price="1.00")])])
    # value 3 x 460.5 = 1,381.50; 10% = 138.15 < 3 x EUR 0.5 x 510 = 765.00
    assert result["duty"] == "765.00"


def test_order_totals_are_sums_of_rounded_lines(assessor):
    lines = [line("A", price="0.01", qty=1), line("B", price="0.01", qty=1, hs="6101")]
    [result] = assessor.assess([request(lines=lines)])
    for field in ("value", "duty", "excise", "vat"):
        total_field = "customs_value" if field == "value" else field
        cents = sum(int(row[field].replace(".", "")) for row in result["lines"])
        assert int(result[total_field].replace(".", "")) == cents
    assert result["total"] == f"{(int(result['duty'].replace('.', '')) + int(result['vat'].replace('.', ''))) / 100:.2f}"


def test_excise_per_litre_enters_the_vat_base(assessor):
    [result] = assessor.assess([request(lines=[line(hs="2203000000", price="2.00", qty=10, unit_volume_l="0.5")])])
    # value 10 x 2 x 460.5 = 9,210.00; duty 5 l x EUR 0.2 x 510 = 510.00; excise 5 l x 50 = 250.00
    assert (result["customs_value"], result["duty"], result["excise"]) == ("9210.00", "510.00", "250.00")
    assert result["vat"] == "1595.20"  # 16% of 9,970.00


def test_litre_rate_without_volume_is_rejected(assessor):
    [result] = assessor.assess([request(lines=[line(hs="2203000000")])])
    assert (result["schema"], result["reason"], result["ref"]) == ("rejection/1", "missing_volume", "O-1")


@pytest.mark.parametrize("day, rule_set, vat", [("2025-12-31", "kz-warehouse-vat12", "12"),
                                                ("2026-01-01", "kz-warehouse-vat16", "16")])
def test_vat_rate_changes_on_2026_01_01(assessor, day, rule_set, vat):
    [result] = assessor.assess([request(lines=[line(price="100.00", hs="8471300000")], declared_at=day)])
    assert result["rule_set"] == rule_set
    # machines are duty-free: VAT is exactly vat% of the value; 2026-01-01 is a holiday: 2025-12-01's rate
    assert result["customs_value"] == "45000.00"
    assert result["vat"] == f"{45000 * int(vat) // 100}.00"


def test_parcel_regime_switches_on_2026_07_01_in_kazakhstan_time(assessor):
    lines = [line(price="350.00", currency="EUR", weight="5", hs="4202")]
    before, after = assessor.assess([
        request("P-1", flow="parcel", ordered_at="2026-06-30T18:59:59Z", lines=lines),  # 23:59:59 in Almaty
        request("P-2", flow="parcel", ordered_at="2026-06-30T19:00:00Z", lines=lines),  # 00:00 on 1 July
    ])
    assert (before["declared_at"], before["rule_set"]) == ("2026-06-30", "eaeu-parcel-107-2017/vat16")
    assert (after["declared_at"], after["rule_set"]) == ("2026-07-01", "eaeu-ecommerce-2026-07")
    # EUR 520: before, 15% of the EUR 150 excess = EUR 22.50 = 11,700.00, no VAT
    assert (before["duty"], before["vat"]) == ("11700.00", "0.00")
    # after, max(5% of EUR 350, EUR 1 x 5 kg) = EUR 17.50 = 9,100.00; VAT 16% of 191,100.00
    assert (after["duty"], after["vat"]) == ("9100.00", "30576.00")
    assert after["lines"][0]["duty"] == "9100.00"


def test_parcel_amounts_are_split_over_lines_by_value(assessor):
    lines = [line("A", price="100.00", currency="EUR", hs="4202"), line("B", price="200.00", currency="EUR", hs="4202")]
    [result] = assessor.assess([request(flow="parcel", declared_at="2026-07-15", lines=lines)])
    # EUR 300 x 520 = 156,000.00; duty max(5% = 7,800.00, EUR 1 x 0.4 kg = 208.00) = 7,800.00
    assert result["duty"] == "7800.00"
    assert [row["duty"] for row in result["lines"]] == ["2600.00", "5200.00"]


def test_declared_date_is_the_calendar_date_in_utc_plus_5():
    assert declared_date("2026-11-21T10:00:00+05:00") == dt.date(2026, 11, 21)
    assert declared_date("2026-11-21T19:30:00Z") == dt.date(2026, 11, 22)
    assert declared_date("2026-11-22t02:00:00-03:00") == dt.date(2026, 11, 22)
    assert declared_date("2026-12-31T23:59:60z") == dt.date(2027, 1, 1)


def test_rates_hold_over_weekends_and_missing_rates_are_rejected(assessor):
    weekend, too_early, unknown = assessor.assess([
        request("W", declared_at="2026-01-04"),  # Sunday: Friday 2026-01-02's rates
        request("E", declared_at="2025-11-30"),
        request("U", lines=[line(currency="XAU")]),
    ])
    assert weekend["fx"]["USD"] == "460.50"
    assert (too_early["reason"], too_early["ref"]) == ("no_exchange_rate", "E")
    assert unknown["reason"] == "unsupported_currency"


def test_missing_or_invalid_codes_are_classified_and_low_confidence_is_flagged(assessor):
    [result] = assessor.assess([request(lines=[
        line("A", hs=None, description="Leather boots"),
        line("B", hs="ABC", description="Cotton shirt"),
        line("C", hs="7700000000", description="gadget"),  # chapter 77 does not exist
        line("D", hs="6109"),
    ])])
    assert [(row["hs_code"], row["hs_source"]) for row in result["lines"]] == [
        ("640399", "classified"), ("6109", "classified"), ("8471", "classified"), ("6109", "declared")]
    assert result["flags"] == [LOW_CONFIDENCE_FLAG]


def test_bad_documents_are_rejected_without_disturbing_their_neighbours(assessor):
    bad_price = request("BAD", lines=[line(price="1e400")])
    absurd = request("HUGE", lines=[line(qty=1_000_000, price="999999999.99")])
    good = request("GOOD")
    results = assessor.assess([good, bad_price, 42, absurd, copy.deepcopy(good)])
    assert [r["schema"] for r in results] == ["assessment/1", "rejection/1", "rejection/1", "rejection/1", "assessment/1"]
    assert [r.get("reason") for r in results[1:4]] == ["invalid_number", "not_an_object", "value_out_of_range"]
    assert results[0] == results[4]


def test_compiled_and_twin_engines_agree(rules):
    """The same documents through an assessor on the compiled kernel and one on the twin. The
    compiled module is imported by name: a missing build fails here, it is never compared with itself."""
    compiled = importlib.import_module("stream.core._assess")
    rng = np.random.default_rng(7)
    docs = []
    for k in range(300):
        flow = "parcel" if k % 3 == 0 else "warehouse"
        lines = [line(f"S{j}", qty=int(rng.integers(1, 30)), price=f"{rng.integers(0, 90000) / 100:.2f}",
                      currency=str(rng.choice(["USD", "EUR", "KZT"])), hs=str(rng.choice(["6109", "61", "64", "4202", "84"])),
                      weight=f"{rng.integers(0, 40000) / 1000:.3f}") for j in range(int(rng.integers(1, 5)))]
        docs.append(request(f"R{k}", flow=flow, declared_at=str(rng.choice(["2025-12-15", "2026-03-01", "2026-08-01"])),
                            lines=lines))
    fast = Assessor(rules, classifier=KeywordClassifier(), kernel=AssessKernel(compiled))
    slow = Assessor(rules, classifier=KeywordClassifier(), kernel=AssessKernel(_assess_py))
    assert (fast.kernel.backend, slow.kernel.backend) == ("compiled", "python")
    default = fast.assess(docs)
    twin = slow.assess(docs)
    assert default == twin
    assert sum(r["schema"] == "assessment/1" for r in default) == len(docs)
