"""The capacity tools run and report what they measured: `bench soak` (a short soak on a real broker
and worker) and `bench memory` (a tiny N). Sanity only: no timing or size is asserted beyond it."""
from __future__ import annotations

import csv

import orjson
import pytest
from click.testing import CliRunner

from stream.benchmarks.cli import bench
from stream.benchmarks.soak import cpu_seconds, rss_kb, summarise, windows


def test_proc_readers_see_this_process():
    import os

    assert rss_kb(os.getpid()) > 1000
    assert cpu_seconds(os.getpid()) > 0
    assert rss_kb(2**22 + 12345) is None and cpu_seconds(2**22 + 12345) is None


def test_windows_and_summary():
    assert windows(30) == ((300.0, 600.0), (1500.0, 1800.0))
    assert windows(3) == ((60.0, 120.0), (120.0, 180.0))
    rows = [{"t_seconds": t, "worker_rss_kb": 1000 + (100 if t >= 120 else 0), "broker_rss_kb": None} for t in range(0, 181, 10)]
    out = summarise(rows, 3)
    assert out["worker"]["tail_to_warm"] == 1.1 and out["worker"]["rss_start_mb"] == round(1000 / 1024, 1)
    assert "broker" not in out


@pytest.mark.broker
@pytest.mark.slow
def test_soak_runs_and_every_order_is_declared(tmp_path):
    result = CliRunner().invoke(bench, ["soak", "--minutes", "0.2", "--interval", "1", "--rate", "3000",
                                        "--log-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.output)
    assert out["orders_sent"] > 0 and out["order_lines_sent"] > 0
    assert out["rejections"] == 0
    assert out["declarations"] >= out["orders_sent"] and out["lag_orders_after_drain"] <= 0
    assert out["worker"]["rss_start_mb"] > 0 and out["broker"]["rss_end_mb"] > 0
    with open(out["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 5
    assert all(int(r["worker_rss_kb"]) > 0 for r in rows)
    assert int(rows[-1]["orders_sent"]) == out["orders_sent"]


def test_memory_pages_bring_in_distinct_skus_within_the_page_limit():
    from stream.benchmarks.memory import pages

    seen, lines = set(), 0
    for key, raw, count in pages(4500, warehouses=3):
        doc = orjson.loads(raw)
        assert len(raw) < 1_000_000 and {m["warehouse_id"].encode() for m in doc["items"]} == {key}
        for manifest in doc["items"]:
            seen.update((manifest["warehouse_id"], line["sku"]) for line in manifest["lines"])
        lines += count
    assert lines == len(seen) == 4500


@pytest.mark.broker
@pytest.mark.slow
def test_memory_runs_on_a_tiny_n(tmp_path):
    result = CliRunner().invoke(bench, ["memory", "--skus", "3000", "--order-ids", "2000",
                                        "--log-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout)  # each part also goes to stderr as it is measured
    assert out["stock"]["keys"] == 3000
    assert out["stock"]["rss"]["bytes_per_sku"] > 0 and out["stock"]["tracemalloc"]["bytes_per_sku"] > 0
    assert out["stock"]["changelog_record_bytes_per_sku"] > 0
    assert out["order_ids"]["keys"] == 2000 and out["order_ids"]["rss"]["bytes_per_item"] > 0
    assert out["worker"]["movements"] >= 3000 and out["worker"]["rss_after_mb"] > 0
