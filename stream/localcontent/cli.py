"""`customs-stream local-content`: local-content requests (JSON lines) in, one answer per line out."""
from __future__ import annotations

import sys
from typing import BinaryIO, Iterable

import click
import orjson

from stream.contracts.reasons import rejection
from stream.contracts.validate import parse_json_line
from stream.localcontent.contract import ref_of
from stream.localcontent.rules import LocalContentRules, RulesError, load_rules
from stream.localcontent.share import assess


def answer_line(raw: bytes, rules: LocalContentRules) -> tuple[object, dict]:
    """(the parsed document or None, its answer) for one input line; never raises."""
    doc = parse_json_line(raw)
    if isinstance(doc, tuple):
        return None, rejection(None, *doc)
    try:
        return doc, assess(doc, rules)
    except Exception as exc:  # a defect must cost one answer, not the rest of the input
        print(f"local-content: internal error on a request ({type(exc).__name__})", file=sys.stderr)
        return doc, rejection(ref_of(doc), "internal_error", "the system failed on this request; it is logged")


def answer_lines(lines: Iterable[bytes], out: BinaryIO, rules: LocalContentRules,
                 keep: list | None = None) -> dict[str, int]:
    """Write one answer per non-blank input line, in order; with ``keep``, collect the
    (request, answer) pairs that were answered (for the report)."""
    counts = {"documents": 0, "answers": 0, "rejections": 0}
    for raw in lines:
        if not raw.strip():
            continue
        doc, answer = answer_line(raw, rules)
        out.write(orjson.dumps(answer) + b"\n")
        counts["documents"] += 1
        if answer["schema"] == "rejection/1":
            counts["rejections"] += 1
        else:
            counts["answers"] += 1
            if keep is not None:
                keep.append((doc, answer))
    out.flush()
    return counts


@click.command("local-content")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--rules", "rules_dir", type=click.Path(exists=True, file_okay=False),
              envvar="CUSTOMS_LOCAL_CONTENT_RULES",
              help="Directory with replacement rule files (formulas.csv, vat.csv, thresholds.csv; each one "
                   "present replaces the shipped file). Default: $CUSTOMS_LOCAL_CONTENT_RULES, else the shipped rules.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write a PDF: one page per answered product, both formulas side by side.")
@click.option("-o", "--output", type=click.File("wb"), default="-", help="Where to write (default: stdout).")
def local_content(source, rules_dir, report_path, output):
    """Domestic-value share of products for CT-KZ (seed 003).

    Reads local-content-request/1 documents as JSON lines from SOURCE (a file, or - for stdin) and
    writes, in input order, one local-content/1 or rejection/1 JSON line per non-blank line: the
    share under the formula in force on calculated_on (EXW price until 2024-04-27, production cost
    from 2024-04-28, Order No. 169-NK), the other formula's share beside it, the threshold,
    eligibility, and what would qualify a product that falls short. Exit status 0 when the input
    was processed, rejections included.

    \b
    Example:
      customs-stream local-content products.jsonl --report products.pdf
    """
    try:
        rules = load_rules(rules_dir)
    except RulesError as exc:
        raise click.ClickException(str(exc)) from None
    products: list | None = [] if report_path else None
    counts = answer_lines(source, output, rules, keep=products)
    if report_path:
        from stream.localcontent.report import write_report

        try:
            pages = write_report(products, report_path)
        except OSError as exc:  # the answers are out already; say why the file is not
            raise click.ClickException(f"{report_path}: the report cannot be written ({exc.strerror or exc})") from None
        click.echo(f"{report_path}: {pages} page(s) for {counts['answers']} product(s), "
                   f"{counts['rejections']} line(s) rejected", err=True)
