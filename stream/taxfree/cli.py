"""`customs-stream taxfree ...`: decide offline, keys and signed QR codes, rendering, API tokens,
and the operator's invoices and monthly report."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import click
import orjson


def _fail(message: str):
    raise click.ClickException(message)


def _date(ctx, param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date") from None


@click.group()
def taxfree():
    """Tax-free VAT refunds for foreign buyers (MinFin Order No. 363): documents, export
    confirmations at the airport, refund decisions, signed QR codes and the operator's duties."""


@taxfree.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--as-of", "as_of", required=True, callback=_date, help="Decide as of this date (YYYY-MM-DD): "
              "documents still unconfirmed after their validity are refused.")
@click.option("--commission-pct", help="The operator's commission in percent (at most 20; default: the rules file).")
@click.option("--keys", "keys", type=click.Path(dir_okay=False), help="JWKS of the trading entities' QR keys "
              "(default: $CUSTOMS_TAXFREE_JWKS, else taxfree/jwks.json under $CUSTOMS_DATA_DIR).")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False), help="Rules JSON (default: shipped, or $CUSTOMS_TAXFREE_RULES).")
@click.option("-o", "--output", type=click.File("wb"), default="-", help="Where to write (default: stdout).")
def decide(source, as_of, commission_pct, keys, rules, output):
    """Decide tax-free documents offline.

    Reads taxfree-document/1, taxfree-confirmation/1 and taxfree-cancellation/1 as JSON lines in time
    order; writes a rejection/1 line for each input that cannot be applied, then one
    taxfree-decision/1 per document in the order of their first appearance, as of --as-of.
    """
    from stream.taxfree.agents import build_decider
    from stream.taxfree.offline import decide_lines
    from stream.taxfree.qr import KeyError_
    from stream.taxfree.rules import RulesError

    try:
        decider = build_decider(commission_pct, rules, keys)
    except (RulesError, KeyError_) as exc:
        _fail(str(exc))
    for result in decide_lines(source, decider, as_of):
        output.write(orjson.dumps(result) + b"\n")
    output.flush()


@taxfree.command()
@click.option("--bin", "bin_", required=True, help="The trading entity's BIN (12 digits).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Directory for the private key "
              "(default: taxfree/keys under $CUSTOMS_DATA_DIR).")
@click.option("--jwks", type=click.Path(dir_okay=False), help="JWKS file to add the public key to "
              "(default: $CUSTOMS_TAXFREE_JWKS, else taxfree/jwks.json under $CUSTOMS_DATA_DIR).")
def keys(bin_, out_dir, jwks):
    """Make an Ed25519 key pair for a trading entity: the private key (PEM, mode 0600) that signs its
    QR codes, and its public key added to the JWKS the operator verifies with."""
    from stream.taxfree.qr import KeyError_, new_key_pair
    from stream.taxfree.secrets_store import default_jwks, taxfree_dir

    try:
        key_file, kid = new_key_pair(bin_, Path(out_dir) if out_dir else taxfree_dir() / "keys",
                                     Path(jwks) if jwks else default_jwks())
    except (KeyError_, ValueError) as exc:
        _fail(str(exc))
    click.echo(orjson.dumps({"kid": kid, "private_key": str(key_file),
                             "jwks": str(Path(jwks) if jwks else default_jwks())}).decode())


@taxfree.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The trading entity's private key (from `taxfree keys`).")
@click.option("-o", "--output", type=click.File("wb"), default="-")
def sign(source, key_file, output):
    """Add the signed QR (JWS, EdDSA) to taxfree-document/1 lines: what the trading entity's till does."""
    from stream.contracts.reasons import rejection
    from stream.money import format_tiyn, parse_tiyn
    from stream.taxfree import contracts
    from stream.taxfree.qr import kid_of, load_private_key, payload_of
    from stream.taxfree.qr import sign as sign_payload

    key, kid = load_private_key(key_file), kid_of(key_file)
    for raw in source:
        if not raw.strip():
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            doc["qr"] = "unsigned.qr.placeholder"  # the document must be valid once it carries its QR
        problem = contracts.check(doc, ("taxfree-document/1",))
        if problem is not None:
            output.write(orjson.dumps(rejection(contracts.ref_of(doc), *problem)) + b"\n")
            continue
        vat = format_tiyn(sum(parse_tiyn(line["vat"]) for line in doc["lines"]))
        doc["qr"] = sign_payload(payload_of(doc, vat), key, kid)
        output.write(orjson.dumps(doc) + b"\n")
    output.flush()


