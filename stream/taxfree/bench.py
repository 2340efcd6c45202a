"""`customs-stream bench taxfree`: tax-free documents decided per second on one worker, as JSON.

Default: what one worker does per input message, in-process: the runtime's call into the domain
(`TaxfreeDomain.handle`: parse and validate the bytes, verify the QR's Ed25519 signature, check the
line VAT and the rules, decide), applying the record body to the partition state, and serialising the
record body as the changelog would. Documents are electronic (one signature check each); with
--confirm every document is then confirmed at an airport (a second message, and its refund).

--stream: the same documents through the embedded broker and one real worker (`worker --domains
taxfree`, the shared runtime: one changelog record per message, outputs acknowledged before it):
from the first document sent until the last pending decision is read back.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import orjson


def sellers():
    from stream.taxfree import samples

    return [samples.entity(f"1234567890{n:02d}", seed="bench") for n in range(10)]


def inputs(documents: int, confirm: bool, prefix: str = "TF-B",
           issued_at: str = "2026-08-15T14:20:00+05:00") -> tuple[list[tuple[str, bytes, bytes]], object]:
    from stream.taxfree import samples
    from stream.taxfree.agents import CONFIRMATIONS, DOCUMENTS

    entities = sellers()
    messages = []
    confirmations = []
    for i in range(documents):
        doc = samples.document(f"{prefix}{i:08d}", entities[i % 10], passport=f"P{i:08d}", issued_at=issued_at,
                               lines=[samples.line(f"{90000 + i % 50000}.00")])
        key = doc["document_id"].encode()
        messages.append((DOCUMENTS, key, orjson.dumps(doc)))
        if confirm:
            confirmations.append((CONFIRMATIONS, key, orjson.dumps(samples.confirmation(doc))))
    return messages + confirmations, samples.keyset(*entities)


def run(documents: int, confirm: bool, repeat: int) -> dict:
    from stream.taxfree.agents import TaxfreeDomain
    from stream.taxfree.decide import Decider
    from stream.taxfree.rules import load

    messages, keys = inputs(documents, confirm)
    best = None
    for _ in range(repeat):
        domain = TaxfreeDomain(Decider(load(), keys, b"b" * 32))
        state = domain.new_state(0)
        decisions = 0
        started = time.perf_counter()
        for topic, key, value in messages:
            effects = domain.handle(state, topic, key, value, 0.0)
            if effects.body is not None:
                orjson.dumps(effects.body)  # what the runtime writes to the changelog
                state.apply(effects.body)
            decisions += len(effects.outputs.get("taxfree.decisions", ()))
        seconds = time.perf_counter() - started
        if best is None or seconds < best[0]:
            best = (seconds, decisions, domain)
    seconds, decisions, domain = best
    refunds = sum(1 for r in domain.ledgers[0].docs.values() if r["decision"]["decision"] == "refund")
    return {
        "benchmark": "taxfree", "documents": documents, "messages": len(messages), "confirmed": confirm,
        "signature_checks": documents, "decisions": decisions, "refunds": refunds, "seconds": round(seconds, 4),
        "documents_per_second": round(documents / seconds), "messages_per_second": round(len(messages) / seconds),
        "repeat": repeat, "scope": "one worker in-process: domain.handle + state.apply + record serialisation",
    }


def paged(messages, page_size: int, partitions: int = 1):
    """The document messages as page/1 messages of `page_size` items (what a feed sends at full rate);
    with `partitions`, each page holds the items of one partition (by the default partitioner) and is
    sent there, keyed by its first item."""
    from stream.taxfree.claims import partition_of

    by_partition: dict[int, list] = {}
    for message in messages:
        by_partition.setdefault(partition_of(message[1], partitions) if partitions > 1 else 0, []).append(message)
    pages = []
    for part in by_partition.values():
        for start in range(0, len(part), page_size):
            chunk = part[start:start + page_size]
            items = b",".join(value for _, _, value in chunk)
            pages.append((chunk[0][0], chunk[0][1], b'{"schema":"page/1","items":[' + items + b"]}"))
    return pages


async def _send_and_collect(bootstrap: str, messages, timeout: float, page_size: int = 1,
                            partitions: int = 1) -> tuple[float, int]:
    """Send the documents, read taxfree.decisions until each has its decision: (seconds, decisions)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    wanted = {key for _, key, _ in messages}
    if page_size > 1:
        messages = paged(messages, page_size, partitions)
    from stream.benchmarks.e2e import READER_FETCH_WAIT_MS

    consumer = AIOKafkaConsumer("taxfree.decisions", bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                enable_auto_commit=False, group_id=None, fetch_max_wait_ms=READER_FETCH_WAIT_MS)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1 << 20,
                                max_request_size=4 << 20)
    await producer.start()
    try:
        await consumer.seek_to_end()
        for tp in consumer.assignment():
            await consumer.position(tp)
        started = time.perf_counter()

        async def send():
            for topic, key, value in messages:
                await producer.send(topic, value, key=key)
            await producer.flush()

        sender = asyncio.ensure_future(send())
        seen: set[bytes] = set()
        decisions = 0
        deadline = time.monotonic() + timeout
        while seen < wanted and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                for message in batch:
                    decisions += 1
                    seen.add(message.key)
        seconds = time.perf_counter() - started
        await sender
        if not seen >= wanted:
            raise RuntimeError(f"only {len(seen & wanted)} of {len(wanted)} documents decided in {timeout}s")
        return seconds, decisions
    finally:
        await producer.stop()
        await consumer.stop()


