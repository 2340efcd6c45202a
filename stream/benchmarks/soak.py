"""`customs-stream bench soak`: a real broker and worker under a paced feed for many minutes, RSS sampled.

1. Start the embedded broker and one worker (the e2e benchmark's fast group settings); warm it up
   until it declares a small feed.
2. Produce the load generator's feed (stream/loadgen.py, generated lazily: manifests before the
   orders of each wave) paced at ``--rate`` order lines/s for ``--minutes``, while a consumer counts
   declarations and rejections, and a sampler writes, every ``--interval`` seconds, the worker's and
   the broker's RSS and CPU seconds (/proc), lines sent, declarations and the lag (orders sent and
   not yet declared or rejected) to a CSV.
3. After the feed, wait for the worker to catch up (lag 0), then print start / median / end RSS and
   the ratio of the last 5 minutes' median RSS to the median of minutes 5-10 (after warm-up; runs
   shorter than 15 minutes compare the last third with the middle third).

Order ids are remembered for ``CUSTOMS_ORDER_IDS_HOURS`` (7 days by default): over a soak that is
growth by design, not a leak, so the soak sets a short window (``--order-ids-hours``, 3 minutes by
default) that the state reaches during warm-up; its steady size is then what RSS shows. Likewise
the changelog table keeps every record of a partition until ``CUSTOMS_SNAPSHOT_RECORDS`` (5000)
compacts it, over an hour at a soak's rate: the soak sets 200 (``--snapshot-records``). The
embedded broker (Tansu) is memory-only and keeps every message: its RSS grows with the bytes
produced, by design; the worker's must not.

``--tracemalloc`` runs the worker under tracemalloc and takes a snapshot at the end of the warm-up
window and at the end of the feed; the top allocation growth between them (file:line) is printed,
for finding a leak when RSS grows (tracemalloc's own bookkeeping inflates RSS: do not read the RSS
ratio of such a run).
"""
from __future__ import annotations

import asyncio
import csv
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import orjson

from stream.benchmarks.e2e import FAST_ENV, _pipeline_run
from stream.broker import Broker
from stream.loadgen import FeedConfig, generate, produce
from stream.runtime.topics import DECLARATIONS, INBOUND, REJECTIONS

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

FIELDS = ("t_seconds", "worker_rss_kb", "broker_rss_kb", "worker_cpu_s", "broker_cpu_s", "orders_sent",
          "lines_sent", "declarations", "rejections", "lag_orders")


def rss_kb(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB (/proc/PID/statm), None when it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE // 1024
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (/proc/PID/stat), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15 of stat)


def _traced_worker() -> None:
    """The worker under tracemalloc: when the file $SOAK_SNAPSHOT_DIR/take-N appears, a thread writes
    a snapshot to snapshot-N there (a file, not a signal: the worker's framework owns SIGUSR1)."""
    import threading
    import tracemalloc

    tracemalloc.start(int(os.environ.get("SOAK_TRACE_FRAMES", "4")))
    directory = Path(os.environ["SOAK_SNAPSHOT_DIR"])

    def watch():
        n = 1
        while True:
            if (directory / f"take-{n}").exists():
                snapshot = tracemalloc.take_snapshot()
                path = directory / f"snapshot-{n}"
                snapshot.dump(str(path) + ".tmp")
                os.replace(str(path) + ".tmp", path)
                n += 1
            time.sleep(0.5)

    threading.Thread(target=watch, name="soak-snapshots", daemon=True).start()
    sys.argv = ["customs-stream", "worker"]
    from stream.cli import main

    main()


def stop_on_sigterm() -> None:
    """SIGTERM ends the command like Ctrl-C: its finally blocks stop the broker and worker it started."""
    def on_term(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_term)


def _wait_for(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.2)
    return False


