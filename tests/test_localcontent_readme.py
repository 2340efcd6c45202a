"""The README's local-content worked example: its table and figures, recomputed from the README text."""
from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from stream.localcontent import assess
from stream.localcontent.demo import example_products
from stream.money import format_kzt, parse_tiyn

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Local content (CT-KZ)\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


@pytest.fixture(scope="module")
def requests(section) -> dict[str, dict]:
    block = re.search(r"```jsonl\n(.*?)```", section, re.S).group(1)
    docs = [orjson.loads(line) for line in block.splitlines() if line.strip()]
    assert len(docs) == 2
    return {doc["product_id"]: doc for doc in docs}


def table_rows(section: str) -> list[dict[str, str]]:
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    start = next(i for i, line in enumerate(lines) if line.startswith("| product | calculated_on"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) != len(header):
            break
        rows.append(dict(zip(header, cells)))
    return rows


def test_the_table_is_what_the_command_answers(section, requests):
    rows = table_rows(section)
    assert len(rows) == 4
    kept = lost = False
    for row in rows:
        answer = assess(dict(requests[row["product"]], calculated_on=row["calculated_on"]))
        assert answer["schema"] == "local-content/1", answer
        for column in ("formula", "share_exw_pct", "share_production_cost_pct", "threshold_pct"):
            assert row[column] == answer[column], (row, column)
        assert row["eligible"] == {True: "true", False: "false", None: "null"}[answer["eligible"]]
        qualify = answer["to_qualify"]
        assert row["max_foreign_materials_cost"] == ("-" if qualify is None else qualify["max_foreign_materials_cost"])
        if row["calculated_on"] == "2024-04-28":
            before = assess(dict(requests[row["product"]], calculated_on="2024-04-27"))
            kept |= before["eligible"] is True and answer["eligible"] is True
            lost |= before["eligible"] is True and answer["eligible"] is False
    assert kept and lost  # one product keeps its certificate on 2024-04-28, one loses it


def test_the_paragraph_figures_are_the_answers(section, requests):
    for product_id, doc in requests.items():
        paragraph = re.search(rf"^- {re.escape(product_id)}:(.*?)(?=^- |^\n|\Z)", section, re.S | re.M).group(1)
        paragraph = re.sub(r"\s+", " ", paragraph)
        answer = assess(dict(doc, calculated_on="2024-04-28"))
        for amount in (answer["foreign_materials_cost"], answer["exw_price"], answer["production_cost"]):
            assert format_kzt(parse_tiyn(amount)) in paragraph, (product_id, amount)
        assert f"-> {answer['share_exw_pct']}" in paragraph
        assert answer["share_production_cost_pct"] in paragraph
        vat = parse_tiyn(answer["exw_price"]) - parse_tiyn(doc["production_cost"]) - parse_tiyn(doc["margin"])
        assert format_kzt(vat) in paragraph
        if answer["to_qualify"] is not None:
            most = answer["to_qualify"]["max_foreign_materials_cost"]
            assert f"= {format_kzt(parse_tiyn(most))} of foreign materials" in paragraph
            assert format_kzt(parse_tiyn(answer["to_qualify"]["min_domestic_substitution"])) in paragraph
            one_more = parse_tiyn(most) + 1
            over = assess(dict(doc, calculated_on="2024-04-28", materials=[
                {"name": "imported", "origin": "CN", "cost": f"{one_more // 100}.{one_more % 100:02d}"}]))
            assert f"{format_kzt(one_more)} gives {over['share_pct']}%" in paragraph
            assert over["eligible"] is False


def test_the_demo_runs_the_readme_products(requests):
    demo = {doc["product_id"]: doc for doc in example_products()}
    assert set(demo) == set(requests)
    for product_id, doc in requests.items():
        assert dict(demo[product_id], calculated_on=doc["calculated_on"]) == doc


def test_the_commands_in_the_section_exist(section):
    assert "customs-stream local-content products.jsonl --report products.pdf" in section
    assert "--rules my-rules/" in section
    assert "<!-- localcontent" not in section
