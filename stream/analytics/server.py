"""A local ClickHouse server run as a plain process: generated config, data directory under the
project (var/clickhouse/ by default), loopback only, small memory and thread budgets.

Used by `customs-stream clickhouse`, the demo, the tests and the sink benchmark. Works with
Debian's `clickhouse-server` package (18.16, /usr/sbin/clickhouse-server) and with the official
single `clickhouse` binary (`clickhouse server`). Only the native TCP port is opened; the HTTP and
interserver ports are left out of the config, so the server does not listen on them.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from xml.sax.saxutils import escape

import click

from stream.analytics import schema
from stream.processes import free_port, stop_process

HOST = "127.0.0.1"

CONFIG_TEMPLATE = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{log_dir}/clickhouse-server.log</log>
        <errorlog>{log_dir}/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <listen_host>{host}</listen_host>
    <tcp_port>{port}</tcp_port>
    <path>{data}/</path>
    <tmp_path>{data}/tmp/</tmp_path>
    <user_files_path>{data}/user_files/</user_files_path>
    <format_schema_path>{data}/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>256</max_connections>
    <max_concurrent_queries>32</max_concurrent_queries>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
"""

USERS_TEMPLATE = """<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>1000000000</max_memory_usage>
            <max_threads>2</max_threads>
            <background_pool_size>2</background_pool_size>
            <background_schedule_pool_size>2</background_schedule_pool_size>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
                <read_rows>0</read_rows><execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"""


def server_command() -> list[str] | None:
    """The command that runs a ClickHouse server, or None when none is installed."""
    for candidate in (shutil.which("clickhouse-server"), "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        if candidate and os.access(candidate, os.X_OK):
            return [candidate]
    single = shutil.which("clickhouse") or ("/usr/bin/clickhouse" if os.access("/usr/bin/clickhouse", os.X_OK) else None)
    if single:
        return [single, "server"]
    return None


def clickhouse_available() -> bool:
    return server_command() is not None


class LocalClickHouse:
    """A ClickHouse server child process on loopback.

    `start()` returns once the server answers a query; `stop()` terminates it by its process id
    (SIGTERM, then SIGKILL after a grace period). The data directory survives `stop()`, so a
    server started again on the same directory (and port) sees the same tables.
    """

    def __init__(self, data_dir: str | os.PathLike = "var/clickhouse", port: int = 0, database: str = "customs",
                 start_timeout: float = 60.0):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.database = database
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"clickhouse://{HOST}:{self.port}/{self.database}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def _write_config(self) -> Path:
        conf_dir = self.data_dir / "config"
        log_dir = self.data_dir / "log"
        data = self.data_dir / "data"
        for directory in (conf_dir, log_dir, data):
            directory.mkdir(parents=True, exist_ok=True)
        (conf_dir / "config.xml").write_text(CONFIG_TEMPLATE.format(
            host=HOST, port=self.port, log_dir=escape(str(log_dir)), data=escape(str(data))), encoding="utf-8")
        (conf_dir / "users.xml").write_text(USERS_TEMPLATE, encoding="utf-8")
        return conf_dir / "config.xml"

    def log_tail(self, lines: int = 20) -> str:
        chunks = []
        for name in ("stderr.log", "log/clickhouse-server.err.log"):
            path = self.data_dir / name
            if path.exists():
                chunks.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(chunks)

    def start(self) -> "LocalClickHouse":
        command = server_command()
        if command is None:
            raise RuntimeError("no ClickHouse server installed (Debian: apt-get install clickhouse-server)")
        if self.process and self.process.poll() is None:
            return self
        config = self._write_config()
        stderr = open(self.data_dir / "stderr.log", "ab")
        try:
            self.process = subprocess.Popen(
                [*command, f"--config-file={config}"],
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it
            )
        finally:
            stderr.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"clickhouse-server exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    pass  # listening: now ask (the driver logs a traceback per refused connection)
                self.query("SELECT 1", database="default")
                return
            except Exception as error:  # not listening yet
                last_error = error
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"clickhouse-server did not answer within {self.start_timeout}s: {last_error}")

    def query(self, sql: str, database: str | None = None, params=None):
        from clickhouse_driver import Client

        client = Client(HOST, port=self.port, database=database or self.database, connect_timeout=2,
                        send_receive_timeout=60)
        try:
            return client.execute(sql, params)
        finally:
            client.disconnect()

    def apply_schema(self) -> None:
        schema.apply(self.url)

    def stop(self, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        stop_process(process, timeout)

    def kill(self) -> None:
        """SIGKILL, as an outage would: no clean shutdown."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def __enter__(self) -> "LocalClickHouse":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@click.command("clickhouse")
@click.option("--port", default=9000, show_default=True, type=int,
              help="native-protocol port on 127.0.0.1 (0: any free port)")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False),
              help="server directory (config, data, logs) [default: $CUSTOMS_DATA_DIR/clickhouse]")
@click.option("--database", default="customs", show_default=True)
def clickhouse_command(port: int, data_dir: str | None, database: str):
    """Run a local ClickHouse server in the foreground, with the project's schema applied.

    Prints the CLICKHOUSE_URL to give workers; stops the server on SIGTERM or Ctrl-C.
    """
    from stream.settings import load

    if not clickhouse_available():
        raise click.ClickException(
            "no ClickHouse server installed. Debian: apt-get install clickhouse-server (or `make setup`).")
    data_dir = data_dir or str(load().data_dir / "clickhouse")
    server = LocalClickHouse(data_dir=data_dir, port=port, database=database)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        server.apply_schema()
        click.echo(f"CLICKHOUSE_URL={server.url}", err=False)
        click.echo(f"clickhouse-server pid {server.pid}, data in {server.data_dir}; Ctrl-C to stop", err=True)
        while not stop.is_set():
            if server.process is None or server.process.poll() is not None:
                raise click.ClickException(f"clickhouse-server exited:\n{server.log_tail()}")
            stop.wait(0.5)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("clickhouse-server stopped", err=True)
