"""`taxfree render`: the form is drawn with its QR, and a real decoder (zxing-cpp) reads the QR back
from the PNG and from the rasterised PDF; the decoded JWS verifies with the entity's key."""
from __future__ import annotations

import io
import json

import orjson
import pypdfium2
import zxingcpp
from click.testing import CliRunner
from PIL import Image

from stream.cli import main
from stream.taxfree import samples

SELLER = samples.entity("123456789012")
KEYS = samples.keyset(SELLER)


def decoded(image: Image.Image) -> str:
    results = zxingcpp.read_barcodes(image)
    qr = [r for r in results if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(qr) == 1, results
    return qr[0].text


def render(tmp_path, doc, kind):
    source = tmp_path / "doc.json"
    source.write_bytes(orjson.dumps(doc))
    out = tmp_path / f"form.{kind}"
    result = CliRunner().invoke(main, ["taxfree", "render", str(source), f"--{kind}", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_png_qr_decodes_and_verifies(tmp_path):
    doc = samples.document("TF-2026-000123", SELLER)
    png = render(tmp_path, doc, "png")
    text = decoded(Image.open(io.BytesIO(png)))
    assert text == doc["qr"]
    payload = KEYS.verify(text, SELLER.bin)
    assert payload == {"document_id": "TF-2026-000123", "bin": SELLER.bin, "issued_at": doc["issued_at"],
                       "vat": "16551.72", "receipts": ["FMU-TF-2026-000123"]}


def test_pdf_qr_decodes_and_verifies(tmp_path):
    doc = samples.document("TF-2026-000777", SELLER, lines=[samples.line("50000.00"), samples.line("70000.00")])
    pdf = render(tmp_path, doc, "pdf")
    assert pdf.startswith(b"%PDF")
    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=200 / 72).to_pil()
    text = decoded(image)
    assert text == doc["qr"] and KEYS.verify(text, SELLER.bin)["vat"] == "16551.72"
    # a swapped QR is refused: the decoded token does not verify for another entity
    assert KEYS.verify(text, "987654321098") is None


def test_paper_form_without_qr_carries_the_document_id(tmp_path):
    doc = samples.document("TF-P-1", SELLER, form="paper")
    assert decoded(Image.open(io.BytesIO(render(tmp_path, doc, "png")))) == "TF-P-1"


def test_render_refuses_an_invalid_document(tmp_path):
    doc = samples.document("TF-1", SELLER)
    doc["lines"][0]["price"] = 120000.0
    source = tmp_path / "doc.json"
    source.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["taxfree", "render", str(source), "--png"])
    assert result.exit_code != 0 and "wrong_type" in result.output and "lines[0].price" in result.output
    result = CliRunner().invoke(main, ["taxfree", "render", str(source)])
    assert result.exit_code != 0 and "--pdf or --png" in result.output


def test_keys_sign_decide_round_trip(tmp_path, monkeypatch):
    """`taxfree keys` makes an entity's key pair, `taxfree sign` adds the QR, `taxfree decide` verifies it."""
    monkeypatch.setenv("CUSTOMS_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["taxfree", "keys", "--bin", "123456789012"])
    assert result.exit_code == 0, result.output
    made = json.loads(result.output)
    assert made["kid"].startswith("123456789012/")
    assert (tmp_path / "taxfree" / "jwks.json").exists()
    import os
    assert os.stat(made["private_key"]).st_mode & 0o077 == 0
    jwks = json.loads((tmp_path / "taxfree" / "jwks.json").read_text())
    assert [k["kid"] for k in jwks["keys"]] == [made["kid"]] and "d" not in jwks["keys"][0]
    unsigned = samples.document("TF-9", SELLER)
    del unsigned["qr"]
    signed = CliRunner().invoke(main, ["taxfree", "sign", "-", "--key", made["private_key"]],
                                input=orjson.dumps(unsigned) + b"\n")
    assert signed.exit_code == 0, signed.output
    doc = json.loads(signed.output)
    confirmation = samples.confirmation(doc)
    decided = CliRunner().invoke(main, ["taxfree", "decide", "-", "--as-of", "2026-09-01"],
                                 input=signed.output.encode() + orjson.dumps(confirmation) + b"\n")
    assert json.loads(decided.output)["decision"] == "refund", decided.output
    # the sample key (same BIN, not in this JWKS) does not verify: qr_mismatch
    decided = CliRunner().invoke(main, ["taxfree", "decide", "-", "--as-of", "2026-09-01"],
                                 input=orjson.dumps(samples.document("TF-9", SELLER)) + b"\n")
    assert json.loads(decided.output)["reasons"] == ["qr_mismatch"]
    bad = CliRunner().invoke(main, ["taxfree", "keys", "--bin", "12345"])
    assert bad.exit_code != 0 and "12 digits" in bad.output
