"""The manufacturer's file: one PDF page per product comparing its share under both formulas.

Each page has the figures as a table (both formulas side by side, the EXW price built up, the
threshold and eligibility), a bar chart of the two shares against the threshold, and the answer's
own explanation. The chart is drawn by matplotlib (its object API, no pyplot global state) and the
page laid out by fpdf2 (pure Python, maintained, tables and Unicode TrueType fonts built in); the
font is matplotlib's own DejaVu Sans, so Cyrillic names render without any system font. Every figure
printed is the answer's exact decimal string; the chart's bar heights are the only floats, and they
are geometry, not money.
"""
from __future__ import annotations

import io
from pathlib import Path

from stream.localcontent.contract import DOMESTIC
from stream.money import format_kzt, format_tiyn, parse_tiyn

FORMULA_TITLES = {"exw": "EXW price formula", "production_cost": "Production-cost formula"}
MATERIALS_SHOWN = 10
NAME_SHOWN = 40  # characters of a material's name: a long one must not push the page over
_IN_FORCE = "#1f5fa8"
_OTHER = "#a9b8c8"
_LINE = "#c0392b"


def _yes_no(value: bool | None) -> str:
    return "n/a (no threshold)" if value is None else ("yes" if value else "no")


def _chart_png(answer: dict) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [FORMULA_TITLES["exw"], FORMULA_TITLES["production_cost"]]
    shares = [answer["share_exw_pct"], answer["share_production_cost_pct"]]
    colours = [_IN_FORCE if answer["formula"] == name else _OTHER for name in ("exw", "production_cost")]
    figure = Figure(figsize=(6.4, 2.3), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    bars = axes.barh(labels, [float(share) for share in shares], color=colours, height=0.55)
    for bar, share in zip(bars, shares):
        axes.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, f"{share}%", va="center", fontsize=9)
    if answer["threshold_pct"] is not None:
        axes.axvline(float(answer["threshold_pct"]), color=_LINE, linestyle="--", linewidth=1.5)
        axes.text(float(answer["threshold_pct"]) + 1, 1.5, f"threshold {answer['threshold_pct']}%", color=_LINE,
                  ha="left", fontsize=8)
    axes.set_xlim(0, 112)
    axes.set_ylim(-0.6, 1.7)
    axes.set_xlabel("share of domestic value, %  (dark: the formula in force)", fontsize=9)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _font_paths() -> tuple[Path, Path]:
    import matplotlib

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return fonts / "DejaVuSans.ttf", fonts / "DejaVuSans-Bold.ttf"


