"""The fast reader of risk.declarations (stream/audit/risk_reader.py) accepts only what the usual path (orjson,
then validate_declaration_v2 per item) accepts, gives exactly the declarations that path gives, and hands
everything else over; the risk agent's outcome is the same with it and without it."""
from __future__ import annotations

import copy
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream import _backend
from stream.audit import risk_agent, risk_reader
from stream.audit.risk_agent import RiskDomain
from stream.audit.risk_score import RiskState, Scorer
from stream.contracts.validate import MAX_PAGE_ITEMS, parse_json_line
from stream.declaration.engine import Assessor
from stream.declaration.v2 import DeclarationBuilder, Source, validate_declaration_v2
from stream.rules import load_rules
from stream.runtime.topics import RISK_DECLARATIONS
from tests.test_taxfree_contracts import REPLACEMENTS, fuzzed, paths, put

read = risk_reader.read_declarations
needs_fast = pytest.mark.skipif(read is None, reason="pure-Python run: the fast reader is off")


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor(load_rules())


@pytest.fixture(scope="module")
def declarations(assessor) -> list[dict]:
    from stream.loadgen import RiskFeedConfig, risk_feed

    docs = [doc for doc, _ in risk_feed(RiskFeedConfig(declarations=400, seed=5, days=3), assessor)]
    answers = assessor.assess(docs)
    return DeclarationBuilder(assessor.classifier, b"reader-test").build_many(
        [Source(a, d, d.get("warehouse_id"), d["operator_bin"]) for a, d in zip(answers, docs)
         if a["schema"] == "assessment/1"])


@pytest.fixture(scope="module")
def samples(declarations) -> list[dict]:
    """A warehouse declaration with a classifier's code, a parcel without a warehouse, one with flags."""
    classified = next(d for d in declarations if any("hs_classified" in line for line in d["lines"]))
    parcel = next(d for d in declarations if d["warehouse_id"] is None)
    several = next(d for d in declarations if len(d["lines"]) > 1)
    return [classified, parcel, {**several, "flags": ["low_confidence_classification"], "marketplace": None,
                                 "buyer_ref": None}]


def test_the_fast_reader_is_on_unless_pure_python_is_asked_for():
    if _backend.PURE_PYTHON:
        assert read is None
    else:
        assert read is not None, "the fast reader is off: is stream.contracts._feedscan built?"


def page(*docs) -> bytes:
    return orjson.dumps({"schema": "page/1", "items": list(docs)})


def usual(raw: bytes) -> list | None:
    """What the usual path keeps of a message when it accepts every declaration, else None."""
    message = parse_json_line(raw)
    if isinstance(message, tuple):
        return None
    paged = message.get("schema") == "page/1"
    items = message.get("items") if paged else [message]
    if not isinstance(items, list) or not items or len(items) > MAX_PAGE_ITEMS:
        return None
    if any(type(item) is not dict for item in items):  # not an object, or an item naming a key twice
        return None
    before = copy.deepcopy(items)
    if any(validate_declaration_v2(item) is not None for item in items) or items != before:
        return None  # refused, or changed by the check (an integral float qty): not the fast path's to take
    return items


def agrees(raw: bytes) -> bool:
    """Whether the fast path took the message (and then gave what the usual path keeps)."""
    fast = read(raw) if read is not None else None
    if fast is not None:
        docs, paged = fast
        expected = usual(raw)
        assert expected is not None, raw
        assert orjson.dumps(docs) == orjson.dumps(expected)  # the same declarations, key order and types included
        assert paged == (orjson.loads(raw).get("schema") == "page/1")
    return fast is not None


@needs_fast
def test_valid_declarations_take_the_fast_path(declarations, samples):
    for doc in samples:
        assert read(orjson.dumps(doc)) == ([doc], False)
    assert read(page(*declarations)) == (declarations, True)


def _text(doc) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


HAND_OVER = {
    "an unknown key": lambda t: t[:-1] + ',"x-note":"kept by the usual path"}',
    "an unknown key in a line": lambda t: t.replace('"qty":', '"note":[1],"qty":', 1),
    "a repeated key": lambda t: t[:-1] + ',"declaration_id":"D-OTHER"}',
    "a repeated key in the rates": lambda t: t.replace('"fx":{', '"fx":{"EUR":"1.00",', 1),
    "an escaped key": lambda t: t.replace('"lines"', '"line\\u0073"', 1),
    "an integral float qty": lambda t: t.replace('"qty":1', '"qty":1.0', 1),
    "an amount as a number": lambda t: t.replace('"total":"', '"total":1.5,"t":"', 1),
    "an impossible day": lambda t: t.replace('"declared_at":"2026-09-0', '"declared_at":"2026-02-3', 1),
    "a rate of an unknown shape": lambda t: t.replace('"fx":{', '"fx":{"eur":"1.00",', 1),
    "a classifier's code without its confidence": lambda t: t.replace(',"confidence":', ',"c":', 1),
    "a code of three digits": lambda t: t.replace('"hs_code":"', '"hs_code":"123","h":"', 1),
    "an upper-case buyer_ref": lambda t: t.replace('"buyer_ref":"', '"buyer_ref":"A', 1)[:-1] + "}",
    "a declaration/1": lambda t: t.replace('"schema":"declaration/2"', '"schema":"declaration/1"', 1),
    "leading whitespace": lambda t: " " + t,
    "a page with an envelope member": lambda t: '{"schema":"page/1","page_id":"P-1","items":[' + t + "]}",
    "a page with an assessment/1": lambda t: '{"schema":"page/1","items":[' + t + ',{"schema":"assessment/1"}]}',
    "an empty page": lambda t: '{"schema":"page/1","items":[]}',
}


