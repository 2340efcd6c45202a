"""The feed reader (stream/contracts/reader.py): the compiled fast path gives exactly what the pure path
gives (documents, rejections: reason, detail, ref) for every message, and accepts exactly what the JSON
Schemas accept; its compiled scan and pattern checks equal their twins."""
from __future__ import annotations

import copy
import importlib
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream import _backend
from stream.contracts import _feedscan_py as scan_twin
from stream.contracts import reader
from stream.contracts import validate as _v
from stream.contracts.reader import Rejection, read_message, read_pure
from tests.test_contracts import (BOUNDARY_STRINGS, FIELD_SITES, MANIFEST, NEAR, ORACLE, ORDER, REQUEST, _mutate,
                                  _with, json_trees, manifests, near_dates, near_timestamps, orders, requests)

try:
    scan_compiled = importlib.import_module("stream.contracts._feedscan")
except ImportError:  # the guard test below says why this must not happen outside pure-Python runs
    scan_compiled = None

needs_compiled = pytest.mark.skipif(scan_compiled is None or reader._FAST is None,
                                    reason="compiled reader not built (or pure-Python run)")
SCHEMAS = ("goods-manifest/1", "order/1", "assessment-request/1")
FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_compiled_reader_is_used_unless_pure_python_is_asked_for():
    if _backend.PURE_PYTHON:
        assert reader.backend() == "python" and reader._FAST is None
    else:
        assert scan_compiled is not None, "stream.contracts._feedscan is missing: run `make build`"
        assert reader.backend() == "compiled" and reader._FAST is not None
        assert _v._KEY_SCAN is not None, "parse_json_line should check for repeated keys with the compiled scan"


def same(got: list, expected: list) -> None:
    """Equal entry for entry, documents byte for byte (key order, int vs float) and rejections alike."""
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected):
        assert mine.__class__ is theirs.__class__, (mine, theirs)
        if mine.__class__ is Rejection:
            assert mine == theirs
        else:
            assert orjson.dumps(mine) == orjson.dumps(theirs)


def check(raw: bytes, schema: str) -> list:
    got = read_message(raw, schema)
    same(got, read_pure(raw, reader.ACCEPTS[schema]))
    for envelope_ref in (True, False):
        same(read_message(raw, schema, envelope_ref=envelope_ref),
             read_pure(raw, reader.ACCEPTS[schema], envelope_ref))
    return got


def fast_only(raw: bytes, schema: str) -> list | None:
    """What the fast path alone says (None: it hands the message to the pure path)."""
    return reader._FAST[schema](raw) if reader._FAST is not None else None


# -- the oracle: the reader accepts exactly what the schemas accept --------------------------------

@pytest.mark.parametrize("schema,strategy", [("goods-manifest/1", manifests), ("order/1", orders),
                                             ("assessment-request/1", requests)])
@FAST
@given(data=st.data())
def test_reader_agrees_with_the_schema(schema, strategy, data):
    doc = data.draw(strategy)
    for candidate in (doc, _mutate(doc, data)):
        try:
            raw = orjson.dumps(candidate)
        except TypeError:  # nothing orjson writes (e.g. an integer past 64 bits): not a message
            continue
        got = check(raw, schema)
        valid = ORACLE[schema].is_valid(json.loads(raw))
        assert (got[0].__class__ is not Rejection) == valid, (got, raw)
        page = check(b'{"schema":"page/1","items":[' + raw + b"," + orjson.dumps(doc) + b"]}", schema)
        assert (page[0].__class__ is not Rejection) == valid


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(site=st.sampled_from(FIELD_SITES), data=st.data())
def test_reader_agrees_field_by_field(site, data):
    """One field at a boundary value: the reader accepts iff the schema does, and says what the pure path says."""
    doc, path = site
    doc = _with(doc, path, data.draw(NEAR[path.rsplit(".", 1)[-1]]))
    try:
        raw = orjson.dumps(doc)
    except TypeError:
        return
    got = check(raw, doc["schema"])
    assert (got[0].__class__ is not Rejection) == ORACLE[doc["schema"]].is_valid(json.loads(raw))