def _page(pdf, request: dict, answer: dict) -> None:
    from fpdf.enums import XPos, YPos

    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 8, f"Local content (CT-KZ): {answer['product_id']}", new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_font("DejaVu", "", 10)
    in_force = FORMULA_TITLES[answer["formula"]].lower()
    pdf.multi_cell(0, 5.5, f"Product type {answer['product_type']}; calculated on {answer['calculated_on']}; "
                           f"formula in force: {in_force} (rule {answer['rules']['formula']})",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.ln(2)

    threshold = "none known" if answer["threshold_pct"] is None else (
        f"{answer['threshold_pct']} ({answer['threshold_status']})")
    rows = [
        ("", FORMULA_TITLES["exw"], FORMULA_TITLES["production_cost"]),
        ("In force on the date", _yes_no(answer["formula"] == "exw"), _yes_no(answer["formula"] == "production_cost")),
        ("Foreign materials, KZT", _kzt(answer["foreign_materials_cost"]), _kzt(answer["foreign_materials_cost"])),
        ("Denominator, KZT", _kzt(answer["exw_price"]), _kzt(answer["production_cost"])),
        ("Share of domestic value, %", answer["share_exw_pct"], answer["share_production_cost_pct"]),
        ("Threshold, %", threshold, threshold),
        ("Eligible", _yes_no(answer["eligible_exw"]), _yes_no(answer["eligible_production_cost"])),
    ]
    pdf.set_font("DejaVu", "", 9)
    with pdf.table(col_widths=(60, 65, 65), text_align=("LEFT", "RIGHT", "RIGHT"), line_height=6,
                   first_row_as_headings=True) as table:
        for row in rows:
            cells = table.row()
            for text in row:
                cells.cell(text)
    pdf.ln(3)

    vat = (f"VAT {answer['vat_pct']}%" if request["vat_payer"] else "VAT (not a VAT payer)")
    vat_amount = _minus(answer["exw_price"], request["production_cost"], request["margin"])
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(0, 6, "EXW price built up (KZT)", new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_font("DejaVu", "", 9)
    with pdf.table(col_widths=(60, 65), text_align=("LEFT", "RIGHT"), line_height=6, width=125, align="LEFT",
                   first_row_as_headings=False) as table:
        for label, amount in (("Production cost", answer["production_cost"]), ("Margin", request["margin"]),
                              (vat, vat_amount), ("EXW price", answer["exw_price"])):
            cells = table.row()
            cells.cell(label)
            cells.cell(_kzt(amount))
    pdf.ln(3)
    _materials(pdf, request["materials"])

    pdf.image(io.BytesIO(_chart_png(answer)), w=pdf.epw * 0.85, x=pdf.l_margin + pdf.epw * 0.075)
    pdf.ln(2)
    if answer["to_qualify"] is not None:
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(0, 5.5, f"To qualify under the formula in force: foreign materials at most "
                               f"{_kzt(answer['to_qualify']['max_foreign_materials_cost'])} KZT (replace at least "
                               f"{_kzt(answer['to_qualify']['min_domestic_substitution'])} KZT with domestic "
                               f"materials at the same cost).",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        pdf.ln(1)
    pdf.set_font("DejaVu", "", 8.5)
    pdf.multi_cell(0, 4.6, answer["explanation"], new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")


def _materials(pdf, materials: list[dict]) -> None:
    from fpdf.enums import XPos, YPos

    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(0, 6, f"Materials ({len(materials)})", new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_font("DejaVu", "", 9)
    if not materials:
        pdf.cell(0, 6, "none listed", new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        return
    with pdf.table(col_widths=(95, 35, 60), text_align=("LEFT", "LEFT", "RIGHT"), line_height=5.5) as table:
        heading = table.row()
        for text in ("Material", "Origin", "Cost, KZT"):
            heading.cell(text)
        for material in materials[:MATERIALS_SHOWN]:
            cells = table.row()
            name = material["name"]
            cells.cell(name if len(name) <= NAME_SHOWN else name[:NAME_SHOWN - 1] + "…")
            cells.cell(material["origin"] + (" (domestic)" if material["origin"] == DOMESTIC else " (foreign)"))
            cells.cell(_kzt(material["cost"]))
    if len(materials) > MATERIALS_SHOWN:
        pdf.cell(0, 5.5, f"... and {len(materials) - MATERIALS_SHOWN} more", new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.ln(3)


def _kzt(amount: str) -> str:
    """An amount as people read it: thousands grouped by spaces."""
    return format_kzt(parse_tiyn(amount))


def _minus(total: str, *parts: str) -> str:
    return format_tiyn(parse_tiyn(total) - sum(parse_tiyn(part) for part in parts))


def write_report(products: list[tuple[dict, dict]], path: str | Path) -> int:
    """Write the PDF for (request, local-content/1 answer) pairs; returns the number of pages."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    regular, bold = _font_paths()
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)  # an extreme product spills onto a second page, never off it
    pdf.set_title("Local content (CT-KZ): share of domestic value under both formulas")
    pdf.set_creator("customs-stream local-content")
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    for request, answer in products:
        _page(pdf, request, answer)
    if not products:
        pdf.add_page()
        pdf.set_font("DejaVu", "", 11)
        pdf.cell(0, 8, "No product was answered: every input line was rejected (see the JSON output).",
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.output(str(path))
    return pdf.pages_count
