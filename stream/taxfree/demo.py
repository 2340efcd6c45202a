"""The tax-free step of `make demo`: three stores issue documents with signed QR codes, officials at
the airports confirm some (one at an airport outside the pilot, one refused), and the operator's
decisions and quarterly invoices follow. Offline, through the same decider as the agents."""
from __future__ import annotations

from datetime import date
from typing import Callable

import orjson

from stream.money import format_kzt, parse_tiyn
from stream.taxfree import samples
from stream.taxfree.decide import Decider
from stream.taxfree.offline import decide_lines
from stream.taxfree.operator import finals_from_decisions, invoices
from stream.taxfree.rules import load

AS_OF = date(2026, 12, 1)


def example_inputs() -> list[dict]:
    mall = samples.entity("123456789012", seed="demo", name="Mega Alma-Ata LLP", address="Almaty, Rozybakiev 247A")
    boutique = samples.entity("987654321098", seed="demo", name="Khan Shatyr Boutique", address="Astana, Turan 37")
    docs = [
        samples.document("TF-2026-000123", mall),                                                # refund
        samples.document("TF-2026-000124", boutique, passport="X12345678", country="FR",
                         lines=[samples.line("45000.00", description="Felt slippers", qty=2),
                                samples.line("60000.00", description="Silver bracelet")]),     # refund
        samples.document("TF-2026-000125", mall, passport="K98765432", country="KZ"),            # EAEU buyer
        samples.document("TF-2026-000126", boutique, passport="G55555555", country="GB",
                         lines=[samples.line("50000.00")]),                                       # below minimum
        samples.document("TF-2026-000127", mall, passport="U11111111", country="US"),            # not pilot airport
        samples.document("TF-2026-000128", boutique, passport="C22222222", country="CN"),        # export refused
        samples.document("TF-2026-000129", mall, passport="J33333333", country="JP"),            # never confirmed
    ]
    return docs + [
        samples.confirmation(docs[0], airport="ALA"),
        samples.confirmation(docs[1], at="2026-08-21T06:40:00+05:00", airport="NQZ"),
        samples.confirmation(docs[4], airport="GUW"),
        samples.confirmation(docs[5], outcome="refused", airport="ALA"),
    ]


def demo_step(echo: Callable[[str], object]) -> None:
    """Decide the example as of 2026-12-01 and print one line per document, then the invoices."""
    keys = samples.keyset(*[samples.entity(b, seed="demo") for b in ("123456789012", "987654321098")])
    decider = Decider(load(), keys, b"demo-pii-key-demo-pii-key")
    results = list(decide_lines([orjson.dumps(x) for x in example_inputs()], decider, AS_OF))
    decisions = [r for r in results if r["schema"] == "taxfree-decision/1"]
    echo("")
    echo(f"=== tax-free VAT refunds (MinFin Order No. 363): decisions as of {AS_OF} ===")
    echo(f"  {'document':<16}{'decision':<10}{'VAT':>12}{'commission':>12}{'refund':>12}  pay window / reasons")
    for d in decisions:
        tail = f"{d['pay_from']} .. {d['pay_by']}" if d["decision"] != "refusal" else ", ".join(d["reasons"])
        echo(f"  {d['document_id']:<16}{d['decision']:<10}{format_kzt(parse_tiyn(d['vat'])):>12}"
             f"{format_kzt(parse_tiyn(d['commission'])):>12}{format_kzt(parse_tiyn(d['refund'])):>12}  {tail}")
    for r in results:
        if r["schema"] == "rejection/1":
            echo(f"  rejected {r['ref']}: {r['reason']}")
    echo("  invoices for 2026Q3 (VAT the stores owe the operator, due 3 working days after the quarter):")
    for invoice in invoices(finals_from_decisions(decisions), "2026Q3"):
        echo(f"  {invoice['invoice_id']:<30}{invoice['documents']:>3} docs  VAT {invoice['vat_confirmed']:>10}  "
             f"commission {invoice['commission']:>9}  due by {invoice['due_by']}")
