"""`customs-stream assess`: assessment requests (JSON lines) in, assessments or rejections out."""
from __future__ import annotations

import sys
from typing import BinaryIO, Iterable, Iterator

import click
import orjson

from stream._gc import gc_paused
from stream.contracts.reader import Rejection, reader_for
from stream.contracts.reasons import rejection
from stream.declaration.engine import Assessor

BATCH_DOCUMENTS = 8192
_ASSESSMENT = b'{"schema":"assessment/1"'


def documents(lines: Iterable[bytes]) -> Iterator[dict | Rejection]:
    """Each input document, in order: a validated assessment-request/1 dict to assess, or the
    `Rejection` of one that is not (the reader's: stream/contracts/reader.py). A `page/1` line yields
    its items one by one; blank lines are skipped. A line that cannot be read at all (bad JSON, a
    bad page envelope) is one rejection with ref null."""
    read = reader_for("assessment-request/1", envelope_ref=False)
    for raw in lines:
        if not raw or raw.isspace():
            continue
        yield from read(raw)


def assess_stream(lines: Iterable[bytes], out: BinaryIO, assessor: Assessor, *, batch: int = BATCH_DOCUMENTS,
                  progress=None) -> dict[str, int]:
    """Assess every document of ``lines`` and write one JSON line per document to ``out``."""
    counts = {"documents": 0, "assessments": 0, "rejections": 0}
    slots: list[bytes | None] = []
    to_assess: list = []
    positions: list[int] = []
    dumps = orjson.dumps

    def flush():
        for position, result in zip(positions, assessor.assess_lines(to_assess, validated=True)):
            slots[position] = result
        out.write(b"".join(slots))
        assessed = sum(1 for result in slots if result.startswith(_ASSESSMENT))
        counts["assessments"] += assessed
        counts["rejections"] += len(slots) - assessed
        counts["documents"] += len(slots)
        if progress is not None:
            progress.update(len(slots))
        slots.clear()
        to_assess.clear()
        positions.clear()

    read = reader_for("assessment-request/1", envelope_ref=False)  # what `documents` yields, inlined
    with gc_paused():
        for raw in lines:
            if not raw or raw.isspace():
                continue
            for doc in read(raw):
                if doc.__class__ is Rejection:
                    slots.append(dumps(rejection(*doc)) + b"\n")
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
