"""`customs-stream assess`: one output line per input document, in order; no input crashes it."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.contracts.reasons import REASONS
from stream.declaration.cli import assess_stream
from stream.declaration.engine import Assessor
from stream.rules import load_rules
from tests.schema_oracle import schema_validator

CLI = [sys.executable, "-m", "stream"]
EXAMPLE = {
    "schema": "assessment-request/1", "order_id": "AX-ORD-778899", "marketplace": "aliexpress", "flow": "warehouse",
    "ordered_at": "2026-11-21T10:00:00+05:00", "buyer": {"iin": "900101300123", "name": "Aigerim S."},
    "lines": [{"sku": "AX-100500", "qty": 2, "unit_price": "5.10", "currency": "USD",
               "description": "Men's cotton T-shirt, knitted", "hs_code": "6109100000", "origin": "CN",
               "unit_weight_kg": "0.180", "category": "apparel"}],
}


@pytest.fixture(scope="module")
def assessor():
    return Assessor(load_rules())


def run(assessor, lines: list[bytes]) -> list[dict]:
    out = io.BytesIO()
    assess_stream(iter(lines), out, assessor, batch=7)  # a small batch crosses batch boundaries
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


ASSESSMENT_SCHEMA = schema_validator("assessment-1.json")
REJECTION_SCHEMA = schema_validator("rejection-1.json")


def check_output(results: list[dict]) -> None:
    for result in results:
        assert result["schema"] in ("assessment/1", "rejection/1")
        (ASSESSMENT_SCHEMA if result["schema"] == "assessment/1" else REJECTION_SCHEMA).validate(result)
        if result["schema"] == "rejection/1":
            assert result["reason"] in REASONS
            assert isinstance(result["detail"], str) and result["detail"]
        else:
            cents = {k: int(result[k].replace(".", "")) for k in ("duty", "excise", "vat", "total", "customs_value")}
            assert cents["total"] == cents["duty"] + cents["excise"] + cents["vat"]
            assert sum(int(row["value"].replace(".", "")) for row in result["lines"]) == cents["customs_value"]


def test_command_line_keeps_input_order_and_exits_zero(tmp_path: Path):
    page = {"schema": "page/1", "items": [dict(EXAMPLE, order_id="P-1"), {"schema": "order/1"}, dict(EXAMPLE, order_id="P-3")]}
    source = tmp_path / "requests.jsonl"
    source.write_bytes(b"\n".join([orjson.dumps(EXAMPLE), b"{not json", b"", orjson.dumps(page), b"[1, 2]"]) + b"\n")
    done = subprocess.run(CLI + ["assess", str(source)], capture_output=True, check=True, timeout=120)
    results = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [(r["schema"], r.get("order_id") or r.get("ref"), r.get("reason")) for r in results] == [
        ("assessment/1", "AX-ORD-778899", None),
        ("rejection/1", None, "malformed_json"),
        ("assessment/1", "P-1", None),
        ("rejection/1", None, "unknown_schema"),
        ("assessment/1", "P-3", None),
        ("rejection/1", None, "not_an_object"),
    ]
    check_output(results)


def test_command_line_reads_stdin_and_takes_rule_files(tmp_path: Path):
    tariff = tmp_path / "tariff.csv"
    tariff.write_text("code,description,ad_valorem_pct,specific_eur,specific_unit,combine,excise_kzt,excise_unit\n"
                      "61,Apparel,20,,,,,\n")
    fx = tmp_path / "fx.csv"
    fx.write_text("date,currency,kzt_per_unit\n2026-11-01,USD,500\n2026-11-01,EUR,600\n")
    done = subprocess.run(CLI + ["assess", "-", "--tariff", str(tariff), "--fx", str(fx)], input=orjson.dumps(EXAMPLE),
                          capture_output=True, check=True, timeout=120)
    [result] = [orjson.loads(line) for line in done.stdout.splitlines()]
    # 2 x 5.10 x 500 = 5,100.00; 20% = 1,020.00; VAT 16% of 6,120.00 = 979.20
    assert (result["customs_value"], result["duty"], result["vat"]) == ("5100.00", "1020.00", "979.20")
    assert result["fx"] == {"EUR": "600.00", "USD": "500.00"}


def test_help_explains_the_command():
    done = subprocess.run(CLI + ["assess", "--help"], capture_output=True, check=True, text=True, timeout=60)
    assert "assessment-request/1" in done.stdout and "--tariff" in done.stdout


# -- fuzz ----------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
                         st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)), max_leaves=12)
decimal_text = st.one_of(st.from_regex(r"\A(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?\Z"), st.text(max_size=12))
timestamps = st.one_of(
    st.from_regex(r"\A[0-9]{4}-[01][0-9]-[0-3][0-9][Tt][0-2][0-9]:[0-5][0-9]:[0-6][0-9](\.[0-9]{1,9})?([Zz]|[+-][01][0-9]:[0-5][0-9])\Z"),
    st.sampled_from(["0000-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z"]),
)
request_lines = st.fixed_dictionaries({
    "sku": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,10}\Z"), "qty": st.one_of(st.integers(-2, 10**6 + 1), st.just(2.0)),
    "unit_price": decimal_text, "currency": st.sampled_from(["USD", "EUR", "KZT", "CNY", "XXX", "usd"]),
    "description": st.text(min_size=0, max_size=40), "origin": st.sampled_from(["CN", "TR", "cn"]),
    "unit_weight_kg": decimal_text,
}, optional={"hs_code": st.one_of(st.none(), st.text(max_size=12), st.from_regex(r"\A[0-9]{2,10}\Z")),
             "unit_volume_l": decimal_text, "category": st.text(max_size=10)})
requests = st.fixed_dictionaries({
    "schema": st.sampled_from(["assessment-request/1", "assessment-request/1", "order/1"]),
    "order_id": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,12}\Z"),
    "flow": st.sampled_from(["warehouse", "parcel", "boat"]), "ordered_at": timestamps,
    "lines": st.lists(request_lines, max_size=4),
}, optional={"declared_at": st.one_of(st.from_regex(r"\A[0-9]{4}-[01][0-9]-[0-3][0-9]\Z"), st.just("0000-01-01"))})
input_lines = st.one_of(
    requests.map(orjson.dumps),
    st.lists(requests, min_size=1, max_size=3).map(lambda items: orjson.dumps({"schema": "page/1", "items": items})),
    json_values.map(lambda value: orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)),
    st.binary(max_size=60).map(lambda raw: raw.replace(b"\n", b" ")),
    st.sampled_from([b'{"schema": "assessment-request/1", "qty": 1' + b"0" * 30 + b"}", b"1e400", b'"\\ud800"',
                     b"\xff\xfe{}", b"[" * 2000, b'{"schema": "page/1", "items": ' + b"[" * 600 + b"]" * 600 + b"}"]),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(input_lines, max_size=12))
def test_no_input_crashes_assess_and_every_document_gets_one_answer(assessor, lines):
    results = run(assessor, lines)
    expected = 0
    for raw in lines:
        if not raw.strip():
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            expected += 1
            continue
        items = doc.get("items") if isinstance(doc, dict) and doc.get("schema") == "page/1" else None
        expected += len(items) if isinstance(items, list) and items else 1
    assert len(results) == expected
    check_output(results)
