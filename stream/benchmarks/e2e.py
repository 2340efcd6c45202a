"""`customs-stream bench e2e`: the whole pipeline on the embedded broker, next to its transport floor.

1. Start the broker and N worker processes; warm them up until they declare a small feed.
2. Generate the load (loadgen, deterministic) in memory; produce it (manifests before orders, per
   wave) while a consumer reads `declarations`. Throughput = order lines / (last declaration
   consumed - first order produced); latency = declaration consumed - its order page produced.
3. Transport floor, same run, same broker: the same order pages produced to a scratch topic,
   consumed and produced again by a relay process with raw aiokafka, consumed at the end.

With ``--with-risk``, ``--risk-agents N`` risk agents (``customs-stream worker --domains risk --app-id
customs-stream-risk``, docker-compose's `risk` service) run beside the workers in their own consumer group
on `declarations`. Each serves its /metrics on a free loopback port, polled during the measured feed: the
risk figure is the declarations the agents counted (``customs_risk_declarations_total``, every outcome:
counted once the score's outputs and record are acknowledged) over the time from the first order produced
to the moment the count reached every declaration of the feed; beside it the worker's declarations/s over
the same feed. (Consumer lag is not used: Tansu reports a multi-record batch's log end short.)
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import click
import orjson

from stream.broker import Broker, ensure_topics
from stream.runtime.topics import DECLARATIONS
from stream.loadgen import FeedConfig, generate, produce

FLOOR_IN, FLOOR_OUT = "bench.floor.in", "bench.floor.out"
# The benches' own readers of what the workers write. Tansu holds a fetch for its whole wait even when
# records arrive meanwhile (a message produced to an idle partition was read 115 ms later with aiokafka's
# default 500 ms wait, 17 ms with 100 ms, 5 ms with 20 ms): with the default the reader's own wait was
# part of every latency and of the last message's time.
READER_FETCH_WAIT_MS = 20
FAST_ENV = {
    "CUSTOMS_SESSION_TIMEOUT_SECONDS": "6", "CUSTOMS_HEARTBEAT_SECONDS": "0.5",
    "CUSTOMS_REBALANCE_TIMEOUT_SECONDS": "2", "CUSTOMS_COMMIT_INTERVAL_SECONDS": "1.0",
    "CUSTOMS_WEB_PORT": "0", "CUSTOMS_METRICS_PORT": "0", "CLICKHOUSE_URL": "",
}


def _order_id(value: bytes) -> bytes:
    start = value.index(b'"order_id":"') + 12
    return value[start:value.index(b'"', start)]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def _collect(bootstrap: str, topic: str, expected: set[bytes], sent_at: dict[bytes, float],
                   timeout: float, key_of=_order_id) -> tuple[list[float], float, int]:
    """Consume ``topic`` until every id of ``expected`` arrived; latencies, time of the last, duplicates."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20,
                                fetch_max_wait_ms=READER_FETCH_WAIT_MS)
    await consumer.start()
    latencies: list[float] = []
    remaining = set(expected)
    duplicates = 0
    last = time.time()
    deadline = time.monotonic() + timeout
    try:
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=100_000)
            now = time.time()
            for messages in batch.values():
                for message in messages:
                    oid = key_of(message.value)
                    if oid in remaining:
                        remaining.discard(oid)
                        latencies.append(now - sent_at[oid])
                        last = now
                    elif oid in expected:
                        duplicates += 1
    finally:
        await consumer.stop()
    if remaining:
        raise TimeoutError(f"{len(remaining)} of {len(expected)} never arrived on {topic}")
    return latencies, last, duplicates


RISK_APP_ID = "customs-stream-risk"
_RISK_COUNTED = re.compile(rb'^customs_risk_declarations_total\{outcome="([a-z_0-9]+)"\} ([0-9.e+]+)$', re.M)


def _cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds the processes used so far (Linux /proc; None elsewhere)."""
    try:
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _risk_counts(port: int) -> dict[str, int] | None:
    """customs_risk_declarations_total by outcome on one risk agent's /metrics (None: not serving yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read()
    except OSError:
        return None
    return {outcome.decode(): int(float(value)) for outcome, value in _RISK_COUNTED.findall(text)}