def snapshot_diff(first: Path, second: Path, top: int = 12) -> list[str]:
    """The ``top`` allocation sites (file:line) that grew most between two tracemalloc snapshots."""
    import tracemalloc

    a = tracemalloc.Snapshot.load(str(first))
    b = tracemalloc.Snapshot.load(str(second))
    stats = b.compare_to(a, "lineno")
    return [str(stat) for stat in stats[:top]]


class Counts:
    def __init__(self) -> None:
        self.orders_sent = 0
        self.lines_sent = 0
        self.declarations = 0
        self.rejections = 0

    @property
    def lag(self) -> int:
        return self.orders_sent - self.declarations - self.rejections


async def _count(bootstrap: str, counts: Counts, stop: asyncio.Event, marker: bytes) -> None:
    """Count the feed's declarations and rejections (those naming an order id with ``marker``: not
    the warm-up's); a repeated declaration (a redelivery) counts again."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(DECLARATIONS, REJECTIONS, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                enable_auto_commit=False, max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=100_000)
            for tp, messages in batch.items():
                found = sum(1 for m in messages if marker in m.value)
                if tp.topic == DECLARATIONS:
                    counts.declarations += found
                else:
                    counts.rejections += found
    finally:
        await consumer.stop()


async def _sample(pids: dict[str, int], counts: Counts, rows: list[dict], writer, out, interval: float,
                  started: float, stop: asyncio.Event) -> None:
    while True:
        row = {"t_seconds": round(time.monotonic() - started, 1),
               "worker_rss_kb": rss_kb(pids["worker"]), "broker_rss_kb": rss_kb(pids["broker"]),
               "worker_cpu_s": cpu_seconds(pids["worker"]), "broker_cpu_s": cpu_seconds(pids["broker"]),
               "orders_sent": counts.orders_sent, "lines_sent": counts.lines_sent,
               "declarations": counts.declarations, "rejections": counts.rejections, "lag_orders": counts.lag}
        rows.append(row)
        writer.writerow(row)
        out.flush()
        if stop.is_set():
            return
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass


def _paced_pages(cfg: FeedConfig, until: float, counts: Counts, on_warm=None, warm_at: float | None = None):
    """The feed's pages until the monotonic time ``until`` (the orders of a page counted as sent)."""
    warm_done = False
    for page in generate(cfg):
        now = time.monotonic()
        if now >= until:
            return
        if not warm_done and warm_at is not None and now >= warm_at and on_warm is not None:
            on_warm()
            warm_done = True
        yield page
        if page.topic != INBOUND:
            counts.orders_sent += len(page.order_ids)
            counts.lines_sent += page.lines


