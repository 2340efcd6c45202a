"""The local-content rules data: shipped files follow their schemas, the loader refuses bad rows by line,
and it accepts a row exactly when the row schema does."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.localcontent.rules import (
    DATA_DIR,
    FORMULA_COLUMNS,
    THRESHOLD_COLUMNS,
    VAT_COLUMNS,
    RulesError,
    RulesNotInForce,
    load_formulas,
    load_rules,
    load_thresholds,
    load_vat,
)
from tests.schema_oracle import schema_validator

ROW_SCHEMAS = {
    "formulas.csv": (schema_validator("local-content-formulas-csv.json"), FORMULA_COLUMNS, load_formulas),
    "vat.csv": (schema_validator("local-content-vat-csv.json"), VAT_COLUMNS, load_vat),
    "thresholds.csv": (schema_validator("local-content-thresholds-csv.json"), THRESHOLD_COLUMNS, load_thresholds),
}


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def test_shipped_rows_follow_their_schemas():
    for name, (schema, _, _) in ROW_SCHEMAS.items():
        with (DATA_DIR / name).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert rows, name
        for row in rows:
            assert None not in row, row  # no cell past the header (an unquoted comma)
            schema.validate(row)


def test_shipped_rules_say_what_the_contract_says():
    rules = load_rules()
    day = dt.date.fromisoformat
    assert rules.formula_on(day("2024-04-27")).value == "exw"
    assert rules.formula_on(day("2024-04-28")).value == "production_cost"
    assert rules.vat_on(day("2025-12-31")).value == "12" and rules.vat_on(day("2026-01-01")).value == "16"
    threshold = rules.threshold_on("furniture", day("2024-04-28"))
    assert threshold.pct == Decimal("50") and threshold.status == "unconfirmed"
    assert all(p.status == "unconfirmed" for periods in rules.thresholds.values() for p in periods)
    assert rules.threshold_on("spacecraft", day("2024-04-28")) is None
    with pytest.raises(RulesNotInForce):
        rules.formula_on(rules.last_day + dt.timedelta(days=1))
    with pytest.raises(RulesNotInForce):
        rules.vat_on(rules.first_day - dt.timedelta(days=1))


HEADERS = {"formulas.csv": ",".join(FORMULA_COLUMNS), "vat.csv": ",".join(VAT_COLUMNS),
           "thresholds.csv": ",".join(THRESHOLD_COLUMNS)}


@pytest.mark.parametrize("name, body, message", [
    ("formulas.csv", "F1,2021-01-01,2024-04-27,exw,x\nF2,2024-04-28,2027-12-31,cost,x\n",
     "formulas.csv:3: formula 'cost' is not one of exw, production_cost"),
    ("formulas.csv", "F1,2021-01-01,2024-04-27,exw,x\nF2,2024-04-29,2027-12-31,production_cost,x\n",
     "formulas.csv:3: starts 2024-04-29, but line 2 ends 2024-04-27: the days between have no rule"),
    ("formulas.csv", "F1,2021-01-01,2024-04-28,exw,x\nF2,2024-04-28,2027-12-31,production_cost,x\n",
     "formulas.csv:3: 2024-04-28..2027-12-31 overlaps line 2"),
    ("formulas.csv", "F1,2021-01-01,2024-04-27,exw,x\nF1,2024-04-28,2027-12-31,production_cost,x\n",
     "formulas.csv:3: id 'F1' is already used on line 2"),
    ("formulas.csv", "F1,2024-04-28,2024-04-27,exw,x\n", "formulas.csv:2: valid_to 2024-04-27 is before valid_from"),
    ("formulas.csv", "F1,2024-02-30,2024-04-27,exw,x\n", "formulas.csv:2: valid_from '2024-02-30' is not a possible date"),
    ("formulas.csv", "F1,28.04.2024,2024-04-27,exw,x\n", "formulas.csv:2: valid_from '28.04.2024' is not a YYYY-MM-DD"),
    ("formulas.csv", "F1,2021-01-01,,exw,x\n", "formulas.csv:2: valid_to '' is not a YYYY-MM-DD date"),
    ("formulas.csv", "F1,2021-01-01,2027-12-31,exw\n", "formulas.csv:2: 4 cells, the header names 5"),
    ("formulas.csv", "F1,2021-01-01,2027-12-31,exw,\n", "formulas.csv:2: legal_basis must be 1 to 1000 characters"),
    ("formulas.csv", "F1,2021-01-01,2027-12-31,exw,Order 1, in force\n",
     "formulas.csv:2: 6 cells, the header names 5 (quote a text that holds a comma)"),
    ("formulas.csv", "", "formulas.csv: no rows"),
    ("vat.csv", "V1,2021-01-01,2027-12-31,12.345,x\n", "vat.csv:2: rate_pct '12.345' is not a percentage"),
    ("vat.csv", "V1,2021-01-01,2027-12-31,101,x\n", "vat.csv:2: rate_pct '101' is not a percentage"),
    ("vat.csv", "bad id,2021-01-01,2027-12-31,12,x\n", "vat.csv:2: id 'bad id' is not an identifier"),
    ("thresholds.csv", "furniture,2021-01-01,2027-12-31,50,maybe,x\n",
     "thresholds.csv:2: status 'maybe' is not one of confirmed, unconfirmed"),
    ("thresholds.csv", "Furniture,2021-01-01,2027-12-31,50,confirmed,x\n",
     "thresholds.csv:2: product_type 'Furniture' is not lower-case"),
    ("thresholds.csv", "furniture,2021-01-01,2024-12-31,50,confirmed,x\nmachinery,2021-01-01,2027-12-31,30,confirmed,x\n"
                       "furniture,2024-06-01,2027-12-31,55,confirmed,x\n",
     "thresholds.csv:4: 2024-06-01..2027-12-31 overlaps line 2"),
    ("thresholds.csv", "furniture,2021-01-01,2027-12-31,-5,confirmed,x\n",
     "thresholds.csv:2: threshold_pct '-5' is not a percentage"),
])
def test_loader_refuses_bad_rows_with_their_line(tmp_path: Path, name, body, message):
    (tmp_path / name).write_text(HEADERS[name] + "\n" + body, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path)
    assert message in str(caught.value)
    assert str(tmp_path / name) in str(caught.value)


def test_loader_refuses_missing_columns_unreadable_files_and_empty_directories(tmp_path: Path):
    (tmp_path / "vat.csv").write_text("id,valid_from,rate_pct,legal_basis\n", encoding="utf-8")
    with pytest.raises(RulesError, match="missing columns valid_to"):
        load_rules(tmp_path)
    (tmp_path / "vat.csv").write_bytes(b"id,valid_from,valid_to,rate_pct,legal_basis\nV1,\xff\xfe\n")
    with pytest.raises(RulesError, match="cannot be read as UTF-8 CSV"):
        load_rules(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RulesError, match="holds none of formulas.csv, vat.csv, thresholds.csv"):
        load_rules(empty)
    with pytest.raises(RulesError, match="not a directory"):
        load_rules(tmp_path / "vat.csv")


def test_thresholds_may_change_over_time_and_leave_gaps(tmp_path: Path):
    write_csv(tmp_path / "thresholds.csv", THRESHOLD_COLUMNS, [
        {"product_type": "furniture", "valid_from": "2021-07-13", "valid_to": "2024-12-31", "threshold_pct": "50",
         "status": "confirmed", "source": "list A"},
        {"product_type": "furniture", "valid_from": "2025-06-01", "valid_to": "2027-12-31", "threshold_pct": "60.5",
         "status": "unconfirmed", "source": "list B"},
    ])
    rules = load_rules(tmp_path)
    assert rules.threshold_on("furniture", dt.date(2024, 12, 31)).pct == Decimal("50")
    assert rules.threshold_on("furniture", dt.date(2025, 1, 1)) is None
    assert rules.threshold_on("furniture", dt.date(2025, 6, 1)).pct == Decimal("60.5")


# -- the loader accepts a row exactly when its row schema does ------------------------------------

cells = st.one_of(
    st.sampled_from(["", "0", "12", "12.5", "12.50", "12.505", "100", "100.0", "100.00", "100.01", "101", "-1", "05",
                     "exw", "production_cost", "EXW", "confirmed", "unconfirmed", "furniture", "Furniture",
                     "metal_products", "a-b.c", "_x", "2024-04-28", "2024-02-30", "2024-13-01", "0000-01-01",
                     "24-04-28", "V-1", "bad id", "x" * 64, "x" * 65, "y" * 1000, "y" * 1001, " ", "Ж"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
)


@st.composite
def rows(draw, columns):
    return {column: draw(cells) for column in columns}


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_loader_accepts_a_row_exactly_when_the_schema_does(tmp_path: Path, data):
    name = data.draw(st.sampled_from(sorted(ROW_SCHEMAS)))
    schema, columns, loader = ROW_SCHEMAS[name]
    row = data.draw(rows(columns))
    path = write_csv(tmp_path / name, columns, [row])
    try:
        loader(path)
        loaded = True
    except RulesError:
        loaded = False
    # the one cross-field rule of a single row that a row schema cannot state: valid_to >= valid_from
    ordered = True
    try:
        ordered = dt.date.fromisoformat(row["valid_to"]) >= dt.date.fromisoformat(row["valid_from"])
    except ValueError:
        pass
    assert loaded == (schema.is_valid(row) and ordered), (row, [e.message for e in schema.iter_errors(row)])