class RiskWatch:
    """Polls the risk agents' counters: when did they count every declaration of a feed?

    An answer of /metrics costs the agent CPU (every collector runs, the process collector reads /proc), so
    the watch polls as often as ``interval`` only near the end: until then it sleeps for a quarter of the
    time the agents need for what is left at the rate they have shown (at most ``slowest``)."""

    def __init__(self, ports: list[int], interval: float = 0.05, slowest: float = 1.0):
        self.ports = ports
        self.interval = interval
        self.slowest = slowest

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for port in self.ports:
            for outcome, n in (_risk_counts(port) or {}).items():
                out[outcome] = out.get(outcome, 0) + n
        return out

    async def until(self, target: int, timeout: float) -> tuple[float, dict[str, int]]:
        """Wait until the agents counted ``target`` declarations (every outcome); (time then, totals)."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            totals = await asyncio.to_thread(self.totals)
            now = time.time()
            counted = sum(totals.values())
            if counted >= target:
                return now, totals
            if time.monotonic() > deadline:
                raise TimeoutError(f"the risk agents counted {counted} of {target} declarations")
            pause = self.interval
            if last is not None and counted > last[1]:
                rate = (counted - last[1]) / (now - last[0])
                pause = min(self.slowest, max(self.interval, (target - counted) / rate / 4))
            last = (now, counted)
            await asyncio.sleep(pause)


async def _pipeline_run(bootstrap: str, pages, timeout: float, rate: float = 0.0, risk: RiskWatch | None = None) -> dict:
    valid = set()
    for page in pages:
        if page.topic == "orders":
            for item in orjson.loads(page.value)["items"]:
                valid.add(item["order_id"].encode())
    sent_at: dict[bytes, float] = {}
    first = []

    def on_sent(page, at):
        if page.order_ids:
            if not first:
                first.append(at)
            for oid in page.order_ids:
                sent_at[oid.encode()] = at

    collector = asyncio.ensure_future(_collect(bootstrap, DECLARATIONS, valid, sent_at, timeout))
    before = None
    if risk is not None:  # what the agents counted before this feed (the warm-up's declarations)
        before = await asyncio.to_thread(risk.totals)
    await asyncio.sleep(0.5)  # the consumer is positioned before the first declaration
    stats = await produce(pages, bootstrap, rate=rate, on_sent=on_sent)
    latencies, last, duplicates = await collector
    latencies.sort()
    lines = stats["order_lines"]
    seconds = last - first[0]
    out = {"order_lines": lines, "orders": len(valid), "seconds": round(seconds, 3),
           "lines_per_second": round(lines / seconds), "latency_p50_ms": round(_percentile(latencies, 0.5) * 1000, 1),
           "latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1), "duplicate_declarations": duplicates,
           "produce_seconds": round(stats["seconds"], 3), "bytes": stats["bytes"]}
    if risk is not None:
        # every declaration the workers wrote (each valid order once; a repeat is counted as a duplicate)
        declared = len(valid) + duplicates
        done, after = await risk.until(sum(before.values()) + declared, timeout)
        risk_seconds = done - first[0]
        counted = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(after) | set(before))}
        out["declarations_per_second"] = round(len(valid) / seconds)
        out["risk"] = {"agents": len(risk.ports), "declarations": sum(counted.values()), "outcomes": counted,
                       "seconds": round(risk_seconds, 3),
                       "declarations_per_second": round(sum(counted.values()) / risk_seconds),
                       "behind_worker_seconds": round(done - last, 3)}
    return out


def _relay(bootstrap: str, count: int, partitions: int) -> None:
    """Transport floor relay (a separate process, like a worker): consume and produce the same bytes."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from stream.settings import Settings

    async def go():
        # the worker's own fetch wait (CUSTOMS_FETCH_WAIT_MS): the floor reads its input as a worker does
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False, max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20,
                                    fetch_max_wait_ms=Settings().fetch_wait_ms)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, max_batch_size=1 << 20,
                                    max_request_size=8 << 20, acks=1)
        await consumer.start()
        consumer.assign([TopicPartition(FLOOR_IN, p) for p in range(partitions)])
        await producer.start()
        seen = 0
        try:
            while seen < count:
                batch = await consumer.getmany(timeout_ms=200)
                for tp, messages in batch.items():
                    for message in messages:
                        await producer.send(FLOOR_OUT, message.value, key=message.key, partition=tp.partition)
                    seen += len(messages)
                if batch:
                    await producer.flush()
        finally:
            await producer.stop()
            await consumer.stop()

    asyncio.run(go())


