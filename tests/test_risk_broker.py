"""The risk agent in a real worker of its own consumer group on the real broker: declarations in, risk scores
out; the worker is killed with SIGKILL mid-stream and a new one takes over from the changelog. The indices
are recovered (every score after the kill equals the offline scorer's over the whole history) and no score
is published twice with different content, none is lost."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import orjson
import pytest

from stream.audit.risk_score import RiskState, Scorer
from stream.declaration.engine import Assessor
from stream.declaration.v2 import DeclarationBuilder, Source
from stream.rules import load_rules
from stream.runtime.topics import DECLARATIONS, RISK_HITS
from tests.fixtures.broker import start_broker, stop_broker_process
from tests.fixtures.pipeline import FAST_GROUP_ENV, read_all, stop_worker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

# The risk agent alone in a worker of its own app id (what `customs-stream worker --domains risk
# --app-id customs-stream-risk` runs once the integrator maps the name).
RISK_WORKER = """
import asyncio, dataclasses, faust
from stream import settings
from stream.app import create_app
from stream.broker import bootstrap_of, ensure_topics
from stream.runtime.app import table_of
from stream.runtime.topics import topic_plan
from stream.audit.risk_agent import domain
cfg = dataclasses.replace(settings.load(), app_id=settings.env("CUSTOMS_RISK_APP_ID"))
risk = domain(cfg)
asyncio.run(ensure_topics(bootstrap_of(cfg.broker), topic_plan(cfg.partitions, cfg.app_id, (table_of(risk),))))
faust.Worker(create_app(cfg, [risk]), loglevel="INFO", quiet=True).execute_from_commandline()
"""


def start_risk_worker(broker_url: str, data_dir, log_path, partitions: int = 1) -> subprocess.Popen:
    env = {**os.environ, **FAST_GROUP_ENV, "KAFKA_BROKER": broker_url, "CUSTOMS_DATA_DIR": str(data_dir),
           "CUSTOMS_PARTITIONS": str(partitions)}
    log = open(log_path, "ab")
    try:
        return subprocess.Popen([sys.executable, "-c", RISK_WORKER], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, env=env, start_new_session=True)
    finally:
        log.close()


def produce(bootstrap: str, declarations: list[dict]) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for d in declarations:
                await producer.send(DECLARATIONS, orjson.dumps(d), key=(d["warehouse_id"] or "parcel").encode())
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(go())


def test_sigkill_of_the_risk_agent_recovers_the_indices_and_doubles_no_score(tmp_path):
    from stream.loadgen import RiskFeedConfig, risk_feed

    assessor = Assessor(load_rules())
    docs = [doc for doc, _ in risk_feed(RiskFeedConfig(declarations=1200, seed=23, days=6), assessor)]
    answers = assessor.assess(docs)
    declarations = DeclarationBuilder(assessor.classifier).build_many(
        [Source(a, d, d.get("warehouse_id"), d["operator_bin"]) for a, d in zip(answers, docs)
         if a["schema"] == "assessment/1"])
    scorer, state, expected = Scorer(assessor), RiskState(), {}
    for declaration in declarations:
        decision = scorer.decide(state, declaration)
        state.apply(decision.body)
        if decision.output["hits"] or decision.output["selected"] is not None:
            expected[declaration["declaration_id"]] = decision.output
    late = {d["declaration_id"] for d in declarations[800:]} & set(expected)
    assert len(expected) > 50 and len(late) > 10

    broker = start_broker(partitions=1)
    first = start_risk_worker(broker.url, tmp_path, tmp_path / "risk-1.log")
    second = None
    try:
        produce(broker.bootstrap, declarations[:300])
        read_all(broker.bootstrap, (RISK_HITS,), lambda got: len(got[RISK_HITS]) >= 10, timeout=120)
        killer = threading.Timer(0.3, lambda: os.kill(first.pid, signal.SIGKILL))
        killer.start()
        produce(broker.bootstrap, declarations[300:700])
        killer.join()
        assert first.wait(10) == -signal.SIGKILL
        second = start_risk_worker(broker.url, tmp_path, tmp_path / "risk-2.log")
        produce(broker.bootstrap, declarations[700:])

        def complete(got):
            return {d["declaration_id"] for d in got[RISK_HITS]} >= set(expected)

        got = read_all(broker.bootstrap, (RISK_HITS,), complete, timeout=240, idle=3.0)[RISK_HITS]
        published: dict[str, dict] = {}
        for doc in got:
            # a repeat after the kill is the same score (consumers keep one per declaration_id)
            assert published.setdefault(doc["declaration_id"], doc) == doc
        assert set(published) == set(expected), sorted(set(published) ^ set(expected))[:5]
        for ident, doc in published.items():
            assert doc == expected[ident]  # the same indices, learned before the kill and after it
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                stop_worker(process)
        stop_broker_process(broker.process)


def split_parcels(assessor, buyers: int) -> list[dict]:
    """Per buyer two parcels of one day, each under the duty-free threshold (EUR 150 and 140), together above."""
    requests = []
    for b in range(buyers):
        for n, price in enumerate(("150.00", "140.00")):
            requests.append({
                "schema": "assessment-request/1", "order_id": f"SPLIT-{b:03d}-{n}", "flow": "parcel",
                "marketplace": "ozon", "ordered_at": f"2026-11-02T{9 + n:02d}:{b % 60:02d}:00+05:00",
                "operator_bin": "123456789012", "buyer": {"iin": f"9001013{b:05d}", "name": "Test Buyer"},
                "lines": [{"sku": f"S-{b}-{n}", "qty": 1, "unit_price": price, "currency": "EUR", "origin": "CN",
                           "description": "Genuine leather boots, black", "hs_code": "6403000000",
                           "unit_weight_kg": "0.900"}]})
    answers = assessor.assess(requests)
    assert all(a["schema"] == "assessment/1" for a in answers)
    return DeclarationBuilder(assessor.classifier).build_many(
        [Source(a, d, f"KZ-WH-{i % 2}", d["operator_bin"]) for i, (a, d) in enumerate(zip(answers, requests))])


def test_two_risk_agents_share_the_partitions_and_see_a_buyers_parcels_together(tmp_path):
    """Two agents in one group on 2 partitions; each buyer's two parcels are written to different partitions of
    `declarations` (as parcels of two warehouses are). The router puts them in one partition of risk.declarations,
    so the second one scored is a `splitting` hit: one per buyer, none lost, none doubled."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    assessor = Assessor(load_rules())
    declarations = split_parcels(assessor, 40)
    broker = start_broker(partitions=2)
    agents = [start_risk_worker(broker.url, tmp_path / f"a{n}", tmp_path / f"risk-{n}.log", partitions=2)
              for n in range(2)]
    try:
        async def go():
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await producer.start()
            try:
                for i, d in enumerate(declarations):  # a buyer's first parcel to partition 0, the second to 1
                    await producer.send(DECLARATIONS, orjson.dumps(d), key=d["warehouse_id"].encode(), partition=i % 2)
                await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(go())

        def splitting(got):
            return [d for d in got[RISK_HITS] if any(h["indicator"] == "splitting" for h in d["hits"])]

        got = read_all(broker.bootstrap, (RISK_HITS,), lambda got: len(splitting(got)) >= 40, timeout=180, idle=3.0)
        found: dict[str, dict] = {}
        for doc in splitting(got):
            assert found.setdefault(doc["declaration_id"], doc) == doc  # a repeat is the same score
        buyers = {doc["order_id"].rsplit("-", 1)[0] for doc in found.values()}
        assert len(found) == 40 and len(buyers) == 40  # one hit per buyer: the parcel scored second
        for doc in found.values():
            [hit] = [h for h in doc["hits"] if h["indicator"] == "splitting"]
            assert hit["evidence"]["parcels"] == 2
        logs = [(tmp_path / f"risk-{n}.log").read_text(errors="replace") for n in range(2)]
        assert all("Traceback" not in log for log in logs), logs
    finally:
        for process in agents:
            if process.poll() is None:
                stop_worker(process)
        stop_broker_process(broker.process)
