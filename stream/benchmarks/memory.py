"""`customs-stream bench memory`: a worker's memory per SKU held in the customs warehouse.

(a) In-process, in a fresh interpreter per pass: the warehouse `Stock` of one partition receives
    manifests for N SKUs (each a distinct (warehouse, sku)) exactly as the worker takes them:
    the page's bytes parsed and validated (`stream.warehouse.intake.parse_message`), the stock
    transaction's body applied (`Stock.apply`). At several N (an eighth, a quarter, half, all) it
    reads the RSS (/proc/self/statm, after a full collection) in one pass and tracemalloc's traced
    memory in another (tracemalloc's bookkeeping would inflate the RSS of the first); bytes per SKU
    is the slope of a least-squares line through those points, so the interpreter, the imports and
    the parse buffers (the intercept) are not counted. It also gives the changelog bytes per SKU:
    the records' JSON, which the worker's table holds until a snapshot compacts them, and the
    snapshot record's.
(c) With ``--order-ids N``: the bytes per order id the stock remembers against redelivery (for
    CUSTOMS_ORDER_IDS_HOURS, 7 days by default), applied as records carry them.
(b) A real worker on the embedded broker: after a warm-up, its RSS (/proc/PID/statm) before and
    after it took manifests for N SKUs (every stock movement of them came out), and its peak
    (VmHWM). The difference over N is what one SKU costs a running worker: the stock, the goods
    facts, the table of changelog records, the client buffers.

Manifest lines are drawn from the load generator's headings (stream/loadgen.py: descriptions,
origins, prices, weights; a share without HS code), 200 lines per manifest, 10 manifests per page.
"""
from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import orjson

from stream.benchmarks.soak import rss_kb, stop_on_sigterm
from stream.loadgen import CURRENCIES, HEADINGS, OPERATORS, ORIGINS, WAREHOUSES

LINES_PER_MANIFEST = 200
MANIFESTS_PER_PAGE = 10
SKU_PREFIX = "MEM"


def pages(skus: int, seed: int = 5, warehouses: int = 4, start: int = 0):
    """``(warehouse key, page/1 bytes, lines)`` of goods-manifest/1 bringing in ``skus`` distinct
    SKUs (numbered from ``start``), spread over ``warehouses``, deterministic for ``seed``."""
    rng = random.Random(seed)
    weights = [h[-1] for h in HEADINGS]
    origins, origin_w = [o for o, _ in ORIGINS], [w for _, w in ORIGINS]
    currencies, currency_w = [c for c, _ in CURRENCIES], [w for _, w in CURRENCIES]
    colours = ("black", "white", "blue", "red", "grey", "beige", "green", "pink")
    whs = WAREHOUSES[:warehouses]
    made, number = 0, 0
    while made < skus:
        wh = whs[number % len(whs)]
        items = []
        for _ in range(MANIFESTS_PER_PAGE):
            if made >= skus:
                break
            lines = []
            for _ in range(min(LINES_PER_MANIFEST, skus - made)):
                hs, category, nouns, adjectives, (plo, phi), (wlo, whi), _ = rng.choices(HEADINGS, weights)[0]
                line = {"sku": f"{SKU_PREFIX}-{start + made:08d}",
                        "description": f"{rng.choice(adjectives).capitalize()} {rng.choice(nouns)}, {rng.choice(colours)}",
                        "origin": rng.choices(origins, origin_w)[0], "qty": rng.randint(1, 40),
                        "unit_price": f"{int(plo * (phi / plo) ** rng.random()) / 100:.2f}",
                        "currency": rng.choices(currencies, currency_w)[0],
                        "unit_weight_kg": f"{rng.randint(wlo, whi) / 1000:.3f}", "category": category}
                if rng.random() >= 0.03:
                    line["hs_code"] = hs
                lines.append(line)
                made += 1
            number += 1
            items.append({"schema": "goods-manifest/1", "manifest_id": f"MEM-{seed}-{number:07d}",
                          "operator_bin": OPERATORS[number % len(OPERATORS)], "warehouse_id": wh,
                          "marketplace": "aliexpress", "arrived_at": "2026-11-02T04:00:00Z", "lines": lines})
        yield wh.encode(), orjson.dumps({"schema": "page/1", "items": items}), sum(len(m["lines"]) for m in items)


def _slope(xs: list[int], ys: list[float]) -> float:
    return statistics.linear_regression(xs, ys).slope if len(xs) >= 2 else float("nan")


