"""`customs-stream classify`: HS codes for goods descriptions, one JSON line per input line."""
from __future__ import annotations

from itertools import islice

import click
import orjson

BATCH_LINES = 10_000


@click.command()
@click.argument("source", type=click.File("r", encoding="utf-8", errors="replace"), default="-")
@click.option("--category", default=None, metavar="NAME",
              help="Marketplace category of every line (apparel, electronics, cosmetics, toys, footwear, "
                   "bags, home, kitchen, jewellery, watches, sports, auto, tools, pets, baby, ...): "
                   "adds prior weight to plausible headings.")
@click.option("--evaluate", "evaluate_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Instead of classifying, report accuracy on a labelled TSV "
                   "(header: heading, category, title) as one JSON object.")
def classify(source, category, evaluate_path):
    """Classify goods descriptions into HS codes.

    Reads SOURCE (a file, or - for standard input, the default), one description per line, and
    writes one JSON line per description:

        {"description": "...", "hs_code": "610910", "confidence": 0.873}

    Confidence is 0..1 (three decimals); under LOW_CONFIDENCE_PERMILLE / 1000 the engine sends the
    line to manual review, and 0 means no keyword matched at all.
    """
    from . import Classifier, evaluate

    classifier = Classifier.load()
    output = click.get_binary_stream("stdout")
    if evaluate_path is not None:
        report = evaluate(evaluate_path, classifier)
        output.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        output.flush()
        return
    while True:
        lines = [line.rstrip("\r\n") for line in islice(source, BATCH_LINES)]
        if not lines:
            break
        categories = [category] * len(lines) if category else None
        codes, confidence = classifier.classify_batch(lines, categories)
        output.write(b"".join(
            orjson.dumps({"description": line, "hs_code": code,
                          # permille as a 3-decimal number; a float is fine here, it is no money
                          "confidence": permille / 1000})
            + b"\n"
            for line, code, permille in zip(lines, codes, confidence.tolist())
        ))
    output.flush()
