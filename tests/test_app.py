"""The worker's app factory: a list of domains on one Faust app, each with its table, agent and
timer; a domain's HTTP routes on the web server; `--domains` names them."""
from __future__ import annotations

import click
import pytest

from stream import settings
from stream.app import create_app, load_domains
from stream.runtime.domain import Effects
from stream.warehouse.agents import WarehouseDomain
from tests.fixtures.builders import fake_assess


class Counter:
    """A minimal domain: counts messages per partition (its state), one route."""

    name = "counter"
    inputs = ("audit.events",)
    outputs = ()

    def __init__(self):
        self.routed = None

    def new_state(self, partition):
        return CounterState()

    def handle(self, state, topic, key, value, now):
        return Effects({}, {"n": 1})

    def tick(self, state, now):
        return None

    def on_delivered(self, counts):
        pass

    def routes(self, app):
        self.routed = app

        @app.page("/v1/counter")
        async def count(web, request):
            return web.json({"ok": True})


class CounterState:
    def __init__(self):
        self.n = 0

    def apply(self, body):
        self.n += body["n"]

    def snapshot(self):
        return {"n": self.n}


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CUSTOMS_WEB_PORT", "0")
    return settings.load()


def test_several_domains_run_on_one_app_each_with_its_table_and_routes(cfg):
    counter = Counter()
    warehouse = WarehouseDomain(assess=fake_assess, hold_seconds=60)
    app = create_app(cfg, [warehouse, counter], app_id="customs-test")
    assert set(app.customs_pipelines) == {"warehouse", "counter"}
    assert {"stock", "counter"} <= set(app.tables)  # the warehouse keeps its `stock` table
    assert counter.routed is app
    assert app.conf.id == "customs-test"


def test_domains_are_named_on_the_command_line(cfg):
    [warehouse] = load_domains(cfg, ["warehouse"])
    assert isinstance(warehouse, WarehouseDomain) and warehouse.inputs == ("goods.inbound", "orders")
    with pytest.raises(click.BadParameter, match="no domain 'nosuch'"):
        load_domains(cfg, ["nosuch"])


def test_the_worker_consumer_fetch_waits_as_configured(cfg, monkeypatch):
    """Faust fixes fetch_max_wait_ms at 1500; the worker's consumer takes CUSTOMS_FETCH_WAIT_MS (a busy
    input's next page waited behind a fetch of the idle inputs for that long)."""
    import asyncio

    async def fetch_wait(app) -> int:  # aiokafka makes its consumer inside a running loop
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()  # never started: closes its client

    monkeypatch.setenv("CUSTOMS_FETCH_WAIT_MS", "80")
    assert asyncio.run(fetch_wait(create_app(settings.load(), [Counter()], app_id="customs-test-fetch"))) == 80
    default = create_app(cfg, [Counter()], app_id="customs-test-fetch-default")
    assert asyncio.run(fetch_wait(default)) == 100