def windows(minutes: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """(warm window, tail window) in seconds from the start of the feed: minutes 5-10 and the last 5
    for a soak of 15 minutes or more, else the middle and the last third."""
    total = minutes * 60.0
    if minutes >= 15:
        return (300.0, 600.0), (total - 300.0, total)
    return (total / 3, 2 * total / 3), (2 * total / 3, total)


def _median(rows: list[dict], field: str, window: tuple[float, float]) -> float | None:
    values = [r[field] for r in rows if window[0] <= r["t_seconds"] <= window[1] and r[field] is not None]
    return statistics.median(values) if values else None


def summarise(rows: list[dict], minutes: float) -> dict:
    """start / median / end RSS and the tail-to-warm ratio, per process (from the feed's samples)."""
    feed = [r for r in rows if r["t_seconds"] <= minutes * 60.0]
    warm, tail = windows(minutes)
    out = {"windows_s": {"warm": list(warm), "tail": list(tail)}}
    for name in ("worker", "broker"):
        field = f"{name}_rss_kb"
        values = [r[field] for r in feed if r[field] is not None]
        if not values:
            continue
        warm_median, tail_median = _median(feed, field, warm), _median(feed, field, tail)
        out[name] = {"rss_start_mb": round(values[0] / 1024, 1), "rss_median_mb": round(statistics.median(values) / 1024, 1),
                     "rss_end_mb": round(values[-1] / 1024, 1), "rss_max_mb": round(max(values) / 1024, 1),
                     "rss_warm_median_mb": round(warm_median / 1024, 1) if warm_median else None,
                     "rss_tail_median_mb": round(tail_median / 1024, 1) if tail_median else None,
                     "tail_to_warm": round(tail_median / warm_median, 3) if warm_median and tail_median else None}
    return out


def run(minutes: float = 30.0, rate: float = 5000.0, partitions: int = 4, interval: float = 5.0,
        csv_path: str | None = None, seed: int = 7, skus: int = 5000, page_size: int = 500,
        order_ids_hours: float = 0.05, snapshot_records: int = 200, tracemalloc: bool = False, log_dir: str | None = None,
        drain_timeout: float = 300.0) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="customs-soak-"))
    logs = Path(log_dir) if log_dir else tmp
    logs.mkdir(parents=True, exist_ok=True)
    csv_file = Path(csv_path) if csv_path else logs / "soak.csv"
    cfg = FeedConfig(orders=10**12, page_size=page_size, seed=seed, skus=skus, wave_orders=20_000)
    warm = list(generate(FeedConfig(orders=200, page_size=50, seed=seed + 1000, skus=200, wave_orders=200,
                                    unclassified_rate=0.0)))
    with Broker(partitions=partitions, app_id="customs-soak", log_path=str(logs / "broker.log")) as broker:
        env = dict(os.environ, **FAST_ENV, KAFKA_BROKER=broker.url, CUSTOMS_PARTITIONS=str(partitions),
                   CUSTOMS_APP_ID="customs-soak", CUSTOMS_DATA_DIR=str(tmp), CUSTOMS_ORDER_IDS_HOURS=str(order_ids_hours),
                   CUSTOMS_SNAPSHOT_RECORDS=str(snapshot_records))
        command = [sys.executable, "-m", "stream", "worker"]
        if tracemalloc:
            env.update(SOAK_SNAPSHOT_DIR=str(logs))
            for old in list(logs.glob("take-*")) + list(logs.glob("snapshot-*")):
                old.unlink()
            command = [sys.executable, "-c", "from stream.benchmarks.soak import _traced_worker; _traced_worker()"]
        log = open(logs / "worker.log", "ab")
        worker = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True)
        log.close()
        pids = {"worker": worker.pid, "broker": broker.process.pid}
        try:
            asyncio.run(_pipeline_run(broker.bootstrap, warm, timeout=180))  # the worker is up and assigned
            result = asyncio.run(_soak(broker.bootstrap, cfg, minutes, rate, interval, csv_file, pids,
                                       drain_timeout, worker if tracemalloc else None, logs))
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode} during the soak (log: {logs / 'worker.log'})")
            if tracemalloc:
                first, second = logs / "snapshot-1", logs / "snapshot-2"
                if _wait_for(second, 600):
                    result["tracemalloc_growth"] = snapshot_diff(first, second)
                else:
                    result["tracemalloc_growth"] = ["no second snapshot within 600 s"]
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()
    if not log_dir:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = summarise(result.pop("rows"), minutes)
    return {"benchmark": "soak", "minutes": minutes, "rate": rate, "partitions": partitions, "interval_s": interval,
            "order_ids_hours": order_ids_hours, "snapshot_records": snapshot_records, "cpus": os.cpu_count(), "csv": str(csv_file), **result, **summary}


