"""declaration/2: an assessment plus what a post-release check needs (schemas/declaration-2.json).

`build_declarations` turns assessment/1 answers and the assessment-request/1 documents they answer
into declaration/2 documents; pure (no Kafka, no clock), so the warehouse worker, the parcel flow and
the offline risk scorer build the same document. The buyer leaves as `buyer_ref` only: an
HMAC-SHA256 of the IIN keyed with the operator's secret (setting CUSTOMS_BUYER_SECRET), so one
buyer's parcels can be linked (splitting) without the IIN or the name ever leaving the worker.

The classifier runs on every line (one batch call): its code is carried when it produced the code
used, or when its heading disagrees with the declared code, which is what the misclassification
indicator reads. `validate_declaration_v2` accepts exactly what the JSON Schema accepts
(tests/test_declaration_v2.py holds the two equal with jsonschema as the oracle).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import NamedTuple, Sequence

from stream.contracts import validate as _v
from stream.declaration import ids as _ids
from stream.declaration.ids import declaration_id
from stream.money import format_micro, micro
from stream.settings import env

SCHEMA = "declaration/2"
# The assessment/1 fields a declaration carries, in the order it carries them; anything else an
# assessment may hold (the worker extends it in place) is left out, so nothing unplanned leaks.
_ASSESSMENT_FIELDS = ("flow", "declared_at", "rule_set", "currency", "fx", "customs_value", "duty", "excise",
                      "vat", "total")
_LINE_FIELDS = ("sku", "hs_code", "hs_source", "value", "duty", "excise", "vat")


def buyer_secret() -> bytes:
    """The operator's key for buyer pseudonyms (CUSTOMS_BUYER_SECRET)."""
    return env("CUSTOMS_BUYER_SECRET").encode("utf-8")


def buyer_ref(iin: str, secret: bytes) -> str:
    """The keyed pseudonym of a buyer: HMAC-SHA256 of the IIN, lower-case hex."""
    return hmac.new(secret, iin.encode("utf-8"), hashlib.sha256).hexdigest()


def line_weight_kg(qty: int, unit_weight_kg: str) -> str:
    """qty x unit weight, exact, as the shortest decimal string (``2 x "0.180"`` -> ``"0.36"``)."""
    return format_micro(qty * micro(unit_weight_kg), 0)


class Source(NamedTuple):
    """One declaration to build: the assessor's answer, the request it answers, and where it was declared."""

    assessment: dict
    request: dict
    warehouse_id: str | None
    operator_bin: str
    marketplace: str | None = None  # default: the request's own marketplace


class DeclarationBuilder:
    """Builds declaration/2 documents with one classifier and one buyer secret."""

    def __init__(self, classifier=None, secret: bytes | None = None):
        self._classifier = classifier
        self.secret = buyer_secret() if secret is None else secret
        # the keyed hash set up once (copying it is cheaper than keying it again per buyer), and the
        # line weights of the (qty, unit weight) pairs seen: both are per-declaration costs on the hot path
        self._keyed = hmac.new(self.secret, digestmod=hashlib.sha256)
        self._weights: dict[tuple[int, str], str] = {}
        # for the compiled writer: HMAC-SHA256's inner and outer hashes keyed once (RFC 2104), and the
        # declaration-id hash seeded with its namespace (stream/declaration/ids.py)
        self._hashers = (*_hmac_pads(self.secret), _ids._SEEDED)

    def _buyer_ref(self, iin: str) -> str:
        keyed = self._keyed.copy()
        keyed.update(iin.encode("utf-8"))
        return keyed.hexdigest()

    def _weight(self, qty: int, unit_weight_kg: str) -> str:
        key = (qty, unit_weight_kg)
        found = self._weights.get(key)
        if found is None:
            if len(self._weights) >= 65536:
                self._weights.clear()
            found = self._weights[key] = line_weight_kg(qty, unit_weight_kg)
        return found

    @property
    def classifier(self):
        if self._classifier is None:
            from stream.classify import Classifier

            self._classifier = Classifier.load()
        return self._classifier

    def build(self, assessment: dict, request: dict, *, warehouse_id: str | None, operator_bin: str,
              marketplace: str | None = None) -> dict:
        return self.build_many([Source(assessment, request, warehouse_id, operator_bin, marketplace)])[0]

    def build_many(self, sources: Sequence[Source]) -> list[dict]:
        """One declaration/2 per source, in order. A source whose assessment is not an assessment/1 of
        its request (a rejection, another order, other lines) is a caller's error: ValueError."""
        codes, confidence = self._classified(sources)
        out = []
        at = 0
        for source in sources:
            count = len(source.request["lines"])
            out.append(self._declaration(source, codes[at:at + count], confidence[at:at + count]))
            at += count
        return out

    def _classified(self, sources: Sequence[Source]) -> tuple[list[str], list[int]]:
        """Each source checked against its request, then the classifier's code and confidence (permille)
        for every line of every source, in order: one batch for the page."""
        for source in sources:
            _check_pair(source.assessment, source.request)
        descriptions = [line["description"] for s in sources for line in s.request["lines"]]
        if not descriptions:
            return [], []
        categories = [line.get("category") for s in sources for line in s.request["lines"]]
        codes, permille = self.classifier.classify_batch(descriptions, categories)
        return list(codes), permille.tolist()

    def _head(self, source: Source) -> tuple:
        """What a declaration takes from its source besides the assessment and the request's lines."""
        assessment, request = source.assessment, source.request
        buyer = request.get("buyer")
        order_id = assessment["order_id"]
        return (order_id, declaration_id(order_id), source.warehouse_id, source.operator_bin,
                source.marketplace if source.marketplace is not None else request.get("marketplace"),
                # a request built from a pending order carries the pseudonym already (made with the same secret)
                self._buyer_ref(buyer["iin"]) if isinstance(buyer, dict) else request.get("buyer_ref"),
                request["ordered_at"])

    def _declaration(self, source: Source, codes: list[str], permille: list[int]) -> dict:
        return declaration_doc(self._head(source), source.assessment, source.request["lines"], codes, permille,
                               self._weight)

    def write_many(self, sources: Sequence[Source]) -> list[bytes]:
        """`build_many`, serialised: each document as ``orjson.dumps`` of its `build_many` dict gives
        it, byte for byte, written by the compiled writer (stream.warehouse._columns) or its twin."""
        codes, confidence = self._classified(sources)
        return _writer().declarations(list(sources), codes, confidence, self._weights, self._weight,
                                      self._head, self._hashers)


