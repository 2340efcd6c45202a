"""Checks on the starter tariff data file, using only the standard library ``csv`` module.

The file format is described in README.md ("Data files, and how to replace them") and stream/rules/data/README.md.
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import pytest

TARIFF_CSV = Path(__file__).resolve().parent.parent / "stream" / "rules" / "data" / "tariff.csv"

HEADER = [
    "code",
    "description",
    "ad_valorem_pct",
    "specific_eur",
    "specific_unit",
    "combine",
    "excise_kzt",
    "excise_unit",
    "source",
]

SPECIFIC_UNITS = {"kg", "piece", "pair", "litre"}
EXCISE_UNITS = {"kg", "piece", "litre"}
COMBINES = {"max", "sum"}

CODE_RE = re.compile(r"^[0-9]{2,10}$")
# Plain decimal strings only: no sign, exponent, leading zeros, bare or trailing dot.
AD_VALOREM_RE = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,4})?$")
AMOUNT_RE = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,6})?$")

# Headings (and one subheading) that dominate e-commerce parcels; each must have its own row.
ECOMMERCE_CODES = sorted(
    {f"{h}" for h in range(6101, 6118)}  # knitted apparel
    | {f"{h}" for h in range(6201, 6218)}  # woven apparel
    | {f"{h}" for h in range(6401, 6406)}  # footwear
    | {"4202", "3926"}  # bags, phone cases
    | {
        "8471", "8473", "8504", "8507", "8509", "8510", "8516", "8517",
        "8518", "8519", "8525", "8528", "8543", "8544",
    }  # electronics
    | {"3303", "3304", "3305", "3306", "3307", "3401"}  # cosmetics
    | {"9503", "9504", "9505", "9506"}  # toys, games, sports
    | {
        "3924", "6302", "6911", "6912", "7013", "7323", "8211", "8215",
        "9403", "9404", "9405",
    }  # home goods and kitchenware
    | {"7113", "7117"}  # jewellery
    | {"9101", "9102", "9103", "9105", "9113"}  # watches
    | {"9004", "4901", "4820", "9608", "9609"}  # eyewear, books, stationery
    | {"8205", "8467", "8708"}  # tools, auto parts
    | {"2309", "4201"}  # pet goods
    | {"6111", "6209", "8715"}  # baby goods
)

EXCISE_CODES = ["2203", "2204", "2205", "2206", "2207", "2208", "2402", "2403", "854340"]


def _load() -> tuple[list[str], list[dict[str, str]]]:
    with TARIFF_CSV.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        raw = list(reader)
    for lineno, values in enumerate(raw, start=2):
        assert len(values) == len(header), f"line {lineno}: {len(values)} fields"
    return header, [dict(zip(header, values)) for values in raw]


HEADER_ROW, ROWS = _load()
BY_CODE = {row["code"]: row for row in ROWS}


def test_file_is_plain_utf8_without_bom() -> None:
    data = TARIFF_CSV.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    data.decode("utf-8")
    assert b"\r" not in data


def test_header_exact() -> None:
    assert HEADER_ROW == HEADER


def test_starter_file_has_broad_coverage() -> None:
    assert len(ROWS) >= 150


def test_codes_are_2_to_10_digits_unique_and_sorted() -> None:
    codes = [row["code"] for row in ROWS]
    bad = [c for c in codes if not CODE_RE.match(c)]
    assert not bad, f"bad codes: {bad}"
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    assert not dupes, f"duplicate codes: {dupes}"
    assert codes == sorted(codes), "rows must be sorted by code"


def test_every_chapter_present_except_reserved_77() -> None:
    chapters = {row["code"] for row in ROWS if len(row["code"]) == 2}
    expected = {f"{n:02d}" for n in range(1, 98) if n != 77}
    assert expected - chapters == set(), f"missing chapters: {sorted(expected - chapters)}"
    assert "77" not in chapters
    assert "00" not in chapters and "98" not in chapters and "99" not in chapters
    assert len(chapters) == 96


def test_every_row_has_a_parent_chapter() -> None:
    chapters = {row["code"] for row in ROWS if len(row["code"]) == 2}
    orphans = [row["code"] for row in ROWS if row["code"][:2] not in chapters]
    assert not orphans


@pytest.mark.parametrize("code", ECOMMERCE_CODES)
def test_ecommerce_heading_present(code: str) -> None:
    assert code in BY_CODE, f"missing e-commerce row {code}"


@pytest.mark.parametrize("row", ROWS, ids=[row["code"] for row in ROWS])
def test_row_is_valid(row: dict[str, str]) -> None:
    for key, value in row.items():
        assert value == value.strip(), f"{key}: surrounding whitespace"
    assert row["description"], "empty description"
    assert row["source"], "empty source"

    adv, spec, unit, combine = (
        row["ad_valorem_pct"],
        row["specific_eur"],
        row["specific_unit"],
        row["combine"],
    )
    assert adv or spec, "no duty part (give ad_valorem_pct and/or specific_eur)"

    if adv:
        assert AD_VALOREM_RE.match(adv), f"ad_valorem_pct not a plain decimal: {adv!r}"
        assert Decimal("0") <= Decimal(adv) <= Decimal("1000")

    if spec:
        assert AMOUNT_RE.match(spec), f"specific_eur not a plain decimal (max 6 places): {spec!r}"
        assert Decimal("0") < Decimal(spec) <= Decimal("10000")
        assert unit in SPECIFIC_UNITS, f"specific_unit {unit!r} not in {sorted(SPECIFIC_UNITS)}"
    else:
        assert unit == "", "specific_unit given without specific_eur"

    if adv and spec:
        assert combine in COMBINES, "both parts given: combine must be max or sum"
    else:
        assert combine == "", "combine given with only one duty part"

    excise, excise_unit = row["excise_kzt"], row["excise_unit"]
    if excise:
        assert AMOUNT_RE.match(excise), f"excise_kzt not a plain decimal: {excise!r}"
        assert Decimal(excise) > 0
        assert excise_unit in EXCISE_UNITS, f"excise_unit {excise_unit!r} not allowed"
    else:
        assert excise_unit == "", "excise_unit given without excise_kzt"


def test_every_format_branch_is_exercised() -> None:
    assert any(r["combine"] == "max" and r["specific_unit"] == "pair" for r in ROWS)
    assert any(r["combine"] == "max" and r["specific_unit"] == "kg" for r in ROWS)
    assert any(r["combine"] == "max" and r["specific_unit"] == "piece" for r in ROWS)
    assert any(r["combine"] == "sum" for r in ROWS)
    assert any(r["specific_unit"] == "litre" for r in ROWS)
    assert any(r["specific_eur"] and not r["ad_valorem_pct"] for r in ROWS), "no specific-only row"
    assert {r["excise_unit"] for r in ROWS if r["excise_kzt"]} == EXCISE_UNITS
    assert any(len(r["code"]) == 10 for r in ROWS), "no 10-digit row"


@pytest.mark.parametrize("code", EXCISE_CODES)
def test_excise_goods_carry_excise(code: str) -> None:
    assert BY_CODE[code]["excise_kzt"], f"{code} should carry an excise rate"


def test_typical_parcel_goods_bear_no_excise() -> None:
    for code in ("6109", "6403", "8471", "8517", "3304", "9503"):
        assert BY_CODE[code]["excise_kzt"] == ""


def test_unverified_rates_are_marked() -> None:
    # A row either says it is illustrative or names the tariff and asks for verification.
    for row in ROWS:
        src = row["source"]
        marked = src.startswith("illustrative:") or ("EAEU CCT" in src and "verify" in src)
        assert marked, row["code"]


def test_footwear_has_per_pair_minimum() -> None:
    for code in ("6403", "6404"):
        row = BY_CODE[code]
        assert row["combine"] == "max" and row["specific_unit"] == "pair"
