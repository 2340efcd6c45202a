"""`customs-stream bench core`: the compiled core against its twin, in one run, as JSON.

Figures:
- kernel: warehouse-flow lines per second, compiled kernel vs the Decimal twin vs a vectorised
  numpy float64 formulation of the same formulas, on the same batch (the numpy one is shown for
  scale only: floats are not exact, and the figure says how many lines it gets wrong);
- classifier: titles per second, compiled vs twin;
- cli: `customs-stream assess` on a generated file vs merely parsing and re-serialising the same
  file with orjson.
"""
from __future__ import annotations

import importlib
import time

import click
import numpy as np
import orjson

from stream.core import _assess_py, fixed

M = fixed.MICRO


def warehouse_batch(lines: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Realistic warehouse-flow columns: marketplace prices and weights, a tariff mix with combined
    and specific rates, the 2026 VAT rate."""
    rng = np.random.default_rng(seed)
    combine = rng.choice([0, 0, 0, 1, 2, 3], size=lines).astype(np.int8)
    specific_unit = np.where(combine == 0, 0, rng.choice([1, 2, 3], size=lines)).astype(np.int8)
    return {
        "qty": rng.integers(1, 6, size=lines, dtype=np.int64),
        "price6": rng.integers(50, 300_00, size=lines, dtype=np.int64) * 10_000,  # 0.50-300.00 in cents
        "fx6": rng.choice([478_250_000, 545_100_000, 66_200_000, 5_950_000], size=lines).astype(np.int64),
        "unit_weight6": rng.integers(10, 5_000, size=lines, dtype=np.int64) * 1_000,  # 0.010-5 kg
        "unit_volume6": np.full(lines, -1, dtype=np.int64),
        "ad_valorem_pct6": rng.choice([0, 5, 10, 12, 15, 20], size=lines).astype(np.int64) * M,
        "specific_eur6": np.where(specific_unit > 0, rng.choice([100_000, 500_000, 1_500_000], size=lines), 0).astype(np.int64),
        "specific_unit": specific_unit,
        "combine": combine,
        "excise_kzt6": np.zeros(lines, dtype=np.int64),
        "excise_unit": np.zeros(lines, dtype=np.int8),
        "eur_fx6": np.full(lines, 545_100_000, dtype=np.int64),
        "vat_pct6": np.full(lines, 16 * M, dtype=np.int64),
    }


def numpy_formulation(batch: dict[str, np.ndarray]):
    """The warehouse formulas as vectorised float64 numpy: fast to write, not exact."""
    qty = batch["qty"].astype(np.float64)
    value = np.floor(qty * (batch["price6"] / M) * (batch["fx6"] / M) * 100 + 0.5)
    ad_valorem = np.floor(value * batch["ad_valorem_pct6"] / M / 100 + 0.5)
    unit = batch["specific_unit"]
    units = np.where(unit == 1, qty * batch["unit_weight6"] / M, np.where(unit > 1, qty, 0.0))
    specific = np.floor(batch["specific_eur6"] / M * batch["eur_fx6"] / M * units * 100 + 0.5)
    combine = batch["combine"]
    duty = np.select([combine == 0, combine == 1, combine == 2], [ad_valorem, specific, np.maximum(ad_valorem, specific)],
                     ad_valorem + specific)
    vat = np.floor((value + duty) * batch["vat_pct6"] / M / 100 + 0.5)
    return value.astype(np.int64), duty.astype(np.int64), vat.astype(np.int64)


def _best_of(repeat: int, run) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def kernel_figures(lines: int, twin_lines: int | None = None, repeat: int = 3) -> dict:
    """Lines per second of the compiled kernel, the twin and numpy on the same batch.

    ``twin_lines``: time the twin on the first N lines only (it takes ~20 µs a line); the figure
    is then a rate over those lines, and the report says so.
    """
    compiled = importlib.import_module("stream.core._assess")
    batch = warehouse_batch(lines)
    columns = list(batch.values())
    compiled_s, compiled_out = _best_of(repeat, lambda: compiled.warehouse_lines(*columns))
    numpy_s, numpy_out = _best_of(repeat, lambda: numpy_formulation(batch))
    twin_n = lines if twin_lines is None else min(twin_lines, lines)
    twin_columns = [column[:twin_n] for column in columns]
    twin_s, twin_out = _best_of(1, lambda: _assess_py.warehouse_lines(*twin_columns))
    for mine, theirs in zip(compiled_out, twin_out):
        if not np.array_equal(mine[:twin_n], theirs):
            raise AssertionError("compiled kernel and twin disagree on the benchmark batch")
    numpy_wrong = int(np.count_nonzero((numpy_out[0] != compiled_out[0]) | (numpy_out[1] != compiled_out[1])
                                       | (numpy_out[2] != compiled_out[3])))
    compiled_rate, twin_rate, numpy_rate = lines / compiled_s, twin_n / twin_s, lines / numpy_s
    return {
        "lines": lines,
        "compiled_lines_per_s": round(compiled_rate),
        "twin_lines_per_s": round(twin_rate),
        "twin_lines_timed": twin_n,
        "numpy_float_lines_per_s": round(numpy_rate),
        "numpy_float_lines_wrong": numpy_wrong,
        "compiled_vs_twin": round(compiled_rate / twin_rate, 1),
        "compiled_vs_numpy": round(compiled_rate / numpy_rate, 2),
    }


def classifier_figures(titles: int) -> dict:
    from stream import classify

    figures = classify.benchmark(n=titles)
    return {key: round(value, 1) if isinstance(value, float) else value for key, value in figures.items()}


def cli_figures(orders: int, seed: int = 1) -> dict:
    """`assess` on ``orders`` generated requests vs orjson parse + re-serialise of the same bytes."""
    import io

    from stream.benchmarks.samples import assessment_requests
    from stream.declaration.cli import assess_stream
    from stream.declaration.engine import Assessor
    from stream.rules import load_rules

    payload = b"".join(orjson.dumps(doc) + b"\n" for doc in assessment_requests(orders, seed=seed))
    raw_lines = payload.splitlines(keepends=True)
    line_count = sum(len(orjson.loads(raw)["lines"]) for raw in raw_lines)

    def orjson_round_trip():
        out = io.BytesIO()
        out.write(b"".join(orjson.dumps(orjson.loads(raw)) + b"\n" for raw in raw_lines))
        return out

    assessor = Assessor(load_rules())
    assessor.assess(assessment_requests(10, seed=seed + 1))  # load the classifier outside the timing
    orjson_s, _ = _best_of(3, orjson_round_trip)
    assess_s, counts = _best_of(3, lambda: assess_stream(iter(raw_lines), io.BytesIO(), assessor))
    return {
        "orders": orders,
        "lines": line_count,
        "input_mb": round(len(payload) / 1e6, 1),
        "assess_s": round(assess_s, 3),
        "orjson_round_trip_s": round(orjson_s, 3),
        "assess_vs_orjson": round(assess_s / orjson_s, 2),
        "assess_orders_per_s": round(orders / assess_s),
        "rejections": counts["rejections"],
    }


@click.command("core")
@click.option("--lines", default=1_000_000, show_default=True, help="Kernel batch size.")
@click.option("--twin-lines", type=int, default=None,
              help="Time the twin on the first N lines only (default: all; the twin takes ~20 µs a line).")
@click.option("--titles", default=200_000, show_default=True, help="Classifier batch size.")
@click.option("--orders", default=100_000, show_default=True, help="Orders for the assess-vs-orjson figure.")
@click.option("--only", type=click.Choice(["kernel", "classifier", "cli"]), multiple=True,
              help="Run only these parts (repeatable).")
def core_command(lines, twin_lines, titles, orders, only):
    """Compiled core vs pure-Python twin: kernel lines/s, classifier titles/s, assess vs orjson."""
    parts = set(only) or {"kernel", "classifier", "cli"}
    report = {}
    if "kernel" in parts:
        report["kernel"] = kernel_figures(lines, twin_lines)
    if "classifier" in parts:
        report["classifier"] = classifier_figures(titles)
    if "cli" in parts:
        report["cli"] = cli_figures(orders)
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