@needs_fast
@pytest.mark.parametrize("what", sorted(HAND_OVER))
def test_what_the_fast_reader_cannot_vouch_for_goes_to_the_usual_path(what, samples):
    original = _text(samples[0])
    text = HAND_OVER[what](original)
    assert text != original
    raw = text.encode()
    assert read(raw) is None
    if text.startswith('{"schema":"declaration'):  # the same declaration within a page
        assert read(b'{"schema":"page/1","items":[' + raw + b"]}") is None


EXTRA = [0.5, 1, 0, 1.5, "0.00", "1234567890123456789.00", "123456789012345678.00", "12345", "1234567890",
         "12345678901", "a" * 64, "g" * 64, "0.1234567", "12345678901.5", "123456789012.5"]


def test_every_mutation_agrees(samples):
    taken = tried = 0
    for doc in samples:
        for path, _ in list(paths(doc)):
            if path == ("schema",):
                continue
            for value in REPLACEMENTS + EXTRA:
                mutated = put(doc, path, value)
                taken += agrees(orjson.dumps(mutated))
                agrees(page(doc, mutated))
                tried += 1
    assert tried > 3000
    if read is not None:
        assert 300 < taken < tried / 2  # many a mutation is still valid (and the fast path's), most are not


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([0, 1, 2]), st.data())
def test_fuzzed_declarations_agree(samples, which, data):
    doc = samples[which]
    mutated = fuzzed(doc, data)
    try:
        raw = orjson.dumps(mutated)
    except TypeError:
        return
    agrees(raw)
    agrees(page(doc, mutated, doc))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw):
    agrees(raw)


# -- the agent: the same outcome with the reader and without it ------------------------------------------------

def _outcomes(assessor, messages: list[bytes], monkeypatch, fast: bool) -> list:
    monkeypatch.setattr(risk_agent, "read_declarations", read if fast else None)
    domain, state, out = RiskDomain(Scorer(assessor)), RiskState(), []
    for raw in messages:
        effects = domain.handle(state, RISK_DECLARATIONS, None, raw, 0.0)
        out.append(copy.deepcopy((effects.outputs, effects.body, effects.counts)))
        if effects.body is not None:
            state.apply(effects.body)
    out.append(orjson.dumps(state.snapshot()))
    return out


def test_the_agent_scores_the_same_with_and_without_the_fast_reader(assessor, declarations, monkeypatch):
    changed = {**declarations[5], "total": "1.00"}  # the same id, other content: conflicting_duplicate
    messages = [page(*declarations[i:i + 60]) for i in range(0, len(declarations), 60)]
    messages += [orjson.dumps(declarations[7]),  # a redelivery, alone
                 orjson.dumps(changed), page(changed, declarations[8]),
                 page({**declarations[9], "declaration_id": "D-NEW-1", "declared_at": "1999-01-01"})]  # no rule set then
    if read is not None:
        assert all(read(m) is not None for m in messages)  # these are the fast path's
    outcomes = _outcomes(assessor, messages, monkeypatch, True)
    assert outcomes == _outcomes(assessor, messages, monkeypatch, False)
    rejected = [orjson.loads(v)["reason"] for outputs, _, _ in outcomes[:-1] for _, v in outputs.get("rejections", [])]
    assert rejected.count("conflicting_duplicate") == 2
    assert sum(len(outputs.get("risk.hits", [])) for outputs, _, _ in outcomes[:-1]) > 10


# -- the compiled patterns and pair count (ext/feedscan.pyx, kind 4) against their twins -----------------------

try:
    import stream.contracts._feedscan as scan_compiled
except ImportError:  # pure-Python runs; the guard test above fails where it must be built
    scan_compiled = None
from stream.contracts import _feedscan_py as scan_twin  # noqa: E402

needs_scan = pytest.mark.skipif(scan_compiled is None, reason="compiled scan not built")
pattern_values = st.one_of(
    st.sampled_from([v for v in REPLACEMENTS + EXTRA if isinstance(v, str)] + ["0.00", "00.00", "1.0", "1.000",
                                                                                "0" * 64, "f" * 63, "ABC"]),
    st.from_regex(r"[0-9.]{0,22}", fullmatch=True), st.from_regex(r"[0-9a-gA-F]{62,65}", fullmatch=True),
    st.text(max_size=30), st.integers(), st.none(),
)


@needs_scan
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["kzt", "tariff", "weight", "buyer_ref", "amount"]), value=pattern_values)
def test_compiled_patterns_equal_the_contract_regexes(kind, value):
    assert scan_compiled.match(kind, value) == scan_twin.match(kind, value), (kind, value)


@needs_scan
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([0, 1, 2]), st.data())
def test_compiled_pair_count_equals_its_twin(samples, which, data):
    mutated = fuzzed(samples[which], data, least=0, most=2)
    try:
        raw = orjson.dumps(mutated)
    except TypeError:
        return
    try:
        expected = scan_twin.declaration_pairs(mutated)
    except (AttributeError, TypeError, KeyError):  # shapes msgspec never lets through
        return
    assert scan_compiled.declaration_pairs(mutated) == expected
    kind = risk_reader.DECLARATION_KIND
    assert scan_compiled.vouch(raw, [mutated], kind, 0) == scan_twin.vouch(raw, [mutated], kind, 0)
