"""The Faust app factory and the wiring of a domain onto it (agent, table, timer, rebalance hooks)."""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from stream.runtime.continuity import BrokerProbe, Continuity
from stream.settings import env
from stream.runtime.domain import Domain
from stream.runtime.pipeline import Pipeline
from stream.runtime.producer import Outputs
from stream.runtime.topics import partitions_of

log = logging.getLogger(__name__)

# how often a domain's timer runs unless it says (``Domain.tick_seconds``)
DEFAULT_TICK_SECONDS = 1.0


def faust_app(cfg, app_id: str | None = None):
    """A Faust app configured for the pipeline: raw bytes, in-memory tables rebuilt from their
    changelogs, one changelog record per batch, the group timeouts of ``cfg``."""
    import faust

    app_id = app_id or cfg.app_id
    datadir = Path(cfg.data_dir).absolute() / "faust" / f"{app_id}-{os.getpid()}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=cfg.broker,
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        datadir=str(datadir),
        topic_partitions=cfg.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=cfg.session_timeout_seconds,
        broker_heartbeat_interval=cfg.heartbeat_seconds,
        broker_rebalance_timeout=cfg.rebalance_timeout_seconds,
        broker_commit_interval=cfg.commit_interval_seconds,
        consumer_max_fetch_size=max(cfg.page_bytes * 4, 4 << 20),
        producer_max_request_size=cfg.page_bytes + (1 << 20),
        # Faust's producer writes only the changelogs (one record per message). One record per batch:
        # Tansu answers a ListOffsets for the log end with the last batch's base offset + 1, and
        # Faust's recovery reads the changelog only up to that offset, so the last records of a
        # multi-record batch were not recovered (tests/test_broker.py checks the one-record case).
        producer_max_batch_size=1,
        web_enabled=cfg.web_port > 0,
        web_port=max(cfg.web_port, 1),
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        loghandlers=[],
    )
    app._customs_fetch_wait_ms = max(1, cfg.fetch_wait_ms)
    _bound_fetch_wait()
    return app


def _bound_fetch_wait() -> None:
    """Faust makes its consumer with fetch_max_wait_ms=1500 and no setting to change it. aiokafka
    keeps one fetch in flight per broker, and skips in it the partitions whose records are still
    being processed: while a busy input's page is handled, the next fetch asks only for the idle
    inputs (confirmations, cancellations, ...), and the broker holds it the whole wait. The busy
    input's next page waited behind it: ~0.6 s after every fetch's worth of pages (a third of the
    tax-free worker's time on the stream). The wait comes from the app (CUSTOMS_FETCH_WAIT_MS)."""
    from faust.transport.drivers import aiokafka as driver

    thread = driver.AIOKafkaConsumerThread
    if getattr(thread._create_worker_consumer, "_customs_bounded", False):
        return
    create = thread._create_worker_consumer

    def _create_worker_consumer(self, transport):
        consumer = create(self, transport)
        wait = getattr(self.app, "_customs_fetch_wait_ms", None)
        if wait is not None:
            consumer._fetch_max_wait_ms = wait  # read when the consumer starts (its Fetcher)
        return consumer

    _create_worker_consumer._customs_bounded = True
    thread._create_worker_consumer = _create_worker_consumer


def table_of(domain: Domain) -> str:
    """The state table's name: ``domain.table`` if it has one (the warehouse keeps `stock`), else its name."""
    return getattr(domain, "table", None) or domain.name