async def _floor_run(bootstrap: str, pages, timeout: float, partitions: int) -> dict:
    order_pages = [p for p in pages if p.topic == "orders"]
    ctx = multiprocessing.get_context("spawn")
    relay = ctx.Process(target=_relay, args=(bootstrap, len(order_pages), partitions), daemon=True)
    relay.start()
    try:
        await asyncio.sleep(2.0)  # the relay joins its group
        # the page index prefixed as its id: the floor moves opaque bytes
        relabelled = [type(p)(FLOOR_IN, p.key, b"%d:" % i + p.value, [str(i)], p.lines) for i, p in enumerate(order_pages)]
        sent_at: dict[bytes, float] = {}
        first = []

        def on_sent(page, at):
            if not first:
                first.append(at)
            sent_at[page.order_ids[0].encode()] = at

        expected = {str(i).encode() for i in range(len(order_pages))}
        collector = asyncio.ensure_future(_collect(bootstrap, FLOOR_OUT, expected, sent_at, timeout,
                                                   key_of=lambda v: v[:v.index(b":")]))
        await asyncio.sleep(0.5)
        stats = await produce(relabelled, bootstrap, on_sent=on_sent)
        latencies, last, _ = await collector
    finally:
        relay.join(10)
        if relay.is_alive():
            relay.kill()
    lines = stats["order_lines"]
    seconds = last - first[0]
    latencies.sort()
    return {"order_lines": lines, "seconds": round(seconds, 3), "lines_per_second": round(lines / seconds),
            "latency_p50_ms": round(_percentile(latencies, 0.5) * 1000, 1),
            "latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1)}


def run(orders: int = 200_000, workers: int = 1, partitions: int = 4, page_size: int = 1000, seed: int = 7,
        skus: int = 5000, unclassified_rate: float = 0.03, timeout: float = 600.0, profile: str | None = None,
        log_dir: str | None = None, rate: float = 0.0, with_risk: bool = False, risk_agents: int = 1,
        floor: bool = True, profile_risk: str | None = None) -> dict:
    """``rate`` paces the measured feed (order lines/s; 0: as fast as the producer goes), so latency
    can be read at a sustainable load rather than as queueing behind a burst. ``with_risk`` runs
    ``risk_agents`` risk agents beside the workers and reports their declarations/s over the same feed
    (``pipeline.risk``). ``floor=False`` skips the transport floor (tests)."""
    cfg = FeedConfig(orders=orders, page_size=page_size, seed=seed, skus=skus, wave_orders=max(orders // 4, 1000),
                     unclassified_rate=unclassified_rate)
    pages = list(generate(cfg))
    warm = list(generate(FeedConfig(orders=200, page_size=50, seed=seed + 1000, skus=200, wave_orders=200,
                                    unclassified_rate=0.0)))
    tmp = Path(tempfile.mkdtemp(prefix="customs-e2e-"))
    logs = Path(log_dir) if log_dir else tmp
    procs = []
    with Broker(partitions=partitions, app_id="customs-bench", log_path=str(logs / "broker.log")) as broker:
        try:
            asyncio.run(ensure_topics(broker.bootstrap, {FLOOR_IN: partitions, FLOOR_OUT: partitions}))
            env = dict(os.environ, **FAST_ENV, KAFKA_BROKER=broker.url, CUSTOMS_PARTITIONS=str(partitions),
                       CUSTOMS_APP_ID="customs-bench", CUSTOMS_DATA_DIR=str(tmp), CUSTOMS_PENDING_HOLD_SECONDS="600")
            for n in range(workers):
                command = [sys.executable, "-m", "stream", "worker"]
                if profile and n == 0:
                    command = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "stream", "worker"]
                log = open(logs / f"worker-{n}.log", "ab")
                procs.append(subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log))
                log.close()
            watch = None
            worker_pids = [proc.pid for proc in procs]
            risk_pids: list[int] = []
            if with_risk:
                ports = []
                for n in range(risk_agents):
                    port = _free_port()
                    ports.append(port)
                    risk_env = dict(env, CUSTOMS_METRICS_PORT=str(port), CUSTOMS_RISK_APP_ID=RISK_APP_ID)
                    log = open(logs / f"risk-{n}.log", "ab")
                    command = [sys.executable, "-m", "stream", "worker", "--domains", "risk", "--app-id", RISK_APP_ID]
                    if profile_risk and n == 0:
                        command[1:1] = ["-m", "cProfile", "-o", profile_risk]
                    procs.append(subprocess.Popen(command, env=risk_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log))
                    risk_pids.append(procs[-1].pid)
                    log.close()
                watch = RiskWatch(ports)
            asyncio.run(_pipeline_run(broker.bootstrap, warm, timeout=120, risk=watch))  # workers up and assigned
            cpu_before = (_cpu_seconds(worker_pids), _cpu_seconds(risk_pids))
            pipeline = asyncio.run(_pipeline_run(broker.bootstrap, pages, timeout, rate, risk=watch))
            cpu_after = (_cpu_seconds(worker_pids), _cpu_seconds(risk_pids))
            floor = asyncio.run(_floor_run(broker.bootstrap, pages, timeout, partitions)) if floor else None
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(2 if profile or profile_risk else 15)  # SIGINT lets cProfile write its file
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if not log_dir:
                shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "benchmark": "e2e", "workers": workers, "partitions": partitions, "page_size": page_size,
        "cpus": os.cpu_count(), "rate": rate or None, "pipeline": pipeline, "transport_floor": floor,
        "ratio": round(pipeline["lines_per_second"] / floor["lines_per_second"], 3) if floor else None,
    }
    if with_risk:
        r = pipeline["risk"]
        result["risk"] = {"agents": risk_agents, "worker_declarations_per_second": pipeline["declarations_per_second"],
                          "worker_lines_per_second": pipeline["lines_per_second"],
                          "risk_declarations_per_second": r["declarations_per_second"],
                          "keeps_up": r["declarations_per_second"] >= pipeline["declarations_per_second"]}
        if None not in cpu_before and None not in cpu_after:
            # CPU per declaration over the measured feed (the risk agents' until they counted it all): what
            # the rates mean on a machine whose cores are shared, and how many agents keep up with a worker
            declared = pipeline["orders"]
            workers_cpu, risk_cpu = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
            result["risk"]["cpu_seconds"] = {"workers": round(workers_cpu, 2), "risk_agents": round(risk_cpu, 2)}
            result["risk"]["cpu_ms_per_declaration"] = {"workers": round(workers_cpu * 1000 / declared, 3),
                                                        "risk_agents": round(risk_cpu * 1000 / declared, 3)}
    return result


