"""`customs-stream risk`: the risk scorer offline (`risk score`), the twin of the risk agent."""
from __future__ import annotations

import sys

import click
import orjson

from stream.audit.risk_offline import OfflineScorer
from stream.audit.risk_profile import ProfileError, load_profiles


@click.group("risk")
def risk():
    """Risk scoring of declarations for post-release control (cameral audit).

    Scores learn price and weight indices per tariff code and origin from the declarations before them,
    so feed a history in time order. Indicators, the risk profile and revenue at risk: README, "Risk scoring".
    """


@risk.command("score")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--tariff", type=click.Path(exists=True, dir_okay=False), default=None,
              help="tariff CSV (default: CUSTOMS_TARIFF, else the shipped one)")
@click.option("--fx", type=click.Path(exists=True, dir_okay=False), default=None,
              help="exchange-rate CSV (default: CUSTOMS_FX, else the shipped one)")
@click.option("--profiles", type=click.Path(exists=True, dir_okay=False), default=None,
              help="risk profiles JSON (default: CUSTOMS_RISK_PROFILES, else the shipped one)")
def score_command(source, tariff, fx, profiles):
    """Score assessment-request/1 JSON lines from SOURCE (a file, or - for stdin), taken in time order.

    Each request is assessed, declared (declaration/2) and scored; one JSON line per input goes to
    stdout: a risk-score/1, or the rejection/1 the assessment (or the scorer) gave. Example:

        customs-stream risk score history.jsonl | jq 'select(.selected != null)'
    """
    from stream import settings
    from stream.declaration.engine import Assessor
    from stream.rules import load_rules

    try:
        risk_profiles = load_profiles(profiles)
        rules = load_rules(settings.load(), tariff=tariff, fx=fx)
    except (ProfileError, ValueError, OSError) as problem:
        raise click.ClickException(str(problem)) from None
    scorer = OfflineScorer(Assessor(rules), risk_profiles)
    out = sys.stdout.buffer
    for result in scorer.score_lines(source):
        out.write(orjson.dumps(result) + b"\n")
    out.flush()
