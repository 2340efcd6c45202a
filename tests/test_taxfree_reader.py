"""The fast reader of taxfree.documents (stream/taxfree/reader.py) accepts only what the usual path
(orjson, then contracts.check per item) accepts, gives exactly the documents that path gives, and
hands everything else over; the agent's outcome is the same with it and without it."""
from __future__ import annotations

import copy
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream import _backend
from stream.taxfree import agents, contracts, reader, samples
from stream.taxfree.agents import DOCUMENTS, handle_bytes
from stream.taxfree.decide import Decider, Ledger
from stream.taxfree.rules import load
from tests.test_taxfree_contracts import REPLACEMENTS, fuzzed, paths, put

SELLER = samples.entity("123456789012")
DOCUMENT = samples.document("TF-2026-000123", SELLER)
PAPER = samples.document("TF-2026-000124", SELLER, form="paper")
needs_fast = pytest.mark.skipif(reader.read_documents is None, reason="pure-Python run: the fast reader is off")


def test_the_fast_reader_is_on_unless_pure_python_is_asked_for():
    if _backend.PURE_PYTHON:
        assert reader.read_documents is None
    else:
        assert reader.read_documents is not None, "the fast reader is off: is stream.contracts._feedscan built?"


def page(*docs) -> bytes:
    return orjson.dumps({"schema": "page/1", "items": list(docs)})