def run_stream(documents: int, timeout: float = 600.0, page_size: int = 500, partitions: int = 1) -> dict:
    """Documents through the embedded broker and one `worker --domains taxfree`; with `partitions` > 1
    the tax-free topics have that many partitions and every receipt is claimed across them
    (stream/taxfree/claims.py): the cost of the cross-partition check, on the same worker."""
    from datetime import datetime

    from stream.benchmarks.e2e import FAST_ENV
    from stream.broker import Broker
    from stream.taxfree import samples
    from stream.taxfree.rules import KZ_TIME

    issued_at = f"{datetime.now(KZ_TIME).date().isoformat()}T15:00:00+05:00"  # valid today: no lapse
    warm, _ = inputs(50, False, prefix="TF-W", issued_at=issued_at)
    measured, _ = inputs(documents, False, prefix="TF-S", issued_at=issued_at)
    tmp = Path(tempfile.mkdtemp(prefix="customs-taxfree-bench-"))
    (tmp / "taxfree").mkdir()
    (tmp / "taxfree" / "jwks.json").write_text(json.dumps(samples.jwks(*sellers())))
    app_id = "customs-bench-taxfree"
    worker = None
    before = os.environ.get("CUSTOMS_TAXFREE_PARTITIONS")
    os.environ["CUSTOMS_TAXFREE_PARTITIONS"] = str(partitions)  # the broker's topic plan reads it
    try:
        with Broker(partitions=1, app_id=app_id, log_path=str(tmp / "broker.log")) as broker:
            env = dict(os.environ, **FAST_ENV, KAFKA_BROKER=broker.url, CUSTOMS_PARTITIONS="1",
                       CUSTOMS_APP_ID=app_id, CUSTOMS_DATA_DIR=str(tmp))
            with open(tmp / "worker.log", "ab") as log:
                worker = subprocess.Popen([sys.executable, "-m", "stream", "worker", "--domains", "taxfree"],
                                          env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            asyncio.run(_send_and_collect(broker.bootstrap, warm, 120))  # the worker is up and assigned
            seconds, decisions = asyncio.run(_send_and_collect(broker.bootstrap, measured, timeout, page_size,
                                                               partitions))
    finally:
        if before is None:
            os.environ.pop("CUSTOMS_TAXFREE_PARTITIONS", None)
        else:
            os.environ["CUSTOMS_TAXFREE_PARTITIONS"] = before
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "benchmark": "taxfree",
        "scope": f"stream: embedded broker + one worker (--domains taxfree), {partitions} partition(s)"
                 + (", receipts claimed across partitions" if partitions > 1 else ""),
        "partitions": partitions,
        "documents": documents, "page_size": page_size, "signature_checks": documents, "decisions": decisions,
        "seconds": round(seconds, 3),
        "documents_per_second": round(documents / seconds), "cpus": os.cpu_count(),
    }


@click.command()
@click.option("--documents", default=20000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--confirm/--no-confirm", default=True, show_default=True,
              help="Confirm every document at an airport too (a second message and its refund; in-process only).")
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(1, 20), help="Best of N runs (in-process).")
@click.option("--stream", "on_stream", is_flag=True, help="Through the embedded broker and a real worker.")
@click.option("--timeout", default=600.0, show_default=True, help="--stream: seconds to wait for the last decision.")
@click.option("--page-size", default=500, show_default=True, type=click.IntRange(1, 1000),
              help="--stream: documents per page/1 message (1: one message per document).")
@click.option("--partitions", default=1, show_default=True, type=click.IntRange(1, 64),
              help="--stream: partitions of the tax-free topics (more than 1: receipts claimed across them).")
def taxfree_bench_command(documents, confirm, repeat, on_stream, timeout, page_size, partitions):
    """Tax-free documents decided per second on one worker (signature checks included), as JSON."""
    result = (run_stream(documents, timeout, page_size, partitions) if on_stream
              else run(documents, confirm, repeat))
    click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