@taxfree.command()
@click.argument("document", type=click.File("rb"))
@click.option("--pdf", "kind", flag_value="pdf", help="Draw the form as PDF.")
@click.option("--png", "kind", flag_value="png", help="Draw the form as PNG.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (default: DOCUMENT_ID.pdf/.png).")
@click.option("--commission-pct", help="The operator's commission shown on the form (default: the rules file).")
def render(document, kind, output, commission_pct):
    """Draw a taxfree-document/1 (a JSON file, or - for stdin) as the tax-free form with its QR code."""
    from stream.taxfree import contracts
    from stream.taxfree import rules as rules_module
    from stream.taxfree.decide import kz_date
    from stream.taxfree.render import render_pdf, render_png

    if kind is None:
        raise click.UsageError("say --pdf or --png")
    doc = contracts.parse(document.read(), ("taxfree-document/1",))
    if isinstance(doc, tuple):
        _fail(f"not a valid taxfree-document/1: {doc[0]}: {doc[1]}")
    try:
        rules = rules_module.load(commission_override=commission_pct)
    except rules_module.RulesError as exc:
        _fail(str(exc))
    pct = rules.commission_pct.at(min(kz_date(r["issued_at"]) for r in doc["receipts"]))
    if pct is None:
        _fail("no commission rate in force on the receipt date; see the rules file")
    data = (render_pdf if kind == "pdf" else render_png)(doc, pct)
    path = Path(output or f"{doc['document_id'].replace('/', '_')}.{kind}")
    path.write_bytes(data)
    click.echo(str(path))


@taxfree.command()
@click.option("--role", required=True, type=click.Choice(["buyer", "trading_entity", "official", "operator"]))
@click.option("--subject", required=True, help="buyer: passport COUNTRY:NUMBER; trading_entity: BIN; official: id.")
@click.option("--ttl", default=900, show_default=True, type=click.IntRange(1, 7 * 24 * 3600), help="Seconds.")
def token(role, subject, ttl):
    """Issue an API token (JWT) with the configured key and algorithm (CUSTOMS_TAXFREE_JWT_*)."""
    from stream.taxfree.access import ConfigError, TokenConfig

    try:
        click.echo(TokenConfig.from_env(issuing=True).issue(role, subject, ttl))
    except ConfigError as exc:
        _fail(str(exc))


def _finals(clickhouse: str | None, decisions, first, last):
    from stream.settings import env
    from stream.taxfree.operator import finals_from_clickhouse, finals_from_decisions

    if decisions is not None:
        return finals_from_decisions(orjson.loads(line) for line in decisions if line.strip())
    url = clickhouse or env("CLICKHOUSE_URL")
    if not url:
        _fail("no ClickHouse: pass --clickhouse URL (or set CLICKHOUSE_URL), or --decisions FILE")
    try:
        return finals_from_clickhouse(url, first, last)
    except Exception as exc:  # connection refused, unknown table, ...: say which, not a traceback
        _fail(f"cannot read the decisions from ClickHouse ({url}): {type(exc).__name__}: {str(exc)[:300]}")


_SOURCE_OPTIONS = [
    click.option("--clickhouse", help="clickhouse://host:port/database (default: $CLICKHOUSE_URL)."),
    click.option("--decisions", type=click.File("rb"), help="Read taxfree-decision/1 JSON lines instead of ClickHouse."),
]


def _sources(command):
    for option in reversed(_SOURCE_OPTIONS):
        command = option(command)
    return command


@taxfree.command()
@click.option("--quarter", required=True, help="The quarter, e.g. 2026Q3.")
@_sources
def invoices(quarter, clickhouse, decisions):
    """The operator's quarterly invoices to trading entities (taxfree-invoice/1 lines): the VAT confirmed
    for compensation, issued on the quarter's last day, payable within 3 working days."""
    from stream.audit.calendar import CalendarError
    from stream.taxfree.operator import invoices as make_invoices
    from stream.taxfree.operator import quarter_range

    try:
        first, last = quarter_range(quarter)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--quarter") from None
    try:
        result = make_invoices(_finals(clickhouse, decisions, first, last), quarter)
    except CalendarError as exc:
        _fail(str(exc))
    for invoice in result:
        click.echo(orjson.dumps(invoice).decode())


@taxfree.command()
@click.option("--month", required=True, help="The reporting month, e.g. 2026-08.")
@_sources
def report(month, clickhouse, decisions):
    """The operator's monthly report to the State Revenue authority (taxfree-report/1), due by the 15th."""
    from stream.taxfree.operator import month_range
    from stream.taxfree.operator import report as make_report

    try:
        first, last = month_range(month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    click.echo(orjson.dumps(make_report(_finals(clickhouse, decisions, first, last), month)).decode())
