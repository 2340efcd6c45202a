"""The Faust application and `customs-stream worker`.

`create_app(settings)` builds the app with the warehouse agent (stream/warehouse/agents.py); the
worker command runs it. Several workers with the same CUSTOMS_APP_ID share the partitions of one
broker; a dead worker's partitions move to the survivors after the session timeout, and they rebuild
the stock from the table's changelog.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import dataclasses
import logging
import os
from pathlib import Path

import click

from stream import settings as settings_module
from stream.broker import bootstrap_of, ensure_topics, topic_plan
from stream.core.fixed import micro
from stream.declaration.engine import KAZAKHSTAN_UTC_OFFSET
from stream.rules.fx import RateNotFound

log = logging.getLogger(__name__)


def tick_seconds(hold_seconds: float) -> float:
    """How often pending orders are re-checked: a quarter of the hold time, within [0.2 s, 5 s]."""
    return min(max(hold_seconds / 4, 0.2), 5.0)


class StockValuer:
    """Value of goods under customs control: their manifest price at today's National Bank rate
    (Kazakhstan's calendar date), in exact tiyn; goods in a currency without a rate count as 0."""

    def __init__(self, fx):
        self.fx = fx

    def __call__(self, units: int, unit_price: str, currency: str) -> int:
        today = (dt.datetime.now(dt.timezone.utc) + KAZAKHSTAN_UTC_OFFSET).date()
        try:
            rate6 = self.fx.rate_micro(currency, today)
        except RateNotFound:
            return 0
        return (units * micro(unit_price) * rate6 + 5 * 10**9) // 10**10  # micro * micro -> tiyn, half up


def create_app(cfg: settings_module.Settings, *, assessor=None, metrics=None, sink=None):
    """The Faust app and its warehouse processor. ``assessor`` defaults to the rules in ``cfg``."""
    import faust

    from stream.warehouse.agents import Outputs, Processor, install

    if assessor is None:
        from stream.declaration.engine import Assessor
        from stream.rules import load_rules

        assessor = Assessor(load_rules(cfg))
    datadir = Path(cfg.data_dir).absolute() / "faust" / f"{cfg.app_id}-{os.getpid()}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        cfg.app_id,
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
        # Faust's producer writes only the changelog (one record per page). One record per batch:
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
    outputs = Outputs(bootstrap_of(cfg.broker), cfg.page_bytes)

    def factory(table_access):
        return Processor(assess=lambda docs: assessor.assess(docs, validated=True), outputs=outputs,
                         value_of=StockValuer(assessor.rules.fx),
                         hold_seconds=cfg.pending_hold_seconds, metrics=metrics,
                         max_in_flight=cfg.pages_in_flight, **table_access)

    processor, _table = install(app, factory, cfg.partitions, tick_seconds(cfg.pending_hold_seconds),
                                bootstrap=bootstrap_of(cfg.broker), metrics=metrics)

    @app.task
    async def start_outputs():
        await outputs.start()

    @app.on_before_shutdown.connect
    async def stop_outputs(sender, **kwargs):
        try:  # records of the pages processed so far, so a restart need not repeat them
            await asyncio.wait_for(processor.drain(), timeout=10.0)
        except asyncio.TimeoutError:
            log.warning("stopping with pages in flight: they are processed again after a restart")
        await processor.stop()
        await outputs.stop()
        if processor.continuity is not None:
            await processor.continuity.stop()

    if sink is not None:
        from stream.analytics.feeder import SinkFeeder

        # its own consumer group over the output topics, so ClickHouse never slows the page path
        feeder = SinkFeeder(sink, bootstrap_of(cfg.broker), f"{cfg.app_id}-clickhouse",
                            commit_interval=cfg.sink_max_age_seconds, max_fetch_bytes=max(cfg.page_bytes * 4, 4 << 20))

        @app.task
        async def feed_clickhouse():
            await feeder.run()

        app.customs_feeder = feeder

    app.customs_processor = processor
    return app


@click.command("worker")
@click.option("--broker", "broker_url", default=None, help="Kafka URL (default: KAFKA_BROKER)")
@click.option("--tariff", type=click.Path(exists=True, dir_okay=False), default=None,
              help="tariff CSV (default: CUSTOMS_TARIFF, the shipped data)")
@click.option("--fx", type=click.Path(exists=True, dir_okay=False), default=None,
              help="exchange-rate CSV (default: CUSTOMS_FX, the shipped data)")
@click.option("--loglevel", default="warning", show_default=True)
def worker_command(broker_url, tariff, fx, loglevel):
    """Run a stream worker: goods under customs control in, declarations out."""
    import faust

    cfg = settings_module.load()
    changes = {}
    if broker_url:
        changes["broker"] = broker_url
    if tariff:
        changes["tariff_path"] = Path(tariff)
    if fx:
        changes["fx_path"] = Path(fx)
    cfg = dataclasses.replace(cfg, **changes)
    asyncio.run(ensure_topics(bootstrap_of(cfg.broker), topic_plan(cfg.partitions, cfg.app_id)))

    from stream import metrics
    from stream.analytics import make_sink

    if cfg.metrics_port > 0:
        metrics.start_server(cfg.metrics_port, addr=cfg.metrics_host)
    app = create_app(cfg, metrics=metrics, sink=make_sink(cfg, metrics=metrics))
    worker = faust.Worker(app, loglevel=loglevel.upper(), quiet=True)
    worker.execute_from_commandline()
