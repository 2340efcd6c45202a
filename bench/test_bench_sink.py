"""pytest-benchmark: the ClickHouse sink alone against a local ClickHouse server
(`make bench`; not in the default test run). The JSON figures come from `customs-stream bench sink`."""
from __future__ import annotations

import asyncio
import itertools

import pytest
from prometheus_client import CollectorRegistry

from stream.analytics import schema
from stream.analytics.server import LocalClickHouse, clickhouse_available
from stream.analytics.sink import CONVERTERS, Sink
from stream.benchmarks.sink import declarations, movements
from stream.metrics import Metrics

pytestmark = pytest.mark.clickhouse

DECLARATIONS = 20_000
PAGE = 1000


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    if not clickhouse_available():
        pytest.skip("no ClickHouse server installed")
    with LocalClickHouse(tmp_path_factory.mktemp("bench-clickhouse"), database="bench") as server:
        schema.apply(server.url)
        yield server


@pytest.fixture(scope="module")
def documents():
    decls = declarations(DECLARATIONS)
    return decls, movements(decls)


def test_convert_documents_to_rows(benchmark, documents):
    decls, moves = documents

    def convert():
        rows = 0
        for start in range(0, len(decls), PAGE):
            rows += sum(map(len, CONVERTERS["declaration"](decls[start:start + PAGE], 0).values()))
            rows += len(CONVERTERS["movement"](moves[start * 2:(start + PAGE) * 2], 0)["stock_movements"])
        return rows

    assert benchmark(convert) == DECLARATIONS * 5


def test_sink_write_and_flush(benchmark, clickhouse, documents):
    decls, moves = documents
    rounds = itertools.count()

    def run():
        async def write_all():
            sink = Sink(clickhouse.url, batch_rows=50_000, metrics=Metrics(CollectorRegistry()), use_numpy=False)
            await sink.start()
            for i, start in enumerate(range(0, len(decls), PAGE)):
                await sink.write("declaration", i % 4, decls[start:start + PAGE])
                await sink.write("movement", i % 4, moves[start * 2:(start + PAGE) * 2])
            await sink.stop()
            return sum(sink.rows_written.values())

        next(rounds)
        return asyncio.run(write_all())

    assert benchmark.pedantic(run, rounds=3, iterations=1) == DECLARATIONS * 5
    # every round wrote the same ids again: deduplication leaves one copy of each
    assert clickhouse.query("SELECT count() FROM declarations FINAL")[0][0] == DECLARATIONS
    stored = clickhouse.query("SELECT count() FROM declarations")[0][0]
    assert DECLARATIONS <= stored <= DECLARATIONS * next(rounds)  # background merges may have collapsed some
    benchmark.extra_info["rows_per_round"] = DECLARATIONS * 5
