"""The worker: `create_app(cfg, domains=[...])` and `customs-stream worker`.

The app runs a list of domains on the shared runtime (stream/runtime/): by default the warehouse
(stream/warehouse/agents.py); `--domains` names others, each built by `stream/<name>/agents.py:
domain(cfg)`. Several workers with the same app id share the partitions of one broker; a dead
worker's partitions move to the survivors after the session timeout, and they rebuild each domain's
state from its table's changelog. A domain that must scale apart (the risk agent) runs in a worker
of its own app id, so in its own consumer group.
"""
from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
from pathlib import Path

import click

from stream import settings as settings_module
from stream.broker import bootstrap_of, ensure_topics
from stream.runtime.app import faust_app, install_all, table_of
from stream.runtime.producer import Outputs
from stream.runtime.topics import topic_plan

log = logging.getLogger(__name__)

DEFAULT_DOMAINS = ("warehouse",)


# domains whose factory is not ``stream/<name>/agents.py: domain(cfg)``
DOMAIN_FACTORIES = {
    "parcels": "stream.declaration.parcels:parcels_domain",  # assessment-request/1 on `parcels`, declared
    "risk": "stream.audit.risk_agent:domain",  # run it in its own group: --app-id $CUSTOMS_RISK_APP_ID
}


def load_domains(cfg: settings_module.Settings, names, *, metrics=None) -> list:
    """The domains named, each from ``stream/<name>/agents.py: domain(cfg)`` or DOMAIN_FACTORIES (the
    warehouse also takes the worker's metrics)."""
    domains = []
    for name in names:
        if name == "warehouse":
            from stream.warehouse.agents import domain

            domains.append(domain(cfg, metrics=metrics))
            continue
        if name in DOMAIN_FACTORIES:
            module_name, attribute = DOMAIN_FACTORIES[name].split(":")
            domains.append(getattr(importlib.import_module(module_name), attribute)(cfg))
            continue
        try:
            module = importlib.import_module(f"stream.{name}.agents")
        except ModuleNotFoundError as exc:
            raise click.BadParameter(f"no domain {name!r} (stream/{name}/agents.py: {exc})") from None
        domains.append(module.domain(cfg))
    return domains


def create_app(cfg: settings_module.Settings, domains=None, *, assessor=None, metrics=None, sink=None,
               app_id: str | None = None):
    """The Faust app running ``domains`` (default: the warehouse, priced by ``assessor``, which
    defaults to the rules in ``cfg``). ``app.customs_pipelines`` maps domain names to their pipelines."""
    if domains is None:
        from stream.warehouse.agents import domain

        domains = [domain(cfg, assessor=assessor, metrics=metrics)]
    app_id = app_id or cfg.app_id
    app = faust_app(cfg, app_id)
    outputs = Outputs(bootstrap_of(cfg.broker), cfg.page_bytes, compression=cfg.output_compression)
    pipelines = install_all(app, domains, outputs=outputs, cfg=cfg, bootstrap=bootstrap_of(cfg.broker), metrics=metrics)

    if sink is not None:
        from stream.analytics.feeder import SinkFeeder

        # its own consumer group over the output topics, so ClickHouse never slows the page path
        feeder = SinkFeeder(sink, bootstrap_of(cfg.broker), f"{app_id}-clickhouse",
                            commit_interval=cfg.sink_max_age_seconds, max_fetch_bytes=max(cfg.page_bytes * 4, 4 << 20))

        @app.task
        async def feed_clickhouse():
            await feeder.run()

    app.customs_pipelines = pipelines
    return app


@click.command("worker")
@click.option("--broker", "broker_url", default=None, help="Kafka URL (default: KAFKA_BROKER)")
@click.option("--tariff", type=click.Path(exists=True, dir_okay=False), default=None,
              help="tariff CSV (default: CUSTOMS_TARIFF, the shipped data)")
@click.option("--fx", type=click.Path(exists=True, dir_okay=False), default=None,
              help="exchange-rate CSV (default: CUSTOMS_FX, the shipped data)")
@click.option("--domains", default=",".join(DEFAULT_DOMAINS), show_default=True,
              help="comma-separated domains to run (each is stream/<name>/agents.py: domain(cfg))")
@click.option("--app-id", default=None,
              help="Faust app id: consumer group and changelog prefix (default: CUSTOMS_APP_ID); give a "
                   "domain its own to run it in its own consumer group")
@click.option("--loglevel", default="warning", show_default=True)
def worker_command(broker_url, tariff, fx, domains, app_id, loglevel):
    """Run a stream worker: the domains' inputs in, their outputs out (default: the warehouse)."""
    import faust

    from stream._malloc import tune
    from stream.settings import env

    tune(env("CUSTOMS_MALLOC"))  # before the client's threads make their arenas (glibc: nothing)
    cfg = settings_module.load()
    changes = {}
    if broker_url:
        changes["broker"] = broker_url
    if tariff:
        changes["tariff_path"] = Path(tariff)
    if fx:
        changes["fx_path"] = Path(fx)
    if app_id:
        changes["app_id"] = app_id
    cfg = dataclasses.replace(cfg, **changes)
    names = [name.strip() for name in domains.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("no domain given", param_hint="--domains")

    from stream import metrics
    from stream.analytics import make_sink

    running = load_domains(cfg, names, metrics=metrics)
    asyncio.run(ensure_topics(bootstrap_of(cfg.broker),
                              topic_plan(cfg.partitions, cfg.app_id, tuple(table_of(d) for d in running))))
    if cfg.metrics_port > 0:
        metrics.start_server(cfg.metrics_port, addr=cfg.metrics_host)
    app = create_app(cfg, running, metrics=metrics, sink=make_sink(cfg, metrics=metrics))
    worker = faust.Worker(app, loglevel=loglevel.upper(), quiet=True)
    worker.execute_from_commandline()
