"""`customs-stream local-content --report`: a PDF page per product, opened and read back."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from pypdf import PdfReader

from stream.localcontent import assess
from stream.localcontent.report import write_report

CLI = [sys.executable, "-m", "stream", "local-content"]
TABLE = {"schema": "local-content-request/1", "product_id": "TABLE-OAK-1", "product_type": "furniture",
         "calculated_on": "2024-05-02", "vat_payer": True, "production_cost": "800000.00", "margin": "200000.00",
         "materials": [{"name": "буковая доска", "origin": "RU", "cost": "300000.00"},
                       {"name": "fittings", "origin": "KZ", "cost": "50000.00"}]}
CHAIR = {"schema": "local-content-request/1", "product_id": "CHAIR-STEEL-2", "product_type": "furniture",
         "calculated_on": "2024-04-28", "vat_payer": True, "production_cost": "600000.00", "margin": "300000.00",
         "materials": [{"name": "steel tube", "origin": "CN", "cost": "360000.00"}]}


def page_text(page) -> str:
    return re.sub(r"\s+", " ", page.extract_text())


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    source = folder / "products.jsonl"
    source.write_bytes(b"\n".join([orjson.dumps(TABLE), b"{broken", orjson.dumps(CHAIR)]) + b"\n")
    path = folder / "products.pdf"
    done = subprocess.run(CLI + [str(source), "--report", str(path)], capture_output=True, check=True, timeout=180)
    assert len(done.stdout.splitlines()) == 3  # the answers still go to stdout, rejection included
    assert b"2 page(s) for 2 product(s), 1 line(s) rejected" in done.stderr
    return path


def test_one_page_per_answered_product_with_its_figures(report: Path):
    reader = PdfReader(report)
    assert len(reader.pages) == 2
    table, chair = (page_text(page) for page in reader.pages)
    assert "TABLE-OAK-1" in table and "CHAIR-STEEL-2" not in table
    for figure in ("73.21", "62.50", "50.00 (unconfirmed)", "1 120 000.00", "800 000.00", "300 000.00",
                   "буковая доска", "RU (foreign)", "KZ (domestic)"):
        assert figure in table, figure
    assert "To qualify" not in table
    for figure in ("64.29", "40.00", "1 008 000.00", "600 000.00", "To qualify under the formula in force",
                   "300 030.00", "59 970.00"):
        assert figure in chair, figure
    # the verdicts, row by row: eligible under EXW, not under the production cost
    assert "Eligible yes no" in chair and "Eligible yes yes" in table
    for page in reader.pages:
        assert len(page.images) == 1  # the chart


def test_the_page_renders_and_is_not_blank(report: Path, tmp_path: Path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed; the text test above still reads the PDF")
    from PIL import Image

    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "2", "-l", "2", str(report), str(tmp_path / "page")],
                   check=True, timeout=60)
    (png,) = tmp_path.glob("page*.png")
    with Image.open(png) as image:
        assert image.width < image.height  # A4 portrait
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    # the in-force bar's blue and the threshold's red are on the page, not just black text on white
    assert any(b > r + 60 and b > g + 20 for _, (r, g, b) in colours)
    assert any(r > g + 60 and r > b + 60 for _, (r, g, b) in colours)


def test_library_writes_the_same_report_and_an_empty_one(tmp_path: Path):
    products = [(TABLE, assess(TABLE)), (CHAIR, assess(CHAIR))]
    assert write_report(products, tmp_path / "two.pdf") == 2
    assert write_report([], tmp_path / "none.pdf") == 1
    assert "No product was answered" in page_text(PdfReader(tmp_path / "none.pdf").pages[0])


def test_a_product_without_threshold_and_many_materials_still_fits(tmp_path: Path):
    many = dict(TABLE, product_type="spacecraft",
                materials=[{"name": f"imported component no. {i}", "origin": "DE", "cost": "100.00"} for i in range(40)])
    answer = assess(many)
    assert answer["schema"] == "local-content/1"
    assert write_report([(many, answer)], tmp_path / "many.pdf") == 1
    text = page_text(PdfReader(tmp_path / "many.pdf").pages[0])
    assert "none known" in text and "and 30 more" in text and "n/a (no threshold)" in text


def test_an_extreme_product_spills_over_but_is_never_cut_off(tmp_path: Path):
    extreme = dict(TABLE, product_id="X" * 128, product_type="p" * 100,
                   materials=[{"name": "ж" * 200, "origin": "DE", "cost": "100.00"}] * 1000)
    answer = assess(extreme)
    assert write_report([(extreme, answer)], tmp_path / "extreme.pdf") <= 2
    text = " ".join(page_text(page) for page in PdfReader(tmp_path / "extreme.pdf").pages)
    assert "and 990 more" in text and answer["explanation"][-15:] in text