@pytest.mark.parametrize("doc", [MANIFEST, ORDER, REQUEST], ids=["manifest", "order", "request"])
def test_valid_examples_take_the_fast_path(doc):
    raw = orjson.dumps(doc)
    if reader._FAST is not None:
        assert fast_only(raw, doc["schema"]) == [doc]
        assert fast_only(b'{"schema":"page/1","items":[' + raw + b"]}", doc["schema"]) == [doc]
    assert check(raw, doc["schema"]) == [doc]


# -- what the fast path must hand over to the pure path -------------------------------------------

def _texts(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


HAND_OVER = {
    "a repeated key": lambda t: t[:-1] + ',"order_id":"OTHER-1"}',
    "a repeated key inside a line": lambda t: t.replace('"qty":2', '"qty":2,"qty":3', 1),
    "an unknown key": lambda t: t[:-1] + ',"x-note":"kept by the pure path"}',
    "an unknown key in a line": lambda t: t.replace('"qty":2', '"qty":2,"note":{"a":[1,{"b":2}]}', 1),
    "an escaped key": lambda t: t.replace('"lines"', '"line\\u0073"', 1),
    "an integral float": lambda t: t.replace('"qty":2', '"qty":2.0', 1),
    "a float": lambda t: t.replace('"qty":2', '"qty":2.5', 1),
    "a big integer": lambda t: t.replace('"qty":2', '"qty":100000000000000000000000', 1),
    "a null buyer": lambda t: t.replace('"buyer":{', '"buyer":null,"b":{', 1),
    "bad JSON": lambda t: t[:-1],
    "a trailing comma": lambda t: t[:-1] + ",}",
    "invalid UTF-8": lambda t: t.replace("T-shirt", "T-\udcffshirt"),
    "a lone surrogate": lambda t: t.replace("T-shirt", "T-\\ud800shirt"),
    "an escaped colon": lambda t: t.replace("T-shirt", "T\\u003ashirt"),
    "a newline in an id": lambda t: t.replace('"AX-ORD-778899"', '"AX-ORD-778899\\n"', 1),
    "an impossible date": lambda t: t.replace("2026-11-21T", "2026-02-30T", 1),
    "a negative price": lambda t: t.replace('"5.10"', '"-5.10"', 1),
    "an array": lambda t: "[" + t + "]",
    "a page of nothing": lambda t: '{"schema":"page/1","items":[]}',
    "a page with a document of another contract": lambda t: '{"schema":"page/1","items":[' + t + ',{"schema":"x"}]}',
    "a page with a repeated key": lambda t: '{"schema":"page/1","items":[' + t + "]," + '"items":[]}',
    "a nested page": lambda t: '{"schema":"page/1","items":[{"schema":"page/1","items":[' + t + "]}]}",
}


@pytest.mark.parametrize("what", sorted(HAND_OVER))
@pytest.mark.parametrize("doc", [MANIFEST, ORDER, REQUEST], ids=["manifest", "order", "request"])
def test_what_the_fast_path_cannot_vouch_for_goes_to_the_pure_path(what, doc):
    base = copy.deepcopy(doc)
    base["lines"][0]["qty"] = 2
    base["lines"][0]["unit_price"] = "5.10"
    if "description" in base["lines"][0]:
        base["lines"][0]["description"] = "Men's cotton T-shirt"
    original = _texts(base)
    text = HAND_OVER[what](original)
    raw = text.encode("utf-8", "surrogateescape")
    kept = fast_only(raw, doc["schema"])
    if kept is not None:  # the fast path keeps only what the pure path keeps, unchanged
        same(kept, read_pure(raw, reader.ACCEPTS[doc["schema"]]))
    if reader._FAST is not None and text != original and what in (
            "a repeated key", "a repeated key inside a line", "an unknown key", "an escaped key",
            "an integral float", "an unknown key in a line"):
        assert kept is None
    check(raw, doc["schema"])


def test_integral_floats_become_ints_on_both_paths():
    raw = orjson.dumps(_with(ORDER, "lines.0.qty", 3.0))
    (doc,) = check(raw, "order/1")
    assert doc["lines"][0]["qty"] == 3 and doc["lines"][0]["qty"].__class__ is int


def test_rejections_keep_their_refs():
    bad = _with(ORDER, "lines.0.currency", "usd")
    page = orjson.dumps({"schema": "page/1", "items": [ORDER, bad, 7]})
    got = check(page, "order/1")
    assert got[0] == ORDER
    assert got[1] == Rejection(bad["order_id"], "invalid_code", "lines[0].currency: 'usd' is not an ISO 4217 currency code")
    assert got[2].reason == "not_an_object"
    assert check(b"{", "order/1")[0].ref is None
    envelope = b'{"schema":"page/1","order_id":"P-1","items":[]}'
    assert read_message(envelope, "order/1")[0].ref == "P-1"
    assert read_message(envelope, "order/1", envelope_ref=False)[0].ref is None


@FAST
@given(raw=st.binary(max_size=200), schema=st.sampled_from(SCHEMAS))
def test_arbitrary_bytes(raw, schema):
    check(raw, schema)


_docs = st.one_of(manifests, orders, requests)


@FAST
@given(data=st.data(), schema=st.sampled_from(SCHEMAS))
def test_generated_pages_of_valid_and_broken_documents(data, schema):
    items = []
    for _ in range(data.draw(st.integers(1, 4))):
        doc = data.draw(_docs)
        items.append(_mutate(doc, data) if data.draw(st.booleans()) else doc)
    try:
        raw = orjson.dumps({"schema": "page/1", "items": items})
    except TypeError:
        return
    check(raw, schema)
    for item in items:
        check(orjson.dumps(item), schema)


# -- the compiled scan and pattern checks against their twins --------------------------------------

def _encode(value, dup_at, counter, ensure_ascii, spaced) -> str:
    sep = ": " if spaced else ":"
    if isinstance(value, dict):
        number = counter[0]
        counter[0] += 1
        pairs = [json.dumps(k, ensure_ascii=ensure_ascii) + sep + _encode(v, dup_at, counter, ensure_ascii, spaced)
                 for k, v in value.items()]
        if number == dup_at and value:
            k, v = next(iter(value.items()))
            pairs.append(json.dumps(k, ensure_ascii=ensure_ascii) + sep + json.dumps(v, ensure_ascii=ensure_ascii))
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(v, dup_at, counter, ensure_ascii, spaced) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


def _pairs(value) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_pairs(v) for v in value.values())
    if isinstance(value, list):
        return sum(_pairs(v) for v in value)
    return 0


