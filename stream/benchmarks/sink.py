"""`customs-stream bench sink`: rows per second of the ClickHouse sink alone.

Declarations (with their lines) and stock movements are generated up front, then written through
`Sink.write()` in worker-sized pages over several partitions and flushed; the clock covers the
conversion of documents to columns, buffering and the inserts. The conversion alone is timed too,
so the split between Python and ClickHouse is visible. Without --url a local ClickHouse server is
started in a temporary directory (and stopped).
"""
from __future__ import annotations

import asyncio
import json
import platform
import tempfile
import time

import click

from stream.money import format_tiyn


def declarations(count: int, lines: int = 2, seed: int = 0) -> list[dict]:
    import random

    from stream.declaration.ids import declaration_id

    rng = random.Random(seed)
    codes = ("6109100000", "8517130000", "6404110000", "9503007000", "3304990000")
    warehouses = ("KZ-ALA-CW-01", "KZ-AST-CW-02", "KZ-SHY-CW-03")
    docs = []
    for i in range(count):
        doc_lines, totals = [], [0, 0, 0, 0]
        for n in range(lines):
            value = rng.randrange(1_000, 5_000_000)
            duty, excise, vat = value // 10, 0, (value * 16) // 100
            for k, amount in enumerate((value, duty, excise, vat)):
                totals[k] += amount
            doc_lines.append({"sku": f"SKU-{rng.randrange(5000)}", "hs_code": codes[(i + n) % len(codes)],
                              "hs_source": "declared", "qty": 1 + n, "value": format_tiyn(value), "duty": format_tiyn(duty),
                              "excise": format_tiyn(excise), "vat": format_tiyn(vat)})
        order_id = f"BENCH-{seed}-{i}"
        docs.append({"schema": "assessment/1", "order_id": order_id, "declaration_id": declaration_id(order_id),
                     "warehouse_id": warehouses[i % 3], "operator_bin": "123456789012", "flow": "warehouse",
                     "declared_at": f"2026-11-{1 + i % 28:02d}", "rule_set": "kz-2026", "currency": "KZT",
                     "fx": {"EUR": "545.10", "USD": "478.25"}, "customs_value": format_tiyn(totals[0]),
                     "duty": format_tiyn(totals[1]), "excise": format_tiyn(totals[2]), "vat": format_tiyn(totals[3]),
                     "total": format_tiyn(totals[1] + totals[2] + totals[3]), "lines": doc_lines, "flags": []})
    return docs


def movements(declared: list[dict]) -> list[dict]:
    # the worker's stock-movement/1: one stock transaction per declared line
    return [{"schema": "stock-movement/1", "warehouse_id": doc["warehouse_id"], "sku": line["sku"],
             "at": "2026-11-21T10:00:00+05:00", "partition": 0, "seq": i * 8 + n + 1, "received_qty": 0,
             "declared_qty": line["qty"], "received": line["qty"], "declared": line["qty"], "on_hand": 0}
            for i, doc in enumerate(declared) for n, line in enumerate(doc["lines"])]


async def run_sink(url: str, decls: list[dict], moves: list[dict], page: int, partitions: int, batch_rows: int,
                   use_numpy: bool | None) -> dict:
    from prometheus_client import CollectorRegistry

    from stream.analytics.sink import Sink
    from stream.metrics import Metrics

    sink = Sink(url, batch_rows=batch_rows, max_age=2.0, max_rows=max(1_000_000, 4 * batch_rows),
                metrics=Metrics(CollectorRegistry()), use_numpy=use_numpy)
    await sink.start()
    started = time.perf_counter()
    for i, start in enumerate(range(0, len(decls), page)):
        await sink.write("declaration", i % partitions, decls[start:start + page])
        await sink.write("movement", i % partitions, moves[start * 2:(start + page) * 2])
    await sink.flush()
    seconds = time.perf_counter() - started
    await sink.stop()
    return {"seconds": seconds, "rows": sum(sink.rows_written.values()), "by_table": dict(sink.rows_written),
            "retries": sink.retries, "numpy": sink.use_numpy}


def convert_only(decls: list[dict], moves: list[dict], page: int) -> float:
    from stream.analytics.rows import Source
    from stream.analytics.sink import convert

    started = time.perf_counter()
    for start in range(0, len(decls), page):
        convert("declaration", decls[start:start + page], Source("declarations", 0))
        convert("movement", moves[start * 2:(start + page) * 2], Source("stock.movements", 0))
    return time.perf_counter() - started


