"""Local content (CT-KZ): the share under both formulas, the formula in force, eligibility, what qualifies."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contracts.reasons import REASONS
from stream.localcontent import assess, load_rules, max_foreign_cost
from stream.localcontent.cli import answer_lines
from stream.localcontent.demo import demo_step
from stream.localcontent.rules import DATA_DIR
from tests.schema_oracle import schema_validator

CLI = [sys.executable, "-m", "stream", "local-content"]
ANSWER_SCHEMA = schema_validator("local-content-1.json")
REJECTION_SCHEMA = schema_validator("rejection-1.json")

# The published contract's example, verbatim.
CONTRACT_EXAMPLE = {
    "schema": "local-content-request/1", "product_id": "P-1", "product_type": "furniture",
    "calculated_on": "2024-05-02", "vat_payer": True, "production_cost": "800000.00", "margin": "200000.00",
    "materials": [{"name": "beech board", "origin": "RU", "cost": "300000.00"},
                  {"name": "fittings", "origin": "KZ", "cost": "50000.00"}],
}


def request(**changes) -> dict:
    return {**CONTRACT_EXAMPLE, **changes}


def foreign(cost: str, origin: str = "CN") -> list[dict]:
    return [{"name": "imported part", "origin": origin, "cost": cost}, {"name": "local part", "origin": "KZ",
                                                                       "cost": "1.00"}]


def answered(doc: dict, rules=None) -> dict:
    answer = assess(doc, rules)
    assert answer["schema"] == "local-content/1", answer
    ANSWER_SCHEMA.validate(answer)
    return answer


def rejected(doc: object, reason: str) -> dict:
    answer = assess(doc)
    assert answer["schema"] == "rejection/1", answer
    REJECTION_SCHEMA.validate(answer)
    assert answer["reason"] == reason, answer
    return answer


def exact_share(foreign_kzt: str, whole_kzt: Decimal) -> Decimal:
    """The reference: (1 - C / W) x 100 as an exact fraction, rounded half up to two places."""
    value = (1 - Fraction(Decimal(foreign_kzt)) / Fraction(whole_kzt)) * 100
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# -- the contract's example and the formula switch -----------------------------------------------

def test_contract_example_gives_the_contract_figures():
    answer = answered(CONTRACT_EXAMPLE)
    assert {k: answer[k] for k in ("product_id", "formula", "share_pct", "share_exw_pct",
                                   "share_production_cost_pct", "exw_price")} == {
        "product_id": "P-1", "formula": "production_cost", "share_pct": "62.50", "share_exw_pct": "73.21",
        "share_production_cost_pct": "62.50", "exw_price": "1120000.00"}
    assert answer["threshold_pct"] == "50.00" and answer["threshold_status"] == "unconfirmed"
    assert answer["eligible"] is True and answer["to_qualify"] is None
    assert answer["foreign_materials_cost"] == "300000.00"  # the KZ fittings are domestic, RU is foreign
    assert "62.50%" in answer["explanation"] and "73.21%" in answer["explanation"]


@pytest.mark.parametrize("day, formula, share", [
    ("2024-04-27", "exw", "73.21"),             # the last day of the EXW formula
    ("2024-04-28", "production_cost", "62.50"),  # Order No. 169-NK in force
    ("2021-07-13", "exw", "73.21"),             # the first day the rules data covers
])
def test_formula_in_force_by_date(day, formula, share):
    answer = answered(request(calculated_on=day))
    assert (answer["formula"], answer["share_pct"]) == (formula, share)
    assert answer["share_exw_pct"] == "73.21" and answer["share_production_cost_pct"] == "62.50"


@pytest.mark.parametrize("day, vat, exw", [
    ("2025-12-31", "12.00", "1120000.00"),
    ("2026-01-01", "16.00", "1160000.00"),
])
def test_vat_rate_by_date_enters_the_exw_price(day, vat, exw):
    answer = answered(request(calculated_on=day))
    assert (answer["vat_pct"], answer["exw_price"]) == (vat, exw)
    assert answer["share_exw_pct"] == str(exact_share("300000.00", Decimal(exw)))
    assert answer["share_production_cost_pct"] == "62.50"  # VAT never touches the production-cost formula


def test_non_vat_payer_has_no_vat_in_the_exw_price():
    answer = answered(request(vat_payer=False, calculated_on="2024-04-27"))
    assert answer["vat_pct"] == "0.00" and answer["exw_price"] == "1000000.00"
    assert answer["share_exw_pct"] == "70.00" and answer["share_pct"] == "70.00"
    assert "not a VAT payer" in answer["explanation"]


def test_all_domestic_materials_give_one_hundred_percent():
    answer = answered(request(materials=[{"name": "pine", "origin": "KZ", "cost": "500000.00"}]))
    assert answer["share_exw_pct"] == answer["share_production_cost_pct"] == "100.00"
    assert answer["foreign_materials_cost"] == "0.00" and answer["eligible"] is True
    assert "leaves the share as it is" in answer["explanation"]


def test_no_materials_at_all_is_all_domestic():
    answer = answered(request(materials=[]))
    assert answer["share_pct"] == "100.00"


def test_foreign_cost_equal_to_the_production_cost_is_zero_share_not_a_rejection():
    answer = answered(request(materials=foreign("800000.00")[:1]))
    assert answer["share_production_cost_pct"] == "0.00"
    assert answer["share_exw_pct"] == str(exact_share("800000.00", Decimal("1120000.00")))
    assert answer["eligible"] is False
    assert answer["to_qualify"] == {"max_foreign_materials_cost": "400040.00", "min_domestic_substitution": "399960.00"}


def test_product_type_without_threshold_is_undecided():
    answer = answered(request(product_type="spacecraft"))
    assert answer["threshold_pct"] is None and answer["threshold_status"] is None
    assert answer["eligible"] is None and answer["eligible_exw"] is None and answer["to_qualify"] is None
    assert "No threshold is known" in answer["explanation"]


def test_the_same_product_loses_eligibility_on_the_switch_day():
    chair = request(production_cost="600000.00", margin="300000.00", materials=foreign("360000.00")[:1])
    before = answered(dict(chair, calculated_on="2024-04-27"))
    after = answered(dict(chair, calculated_on="2024-04-28"))
    assert (before["formula"], before["share_pct"], before["eligible"]) == ("exw", "64.29", True)
    assert (after["formula"], after["share_pct"], after["eligible"]) == ("production_cost", "40.00", False)
    assert before["to_qualify"] is None
    assert after["to_qualify"] == {"max_foreign_materials_cost": "300030.00", "min_domestic_substitution": "59970.00"}
    assert "Not eligible" in after["explanation"] and "300030.00" in after["explanation"]


# -- rounding: half up, exactly ------------------------------------------------------------------

def test_share_rounds_half_up_where_half_even_would_not():
    # 100000 tiyn production cost, 12355 tiyn foreign: 87.645% exactly (half-even: 87.64, float: 87.64...)
    answer = answered(request(production_cost="1000.00", margin="0", materials=foreign("123.55")[:1]))
    assert answer["share_production_cost_pct"] == "87.65"
    # 87.625 exactly: half up gives .63 (half-even .62)
    answer = answered(request(production_cost="1000.00", margin="0", materials=foreign("123.75")[:1]))
    assert answer["share_production_cost_pct"] == "87.63"


def test_exw_price_rounds_half_up_to_the_tiyn(tmp_path: Path):
    # VAT of 12% or 16% never lands on half a tiyn; 10.50% on 1.00 KZT is 10.5 tiyn exactly.
    (tmp_path / "vat.csv").write_text("id,valid_from,valid_to,rate_pct,legal_basis\n"
                                      "HALF,2021-07-13,2027-12-31,10.50,a test rate\n")
    rules = load_rules(tmp_path)
    answer = answered(request(production_cost="1.00", margin="0", materials=[], calculated_on="2024-01-10"), rules)
    assert answer["vat_pct"] == "10.50" and answer["exw_price"] == "1.11"


@settings(max_examples=300)
@given(production=st.integers(1, 10**15 - 1), margin=st.integers(0, 10**15 - 1), part=st.integers(0, 10**6),
       vat_payer=st.booleans(), day=st.sampled_from(["2024-04-27", "2024-04-28", "2026-01-01"]))
def test_shares_equal_the_exact_rational_reference(production, margin, part, vat_payer, day):
    foreign_tiyn = production * part // 10**6
    doc = request(production_cost=f"{production // 100}.{production % 100:02d}",
                  margin=f"{margin // 100}.{margin % 100:02d}", vat_payer=vat_payer, calculated_on=day,
                  materials=[{"name": "m", "origin": "DE", "cost": f"{foreign_tiyn // 100}.{foreign_tiyn % 100:02d}"}])
    answer = answered(doc)
    rate = Fraction({"2026-01-01": 16}.get(day, 12), 100) if vat_payer else Fraction(0)
    base = production + margin
    vat = base * rate
    vat_tiyn = int(vat) + (1 if vat - int(vat) >= Fraction(1, 2) else 0)
    exw = base + vat_tiyn
    assert answer["exw_price"] == f"{exw // 100}.{exw % 100:02d}"
    cost = Decimal(foreign_tiyn) / 100
    assert answer["share_exw_pct"] == str(exact_share(str(cost), Decimal(exw) / 100))
    assert answer["share_production_cost_pct"] == str(exact_share(str(cost), Decimal(production) / 100))


# -- what qualifies: exact, and one tiyn more does not ---------------------------------------------

def _share_hundredths(foreign_tiyn: int, whole: int) -> int:
    return (2 * (whole - foreign_tiyn) * 10000 + whole) // (2 * whole)  # half up, exact integers


@settings(max_examples=500)
@given(whole=st.integers(1, 10**15), threshold=st.integers(0, 10000))
def test_max_foreign_cost_is_the_exact_boundary(whole, threshold):
    most = max_foreign_cost(whole, Decimal(threshold) / 100)
    assert 0 <= most
    assert _share_hundredths(min(most, whole), whole) >= threshold
    if most + 1 <= whole:
        assert _share_hundredths(most + 1, whole) < threshold


def _with_foreign(doc: dict, tiyn: int) -> dict:
    return dict(doc, materials=[{"name": "imported", "origin": "CN", "cost": f"{tiyn // 100}.{tiyn % 100:02d}"},
                                {"name": "domestic", "origin": "KZ", "cost": "10.00"}])


@settings(max_examples=150)
@given(production=st.integers(10**4, 10**12), margin=st.integers(0, 10**12), vat_payer=st.booleans(),
       share=st.integers(0, 10**6), day=st.sampled_from(["2024-04-27", "2024-04-28"]),
       product_type=st.sampled_from(["furniture", "metal_products", "machinery"]))
def test_to_qualify_qualifies_and_one_tiyn_more_does_not(production, margin, vat_payer, share, day, product_type):
    doc = request(production_cost=f"{production // 100}.{production % 100:02d}",
                  margin=f"{margin // 100}.{margin % 100:02d}", vat_payer=vat_payer, calculated_on=day,
                  product_type=product_type)
    answer = answered(_with_foreign(doc, production * share // 10**6))
    if answer["eligible"]:
        assert answer["to_qualify"] is None
        return
    qualify = answer["to_qualify"]
    most = int(qualify["max_foreign_materials_cost"].replace(".", ""))
    assert int(answer["foreign_materials_cost"].replace(".", "")) - most == \
        int(qualify["min_domestic_substitution"].replace(".", ""))
    at_most = answered(_with_foreign(doc, most))
    assert at_most["eligible"] is True and at_most["formula"] == answer["formula"]
    assert answered(_with_foreign(doc, most + 1))["eligible"] is False


# -- bad input: rejection/1 with a stable reason and the product's own ref ------------------------

@pytest.mark.parametrize("doc, reason", [
    (request(materials=foreign("800000.01")[:1]), "foreign_cost_exceeds_production_cost"),
    (request(materials=[{"name": "a", "origin": "CN", "cost": "500000.00"},
                        {"name": "b", "origin": "DE", "cost": "300000.01"}]), "foreign_cost_exceeds_production_cost"),
    (request(production_cost="0.00"), "out_of_range"),
    (request(production_cost="0"), "out_of_range"),
    (request(production_cost="-800000.00"), "invalid_number"),
    (request(margin="-1"), "invalid_number"),
    (request(materials=foreign("-5.00")), "invalid_number"),
    (request(production_cost=800000.0), "wrong_type"),
    (request(margin=200000), "wrong_type"),
    (request(materials=foreign("1.005")), "invalid_number"),
    (request(production_cost="1e6"), "invalid_number"),
    (request(materials=foreign("5.00", origin="XX")), "unknown_origin"),
    (request(materials=foreign("5.00", origin="kz")), "invalid_code"),
    (request(materials=foreign("5.00", origin="KAZ")), "invalid_code"),
    (request(calculated_on="2099-01-01"), "no_local_content_rules"),
    (request(calculated_on="2028-01-01"), "no_local_content_rules"),
    (request(calculated_on="2020-01-01"), "no_local_content_rules"),
    (request(calculated_on="2024-02-30"), "invalid_date"),
    (request(vat_payer="yes"), "wrong_type"),
    (request(schema="local-content-request/2"), "unknown_schema"),
    ({k: v for k, v in CONTRACT_EXAMPLE.items() if k != "margin"}, "missing_field"),
    (request(product_type=""), "invalid_text"),
])
def test_bad_input_is_rejected_with_a_stable_reason(doc, reason):
    answer = rejected(doc, reason)
    assert answer["ref"] == "P-1" and answer["detail"]


def test_rejections_of_non_objects_and_bad_ids_have_no_ref():
    assert rejected([1, 2], "not_an_object")["ref"] is None
    assert rejected(request(product_id="bad id with spaces"), "invalid_code")["ref"] is None


def test_every_reason_used_is_registered():
    for code in ("unknown_origin", "foreign_cost_exceeds_production_cost", "no_local_content_rules"):
        assert code in REASONS


# -- the command line ----------------------------------------------------------------------------

def test_command_line_answers_every_line_in_order(tmp_path: Path):
    lines = [orjson.dumps(CONTRACT_EXAMPLE), b"{not json", b"", b"   ",
             orjson.dumps(request(product_id="P-2", materials=foreign("900000.00"))),
             orjson.dumps({"schema": "order/1"}), b"[1, 2]", b"\xff\xfe",
             b'{"schema": "local-content-request/1", "product_id": "P-3", "product_id": "P-4"}',
             orjson.dumps(request(product_id="P-5", calculated_on="2024-04-27"))]
    source = tmp_path / "products.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    done = subprocess.run(CLI + [str(source)], capture_output=True, check=True, timeout=120)
    results = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [(r["schema"], r.get("product_id") or r.get("ref"), r.get("reason")) for r in results] == [
        ("local-content/1", "P-1", None),
        ("rejection/1", None, "malformed_json"),
        ("rejection/1", "P-2", "foreign_cost_exceeds_production_cost"),
        ("rejection/1", None, "unknown_schema"),
        ("rejection/1", None, "not_an_object"),
        ("rejection/1", None, "malformed_json"),
        ("rejection/1", None, "duplicate_key"),
        ("local-content/1", "P-5", None),
    ]
    assert results[-1]["formula"] == "exw"
    for result in results:
        (ANSWER_SCHEMA if result["schema"] == "local-content/1" else REJECTION_SCHEMA).validate(result)


def test_command_line_reads_stdin_and_equals_the_library():
    docs = [CONTRACT_EXAMPLE, request(product_id="P-9", calculated_on="2026-03-01", vat_payer=False)]
    stdin = b"".join(orjson.dumps(doc) + b"\n" for doc in docs)
    done = subprocess.run(CLI + ["-"], input=stdin, capture_output=True, check=True, timeout=120)
    assert [orjson.loads(line) for line in done.stdout.splitlines()] == [assess(doc) for doc in docs]


def test_rules_option_replaces_shipped_files(tmp_path: Path):
    (tmp_path / "thresholds.csv").write_text("product_type,valid_from,valid_to,threshold_pct,status,source\n"
                                             "furniture,2021-07-13,2027-12-31,65,confirmed,an official list\n")
    done = subprocess.run(CLI + ["--rules", str(tmp_path)], input=orjson.dumps(CONTRACT_EXAMPLE),
                          capture_output=True, check=True, timeout=120)
    answer = orjson.loads(done.stdout)
    assert answer["threshold_pct"] == "65.00" and answer["threshold_status"] == "confirmed"
    assert answer["eligible"] is False and answer["eligible_exw"] is True
    assert answer["to_qualify"] == {"max_foreign_materials_cost": "280040.00", "min_domestic_substitution": "19960.00"}
    assert "unconfirmed" not in answer["explanation"]


def test_rules_directory_may_come_from_the_environment(tmp_path: Path):
    (tmp_path / "formulas.csv").write_text("id,valid_from,valid_to,formula,legal_basis\n"
                                           "ALWAYS-EXW,2021-07-13,2027-12-31,exw,a test rule\n")
    env = {**os.environ, "CUSTOMS_LOCAL_CONTENT_RULES": str(tmp_path)}
    done = subprocess.run(CLI, input=orjson.dumps(CONTRACT_EXAMPLE), capture_output=True, check=True, timeout=120,
                          env=env)
    answer = orjson.loads(done.stdout)
    assert (answer["formula"], answer["share_pct"], answer["rules"]["formula"]) == ("exw", "73.21", "ALWAYS-EXW")
    done = subprocess.run(CLI, input=orjson.dumps(CONTRACT_EXAMPLE), capture_output=True, check=True, timeout=120,
                          env={**os.environ, "CUSTOMS_LOCAL_CONTENT_RULES": ""})
    assert orjson.loads(done.stdout)["formula"] == "production_cost"


def test_rules_option_refuses_a_bad_file_with_its_line(tmp_path: Path):
    (tmp_path / "vat.csv").write_text("id,valid_from,valid_to,rate_pct,legal_basis\n"
                                      "V1,2021-01-01,2024-12-31,12,ok\n"
                                      "V2,2025-01-01,2027-12-31,twelve,bad\n")
    done = subprocess.run(CLI + ["--rules", str(tmp_path)], input=b"", capture_output=True, timeout=120)
    assert done.returncode == 1
    assert b"vat.csv:3: rate_pct 'twelve'" in done.stderr


def test_answer_lines_counts_and_keeps_the_answered_products():
    out = io.BytesIO()
    kept: list = []
    counts = answer_lines([orjson.dumps(CONTRACT_EXAMPLE), b"nope", b"\n"], out, load_rules(), keep=kept)
    assert counts == {"documents": 2, "answers": 1, "rejections": 1}
    assert [answer["product_id"] for _, answer in kept] == ["P-1"]
    assert len(out.getvalue().splitlines()) == 2


def test_shipped_rules_are_the_package_data():
    assert sorted(p.name for p in DATA_DIR.iterdir()) == ["formulas.csv", "thresholds.csv", "vat.csv"]


# -- the demo step -------------------------------------------------------------------------------

def test_demo_step_prints_both_products_on_both_days():
    printed: list[str] = []
    demo_step(printed.append)
    text = "\n".join(printed)
    assert "TABLE-OAK-1    2024-04-28  production_cost    62.50%" in text
    assert "CHAIR-STEEL-2  2024-04-27  exw                64.29%" in text
    assert "CHAIR-STEEL-2  2024-04-28  production_cost    40.00%   64.29%     50.00%  NOT eligible" in text
    assert "at most 300030.00 KZT" in text
    assert "rejected" not in text