def install(app, domain: Domain, *, outputs: Outputs, partitions: int, tick_seconds: float, max_in_flight: int,
            bootstrap: str | None = None, metrics: Any = None, max_input_bytes: int | None = None,
            snapshot_every: int = 0) -> Pipeline:
    # ``max_input_bytes`` (CUSTOMS_PAGE_BYTES) also bounds a changelog message: the Faust producer
    # takes a page plus 1 MiB (faust_app), so a record larger than a page is written in parts
    """Declare the domain's table, agent, timer and rebalance hooks on a Faust app, and its routes
    on the web server (``domain.routes(app)``, when it has them). With ``bootstrap``, holes in the
    input offsets are checked against the broker (continuity.py)."""
    from faust.types import TP

    inputs = tuple(domain.inputs)
    table = app.Table(table_of(domain), default=None, partitions=partitions, key_type=bytes, value_type=bytes,
                      help=f"{domain.name}: one state record per input message (stream/runtime/state.py)")

    def write_record(partition: int, key: bytes, value: bytes | None) -> None:
        if value is None:  # compaction: a tombstone on the (compacted) changelog
            table.data.pop(key, None)
        else:
            table.data[key] = value
        table.send_changelog(partition, key, value, key_serializer="raw", value_serializer="raw")

    async def seek(topic: str, partition: int, offset: int) -> None:
        # On the consumer's own thread. Faust's `Consumer.seek` calls aiokafka's from this one, while
        # aiokafka runs in Faust's consumer thread: its fetcher's buffer was changed under the fetch task
        # (a KeyError in aiokafka's fetcher, seen under load) and its wake-up set from the wrong event
        # loop, and a partition sought back after a worker's restart could wait for good (two seeks, then
        # nothing: the audit and tax-free SIGKILL tests, now and then). `seek_wait` runs it there.
        await app.consumer.seek_wait({TP(topic, partition): offset})

    async def position(topic: str, partition: int) -> int | None:
        return await app.consumer.position(TP(topic, partition))

    probe = BrokerProbe(bootstrap) if bootstrap else None
    continuity = Continuity(seek, probe, position, metrics=metrics)
    pipeline = Pipeline(domain, outputs=outputs, write_record=write_record, records=lambda: table.data,
                        max_in_flight=max_in_flight, continuity=continuity, max_input_bytes=max_input_bytes,
                        max_record_bytes=max_input_bytes, log_probe=probe, metrics=metrics,
                        snapshot_every=snapshot_every)
    channel = app.topic(*inputs, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                        partitions=partitions)

    async def agent(stream):
        # acknowledged by the committer once the message's record is written (not when the next arrives)
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            await pipeline.page(message.topic, message.partition, message.offset, message.key, message.value,
                                ack=lambda event=event: manual.ack(event))
            if metrics is not None:  # messages behind the partition's end, once per message
                highwater = app.consumer.highwater(message.tp)
                if highwater is not None:
                    metrics.set_lag(message.topic, message.partition, max(highwater - message.offset - 1, 0))

    app.agent(channel, concurrency=1, name=domain.name)(agent)

    async def timer():
        if pipeline.states:
            await pipeline.tick()
        if not app.rebalancing:
            held = {tp.partition for tp in app.consumer.assignment() if tp.topic in inputs}
            if held:
                await pipeline.watch(held)

    app.timer(getattr(domain, "tick_seconds", None) or tick_seconds, name=f"{domain.name}_tick")(timer)

    async def on_revoked(sender, revoked, **kwargs):
        async with pipeline.lock:
            await pipeline.drain()  # every handled message's record written before the partition goes
            pipeline.forget({tp.partition for tp in revoked if tp.topic in inputs})

    async def on_assigned(sender, assigned, **kwargs):
        # a partition we keep stays valid; one that comes back is rebuilt after recovery
        async with pipeline.lock:
            await pipeline.drain()
            held = {tp.partition for tp in assigned if tp.topic in inputs}
            pipeline.forget([p for p in list(pipeline.states) if p not in held])
            pipeline.reassigned()  # a broker that started again shows here first: check the logs again

    app.on_partitions_revoked.connect(on_revoked, weak=False)
    app.on_partitions_assigned.connect(on_assigned, weak=False)

    routes = getattr(domain, "routes", None)
    if routes is not None:
        routes(app)
    return pipeline


def install_all(app, domains, *, outputs: Outputs, cfg, bootstrap: str, metrics: Any = None,
                tick_seconds: float = DEFAULT_TICK_SECONDS) -> dict[str, Pipeline]:
    """Every domain on one app, one producer for their outputs, drained and stopped with the app.
    Undecodable input batches are quarantined (stream/runtime/quarantine.py) instead of stopping the consumer."""
    from stream.runtime import quarantine

    quarantine.install(metrics)
    pipelines = {domain.name: install(app, domain, outputs=outputs, partitions=partitions_of(table_of(domain), cfg.partitions),
                                      tick_seconds=tick_seconds, max_in_flight=cfg.pages_in_flight,
                                      bootstrap=bootstrap, metrics=metrics, max_input_bytes=cfg.page_bytes,
                                      snapshot_every=int(env("CUSTOMS_SNAPSHOT_RECORDS")))
                 for domain in domains}

    @app.task
    async def start_outputs():
        await outputs.start()

    async def stop_outputs(sender, **kwargs):
        for pipeline in pipelines.values():
            try:  # records of the messages handled so far, so a restart need not repeat them
                await asyncio.wait_for(pipeline.drain(), timeout=10.0)
            except asyncio.TimeoutError:
                log.warning("%s: stopping with messages in flight: they are handled again after a restart",
                            pipeline.domain.name)
            await pipeline.stop()
            if pipeline.continuity is not None:
                await pipeline.continuity.stop()
        await outputs.stop()

    app.on_before_shutdown.connect(stop_outputs, weak=False)
    return pipelines