def _stock_pass(skus: int, checkpoints: list[int], traced: bool, queue) -> None:
    """One pass in a fresh interpreter: the stock receives ``skus``; a reading at each checkpoint."""
    import tracemalloc

    from stream.runtime.topics import INBOUND
    from stream.warehouse.intake import parse_message
    from stream.warehouse.stock import Stock

    def reading() -> float:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] if traced else rss_kb(os.getpid()) * 1024

    if traced:
        tracemalloc.start()
    stock = Stock(0, buyer_secret=b"bench")
    points = [(0, reading())]
    record_bytes = 0
    held = 0
    todo = list(checkpoints)
    for key, raw, lines in pages(skus):
        txn = stock.begin(time.time())
        parse_message(raw, INBOUND, txn, key)
        body = txn.body()
        if txn.out.rejections:
            raise RuntimeError(f"manifest rejected: {txn.out.rejections[0]}")
        record_bytes += len(orjson.dumps(body))
        stock.apply(body)
        held += lines
        del txn, body, raw
        if todo and held >= todo[0]:
            todo.pop(0)
            points.append((held, reading()))
    snapshot_bytes = 0 if traced else len(orjson.dumps(stock.snapshot()))
    queue.put({"points": points, "record_bytes": record_bytes, "snapshot_bytes": snapshot_bytes,
               "keys": len(stock.received)})


def stock_memory(skus: int) -> dict:
    """(a): bytes per SKU of the warehouse Stock, from RSS and from tracemalloc (a pass each)."""
    out: dict = {"skus": skus}
    rss = None
    for name, measured, result in _slopes(_stock_pass, skus):
        out.setdefault("checkpoints", measured.pop("checkpoints"))
        measured["bytes_per_sku"] = measured.pop("bytes_per_item")
        out[name] = measured
        if name == "rss":
            rss = result
    out["keys"] = rss["keys"]
    out["changelog_record_bytes_per_sku"] = round(rss["record_bytes"] / skus, 1)
    out["snapshot_bytes_per_sku"] = round(rss["snapshot_bytes"] / skus, 1)
    return out


def _ids_pass(ids: int, checkpoints: list[int], traced: bool, queue) -> None:
    """Order ids the stock remembers (declared, within CUSTOMS_ORDER_IDS_HOURS), applied as the
    worker's records carry them: pages of 1000 ids, each with its status, digest and time."""
    import tracemalloc

    from stream.warehouse.stock import DECLARED, Stock, digest

    def reading() -> float:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] if traced else rss_kb(os.getpid()) * 1024

    if traced:
        tracemalloc.start()
    stock = Stock(0, buyer_secret=b"bench")
    points = [(0, reading())]
    todo = list(checkpoints)
    made, record_bytes, at = 0, 0, 1.8e9
    while made < ids:
        count = min(1000, ids - made)
        body = {"o": {f"AL-ORD-7-{n:09d}": [DECLARED, digest({"n": n})] for n in range(made, made + count)},
                "at": at + made / 1000}
        body = orjson.loads(orjson.dumps(body))  # as a record's JSON gives it (no shared objects)
        record_bytes += len(orjson.dumps(body))
        stock.apply(body)
        made += count
        del body
        if todo and made >= todo[0]:
            todo.pop(0)
            points.append((made, reading()))
    queue.put({"points": points, "record_bytes": record_bytes, "keys": len(stock.orders)})