@pytest.mark.skipif(scan_compiled is None, reason="compiled scan not built")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=json_trees, dup=st.one_of(st.none(), st.integers(0, 6)), ensure_ascii=st.booleans(),
       spaced=st.booleans())
def test_scan_equals_its_twin_and_counts_pairs(tree, dup, ensure_ascii, spaced):
    counter = [0]
    raw = _encode(tree, dup, counter, ensure_ascii, spaced).encode()
    got = scan_compiled.scan_keys(raw)
    assert got == scan_twin.scan_keys(raw)
    if got >= 0:
        assert got == _pairs(json.loads(raw)) and (dup is None or dup >= counter[0] or got == _pairs(tree))
    if got == scan_twin.DUPLICATE:
        assert _pairs(json.loads(raw)) < raw.count(b":") or "\\" in raw.decode()


@pytest.mark.skipif(scan_compiled is None, reason="compiled scan not built")
def test_scan_limits():
    for module in (scan_compiled, scan_twin):
        assert module.scan_keys(b"") == 0
        assert module.scan_keys(b'{"a":1,"a":2}') == module.DUPLICATE
        assert module.scan_keys(b'{"a":{"a":1}}') == 2  # the same key in two objects is no repeat
        assert module.scan_keys(b'{"a":1,"b":{"c":2},"a":3}') == module.DUPLICATE
        assert module.scan_keys(b'[{"a":1},{"a":2}]') == 2
        assert module.scan_keys(b'{"a\\"b":1}') == module.UNSURE
        assert module.scan_keys(b'{"a":"\\"b\\":c","b":2}') == 2  # quotes and colons inside strings
        assert module.scan_keys(b"[" * 64 + b"]" * 64) == 0
        assert module.scan_keys(b"[" * 65 + b"]" * 65) == module.UNSURE
        wide = "{" + ",".join(f'"k{i}":{i}' for i in range(65)) + "}"
        assert module.scan_keys(wide.encode()) == module.UNSURE
        assert module.scan_keys(wide.replace('"k64":64,', "").encode()) in (64, module.UNSURE)