def _hmac_pads(secret: bytes):
    """HMAC-SHA256 of ``secret`` as two keyed hashes: ``outer.update(inner.update(m).digest())``."""
    key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
    key = key.ljust(64, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key)))


def _writer():
    from stream.warehouse.columns import kernel

    return kernel


def declaration_doc(head: tuple, assessment: dict, asked_lines: list, codes: list[str], permille: list[int],
                    weight) -> dict:
    """The declaration/2 document of ``head`` (order id, declaration id, warehouse, operator BIN,
    marketplace, buyer_ref, ordered_at), an assessment/1 and the request lines it answers, with the
    classifier's codes and confidences (permille) per line; ``weight(qty, unit_weight_kg)`` is the
    line weight. The compiled writer (ext/columns.pyx) writes ``orjson.dumps`` of this, byte for byte."""
    order_id, decl_id, warehouse_id, operator_bin, marketplace, ref, ordered_at = head
    doc = {
        "schema": SCHEMA,
        "order_id": order_id,
        "declaration_id": decl_id,
        "warehouse_id": warehouse_id,
        "operator_bin": operator_bin,
        "marketplace": marketplace,
        "buyer_ref": ref,
        "ordered_at": ordered_at,
    }
    for name in _ASSESSMENT_FIELDS:
        doc[name] = assessment[name]
    lines = []
    for assessed, asked, code, conf in zip(assessment["lines"], asked_lines, codes, permille):
        qty = int(asked["qty"])  # a JSON integer may arrive as 2.0
        line = {name: assessed[name] for name in _LINE_FIELDS}
        line["origin"] = asked["origin"]
        line["qty"] = qty
        line["weight_kg"] = weight(qty, asked["unit_weight_kg"])
        line["description"] = asked["description"]
        if assessed["hs_source"] == "classified" or assessed["hs_code"][:4] != code[:4]:
            line["hs_classified"] = code
            line["confidence"] = conf / 1000
        lines.append(line)
    doc["lines"] = lines
    doc["flags"] = list(assessment["flags"])
    return doc


def _check_pair(assessment: dict, request: dict) -> None:
    if not isinstance(assessment, dict) or assessment.get("schema") != "assessment/1":
        raise ValueError("a declaration is built from an assessment/1, not a rejection or another document")
    if assessment.get("order_id") != request.get("order_id"):
        raise ValueError("the assessment answers another order than the request")
    if len(assessment["lines"]) != len(request["lines"]):
        raise ValueError("the assessment and the request have different numbers of lines")


def build_declaration(assessment: dict, request: dict, *, warehouse_id: str | None, operator_bin: str,
                      marketplace: str | None = None, classifier=None, secret: bytes | None = None) -> dict:
    """One declaration/2 (see `DeclarationBuilder`; build many at once with `build_many` for speed)."""
    return DeclarationBuilder(classifier, secret).build(assessment, request, warehouse_id=warehouse_id,
                                                        operator_bin=operator_bin, marketplace=marketplace)


