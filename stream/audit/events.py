"""The audit contracts at the boundary: `audit-event/1` in (validated exactly as schemas/audit-event-1.json),
the selected `risk-score/1` that opens a case by itself, and the typed `Event` the case logic works on.

Amounts become integer tiyn here and dates become `datetime.date`; nothing past this module sees a
decimal string or a float. Details name the field and the problem, never a free-text value (findings
may quote a declaration).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import orjson

from stream.contracts import registry
from stream.contracts.validate import _date_check, _fields, _id_check, _kind, _show, _text, _wrong, parse_json_line
from stream.money import parse_tiyn

EVENT_SCHEMA = "audit-event/1"
CASE_SCHEMA = "audit-case/1"
RISK_SCORE_SCHEMA = "risk-score/1"
KINDS = ("opened", "notification_delivered", "paid", "explanation_received", "explanation_accepted",
         "explanation_rejected")
MAX_FINDINGS = 4000

_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,12})(?:\.[0-9]{1,2})?").fullmatch
_ZERO = re.compile(r"0(?:\.0{1,2})?").fullmatch
_TWELVE_DIGITS = re.compile(r"[0-9]{12}").search

Problem = tuple[str, str]


def _amount(v) -> Problem | None:
    if not isinstance(v, str):
        return _wrong(v, "a KZT decimal string")
    if _AMOUNT(v) is None or "\n" in v:
        return ("invalid_number", f": {_show(v)} is not a KZT amount (a decimal string, at most 13 integer digits "
                                  "and 2 decimals, no sign)")
    return None


def _payment(v) -> Problem | None:
    problem = _amount(v)
    if problem is None and _ZERO(v) is not None:
        return ("out_of_range", ": a payment must be more than 0")
    return problem


def _event_kind(v) -> Problem | None:
    if isinstance(v, str) and v in KINDS:
        return None
    return ("unknown_event_kind", f": {_show(v)} is none of {', '.join(KINDS)}")


def _findings(v) -> Problem | None:
    # the value is never echoed: findings can quote a declaration's text
    if not isinstance(v, str):
        return ("wrong_type", f": expected a string, got {_kind(v)}")
    if not 1 <= len(v) <= MAX_FINDINGS:
        return ("invalid_text", f": must be 1 to {MAX_FINDINGS} characters long, has {len(v)}")
    if _TWELVE_DIGITS(v) is not None:
        return ("invalid_text", ": must not quote an IIN or BIN (a run of 12 digits); name the declaration line")
    return None


_EVENT = (
    ("case_id", _id_check(cache=False), True),
    ("kind", _event_kind, True),
    ("on", _date_check(), True),
    ("event_id", _id_check(cache=False), False),
    ("declaration_id", _id_check(cache=False), False),
    ("findings", _findings, False),
    ("additional_accruals", _amount, False),
    ("amount", _payment, False),
)
_REQUIRED_BY_KIND = {"opened": ("declaration_id", "findings", "additional_accruals"), "paid": ("amount",)}


def validate_event(doc: object) -> Problem | None:
    """None when ``doc`` is a valid `audit-event/1`, else (reason, detail) naming the field."""
    if not isinstance(doc, dict):
        return ("not_an_object", f"expected a JSON object, got {_kind(doc)}")
    if doc.get("schema") != EVENT_SCHEMA:
        return ("unknown_schema", f"schema: {_show(doc.get('schema'))} is not {EVENT_SCHEMA!r}")
    problem = _fields(doc, _EVENT)
    if problem is not None:
        return problem
    for key in _REQUIRED_BY_KIND.get(doc["kind"], ()):
        if key not in doc:
            return ("missing_field", f"{key}: required for kind {doc['kind']!r}")
    return None


registry.register(EVENT_SCHEMA, validate_event, ref_field="case_id", domain="audit", schema_file="audit-event-1.json")


@dataclass(frozen=True)
class Event:
    """One valid audit event, typed."""
    case_id: str
    kind: str
    on: dt.date
    dedupe_key: str           # event_id when given, else a digest of the whole document
    digest: str               # content digest: the same event_id with other content is a conflict
    declaration_id: str | None = None
    findings: str | None = None
    accruals: int | None = None  # tiyn
    amount: int | None = None    # tiyn
    source: str = "officer"
    risk: dict | None = None


def content_digest(doc: dict) -> str:
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def event_of(doc: dict) -> Event:
    """The `Event` of a document that `validate_event` accepted."""
    digest = content_digest(doc)
    return Event(
        case_id=doc["case_id"], kind=doc["kind"], on=dt.date.fromisoformat(doc["on"]),
        dedupe_key=doc.get("event_id") or f"digest:{digest}", digest=digest,
        declaration_id=doc.get("declaration_id"), findings=doc.get("findings"),
        accruals=parse_tiyn(doc["additional_accruals"]) if "additional_accruals" in doc else None,
        amount=parse_tiyn(doc["amount"]) if "amount" in doc else None,
    )


def parse_event(raw: bytes | None) -> Event | tuple[str | None, str, str]:
    """An `Event`, or (ref, reason, detail) for a message that is not a valid audit-event/1."""
    if raw is None:
        return (None, "malformed_json", "empty message (a tombstone) on audit.events")
    doc = parse_json_line(raw)
    if isinstance(doc, tuple):
        return (None, *doc)
    ref = doc.get("case_id") if isinstance(doc.get("case_id"), str) else None
    problem = validate_event(doc)
    if problem is not None:
        return (ref, *problem)
    return event_of(doc)


# -- a selected risk score opens a case by itself -----------------------------------------------

_SELECTED = ("risk", "random")
_KZT = re.compile(r"(?:0|[1-9][0-9]{0,17})\.[0-9]{2}").fullmatch
_check_id = _id_check(cache=False)


def _findings_of_hits(hits: list) -> str:
    parts = []
    for hit in hits[:20]:
        if isinstance(hit, dict) and isinstance(hit.get("indicator"), str):
            line = hit.get("line")
            where = f" (line {line})" if isinstance(line, int) and not isinstance(line, bool) else ""
            amount = hit.get("revenue_at_risk")
            money = f": {amount} KZT at risk" if isinstance(amount, str) and _KZT(amount) else ""
            parts.append(f"{hit['indicator'][:40]}{where}{money}")
    text = "risk selection; " + ("; ".join(parts) if parts else "no indicator fired (random selection)")
    return text[:MAX_FINDINGS]


def selection_of(doc: object, on: dt.date) -> Event | None | tuple[str | None, str, str]:
    """The `opened` event of a selected `risk-score/1` (dated ``on``, today in Kazakhstan), None for a
    score that was not selected, or (ref, reason, detail) for a document the case agent cannot use.
    Only the fields a case needs are checked; the risk agent's own contract is its schema's business."""
    if not isinstance(doc, dict):
        return (None, "not_an_object", f"expected a JSON object, got {_kind(doc)}")
    ref = doc.get("declaration_id") if isinstance(doc.get("declaration_id"), str) else None
    if doc.get("schema") != RISK_SCORE_SCHEMA:
        return (ref, "unknown_schema", f"schema: {_show(doc.get('schema'))} is not {RISK_SCORE_SCHEMA!r}")
    selected = doc.get("selected", None)
    if selected is None:
        return None
    if selected not in _SELECTED or not isinstance(selected, str):
        return (ref, "wrong_type", f"selected: {_show(selected)} is none of 'risk', 'random', null")
    problem = _fields(doc, (("declaration_id", _check_id, True),
                            ("revenue_at_risk", _kzt, True),
                            ("score", _score, True),
                            ("profile", _text(1, 128), True)))
    if problem is not None:
        return (ref, *problem)
    from stream.audit.ids import case_id_for
    hits = doc.get("hits") if isinstance(doc.get("hits"), list) else []
    risk = {"score": doc["score"], "profile": doc["profile"], "selected": selected}
    identity = {"declaration_id": doc["declaration_id"], "revenue_at_risk": doc["revenue_at_risk"],
                "profile": doc["profile"], "selected": selected}
    digest = content_digest(identity)
    return Event(case_id=case_id_for(doc["declaration_id"]), kind="opened", on=on,
                 dedupe_key=f"risk:{digest}", digest=digest, declaration_id=doc["declaration_id"],
                 findings=_findings_of_hits(hits), accruals=parse_tiyn(doc["revenue_at_risk"]),
                 source="risk", risk=risk)


def _kzt(v) -> Problem | None:
    if isinstance(v, str):
        return None if _KZT(v) else ("invalid_number", f": {_show(v)} is not a KZT amount with two decimals")
    return _wrong(v, "a KZT decimal string")


def _score(v) -> Problem | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _wrong(v, "a number")
    if 0 <= v <= 1:
        return None
    return ("out_of_range", f": {_show(v)} is outside 0..1")
