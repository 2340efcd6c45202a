"""The compiled assessment writer and the engine's compiled request columns against their twins, and the
whole `assess` path (reader, columns, kernel, writer) against the pure path, byte for byte."""
from __future__ import annotations

import contextlib
import importlib
import io

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream import _backend
from stream.benchmarks.samples import assessment_requests
from stream.contracts import reader
from stream.contracts.validate import validate_request
from stream.declaration import _columns_py as columns_twin
from stream.declaration import _writer_py as writer_twin
from stream.declaration import engine
from stream.declaration.cli import assess_stream
from stream.declaration.engine import Assessor
from stream.money import format_tiyn
from stream.rules import load_rules
from tests.test_assess_cli import input_lines
from tests.test_contracts import _mutate
from tests.test_contracts import requests as generated_requests


def _compiled(name):
    try:
        return importlib.import_module(name)
    except ImportError:  # the guard test below says why this must not happen outside pure-Python runs
        return None


writer_compiled = _compiled("stream.declaration._writer")
columns_compiled = _compiled("stream.declaration._columns")
needs_compiled = pytest.mark.skipif(writer_compiled is None or columns_compiled is None,
                                    reason="compiled writer or columns not built")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])


def test_compiled_writer_and_columns_are_used_unless_pure_python_is_asked_for():
    if _backend.PURE_PYTHON:
        assert _backend.backend("writer") == "python" and _backend.backend("request_columns") == "python"
    else:
        assert writer_compiled is not None, "stream.declaration._writer is missing: run `make build`"
        assert columns_compiled is not None, "stream.declaration._columns is missing: run `make build`"
        assert engine.writer is writer_compiled and engine.columns is columns_compiled


# -- the writer -------------------------------------------------------------------------------------

texts = st.one_of(st.text(max_size=12), st.sampled_from(["AX-ORD-1", 'a"b', "a\\b", "\x00\x1f\x7f", "é€😀",
                                                          "\n\t\r\b\f", "/", "</script>"]))
amounts = st.one_of(st.integers(-10**15, 10**15), st.sampled_from([0, 1, 9, 10, 99, 100, 101, -1, -99, -100,
                                                                   2**63 - 1, -(2**63) + 1]))


@st.composite
def assessment_columns(draw):
    counts = draw(st.lists(st.integers(1, 4), min_size=1, max_size=5))
    m, n = len(counts), sum(counts)
    stops = np.cumsum(counts).tolist()
    starts = [stop - count for stop, count in zip(stops, counts)]

    def column(strategy, size):
        return draw(st.lists(strategy, min_size=size, max_size=size))

    def money(size):
        return np.array(column(amounts, size), dtype=np.int64)

    fx = column(st.dictionaries(texts, texts, max_size=3), m)
    flags = column(st.lists(texts, max_size=2), m)
    return (column(texts, m), column(texts, m), column(texts, m), column(texts, m), fx,
            money(m), money(m), money(m), money(m), money(m), flags, starts, stops,
            column(texts, n), column(st.one_of(st.none(), texts), n), column(texts, n),
            money(n), money(n), money(n), money(n))


@needs_compiled
@FAST
@given(columns=assessment_columns(), data=st.data())
def test_writer_equals_orjson_of_the_dicts(columns, data):
    rows = data.draw(st.lists(st.integers(0, len(columns[0]) - 1), max_size=6))
    got = writer_compiled.assessment_lines(rows, *columns)
    assert got == writer_twin.assessment_lines(rows, *columns)
    text = writer_twin.amounts_as_text(columns)
    assert got == [orjson.dumps(writer_twin.assessment_dict(k, *text)) + b"\n" for k in rows]


@needs_compiled
@given(amount=amounts)
def test_writer_formats_tiyn_as_money_does(amount):
    columns = list(data_for_one(amount))
    line = writer_compiled.assessment_lines([0], *columns)[0]
    assert orjson.loads(line)["total"] == format_tiyn(amount)


def data_for_one(amount):
    one = np.array([amount], dtype=np.int64)
    return (["O-1"], ["warehouse"], ["2026-01-01"], ["r"], [{"EUR": "1.00"}], one, one, one, one, one, [[]], [0], [1],
            ["S"], ["6109"], ["declared"], one, one, one, one)


# -- the request columns ----------------------------------------------------------------------------

