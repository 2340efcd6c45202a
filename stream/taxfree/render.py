"""The tax-free form drawn with its QR code: PDF (fpdf2) or PNG (Pillow).

The form carries what the Order lists (serial number and date; the trading entity's name, BIN and
address; receipt numbers and dates; goods, quantities, prices with VAT and the VAT; the VAT
compensation after the operator's commission; the buyer's passport, name and issuing state; the
card, masked to its last 4; the QR). The QR is the document's signed JWS (segno encodes it, error
correction M), or the bare document id on a paper form without one.
"""
from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import segno

from stream.money import format_kzt, parse_tiyn, percent_of
from stream.taxfree.decide import kz_date
from stream.taxfree.pii import mask


def _font_file() -> str | None:
    """A Unicode TrueType font (addresses are often Cyrillic): matplotlib's bundled DejaVu Sans."""
    try:
        import matplotlib
    except ImportError:
        return None
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return str(path) if path.exists() else None


def qr_text(doc: dict) -> str:
    return doc.get("qr") or doc["document_id"]


def qr_png(text: str, scale: int = 4) -> bytes:
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def form_lines(doc: dict, commission_pct: Decimal) -> list[tuple[str, str]]:
    """(label, value) rows of the form, in the Order's order."""
    vat = sum(parse_tiyn(line["vat"]) for line in doc["lines"])
    total = sum(parse_tiyn(line["price"]) for line in doc["lines"])
    entity, buyer = doc["trading_entity"], doc["buyer"]
    rows = [
        ("Tax free document", f"{doc['document_id']} ({doc['form']}), {kz_date(doc['issued_at']).isoformat()}"),
        ("Trading entity", f"{entity['name']}, BIN {entity['bin']}"),
        ("Address", entity["address"]),
    ]
    for receipt in doc["receipts"]:
        rows.append(("Cash register receipt", f"{receipt['number']}, {kz_date(receipt['issued_at']).isoformat()}"))
    for line in doc["lines"]:
        rows.append((f"{line['description']} x {line['qty']}",
                     f"{format_kzt(parse_tiyn(line['price']))} KZT incl. VAT {format_kzt(parse_tiyn(line['vat']))}"))
    rows += [
        ("Total incl. VAT", f"{format_kzt(total)} KZT"),
        ("VAT", f"{format_kzt(vat)} KZT"),
        ("VAT compensation", f"{format_kzt(vat - percent_of(vat, commission_pct))} KZT "
                             f"(after the operator's commission of {commission_pct}%)"),
        ("Passport", f"{buyer['passport']['number']}, issued {buyer['passport']['issued_on']}"),
        ("Issuing state", buyer["passport"]["country"]),
        ("Buyer (Latin letters)", buyer["name"]),
        ("Bank card", mask(buyer["card_token"])),
    ]
    return rows


def render_pdf(doc: dict, commission_pct: Decimal) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    font = _font_file()
    if font:
        pdf.add_font("DejaVu", fname=font)
        pdf.set_font("DejaVu", size=10)
    else:
        pdf.set_font("Helvetica", size=10)

    def text(value: str) -> str:
        return value if font else value.encode("latin-1", "replace").decode("latin-1")

    pdf.set_font_size(16)
    pdf.cell(0, 10, text("TAX FREE - VAT compensation (pilot, MinFin Order No. 363)"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font_size(10)
    for label, value in form_lines(doc, commission_pct):
        pdf.cell(55, 7, text(label))
        pdf.multi_cell(0, 7, text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.image(io.BytesIO(qr_png(qr_text(doc), scale=8)), w=70)
    pdf.cell(0, 6, text("Scan at the customs inspection zone of the airport."), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def render_png(doc: dict, commission_pct: Decimal) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    rows = form_lines(doc, commission_pct)
    qr = Image.open(io.BytesIO(qr_png(qr_text(doc), scale=6))).convert("RGB")
    font_file = _font_file()
    font = ImageFont.truetype(font_file, 18) if font_file else ImageFont.load_default()
    title = ImageFont.truetype(font_file, 26) if font_file else font
    line_height = 28
    width = max(1100, qr.width + 80)
    height = 100 + line_height * len(rows) + qr.height + 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 30), "TAX FREE - VAT compensation", fill="black", font=title)
    y = 90
    for label, value in rows:
        draw.text((40, y), label, fill="black", font=font)
        draw.text((330, y), value, fill="black", font=font)
        y += line_height
    image.paste(qr, (40, y + 20))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
