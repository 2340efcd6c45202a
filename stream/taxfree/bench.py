"""`customs-stream bench taxfree`: tax-free documents decided per second on one worker, as JSON.

What one worker does per input message, in-process: the runtime's call into the domain
(`TaxfreeDomain.handle`: parse and validate the bytes, verify the QR's Ed25519 signature, check the
line VAT and the rules, decide), applying the record body to the partition state, and serialising the
record body as the changelog would. The broker and Faust's per-message overhead are not in it (see
`bench e2e` for the transport floor). Documents are electronic (one signature check each); with
--confirm every document is then confirmed at an airport (a second message, and its refund).
"""
from __future__ import annotations

import time

import click
import orjson


def inputs(documents: int, confirm: bool) -> tuple[list[tuple[str, bytes, bytes]], object]:
    from stream.taxfree import samples
    from stream.taxfree.agents import CONFIRMATIONS, DOCUMENTS

    sellers = [samples.entity(f"1234567890{n:02d}", seed="bench") for n in range(10)]
    messages = []
    confirmations = []
    for i in range(documents):
        doc = samples.document(f"TF-B{i:08d}", sellers[i % 10], passport=f"P{i:08d}",
                               lines=[samples.line(f"{90000 + i % 50000}.00")])
        key = doc["document_id"].encode()
        messages.append((DOCUMENTS, key, orjson.dumps(doc)))
        if confirm:
            confirmations.append((CONFIRMATIONS, key, orjson.dumps(samples.confirmation(doc))))
    return messages + confirmations, samples.keyset(*sellers)


def run(documents: int, confirm: bool, repeat: int) -> dict:
    from stream.taxfree.agents import TaxfreeDomain
    from stream.taxfree.decide import Decider
    from stream.taxfree.rules import load

    messages, keys = inputs(documents, confirm)
    best = None
    for _ in range(repeat):
        domain = TaxfreeDomain(Decider(load(), keys, b"b" * 32))
        state = domain.new_state(0)
        decisions = 0
        started = time.perf_counter()
        for topic, key, value in messages:
            effects = domain.handle(state, topic, key, value, 0.0)
            if effects.body is not None:
                orjson.dumps(effects.body)  # what the runtime writes to the changelog
                state.apply(effects.body)
            decisions += len(effects.outputs.get("taxfree.decisions", ()))
        seconds = time.perf_counter() - started
        if best is None or seconds < best[0]:
            best = (seconds, decisions, domain)
    seconds, decisions, domain = best
    refunds = sum(1 for r in domain.ledgers[0].docs.values() if r["decision"]["decision"] == "refund")
    return {
        "benchmark": "taxfree", "documents": documents, "messages": len(messages), "confirmed": confirm,
        "signature_checks": documents, "decisions": decisions, "refunds": refunds, "seconds": round(seconds, 4),
        "documents_per_second": round(documents / seconds), "messages_per_second": round(len(messages) / seconds),
        "repeat": repeat, "scope": "one worker in-process: domain.handle + state.apply + record serialisation",
    }


@click.command()
@click.option("--documents", default=20000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--confirm/--no-confirm", default=True, show_default=True,
              help="Confirm every document at an airport too (a second message and its refund).")
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(1, 20), help="Best of N runs.")
def taxfree_bench_command(documents, confirm, repeat):
    """Tax-free documents decided per second on one worker (signature checks included), as JSON."""
    click.echo(orjson.dumps(run(documents, confirm, repeat), option=orjson.OPT_INDENT_2).decode())