def _valid(docs):
    kept = []
    for doc in docs:
        if validate_request(doc) is None:  # normalises integral floats, as the reader does
            kept.append(doc)
    return kept


@needs_compiled
@FAST
@given(docs=st.lists(generated_requests, min_size=1, max_size=5))
def test_request_columns_equal_their_twin(docs):
    docs = _valid(docs)
    if not docs:
        return
    got, expected = columns_compiled.request_columns(docs), columns_twin.request_columns(docs)
    for mine, theirs in zip(got, expected):
        if isinstance(theirs, np.ndarray):
            assert mine.dtype == theirs.dtype == np.int64 and np.array_equal(mine, theirs)
        else:
            assert mine == theirs
    counts, currency = got[0], got[6]
    rates = [{c: 1_000_000 + i for i, c in enumerate(dict.fromkeys(order))} for order in got[9]]
    assert np.array_equal(columns_compiled.line_rates(rates, counts, currency),
                          columns_twin.line_rates(rates, counts, currency))


@needs_compiled
def test_request_columns_refuse_what_is_not_a_validated_decimal():
    doc = {"schema": "assessment-request/1", "lines": [{"sku": "S", "qty": 1, "unit_price": "1e3", "currency": "USD",
                                                        "unit_weight_kg": "1"}]}
    with pytest.raises(ValueError):
        columns_compiled.request_columns([doc])


# -- the whole path: compiled against pure, byte for byte -------------------------------------------

@contextlib.contextmanager
def pure_path():
    """The reader, the columns and the writer on their twins (what CUSTOMS_STREAM_PUREPYTHON=1 selects)."""
    saved = reader._FAST, engine.writer, engine.columns
    reader._FAST, engine.writer, engine.columns = None, writer_twin, columns_twin
    try:
        yield
    finally:
        reader._FAST, engine.writer, engine.columns = saved


@pytest.fixture(scope="module")
def assessor():
    return Assessor(load_rules())


def both(assessor, lines: list[bytes], batch: int = 7) -> bytes:
    out = io.BytesIO()
    assess_stream(iter(lines), out, assessor, batch=batch)
    with pure_path():
        twin = io.BytesIO()
        assess_stream(iter(lines), twin, assessor, batch=batch)
    assert out.getvalue() == twin.getvalue()
    return out.getvalue()


SAMPLES = assessment_requests(200, seed=5)


def test_sample_feed_is_assessed_alike(assessor):
    lines = [orjson.dumps(doc) + b"\n" for doc in SAMPLES]
    lines.append(orjson.dumps({"schema": "page/1", "items": SAMPLES[:30]}) + b"\n")
    output = both(assessor, lines, batch=64).splitlines()
    assert len(output) == len(SAMPLES) + 30
    assert sum(line.startswith(b'{"schema":"assessment/1"') for line in output) > 150
    # and equal to orjson of the dicts Assessor.assess returns
    expected = [orjson.dumps(result) for result in assessor.assess(SAMPLES + SAMPLES[:30])]
    assert output == expected


@FAST
@given(data=st.data())
def test_mutated_sample_requests_are_assessed_alike(assessor, data):
    lines = []
    for _ in range(data.draw(st.integers(1, 8))):
        doc = data.draw(st.sampled_from(SAMPLES))
        if data.draw(st.booleans()):
            doc = _mutate(doc, data)
        try:
            lines.append(orjson.dumps(doc))
        except TypeError:
            continue
    if data.draw(st.booleans()) and lines:
        lines.append(b'{"schema":"page/1","items":[' + b",".join(lines) + b"]}")
    both(assessor, lines, batch=data.draw(st.integers(1, 9)))


@FAST
@given(lines=st.lists(input_lines, max_size=12))
def test_any_input_is_assessed_alike(assessor, lines):
    both(assessor, lines)


@FAST
@given(docs=st.lists(generated_requests, min_size=1, max_size=6))
def test_generated_requests_are_assessed_alike(assessor, docs):
    lines = []
    for doc in docs:
        try:
            lines.append(orjson.dumps(doc))
        except TypeError:
            continue
    both(assessor, lines)
    with pure_path():
        dict_results = [orjson.dumps(result) + b"\n" for result in assessor.assess(docs)]
    assert b"".join(assessor.assess_lines(docs)) == b"".join(dict_results)
