"""The embedded broker: `customs-stream broker` starts Tansu with the project's topics and stops it cleanly."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import pytest

from stream.broker import Broker, parse_listen
from stream.runtime.topics import PUBLIC_TOPICS, topic_plan
from tests.fixtures.broker import start_broker, stop_broker_process

pytestmark = pytest.mark.broker


def _topics(bootstrap: str) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    async def go():
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            names = await admin.list_topics()
            described = await admin.describe_topics(names)
            return {d["topic"]: len(d["partitions"]) for d in described}
        finally:
            await admin.close()

    return asyncio.run(go())


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_cli_broker_creates_topics_and_round_trips(broker):
    topics = _topics(broker.bootstrap)
    for name in PUBLIC_TOPICS:
        assert topics[name] == broker.partitions
    assert topics["customs-stream-stock-changelog"] == broker.partitions

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def round_trip():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        await producer.send_and_wait("orders", b'{"x":1}', key=b"KZ-ALA-CW-01", partition=2)
        await producer.stop()
        consumer = AIOKafkaConsumer("orders", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), 10)
        finally:
            await consumer.stop()
        return msg

    msg = asyncio.run(round_trip())
    assert (msg.partition, msg.key, msg.value) == (2, b"KZ-ALA-CW-01", b'{"x":1}')


def test_sigterm_leaves_no_listener():
    running = start_broker(partitions=2)
    assert _listening(running.port)
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(10) == 0
    deadline = time.monotonic() + 5
    while _listening(running.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _listening(running.port)
    stop_broker_process(running.process)


def test_sigint_stops_child_too():
    running = start_broker(partitions=1)
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(10) == 0
    assert not _listening(running.port)
    stop_broker_process(running.process)


def test_broker_class_context_manager():
    with Broker(partitions=3, app_id="t-app") as b:
        pid = b.process.pid
        topics = _topics(b.bootstrap)
        assert topics["t-app-stock-changelog"] == 3
        assert topics["t-app-__assignor-__leader"] == 1
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert b.process is None


def test_listen_is_loopback_only():
    import click

    assert parse_listen("127.0.0.1:9999") == ("127.0.0.1", 9999)
    assert parse_listen("localhost:9") == ("127.0.0.1", 9)
    with pytest.raises(click.BadParameter):
        parse_listen("0.0.0.0:9092")
    assert set(topic_plan(4, "a")) >= set(PUBLIC_TOPICS)


def test_the_log_end_offset_is_exact_when_each_record_is_its_own_batch(broker, tmp_path, monkeypatch):
    """Faust's table recovery reads the changelog up to the log end offset (ListOffsets). Tansu
    answers it with the last batch's base offset + 1, which falls short when that batch holds several
    records; the worker's changelog producer therefore sends one record per batch."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from stream import settings
    from stream.app import create_app

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, max_batch_size=1, linger_ms=50)
        await producer.start()
        try:
            sent = [await producer.send("customs-stream-stock-changelog", b"{}", key=b"k", partition=1)
                    for _ in range(5)]
            offsets = [(await future).offset for future in sent]
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        try:
            tp = TopicPartition("customs-stream-stock-changelog", 1)
            return offsets, (await consumer.end_offsets([tp]))[tp]
        finally:
            await consumer.stop()

    offsets, end = asyncio.run(go())
    assert offsets == [0, 1, 2, 3, 4]
    assert end == 5
    monkeypatch.setenv("CUSTOMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CUSTOMS_PAGES_IN_FLIGHT", "2")
    app = create_app(settings.load())
    assert app.conf.producer_max_batch_size == 1
    assert app.customs_pipelines["warehouse"].max_in_flight == 2


def test_a_broker_whose_tansu_exits_says_why_at_once():
    """Issue 8.11: the child exited (here: its port is taken) and the command says so with what it
    wrote, instead of waiting out the readiness timeout and blaming metadata requests."""
    import socket
    import subprocess
    import sys

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        done = subprocess.run([sys.executable, "-m", "stream", "broker", "--listen", f"127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=300,
                              env={**__import__("os").environ, "CUSTOMS_PARTITIONS": "1"})
    finally:
        taken.close()
    assert done.returncode == 1
    assert "tansu exited with code" in done.stderr and "did not answer" not in done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "in use" in done.stderr.lower()  # what tansu said