KINDS = ["id", "bin", "currency", "country", "money", "measure", "timestamp", "date"]
pattern_values = st.one_of(
    st.sampled_from(BOUNDARY_STRINGS), st.text(max_size=40), near_timestamps, near_dates,
    st.from_regex(r"[0-9.]{0,16}", fullmatch=True), st.from_regex(r"[A-Za-z0-9._:/#\- ]{0,130}", fullmatch=True),
    st.integers(), st.none(), st.floats(),
)


@pytest.mark.skipif(scan_compiled is None, reason="compiled scan not built")
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), value=pattern_values)
def test_compiled_patterns_equal_the_validator_regexes(kind, value):
    assert scan_compiled.match(kind, value) == scan_twin.match(kind, value), (kind, value)


@pytest.mark.skipif(scan_compiled is None, reason="compiled scan not built")
@FAST
@given(data=st.data())
def test_compiled_pair_counts_equal_their_twins(data):
    doc = data.draw(_docs)
    for candidate in (doc, _mutate(doc, data)):
        try:
            candidate = orjson.loads(orjson.dumps(candidate))
        except TypeError:
            continue
        raw = orjson.dumps(candidate)
        for kind, name in enumerate(("request_pairs", "order_pairs", "manifest_pairs")):
            try:
                expected = getattr(scan_twin, name)(candidate)
                vouched = scan_twin.vouch(raw, [candidate], kind, 0)
            except (AttributeError, TypeError, KeyError):  # shapes the decoder never lets through
                continue
            assert getattr(scan_compiled, name)(candidate) == expected, (name, candidate)
            assert scan_compiled.vouch(raw, [candidate], kind, 0) == vouched
            page = b'{"schema":"page/1","items":[' + raw + b"," + raw + b"]}"
            assert scan_compiled.vouch(page, [candidate] * 2, kind, 2) == scan_twin.vouch(page, [candidate] * 2, kind, 2)


@pytest.mark.skipif(_v._KEY_SCAN is None, reason="compiled scan not built (or pure-Python run)")
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=80), st.builds(_encode, json_trees, st.one_of(st.none(), st.integers(0, 6)),
                                                  st.builds(lambda: [0]), st.booleans(), st.booleans()).map(str.encode),
                 st.sampled_from([b'{"a":{"b":1,"b":2}}', b'{"a\\u0062":1,"ab":2}', b'{"a":"x:y","b":[{"c":1}]}',
                                  b'{"a":"\\u003a","b":1}', b' {"a":1} ',
                                  b'{"schema":"page/1","items":[{"a":1,"a":2}]}'])))
def test_parse_json_line_with_the_compiled_key_scan_equals_the_colon_count(value):
    """parse_json_line decides "a key named twice?" with the compiled scan; without it (pure-Python runs), by
    counting colons. Both only send a message to the exact parser, which words every duplicate_key: the
    results are the same, whichever decides."""
    with_scan = _v.parse_json_line(value)
    scan, _v._KEY_SCAN = _v._KEY_SCAN, None
    try:
        without = _v.parse_json_line(value)
    finally:
        _v._KEY_SCAN = scan
    assert with_scan == without and type(with_scan) is type(without)