def measure(url: str | None, count: int, page: int, partitions: int, batch_rows: int,
            use_numpy: bool | None) -> dict:
    from stream.analytics.server import LocalClickHouse

    decls = declarations(count)
    moves = movements(decls)
    convert_seconds = convert_only(decls, moves, page)
    server = None
    with tempfile.TemporaryDirectory(prefix="bench-clickhouse-") as tmp:
        if not url:
            server = LocalClickHouse(tmp, database="bench").start()
            url = server.url
        try:
            from stream.analytics import schema

            schema.apply(url)
            result = asyncio.run(run_sink(url, decls, moves, page, partitions, batch_rows, use_numpy))
            client = schema.client(schema.parse_url(url))
            try:
                version = client.execute("SELECT version()")[0][0]
            finally:
                client.disconnect()
        finally:
            if server is not None:
                server.stop()
    rows = result["rows"]
    return {
        "benchmark": "sink",
        "clickhouse": version,
        "local_server": server is not None,
        "numpy_inserts": result["numpy"],
        "declarations": count,
        "table_rows": rows,
        "rows_by_table": result["by_table"],
        "page": page,
        "partitions": partitions,
        "batch_rows": batch_rows,
        "seconds": round(result["seconds"], 3),
        "rows_per_s": round(rows / result["seconds"]),
        "declarations_per_s": round(count / result["seconds"]),
        "convert_only_rows_per_s": round(rows / convert_seconds),
        "retries": result["retries"],
        "python": platform.python_version(),
    }


def compare_e2e(orders: int, workers: int = 1, partitions: int = 4, page_size: int = 1000) -> dict:
    """`bench e2e` twice in one run: without a sink, then with every worker writing to a local
    ClickHouse (CLICKHOUSE_URL in the workers' environment); the sink's cost is 1 - on/off."""
    from stream.analytics.server import LocalClickHouse
    from stream.benchmarks import e2e

    off = e2e.run(orders=orders, workers=workers, partitions=partitions, page_size=page_size)
    with tempfile.TemporaryDirectory(prefix="bench-clickhouse-") as tmp:
        with LocalClickHouse(tmp, database="bench") as server:
            server.apply_schema()
            saved = e2e.FAST_ENV.get("CLICKHOUSE_URL")
            e2e.FAST_ENV["CLICKHOUSE_URL"] = server.url
            try:
                on = e2e.run(orders=orders, workers=workers, partitions=partitions, page_size=page_size)
            finally:
                e2e.FAST_ENV["CLICKHOUSE_URL"] = saved
            time.sleep(3.0)  # the workers' last flush (max age) lands before they stop
            stored = {table: server.query(f"SELECT count() FROM {table} FINAL")[0][0]
                      for table in ("declarations", "declaration_lines", "stock_movements", "rejections")}
    off_rate = off["pipeline"]["lines_per_second"]
    on_rate = on["pipeline"]["lines_per_second"]
    return {"benchmark": "e2e-sink", "orders": orders, "workers": workers,
            "sink_off_lines_per_second": off_rate, "sink_on_lines_per_second": on_rate,
            "sink_cost": round(1 - on_rate / off_rate, 3) if off_rate else None,
            "rows_in_clickhouse": stored, "sink_off": off, "sink_on": on}


@click.command("sink")
@click.option("--url", default="", help="ClickHouse URL (default: start a local server in a temporary directory)")
@click.option("--declarations", "count", default=100_000, show_default=True,
              help="declarations to write (each with 2 lines and 2 stock movements: 5 table rows)")
@click.option("--page", default=1000, show_default=True, help="documents per write() call, as a worker page")
@click.option("--partitions", default=4, show_default=True)
@click.option("--batch-rows", default=50_000, show_default=True, help="sink flush threshold per buffer")
@click.option("--numpy/--no-numpy", "use_numpy", default=None,
              help="NumPy columnar inserts (default: when clickhouse-driver[numpy] is installed)")
@click.option("--e2e-orders", default=0, show_default=True,
              help="also run `bench e2e` with this many orders, sink off then on, in the same run")
@click.option("--workers", default=1, show_default=True, help="worker processes of the e2e comparison")
def sink_command(url, count, page, partitions, batch_rows, use_numpy, e2e_orders, workers):
    """Rows per second of the ClickHouse sink alone (and optionally its end-to-end cost); prints JSON."""
    result = measure(url or None, count, page, partitions, batch_rows, use_numpy)
    if e2e_orders:
        result = {"sink": result, "e2e": compare_e2e(e2e_orders, workers=workers, partitions=partitions)}
    click.echo(json.dumps(result, indent=2, default=str))