async def _soak(bootstrap: str, cfg: FeedConfig, minutes: float, rate: float, interval: float, csv_file: Path,
                pids: dict[str, int], drain_timeout: float, traced: subprocess.Popen | None, snapshots: Path | None = None) -> dict:
    counts = Counts()
    rows: list[dict] = []
    stop_count, stop_sample = asyncio.Event(), asyncio.Event()
    counter = asyncio.ensure_future(_count(bootstrap, counts, stop_count, b"-ORD-%d-" % cfg.seed))
    await asyncio.sleep(1.0)  # the counter is positioned at the end of the outputs
    started = time.monotonic()
    warm_window, _ = windows(minutes)
    with open(csv_file, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        sampler = asyncio.ensure_future(_sample(pids, counts, rows, writer, out, interval, started, stop_sample))

        taken = [0]

        def snapshot():
            if traced is not None:
                taken[0] += 1
                (snapshots / f"take-{taken[0]}").touch()

        stats = await produce(_paced_pages(cfg, started + minutes * 60.0, counts, snapshot, started + warm_window[1]),
                              bootstrap, rate=rate)
        fed = time.monotonic() - started
        lag_at_end = counts.lag
        deadline = time.monotonic() + drain_timeout
        while counts.lag > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        drained = time.monotonic() - started - fed
        if traced is not None:
            snapshot()
        stop_sample.set()
        await sampler
    stop_count.set()
    await counter
    lags = [r["lag_orders"] for r in rows if r["t_seconds"] <= fed]
    cpu = {name: (rows[-1][f"{name}_cpu_s"] or 0) - (rows[0][f"{name}_cpu_s"] or 0) for name in ("worker", "broker")}
    return {"rows": rows, "fed_seconds": round(fed, 1), "orders_sent": counts.orders_sent,
            "order_lines_sent": counts.lines_sent, "lines_per_second_sent": round(counts.lines_sent / fed),
            "bytes_sent": stats["bytes"], "declarations": counts.declarations, "rejections": counts.rejections,
            "lag_orders_at_end_of_feed": lag_at_end, "lag_orders_max": max(lags) if lags else None,
            "lag_orders_median": statistics.median(lags) if lags else None, "lag_orders_after_drain": counts.lag,
            "drain_seconds": round(drained, 1),
            "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
            "worker_cpu_share": round(cpu["worker"] / (fed + drained), 3)}


@click.command("soak")
@click.option("--minutes", default=30.0, show_default=True, help="how long the paced feed runs")
@click.option("--rate", default=5000.0, show_default=True, help="order lines/s the feed is paced at")
@click.option("--partitions", default=4, show_default=True)
@click.option("--interval", default=5.0, show_default=True, help="seconds between RSS samples")
@click.option("--csv", "csv_path", default=None, help="write the samples here (default: soak.csv in the log dir)")
@click.option("--seed", default=7, show_default=True)
@click.option("--skus", default=5000, show_default=True, help="SKUs in the load generator's catalogue")
@click.option("--page-size", default=500, show_default=True, help="orders per page/1 message")
@click.option("--order-ids-hours", default=0.05, show_default=True,
              help="the worker's CUSTOMS_ORDER_IDS_HOURS (short, so the id window is full after the warm-up)")
@click.option("--snapshot-records", default=200, show_default=True,
              help="the worker's CUSTOMS_SNAPSHOT_RECORDS (small, so the changelog table is compacted within the soak)")
@click.option("--tracemalloc", is_flag=True, help="worker under tracemalloc; print the allocation growth after warm-up")
@click.option("--log-dir", default=None, help="keep broker and worker logs (and tracemalloc snapshots) here")
def soak_command(minutes, rate, partitions, interval, csv_path, seed, skus, page_size, order_ids_hours,
                 snapshot_records, tracemalloc, log_dir):
    """A paced feed through a real broker and worker for many minutes: RSS over time, lag, declarations."""
    stop_on_sigterm()
    click.echo(orjson.dumps(run(minutes=minutes, rate=rate, partitions=partitions, interval=interval, csv_path=csv_path,
                                seed=seed, skus=skus, page_size=page_size, order_ids_hours=order_ids_hours,
                                snapshot_records=snapshot_records, tracemalloc=tracemalloc, log_dir=log_dir),
                            option=orjson.OPT_INDENT_2).decode())
