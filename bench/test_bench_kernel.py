"""pytest-benchmark: the assessment kernel on one batch of warehouse-flow lines — compiled, its
Decimal twin and a vectorised numpy float formulation (`make bench`; not in the default test run).
`customs-stream bench core --only kernel` prints the same comparison on 1M lines as JSON."""
from __future__ import annotations

import numpy as np
import pytest

from stream.benchmarks.core import numpy_formulation, warehouse_batch
from stream.core import _assess_py

# small enough that the twin's rounds stay around a second
BATCH = 20_000


@pytest.fixture(scope="module")
def batch():
    return warehouse_batch(BATCH)


def _record(benchmark):
    benchmark.extra_info["lines_per_s"] = round(BATCH / benchmark.stats.stats.mean)


def test_bench_kernel_compiled(benchmark, batch):
    compiled = pytest.importorskip("stream.core._assess", reason="compiled kernel not built")
    value, duty, excise, vat, status = benchmark(compiled.warehouse_lines, *batch.values())
    _record(benchmark)
    assert (status == 0).all() and len(value) == BATCH


def test_bench_kernel_twin(benchmark, batch):
    value, *_ = benchmark.pedantic(_assess_py.warehouse_lines, args=tuple(batch.values()), rounds=3)
    _record(benchmark)
    assert len(value) == BATCH


def test_bench_kernel_numpy_float(benchmark, batch):
    value, duty, vat = benchmark(numpy_formulation, batch)
    _record(benchmark)
    exact = _assess_py.warehouse_lines(*(column[:500] for column in batch.values()))
    # the same formulas: floats agree on nearly every line (and miss a few by a tiyn, which is why the
    # kernel is integer)
    assert np.count_nonzero(value[:500] == exact[0]) >= 475