@click.command("e2e")
@click.option("--orders", default=200_000, show_default=True, help="orders in the measured feed")
@click.option("--workers", default=1, show_default=True, help="worker processes")
@click.option("--partitions", default=4, show_default=True)
@click.option("--page-size", default=1000, show_default=True, help="orders per page/1 message")
@click.option("--seed", default=7, show_default=True)
@click.option("--unclassified-rate", default=0.03, show_default=True, help="share of SKUs without an HS code")
@click.option("--timeout", default=600.0, show_default=True, help="seconds to wait for the last declaration")
@click.option("--profile", default=None, help="write a cProfile of worker 0 to this file")
@click.option("--log-dir", default=None, help="keep broker and worker logs here")
@click.option("--rate", default=0.0, show_default=True,
              help="pace the measured feed at this many order lines/s (0: unpaced) to read latency under load")
@click.option("--with-risk", is_flag=True,
              help="run risk agents beside the workers (own consumer group) and report their declarations/s")
@click.option("--risk-agents", default=1, show_default=True, type=click.IntRange(1),
              help="risk agent processes with --with-risk (they share the partitions of `declarations`)")
@click.option("--profile-risk", default=None, help="with --with-risk: write a cProfile of risk agent 0 to this file")
def e2e_command(orders, workers, partitions, page_size, seed, unclassified_rate, timeout, profile, log_dir, rate,
                with_risk, risk_agents, profile_risk):
    """End-to-end lines/s and latency through broker and workers, next to the raw transport floor."""
    click.echo(orjson.dumps(run(orders=orders, workers=workers, partitions=partitions, page_size=page_size,
                                seed=seed, unclassified_rate=unclassified_rate, timeout=timeout, profile=profile, log_dir=log_dir,
                                rate=rate, with_risk=with_risk, risk_agents=risk_agents,
                                profile_risk=profile_risk),
                            option=orjson.OPT_INDENT_2).decode())
