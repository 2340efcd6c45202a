"""`customs-stream demo` (`make demo`): the main job end to end on the embedded defaults.

Starts the embedded broker and a worker (and a local ClickHouse when one is installed), feeds a
realistic load with live progress, waits until every order is declared or rejected, prints a
summary, and stops everything it started.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import orjson

from stream.broker import Broker
from stream.money import format_kzt, parse_tiyn
from stream.processes import stop_process
from stream.runtime.topics import DECLARATIONS, MOVEMENTS, REJECTIONS

DEMO_ENV = {
    "CUSTOMS_SESSION_TIMEOUT_SECONDS": "10", "CUSTOMS_HEARTBEAT_SECONDS": "1",
    "CUSTOMS_REBALANCE_TIMEOUT_SECONDS": "1", "CUSTOMS_COMMIT_INTERVAL_SECONDS": "1.0",
    "CUSTOMS_WEB_PORT": "0", "CUSTOMS_METRICS_PORT": "0",
}


async def _run(bootstrap: str, pages, orders: int, timeout: float, rate: float) -> dict:
    from aiokafka import AIOKafkaConsumer
    from tqdm import tqdm

    from stream.loadgen import produce

    order_ids = set()
    lines_total = 0
    for page in pages:
        if page.order_ids:
            order_ids.update(page.order_ids)
            lines_total += page.lines
    outcome: dict[str, str] = {}
    summary = {"declarations": 0, "duty": 0, "excise": 0, "vat": 0, "customs_value": 0, "reasons": {},
               "stock": {}, "by_warehouse": {}}
    consumer = AIOKafkaConsumer(DECLARATIONS, REJECTIONS, MOVEMENTS, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=16 << 20)
    await consumer.start()
    fed = tqdm(total=lines_total, desc="order lines fed ", unit=" lines", unit_scale=True, position=0)
    done = tqdm(total=len(order_ids), desc="orders settled  ", unit=" orders", unit_scale=True, position=1)
    started = time.monotonic()
    finished_at = None
    stamps: list[float] = []
    summary["declared_lines"] = 0

    async def consume():
        nonlocal finished_at
        deadline = time.monotonic() + timeout
        while len(outcome) < len(order_ids) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            before = len(outcome)
            for tp, messages in batch.items():
                for message in messages:
                    doc = orjson.loads(message.value)
                    if tp.topic == DECLARATIONS:
                        oid = doc["order_id"]
                        if oid in outcome:
                            continue
                        outcome[oid] = "declared"
                        summary["declarations"] += 1
                        summary["declared_lines"] += len(doc["lines"])
                        stamps.append(time.monotonic())
                        wh = summary["by_warehouse"].setdefault(doc["warehouse_id"], [0, 0])
                        wh[0] += 1
                        wh[1] += parse_tiyn(doc["total"])
                        for key in ("duty", "excise", "vat", "customs_value"):
                            summary[key] += parse_tiyn(doc[key])
                    elif tp.topic == REJECTIONS:
                        ref = doc.get("ref")
                        if ref in order_ids and ref in outcome:
                            continue
                        if ref in order_ids:
                            outcome[ref] = "rejected"
                        summary["reasons"][doc["reason"]] = summary["reasons"].get(doc["reason"], 0) + 1
                    else:
                        key = (doc["warehouse_id"], doc["sku"])
                        seen = summary["stock"].get(key)
                        if seen is None or doc["seq"] >= seen["seq"]:
                            summary["stock"][key] = doc
            done.update(len(outcome) - before)
        finished_at = time.monotonic()

    consumer_task = asyncio.ensure_future(consume())
    try:
        stats = await produce(pages, bootstrap, rate=rate, progress=fed)
        await consumer_task
    finally:
        fed.close()
        done.close()
        await consumer.stop()
    summary["unsettled"] = len(order_ids) - len(outcome)
    summary["order_lines"] = stats["order_lines"]
    summary["orders"] = len(order_ids)
    summary["seconds"] = (finished_at or time.monotonic()) - started
    summary["declare_seconds"] = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return summary


def _print_summary(s: dict) -> None:
    echo = click.echo
    echo("")
    echo("=== customs warehouse: summary ===")
    echo(f"orders fed            {s['orders']:>12,}   ({s['order_lines']:,} lines)")
    echo(f"declarations          {s['declarations']:>12,}")
    echo(f"customs value (KZT)   {format_kzt(s['customs_value']):>16}")
    echo(f"duty (KZT)            {format_kzt(s['duty']):>16}")
    echo(f"excise (KZT)          {format_kzt(s['excise']):>16}")
    echo(f"VAT (KZT)             {format_kzt(s['vat']):>16}")
    echo(f"payable (KZT)         {format_kzt(s['duty'] + s['excise'] + s['vat']):>16}")
    if s["declare_seconds"] > 0:
        echo(f"throughput            {s['declared_lines'] / s['declare_seconds']:>12,.0f} order lines/s declared "
             f"(first to last declaration, {s['declare_seconds']:.1f} s; the feed is paced by --rate)")
    echo(f"wall time             {s['seconds']:>12.1f} s (worker start, feed, pending hold, summary)")
    echo("")
    echo("goods still under customs control (no duty, excise or VAT paid yet):")
    per_wh: dict[str, list[int]] = {}
    for (wh, _sku), mv in s["stock"].items():
        row = per_wh.setdefault(wh, [0, 0, 0, 0])
        row[0] += mv["received"]
        row[1] += mv["declared"]
        row[2] += mv["on_hand"]
        row[3] += 1 if mv["on_hand"] > 0 else 0
    echo(f"  {'warehouse':<16}{'received':>12}{'declared':>12}{'on hand':>12}{'SKUs held':>11}{'declarations':>14}")
    for wh in sorted(per_wh):
        r = per_wh[wh]
        echo(f"  {wh:<16}{r[0]:>12,}{r[1]:>12,}{r[2]:>12,}{r[3]:>11,}{s['by_warehouse'].get(wh, [0])[0]:>14,}")
    echo("")
    echo("rejections by reason:")
    for reason, count in sorted(s["reasons"].items(), key=lambda kv: -kv[1]):
        echo(f"  {reason:<24}{count:>8,}")
    if not s["reasons"]:
        echo("  (none)")
    if s["unsettled"]:
        echo(f"\nWARNING: {s['unsettled']} orders neither declared nor rejected before the timeout")


DEMO_DATABASE = "customs_demo"

# each domain's short demo step, "module:function" called with the echo (each prints its own heading)
DOMAIN_STEPS = (
    "stream.audit.risk_demo:risk_demo_step",  # post-release control: the top of the audit list
    "stream.audit.demo:cases_demo_step",  # cameral audit cases through their working-day deadlines
    "stream.taxfree.demo:demo_step",  # tax-free documents, airport confirmations, decisions, an invoice
    "stream.localcontent.demo:demo_step",  # CT-KZ: one product keeps its certificate on 2024-04-28, one loses it
)


def _domain_steps(echo) -> None:
    import importlib

    for target in DOMAIN_STEPS:
        module_name, function = target.split(":")
        getattr(importlib.import_module(module_name), function)(echo)


@click.command("demo")
@click.option("--orders", default=20_000, show_default=True, help="orders in the feed")
@click.option("--page-size", default=250, show_default=True)
@click.option("--rate", default=20_000.0, show_default=True, help="order lines per second fed (0: as fast as possible)")
@click.option("--hold", default=20.0, show_default=True,
              help="seconds an order short of stock waits (orders may be read before their manifests)")
@click.option("--invalid-rate", default=0.004, show_default=True, help="share of orders spoiled on purpose")
@click.option("--seed", default=7, show_default=True)
@click.option("--timeout", default=90.0, show_default=True)
@click.option("--clickhouse/--no-clickhouse", default=True, show_default=True,
              help="also write to a local ClickHouse when one is installed")
@click.option("--domains/--no-domains", default=True, show_default=True,
              help="then a short step of each other domain: risk, audit cases, tax-free, local content")
def demo_command(orders, page_size, rate, hold, invalid_rate, seed, timeout, clickhouse, domains):
    """Run the pipeline on a realistic feed and print what the operator would see."""
    from stream.loadgen import FeedConfig, generate

    tmp = Path(tempfile.mkdtemp(prefix="customs-demo-"))
    worker = None
    stack = contextlib.ExitStack()
    try:
        click.echo("starting the embedded broker ...", err=True)
        broker = stack.enter_context(Broker(partitions=4, app_id="customs-demo", log_path=str(tmp / "broker.log")))
        ch_url = ""
        if clickhouse:
            from stream.analytics.server import LocalClickHouse, clickhouse_available

            if clickhouse_available():
                click.echo("starting a local ClickHouse ...", err=True)
                try:
                    server = stack.enter_context(LocalClickHouse(database=DEMO_DATABASE))
                    # the demo's own database, empty at each run: its report speaks of this run only
                    server.query(f"DROP DATABASE IF EXISTS {DEMO_DATABASE}", database="default")
                    ch_url = server.url
                except Exception as error:
                    click.echo(f"ClickHouse did not start ({error}); the demo goes on without it", err=True)
            else:
                click.echo("no ClickHouse installed (`make setup` installs it): no analytics at the end", err=True)
        env = dict(os.environ, **DEMO_ENV, KAFKA_BROKER=broker.url, CUSTOMS_PARTITIONS="4", CUSTOMS_APP_ID="customs-demo",
                   CUSTOMS_DATA_DIR=str(tmp), CUSTOMS_PENDING_HOLD_SECONDS=str(hold), CLICKHOUSE_URL=ch_url)
        log = open(tmp / "worker.log", "ab")
        worker = subprocess.Popen([sys.executable, "-m", "stream", "worker", "--loglevel", "info"], env=env,
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        click.echo(f"worker pid {worker.pid} started; generating the feed ...", err=True)
        pages = list(generate(FeedConfig(orders=orders, page_size=page_size, seed=seed, invalid_rate=invalid_rate,
                                         wave_orders=max(orders // 5, 500))))
        summary = asyncio.run(_run(broker.bootstrap, pages, orders, timeout, rate))
        if worker.poll() is not None:
            raise click.ClickException(f"the worker exited ({worker.returncode}); see {tmp / 'worker.log'}")
        _print_summary(summary)
        if ch_url:
            stop_process(worker, 30)  # stopping flushes the sink
            from stream.analytics.report import operator_report

            try:
                click.echo("\n" + operator_report(ch_url))
            except Exception as error:  # the summary above stands; say why the analytics do not
                click.echo(f"\nthe ClickHouse report failed: {error}", err=True)
        if domains:
            _domain_steps(click.echo)
        if summary["unsettled"]:
            sys.exit(1)
    finally:
        stop_process(worker, 20)
        stack.close()
        shutil.rmtree(tmp, ignore_errors=True)
