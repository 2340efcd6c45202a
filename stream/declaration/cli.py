"""`customs-stream assess`: assessment requests (JSON lines) in, assessments or rejections out."""
from __future__ import annotations

import sys
from typing import BinaryIO, Iterable, Iterator

import click
import orjson

from stream._gc import gc_paused
from stream.contracts.reasons import rejection
from stream.contracts.validate import parse_json_line
from stream.declaration.engine import Assessor
from stream.runtime.pages import page_items

BATCH_DOCUMENTS = 8192


def documents(lines: Iterable[bytes]) -> Iterator[dict | tuple[str, str]]:
    """Each input document, in order: a dict to assess, or (reason, detail) for one that failed
    before it could be read. A `page/1` line yields its items one by one; blank lines are skipped."""
    for raw in lines:
        if not raw.strip():
            continue
        doc = parse_json_line(raw)
        if isinstance(doc, tuple):
            yield doc
            continue
        items = page_items(doc)
        if isinstance(items, tuple):
            yield items
        else:
            yield from items  # each item stands or falls on its own


def assess_stream(lines: Iterable[bytes], out: BinaryIO, assessor: Assessor, *, batch: int = BATCH_DOCUMENTS,
                  progress=None) -> dict[str, int]:
    """Assess every document of ``lines`` and write one JSON line per document to ``out``."""
    counts = {"documents": 0, "assessments": 0, "rejections": 0}
    slots: list[dict | None] = []
    to_assess: list = []
    positions: list[int] = []

    def flush():
        for position, result in zip(positions, assessor.assess(to_assess)):
            slots[position] = result
        out.write(b"".join(orjson.dumps(result) + b"\n" for result in slots))
        assessed = sum(1 for result in slots if result["schema"] == "assessment/1")
        counts["assessments"] += assessed
        counts["rejections"] += len(slots) - assessed
        counts["documents"] += len(slots)
        if progress is not None:
            progress.update(len(slots))
        slots.clear()
        to_assess.clear()
        positions.clear()

    with gc_paused():
        for doc in documents(lines):
            if isinstance(doc, tuple):
                slots.append(rejection(None, *doc))
            else:
                positions.append(len(slots))
                slots.append(None)
                to_assess.append(doc)
            if len(slots) >= batch:
                flush()
        if slots:
            flush()
    out.flush()
    return counts


@click.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--tariff", type=click.Path(exists=True, dir_okay=False), help="Tariff CSV (default: shipped, or $CUSTOMS_TARIFF).")
@click.option("--fx", type=click.Path(exists=True, dir_okay=False), help="Exchange-rate CSV (default: shipped, or $CUSTOMS_FX).")
@click.option("--rule-sets", type=click.Path(exists=True, dir_okay=False), help="Rule-set JSON (default: shipped, or $CUSTOMS_RULE_SETS).")
@click.option("-o", "--output", type=click.File("wb"), default="-", help="Where to write (default: stdout).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when stderr is a terminal).")
def assess(source, tariff, fx, rule_sets, output, progress):
    """Assess orders offline.

    Reads assessment-request/1 documents as JSON lines from SOURCE (a file, or - for stdin; a line
    may also be a page/1 of documents) and writes, in input order, one assessment/1 or rejection/1
    JSON line per document. Exit status 0 when the input was processed, rejections included.

    \b
    Example:
      customs-stream assess requests.jsonl > assessments.jsonl
    """
    from stream import settings as settings_module
    from stream.rules import load_rules

    rules = load_rules(settings_module.load(), tariff=tariff, fx=fx, rule_sets=rule_sets)
    show = sys.stderr.isatty() if progress is None else progress
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(unit=" docs", file=sys.stderr, desc="assessing")
    try:
        counts = assess_stream(source, output, Assessor(rules), progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if show:
        click.echo(f"{counts['documents']} documents: {counts['assessments']} assessed, "
                   f"{counts['rejections']} rejected", err=True)
