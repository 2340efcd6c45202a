"""The tax-free domain in a real worker on the real broker: documents, confirmations and cancellations
in, decisions out; the worker is killed with SIGKILL mid-stream and a new one takes over from the
changelog. Every document ends with the decisions `taxfree decide` gives offline, none lost, none
decided twice differently; the worker serves the API on its web port."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

import orjson
import pytest

from stream.processes import free_port
from stream.taxfree import samples
from stream.taxfree.access import TokenConfig
from stream.taxfree.decide import Decider
from stream.taxfree.offline import decide_lines
from stream.taxfree.pii import pii_key
from stream.taxfree.rules import KZ_TIME, load
from tests.fixtures.broker import start_broker, stop_broker_process
from tests.fixtures.pipeline import FAST_GROUP_ENV, read_all, stop_worker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SELLERS = [samples.entity(f"1234567890{n:02d}") for n in range(3)]


def inputs(count: int) -> list[dict]:
    """Documents issued today (Kazakhstan time), two thirds confirmed, some refused or cancelled,
    a duplicate receipt, and bad input among them."""
    today = datetime.now(KZ_TIME).date().isoformat()
    issued = f"{today}T15:00:00+05:00"
    later = f"{today}T18:00:00+05:00"
    docs, rest = [], []
    for i in range(count):
        seller = SELLERS[i % 3]
        country = "KZ" if i % 17 == 0 else "DE"
        doc = samples.document(f"TF-{i:05d}", seller, issued_at=issued, country=country, passport=f"P{i:08d}",
                               lines=[samples.line(f"{90000 + 37 * i}.00")])
        docs.append(doc)
        if i % 3 != 2:
            rest.append(samples.confirmation(doc, at=later, airport="ALA" if i % 11 else "GUW"))
        elif i % 6 == 5:
            rest.append(samples.cancellation(doc, at=later))
    dup = samples.document("TF-DUP", SELLERS[0], issued_at=issued, receipts=docs[0]["receipts"])
    bad = dict(docs[1], document_id="TF-BAD", lines=[{**docs[1]["lines"][0], "vat": "1.00"}])
    return docs + [dup, bad] + rest + [samples.confirmation(docs[0], at=later, official_id="SRA-9")]


def start_taxfree_worker(broker_url: str, data_dir, log_path, **env):
    import subprocess
    import sys

    full = {**os.environ, **FAST_GROUP_ENV, "KAFKA_BROKER": broker_url, "CUSTOMS_DATA_DIR": str(data_dir),
            "CUSTOMS_PARTITIONS": "1", **{k: str(v) for k, v in env.items()}}
    log = open(log_path, "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "stream", "worker", "--domains", "taxfree", "--loglevel",
                                 "info"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=full,
                                start_new_session=True)
    finally:
        log.close()


TOPIC = {"taxfree-document/1": "taxfree.documents", "taxfree-confirmation/1": "taxfree.confirmations",
         "taxfree-cancellation/1": "taxfree.cancellations"}


def send_all(bootstrap: str, messages: list[dict]) -> None:
    """In order, keyed by document_id: one producer per run of messages of one topic."""
    run, topic = [], None
    for message in messages + [None]:
        this = TOPIC[message["schema"]] if message else None
        if run and this != topic:
            _produce_keyed(bootstrap, topic, run)
            run = []
        topic = this
        if message:
            run.append(message)


def _produce_keyed(bootstrap, topic, messages):
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for m in messages:
                await producer.send(topic, orjson.dumps(m), key=m["document_id"].encode())
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(go())


def test_sigkill_mid_stream_loses_and_doubles_no_decision(tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMS_DATA_DIR", str(tmp_path))
    (tmp_path / "taxfree").mkdir()
    (tmp_path / "taxfree" / "jwks.json").write_text(json.dumps(samples.jwks(*SELLERS)))
    messages = inputs(240)
    decider = Decider(load(), samples.keyset(*SELLERS), pii_key())  # same PII key file as the workers
    today = datetime.now(KZ_TIME).date()
    expected = {d["document_id"]: d for d in decide_lines([orjson.dumps(m) for m in messages], decider, today)
                if d["schema"] == "taxfree-decision/1"}
    rejected_offline = sorted(r["reason"] for r in decide_lines([orjson.dumps(m) for m in messages], decider, today)
                              if r["schema"] == "rejection/1")
    assert rejected_offline == ["already_confirmed", "vat_mismatch"]
    assert expected["TF-DUP"]["reasons"] == ["duplicate_receipt"]

    broker = start_broker(partitions=1)
    web_port = free_port()
    first = start_taxfree_worker(broker.url, tmp_path, tmp_path / "worker-1.log")
    second = None
    try:
        half = len(messages) // 2
        send_all(broker.bootstrap, messages[:40])
        read_all(broker.bootstrap, ("taxfree.decisions",), lambda d: len(d["taxfree.decisions"]) >= 20, timeout=90)
        killer = threading.Timer(0.5, lambda: os.kill(first.pid, signal.SIGKILL))
        killer.start()
        send_all(broker.bootstrap, messages[40:half])
        killer.join()
        assert first.wait(10) == -signal.SIGKILL
        second = start_taxfree_worker(broker.url, tmp_path, tmp_path / "worker-2.log", CUSTOMS_WEB_PORT=web_port)
        send_all(broker.bootstrap, messages[half:])

        def finished(docs):
            final = {d["document_id"] for d in docs["taxfree.decisions"] if d["decision"] != "pending"}
            pending_expected = {k for k, v in expected.items() if v["decision"] == "pending"}
            seen = {d["document_id"] for d in docs["taxfree.decisions"]}
            return final >= set(expected) - pending_expected and seen >= set(expected)

        docs = read_all(broker.bootstrap, ("taxfree.decisions", "rejections"), finished, timeout=180, idle=3.0)
        by_doc: dict[str, list[dict]] = {}
        for d in docs["taxfree.decisions"]:
            by_doc.setdefault(d["document_id"], []).append(d)
        assert set(by_doc) == set(expected), sorted(set(expected) ^ set(by_doc))[:5]
        for document_id, decisions in by_doc.items():
            distinct = {orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in decisions}
            finals = {x for x in distinct if orjson.loads(x)["decision"] != "pending"}
            assert len(finals) <= 1, (document_id, distinct)  # never decided twice differently
            assert orjson.loads(max(distinct, key=lambda x: orjson.loads(x)["decision"] != "pending")) == \
                expected[document_id], document_id
        rejected = sorted({(r["ref"], r["reason"]) for r in docs["rejections"]})
        assert rejected == [("TF-00000", "already_confirmed"), ("TF-BAD", "vat_mismatch")]

        # the API on the surviving worker's web port, with a token from the same directory's key
        token = TokenConfig.from_env(issuing=True).issue("trading_entity", SELLERS[1].bin)
        url = f"http://127.0.0.1:{web_port}/v1/taxfree/documents/TF-00001"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    body = json.loads(response.read())
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert body["status"] == "refund" and body["decision"] == {
            k: v for k, v in expected["TF-00001"].items() if k != "buyer_ref"}
        other = TokenConfig.from_env(issuing=True).issue("trading_entity", SELLERS[0].bin)
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {other}"}),
                                   timeout=5)
            raise AssertionError("another entity saw the document")
        except urllib.error.HTTPError as error:
            assert error.code == 404
        logs = (tmp_path / "worker-1.log").read_bytes() + (tmp_path / "worker-2.log").read_bytes()
        assert b"P00000001" not in logs and b"MUELLER" not in logs
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                stop_worker(worker)
        stop_broker_process(broker.process)


@pytest.mark.clickhouse
def test_worker_decisions_reach_clickhouse_and_the_operator_duties(tmp_path, monkeypatch, clickhouse_url):
    """A worker with CLICKHOUSE_URL: its decisions land in taxfree_decisions (the analytics sink, PII only
    hashed), and `taxfree invoices` / `taxfree report` read them back equal to the offline figures."""
    from click.testing import CliRunner

    from stream.analytics import schema
    from stream.cli import main
    from stream.taxfree.operator import finals_from_decisions, invoices, report

    monkeypatch.setenv("CUSTOMS_DATA_DIR", str(tmp_path))
    (tmp_path / "taxfree").mkdir()
    (tmp_path / "taxfree" / "jwks.json").write_text(json.dumps(samples.jwks(*SELLERS)))
    messages = inputs(30)
    decider = Decider(load(), samples.keyset(*SELLERS), pii_key())
    today = datetime.now(KZ_TIME).date()
    expected = [d for d in decide_lines([orjson.dumps(m) for m in messages], decider, today)
                if d["schema"] == "taxfree-decision/1"]
    finals = [d for d in expected if d["decision"] != "pending"]
    broker = start_broker(partitions=1)
    worker = start_taxfree_worker(broker.url, tmp_path, tmp_path / "worker.log", CLICKHOUSE_URL=clickhouse_url,
                                  CUSTOMS_SINK_MAX_AGE_SECONDS="0.5")
    try:
        send_all(broker.bootstrap, messages)
        client = schema.client(schema.parse_url(clickhouse_url))
        deadline = time.monotonic() + 120
        try:
            while True:
                count = client.execute("SELECT count() FROM taxfree_decisions FINAL WHERE stage = 1")[0][0]
                if count >= len(finals) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            rows = client.execute("SELECT * FROM taxfree_decisions")
        finally:
            client.disconnect()
        assert count == len(finals)
        assert "P00000001" not in repr(rows) and "MUELLER" not in repr(rows)
        month = today.strftime("%Y-%m")
        quarter = f"{today.year}Q{(today.month - 1) // 3 + 1}"
        got = CliRunner().invoke(main, ["taxfree", "report", "--month", month, "--clickhouse", clickhouse_url])
        assert got.exit_code == 0, got.output
        assert json.loads(got.output) == report(finals_from_decisions(expected), month)
        assert json.loads(got.output)["documents"] > 0
        try:
            want = invoices(finals_from_decisions(expected), quarter)
        except ValueError:  # the quarter's payment days fall outside the working-day calendar's years
            return
        got = CliRunner().invoke(main, ["taxfree", "invoices", "--quarter", quarter, "--clickhouse", clickhouse_url])
        assert [json.loads(line) for line in got.output.splitlines()] == want
    finally:
        stop_worker(worker)
        stop_broker_process(broker.process)