def usual(raw: bytes) -> list | None:
    """What the usual path keeps of a message when it accepts every document, else None."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    paged = isinstance(message, dict) and message.get("schema") == "page/1"
    items = message.get("items") if paged else [message]
    if not isinstance(items, list) or not items or len(items) > agents.MAX_PAGE_ITEMS:
        return None
    before = copy.deepcopy(items)
    if any(contracts.check(item, ("taxfree-document/1",)) is not None for item in items) or items != before:
        return None  # refused, or changed by the check (an integral float qty): not the fast path's to take
    return items


def agrees(raw: bytes) -> None:
    fast = reader.read_documents(raw) if reader.read_documents is not None else None
    if fast is not None:
        docs, paged = fast
        expected = usual(raw)
        assert expected is not None, raw
        assert orjson.dumps(docs) == orjson.dumps(expected)  # the same documents, key order and types included
        assert paged == (orjson.loads(raw).get("schema") == "page/1")


@needs_fast
@pytest.mark.parametrize("doc", [DOCUMENT, PAPER], ids=["electronic", "paper"])
def test_valid_documents_take_the_fast_path(doc):
    assert reader.read_documents(orjson.dumps(doc)) == ([doc], False)
    assert reader.read_documents(page(doc, PAPER)) == ([doc, PAPER], True)
    paper_without_qr = {k: v for k, v in PAPER.items() if k != "qr"}
    assert reader.read_documents(orjson.dumps(paper_without_qr)) == ([paper_without_qr], False)


def _text(doc) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


HAND_OVER = {
    "an unknown key": lambda t: t[:-1] + ',"x-note":"kept by the usual path"}',
    "an unknown key in a line": lambda t: t.replace('"qty":1', '"qty":1,"note":[1]', 1),
    "a repeated key": lambda t: t[:-1] + ',"document_id":"TF-OTHER"}',
    "a repeated key in the passport": lambda t: t.replace('"country":"DE"', '"country":"DE","country":"KZ"', 1),
    "an escaped key": lambda t: t.replace('"lines"', '"line\\u0073"', 1),
    "an integral float qty": lambda t: t.replace('"qty":1', '"qty":1.0', 1),
    "a float price": lambda t: t.replace('"price":"', '"price":1.5,"p":"', 1),
    "an impossible day": lambda t: t.replace("2026-08-15T14:20", "2026-02-30T14:20", 1),
    "a lower-case passport": lambda t: t.replace('"P00000001"', '"p00000001"', 1),
    "an amount with one decimal": lambda t: t.replace('.00"', '.0"', 1),
    "an electronic form without its QR": lambda t: t.replace('"qr":"', '"x":"', 1),
    "a QR that is no JWS": lambda t: t.replace('"qr":"', '"qr":"..', 1),
    "leading whitespace": lambda t: " " + t,
    "a page with an envelope member": lambda t: '{"schema":"page/1","page_id":"P-1","items":[' + t + "]}",
    "a page with a document of another contract": lambda t: '{"schema":"page/1","items":[' + t + ',{"schema":"x"}]}',
    "an empty page": lambda t: '{"schema":"page/1","items":[]}',
}


@needs_fast
@pytest.mark.parametrize("what", sorted(HAND_OVER))
def test_what_the_fast_reader_cannot_vouch_for_goes_to_the_usual_path(what):
    doc = samples.document("TF-2026-000125", SELLER, passport="P00000001")
    original = _text(doc)
    text = HAND_OVER[what](original)
    assert text != original
    raw = text.encode()
    assert reader.read_documents(raw) is None
    if text.startswith('{"schema":"taxfree-document/1"'):  # the same document within a page
        assert reader.read_documents(b'{"schema":"page/1","items":[' + raw + b"]}") is None


@pytest.mark.parametrize("doc", [DOCUMENT, PAPER], ids=["electronic", "paper"])
def test_every_mutation_agrees(doc):
    for path, _ in list(paths(doc)):
        if path == ("schema",):
            continue
        for value in REPLACEMENTS:
            mutated = put(doc, path, value)
            agrees(orjson.dumps(mutated))
            agrees(page(doc, mutated))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([DOCUMENT, PAPER]), st.data())
def test_fuzzed_documents_agree(doc, data):
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


def _outcomes(raw: bytes, key: bytes | None, monkeypatch, fast: bool):
    monkeypatch.setattr(agents, "read_documents", reader.read_documents if fast else None)
    decider = Decider(load(), samples.keyset(SELLER), b"k" * 32)
    ledger = Ledger()
    out = []
    for _ in range(2):  # the second time: a redelivery against what the first recorded
        outcome = handle_bytes(decider, ledger, DOCUMENTS, key, raw, 0.0)
        out.append(orjson.dumps([outcome.body, outcome.decisions, outcome.rejections, outcome.claims]))
        if outcome.body is not None:
            ledger.apply(outcome.body)
    return out


@pytest.mark.parametrize("case", ["page", "one document", "wrong key", "swapped QR", "receipt twice"])
def test_the_agent_decides_the_same_with_and_without_the_fast_reader(case, monkeypatch):
    other = samples.entity("123456789099")
    docs = [samples.document(f"TF-2026-{i:06d}", SELLER, passport=f"P{i:08d}") for i in range(5)]
    key = None
    if case == "one document":
        raw, key = orjson.dumps(docs[0]), docs[0]["document_id"].encode()
    elif case == "wrong key":
        raw, key = orjson.dumps(docs[0]), b"TF-ELSE"
    elif case == "swapped QR":
        docs[1]["qr"] = samples.qr_for(docs[2], SELLER)
        docs[3]["qr"] = samples.qr_for(docs[3], other)
        raw = page(*docs)
    elif case == "receipt twice":
        docs[4]["receipts"] = docs[0]["receipts"]
        docs[4]["qr"] = samples.qr_for(docs[4], SELLER)
        raw = page(*docs)
    else:
        raw = page(*docs)
    if reader.read_documents is not None:
        assert reader.read_documents(raw) is not None  # these cases are the fast path's
    assert _outcomes(raw, key, monkeypatch, fast=True) == _outcomes(raw, key, monkeypatch, fast=False)



# -- the compiled patterns and pair count (ext/feedscan.pyx, kind 3) against their twins -----------

try:
    import stream.contracts._feedscan as scan_compiled
except ImportError:  # pure-Python runs; the guard test above fails where it must be built
    scan_compiled = None
from stream.contracts import _feedscan_py as scan_twin  # noqa: E402

needs_scan = pytest.mark.skipif(scan_compiled is None, reason="compiled scan not built")
TAXFREE_KINDS = ["passport", "card", "amount", "jws", "id", "bin", "country", "timestamp", "date"]
pattern_values = st.one_of(
    st.sampled_from([v for v in REPLACEMENTS if isinstance(v, str)] + ["0.00", "00.00", "1.001", "a.b.", ".a.b",
                                                                         "a..b", "a.b.c.d", "ABC1", "abc1", "A" * 21,
                                                                         "tok_" + "x" * 197, "tok:x.y-z", "Ж" * 5]),
    st.from_regex(r"[0-9.]{0,16}", fullmatch=True), st.from_regex(r"[A-Za-z0-9_.:=+/ -]{0,30}", fullmatch=True),
    st.text(max_size=30), st.integers(), st.none(),
)


@needs_scan
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(TAXFREE_KINDS), value=pattern_values)
def test_compiled_patterns_equal_the_contract_regexes(kind, value):
    assert scan_compiled.match(kind, value) == scan_twin.match(kind, value), (kind, value)
    if kind == "timestamp" and isinstance(value, str):  # the tax-free contract's own timestamp check
        assert scan_compiled.match(kind, value) == contracts.timestamp_ok(value)


@needs_scan
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([DOCUMENT, PAPER]), st.data())
def test_compiled_pair_count_equals_its_twin(doc, data):
    mutated = fuzzed(doc, data, least=0, most=2)
    try:
        raw = orjson.dumps(mutated)
    except TypeError:
        return
    try:
        expected = scan_twin.taxfree_document_pairs(mutated)
    except (AttributeError, TypeError, KeyError):  # shapes msgspec never lets through
        return
    assert scan_compiled.taxfree_document_pairs(mutated) == expected
    assert scan_compiled.vouch(raw, [mutated], reader.DOCUMENT_KIND, 0) == scan_twin.vouch(raw, [mutated], 3, 0)
