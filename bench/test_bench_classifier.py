"""pytest-benchmark: the HS-code classifier, compiled kernel vs pure-Python twin on the same batch
(`make bench`; not in the default test run). `customs-stream bench core` prints the titles/s figures
from `stream.classify.benchmark`."""
from __future__ import annotations

import pytest

from stream.classify import Classifier, _classify_py, benchmark_titles
from stream.classify._tables import load_tables

# small enough that the twin's rounds stay well under a second each
BATCH = 2_000


@pytest.fixture(scope="module")
def titles():
    return benchmark_titles(BATCH)


@pytest.fixture(scope="module")
def tables():
    return load_tables()


def test_bench_classify_compiled(benchmark, tables, titles):
    compiled = pytest.importorskip("stream.classify._classify", reason="compiled kernel not built")
    classifier = Classifier(tables, compiled)
    codes, _ = benchmark(classifier.classify_batch, titles)
    benchmark.extra_info["titles_per_s"] = BATCH / benchmark.stats.stats.mean
    assert len(codes) == BATCH


def test_bench_classify_twin(benchmark, tables, titles):
    classifier = Classifier(tables, _classify_py)
    codes, _ = benchmark.pedantic(classifier.classify_batch, args=(titles,), rounds=3, iterations=1)
    benchmark.extra_info["titles_per_s"] = BATCH / benchmark.stats.stats.mean
    assert len(codes) == BATCH
