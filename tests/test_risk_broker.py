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


def start_risk_worker(broker_url: str, data_dir, log_path) -> subprocess.Popen:
    env = {**os.environ, **FAST_GROUP_ENV, "KAFKA_BROKER": broker_url, "CUSTOMS_DATA_DIR": str(data_dir),
           "CUSTOMS_PARTITIONS": "1"}
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
