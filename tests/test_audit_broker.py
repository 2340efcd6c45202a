"""The case agent on a real broker (`customs-stream worker --domains audit`), driven by the `customs-stream
audit` commands and by risk selections on risk.hits; the worker is SIGKILLed mid-stream and a new one
recovers every case from the changelog with no case event applied twice."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest
from click.testing import CliRunner

from stream.audit.agents import CaseDomain, fixed_today
from stream.audit.ids import case_id_for
from stream.cli import main
from stream.runtime.topics import AUDIT_CASES, AUDIT_EVENTS, REJECTIONS, RISK_HITS
from tests.fixtures.broker import start_broker, stop_broker_process
from tests.fixtures.harness import DomainHarness
from tests.fixtures.pipeline import FAST_GROUP_ENV, read_all, stop_worker
from tests.schema_oracle import schema_validator

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TODAY = "2026-03-20"
CASE_SCHEMA = schema_validator("audit-case-1.json")


def start_case_worker(broker_url: str, tmp_path, name: str) -> subprocess.Popen:
    env = dict(os.environ, **FAST_GROUP_ENV, KAFKA_BROKER=broker_url, CUSTOMS_DATA_DIR=str(tmp_path),
               CUSTOMS_PARTITIONS="2", CUSTOMS_AUDIT_TODAY=TODAY, CUSTOMS_AUDIT_TICK_SECONDS="1")
    log = open(tmp_path / f"{name}.log", "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "stream", "worker", "--domains", "audit", "--loglevel", "info"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
    finally:
        log.close()


def send(bootstrap: str, messages: list[tuple[str, bytes, bytes]], pause: float = 0.0) -> None:
    from aiokafka import AIOKafkaProducer

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for topic, key, value in messages:
                await producer.send_and_wait(topic, value, key=key)
                if pause:
                    await asyncio.sleep(pause)
        finally:
            await producer.stop()

    asyncio.run(go())


def event(case_id: str, kind: str, on: str, **fields) -> tuple[str, bytes, bytes]:
    doc = {"schema": "audit-event/1", "case_id": case_id, "kind": kind, "on": on, **fields}
    return AUDIT_EVENTS, case_id.encode(), orjson.dumps(doc)


def selection(declaration_id: str, revenue: str) -> tuple[str, bytes, bytes]:
    doc = {"schema": "risk-score/1", "order_id": "O-" + declaration_id, "declaration_id": declaration_id,
           "score": 0.9, "revenue_at_risk": revenue, "selected": "risk", "profile": "kz-pca-2026-1",
           "hits": [{"indicator": "undervaluation", "line": 0, "score": 0.9, "revenue_at_risk": revenue}]}
    return RISK_HITS, case_id_for(declaration_id).encode(), orjson.dumps(doc)


def second_wave() -> list[tuple[str, bytes, bytes]]:
    messages = []
    for i in range(40):
        cid = f"CASE-W{i}"
        messages.append(event(cid, "opened", "2026-03-02", declaration_id=f"W-{i}", findings="weight under index",
                              additional_accruals="300.00"))
        messages.append(event(cid, "notification_delivered", "2026-03-03"))
        for n in range(3):
            messages.append(event(cid, "paid", "2026-03-10", amount="100", event_id=f"PAY-{i}-{n}"))
        messages.append(event(cid, "paid", "2026-03-10", amount="100", event_id=f"PAY-{i}-0"))  # a retry
    for i in range(10):
        messages.append(selection(f"R-{i}", f"{1000 + i}.00"))
        messages.append(selection(f"R-{i}", f"{1000 + i}.00"))  # redelivered by the risk agent
    return messages


def expected_cases(messages) -> dict[str, dict]:
    domain = CaseDomain(today=fixed_today(__import__("datetime").date.fromisoformat(TODAY)))
    with DomainHarness(domain) as h:
        for partition in (0, 1):
            for topic, key, value in messages:
                if hash_partition(key) == partition:
                    h.feed(topic, value, key=key, partition=partition)
        return {cid: c.to_doc() for p in (0, 1) for cid, c in h.state(p).cases.items()}


def hash_partition(key: bytes) -> int:
    # only the per-case order matters: any split keeps it
    return key[-1] % 2


def latest(snapshots: list[dict]) -> dict[str, dict]:
    cases: dict[str, dict] = {}
    for doc in snapshots:
        if doc["version"] >= cases.get(doc["case_id"], {"version": 0})["version"]:
            cases[doc["case_id"]] = doc
    return cases


def test_cases_on_a_real_broker_survive_a_sigkill(tmp_path):
    broker = start_broker(partitions=2)
    worker = start_case_worker(broker.url, tmp_path, "worker-1")
    runner = CliRunner()
    try:
        # the officers' commands
        def cli(*args):
            result = runner.invoke(main, ["audit", *args, "--broker", broker.url])
            assert result.exit_code == 0, result.output
            return result.output

        cli("open", "--declaration", "D-1", "--accruals", "18450.00", "--findings", "unit value under the index",
            "--on", "2026-03-02")
        cli("deliver", "CASE-D-1", "--on", "2026-03-02")
        cli("pay", "CASE-D-1", "8450.00", "--on", "2026-03-05", "--event-id", "P-1")
        cli("pay", "CASE-D-1", "8450.00", "--on", "2026-03-05", "--event-id", "P-1")  # a retry: counted once
        cli("explain", "CASE-D-1", "--on", "2026-03-06")
        cli("open", "--declaration", "D-2", "--accruals", "500", "--findings", "splitting", "--on", "2026-01-05")
        cli("deliver", "CASE-D-2", "--on", "2026-01-05")                    # comply_by 2026-02-03: passed today
        cli("pay", "CASE-D-3", "1", "--on", "2026-03-05")                    # no such case
        first = read_all(broker.bootstrap, (AUDIT_CASES, REJECTIONS),
                         lambda d: any(c["case_id"] == "CASE-D-2" and c["state"] == "unfulfilled"
                                       for c in d[AUDIT_CASES]) and d[REJECTIONS], timeout=90)
        cases = latest(first[AUDIT_CASES])
        assert cases["CASE-D-1"]["state"] == "disputed" and cases["CASE-D-1"]["paid"] == "8450.00"
        assert cases["CASE-D-1"]["comply_by"] == "2026-04-03" and cases["CASE-D-1"]["answer_by"] == "2026-03-26"
        assert cases["CASE-D-2"]["changed_by"] == "comply_by_passed"
        assert [r["reason"] for r in first[REJECTIONS]] == ["unknown_case"]

        # a second wave, with the worker killed in the middle of it
        wave = second_wave()
        killed = threading.Event()

        def kill_later():
            time.sleep(1.5)
            os.kill(worker.pid, signal.SIGKILL)  # no goodbye: unrecorded messages are handled again
            killed.set()

        killer = threading.Thread(target=kill_later)
        killer.start()
        send(broker.bootstrap, wave, pause=0.01)
        killer.join()
        assert killed.is_set() and worker.wait(10) == -signal.SIGKILL
        worker = start_case_worker(broker.url, tmp_path, "worker-2")

        expected = expected_cases(wave)
        docs = read_all(broker.bootstrap, (AUDIT_CASES,),
                        lambda d: all(latest(d[AUDIT_CASES]).get(cid, {}).get("version") == c["version"]
                                      for cid, c in expected.items()), timeout=150, idle=3.0)
        snapshots = docs[AUDIT_CASES]
        by_version: dict[tuple[str, int], dict] = {}
        for doc in snapshots:
            CASE_SCHEMA.validate(doc)
            # a snapshot repeated after the kill is the same snapshot: no case event was applied twice
            assert by_version.setdefault((doc["case_id"], doc["version"]), doc) == doc
        final = latest(snapshots)
        for cid, case in expected.items():
            assert final[cid] == case, cid
            assert {v for c, v in by_version if c == cid} == set(range(1, case["version"] + 1)), cid
        assert all(final[f"CASE-W{i}"]["state"] == "complied" for i in range(40))
        assert final[case_id_for("R-3")]["additional_accruals"] == "1003.00"

        # the reading commands see the same cases
        shown = orjson.loads(cli("show", "CASE-D-1"))
        assert shown == final["CASE-D-1"]
        listed = [orjson.loads(line) for line in cli("list", "--state", "complied").splitlines()]
        assert {c["case_id"] for c in listed} == {f"CASE-W{i}" for i in range(40)}
        missing = runner.invoke(main, ["audit", "show", "CASE-NONE", "--broker", broker.url])
        assert missing.exit_code == 1
    finally:
        stop_worker(worker)
        stop_broker_process(broker.process)