def _slopes(target, n: int):
    """Run ``target`` twice in fresh interpreters (RSS, then tracemalloc), reading memory at n/8 .. n:
    per pass its name, the bytes above the empty start at each checkpoint with the slope through
    them, and what the pass reported."""
    checkpoints = sorted({max(n // d, 1) for d in (8, 4, 2, 1)})
    ctx = multiprocessing.get_context("spawn")
    for traced in (False, True):
        queue = ctx.Queue()
        proc = ctx.Process(target=target, args=(n, checkpoints, traced, queue))
        proc.start()
        result = queue.get()
        proc.join()
        points = result["points"]
        xs, ys = [p[0] for p in points[1:]], [p[1] for p in points[1:]]
        yield ("tracemalloc" if traced else "rss"), {
            "checkpoints": checkpoints,
            "bytes_at": {str(x): int(y - points[0][1]) for x, y in points[1:]},
            "bytes_per_item": round(_slope(xs, ys), 1)}, result


def _passes(target, n: int, label: str) -> dict:
    out: dict = {label: n}
    for name, measured, result in _slopes(target, n):
        out.setdefault("checkpoints", measured.pop("checkpoints"))
        out[name] = measured
        if name == "rss":
            out["keys"] = result["keys"]
            out["changelog_record_bytes_per_item"] = round(result["record_bytes"] / n, 1)
    return out


def order_ids_memory(ids: int) -> dict:
    """(c): bytes per order id the stock remembers (the CUSTOMS_ORDER_IDS_HOURS window)."""
    return _passes(_ids_pass, ids, "order_ids")


def _hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


async def _produce_and_wait(bootstrap: str, skus: int, timeout: float, exited=None) -> tuple[float, int]:
    """Produce the manifests, then count stock movements of their SKUs until all ``skus`` came out."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from stream.runtime.topics import INBOUND, MOVEMENTS

    consumer = AIOKafkaConsumer(MOVEMENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1 << 20,
                                max_request_size=8 << 20, acks=1)
    await producer.start()
    started = time.monotonic()
    marker = f'"sku":"{SKU_PREFIX}-'.encode()
    try:
        for key, raw, _ in pages(skus):
            await producer.send(INBOUND, raw, key=key)
        await producer.flush()
        moved = 0
        deadline = started + timeout
        while moved < skus and time.monotonic() < deadline:
            if exited is not None and exited():
                raise RuntimeError(f"the worker exited after {moved} of {skus} stock movements")
            batch = await consumer.getmany(timeout_ms=500, max_records=100_000)
            moved += sum(1 for messages in batch.values() for m in messages if marker in m.value)
    finally:
        await producer.stop()
        await consumer.stop()
    if moved < skus:
        raise TimeoutError(f"{moved} of {skus} stock movements after {timeout} s")
    return time.monotonic() - started, moved


def worker_memory(skus: int, partitions: int = 4, timeout: float = 900.0, log_dir: str | None = None,
                  settle: float = 5.0) -> dict:
    """(b): a real worker's RSS before and after it took manifests for ``skus`` SKUs."""
    from stream.benchmarks.e2e import FAST_ENV, _pipeline_run
    from stream.broker import Broker
    from stream.loadgen import FeedConfig, generate
    from stream.processes import stop_process

    tmp = Path(tempfile.mkdtemp(prefix="customs-memory-"))
    logs = Path(log_dir) if log_dir else tmp
    logs.mkdir(parents=True, exist_ok=True)
    warm = list(generate(FeedConfig(orders=200, page_size=50, seed=1007, skus=200, wave_orders=200,
                                    unclassified_rate=0.0)))
    with Broker(partitions=partitions, app_id="customs-memory", log_path=str(logs / "broker.log")) as broker:
        env = dict(os.environ, **FAST_ENV, KAFKA_BROKER=broker.url, CUSTOMS_PARTITIONS=str(partitions),
                   CUSTOMS_APP_ID="customs-memory", CUSTOMS_DATA_DIR=str(tmp))
        log = open(logs / "worker.log", "ab")
        worker = subprocess.Popen([sys.executable, "-m", "stream", "worker"], env=env, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log)
        log.close()
        try:
            asyncio.run(_pipeline_run(broker.bootstrap, warm, timeout=180))
            time.sleep(settle)
            before = rss_kb(worker.pid)
            seconds, moved = asyncio.run(_produce_and_wait(broker.bootstrap, skus, timeout,
                                                           lambda: worker.poll() is not None))
            time.sleep(settle)
            after = rss_kb(worker.pid)
            hwm = _hwm_kb(worker.pid)
            broker_rss = rss_kb(broker.process.pid)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode} (log: {logs / 'worker.log'})")
        finally:
            stop_process(worker, 30)
            if not log_dir:
                shutil.rmtree(tmp, ignore_errors=True)
    return {"skus": skus, "partitions": partitions, "movements": moved, "seconds": round(seconds, 1),
            "skus_per_second": round(skus / seconds), "rss_before_mb": round(before / 1024, 1),
            "rss_after_mb": round(after / 1024, 1), "rss_peak_mb": round(hwm / 1024, 1) if hwm else None,
            "bytes_per_sku": round((after - before) * 1024 / skus, 1), "broker_rss_mb": round(broker_rss / 1024, 1)}


def run(skus: int = 1_000_000, worker: bool = True, stock: bool = True, partitions: int = 4,
        log_dir: str | None = None, order_ids: int = 0) -> dict:
    out: dict = {"benchmark": "memory", "skus": skus, "python": sys.version.split()[0]}
    def part(name: str, value: dict) -> None:  # each part on stderr as soon as it is measured
        out[name] = value
        print(orjson.dumps({name: value}).decode(), file=sys.stderr, flush=True)

    if stock:
        part("stock", stock_memory(skus))
    if order_ids:
        part("order_ids", order_ids_memory(order_ids))
    if worker:
        part("worker", worker_memory(skus, partitions=partitions, log_dir=log_dir))
    return out


@click.command("memory")
@click.option("--skus", default=1_000_000, show_default=True, help="distinct (warehouse, sku) received")
@click.option("--worker/--no-worker", default=True, show_default=True, help="(b): a real worker on the broker")
@click.option("--stock/--no-stock", default=True, show_default=True, help="(a): the Stock in-process")
@click.option("--partitions", default=4, show_default=True)
@click.option("--order-ids", default=0, show_default=True,
              help="(c): also the bytes per order id remembered (the CUSTOMS_ORDER_IDS_HOURS window), for this many ids")
@click.option("--log-dir", default=None, help="keep broker and worker logs here")
def memory_command(skus, worker, stock, partitions, order_ids, log_dir):
    """A worker's memory per SKU: the Stock in-process (RSS and tracemalloc slopes) and a real worker."""
    stop_on_sigterm()
    click.echo(orjson.dumps(run(skus=skus, worker=worker, stock=stock, partitions=partitions, log_dir=log_dir,
                                order_ids=order_ids),
                            option=orjson.OPT_INDENT_2).decode())