# -- validation, equal to schemas/declaration-2.json -------------------------------------------------

_BUYER_REF = re.compile(r"[0-9a-f]{64}").fullmatch
_WEIGHT = re.compile(r"(?:0|[1-9][0-9]{0,10})(?:\.[0-9]{1,6})?").fullmatch
_KZT = re.compile(r"(?:0|[1-9][0-9]{0,17})\.[0-9]{2}").fullmatch
_TARIFF_CODE = re.compile(r"[0-9]{4,10}").fullmatch

_id = _v._id_check()
_kzt = _v._pattern(_KZT, "invalid_number", "a decimal string", "is not a KZT amount with two decimals")
_tariff_code = _v._pattern(_TARIFF_CODE, "invalid_code", "a string", "is not a tariff code of 4 to 10 digits")
_weight = _v._pattern(_WEIGHT, "invalid_number", "a decimal string",
                      "is not a decimal string (non-negative, at most 11 integer digits and 6 decimals)")
_buyer_ref_pattern = _v._pattern(_BUYER_REF, "invalid_code", "a string", "is not 64 lower-case hex digits")
_currency = _v._currency_check()
_money = _v._money_check()


def _or_null(check):
    def nullable(v):
        return None if v is None else check(v)
    return nullable


def _const(value: str):
    def check(v):
        if isinstance(v, str) and v == value:
            return None
        return ("wrong_type", f": expected {value!r}, got {_v._show(v)}")
    return check


def _hs_source(v):
    if isinstance(v, str) and v in ("declared", "classified"):
        return None
    return ("wrong_type", f": {_v._show(v)} is neither 'declared' nor 'classified'")


def _confidence(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _v._wrong(v, "a number")
    if v < 0 or v > 1:  # written so a NaN passes, as in JSON Schema's minimum/maximum
        return ("out_of_range", f": {_v._show(v)} is outside 0..1")
    return None


def _fx(v):
    if not isinstance(v, dict):
        return _v._wrong(v, "an object")
    for currency, rate in v.items():
        r = _currency(currency)
        if r is not None:
            return (r[0], f"[{_v._show(currency)}]{r[1]}")
        r = _money(rate)
        if r is not None:
            return (r[0], f".{currency}{r[1]}")
    return None


def _flags(v):
    if not isinstance(v, list):
        return _v._wrong(v, "an array")
    for i, flag in enumerate(v):
        if not isinstance(flag, str) or not flag:
            return ("wrong_type", f"[{i}]: expected a non-empty string, got {_v._show(flag)}")
    return None


_LINE = (
    ("sku", _id, True),
    ("hs_code", _tariff_code, True),
    ("hs_source", _hs_source, True),
    ("value", _kzt, True),
    ("duty", _kzt, True),
    ("excise", _kzt, True),
    ("vat", _kzt, True),
    ("origin", _v._country_check(), True),
    ("qty", _v._qty, True),
    ("weight_kg", _weight, True),
    ("description", _v._description, True),
    ("hs_classified", _tariff_code, False),
    ("confidence", _confidence, False),
)
_line_fields = _v._lines(_LINE)


def _lines(v):
    r = _line_fields(v)
    if r is not None:
        return r
    for i, line in enumerate(v):
        if ("hs_classified" in line) != ("confidence" in line):
            missing = "confidence" if "hs_classified" in line else "hs_classified"
            return ("missing_field", f"[{i}].{missing}: required with hs_classified and confidence together")
    return None


_DECLARATION = (
    ("order_id", _v._id_check(cache=False), True),
    ("declaration_id", _v._id_check(cache=False), True),
    ("warehouse_id", _or_null(_id), True),
    ("operator_bin", _v._bin_check(), True),
    ("marketplace", _or_null(_v._marketplace), True),
    ("buyer_ref", _or_null(_buyer_ref_pattern), True),
    ("ordered_at", _v._timestamp_check(), True),
    ("flow", _v._flow, True),
    ("declared_at", _v._date_check(), True),
    ("rule_set", _id, True),
    ("currency", _const("KZT"), True),
    ("fx", _fx, True),
    ("customs_value", _kzt, True),
    ("duty", _kzt, True),
    ("excise", _kzt, True),
    ("vat", _kzt, True),
    ("total", _kzt, True),
    ("lines", _lines, True),
    ("flags", _flags, True),
)


def validate_declaration_v2(doc: object) -> tuple[str, str] | None:
    """Check a declaration/2 document: None, or (reason, detail) naming the field path."""
    return _v._validate_as(doc, SCHEMA, _DECLARATION)
