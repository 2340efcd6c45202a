"""The `customs-stream` command line (also `python -m stream`).

Sub-commands live beside their domain and are imported only when invoked, so `assess` does not pay
for importing Faust.
"""
from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" of a click command
COMMANDS = {
    "assess": "stream.declaration.cli:assess",
    "classify": "stream.classify.cli:classify",
    "bench": "stream.benchmarks.cli:bench",
    "broker": "stream.broker:broker_command",
    "worker": "stream.app:worker_command",
    "loadgen": "stream.loadgen:loadgen_command",
    "demo": "stream.demo:demo_command",
    "clickhouse": "stream.analytics.server:clickhouse_command",
    "risk": "stream.audit.risk_cli:risk",
    "audit": "stream.audit.cli:audit",
    "taxfree": "stream.taxfree.cli:taxfree",
    "local-content": "stream.localcontent.cli:local_content",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def __init__(self, *args, lazy_commands: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        if name in self.lazy_commands:
            module_name, attribute = self.lazy_commands[name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="customs-stream")
def main():
    """E-commerce customs warehouse stream processor (Kazakhstan / EAEU).

    Goods from foreign marketplaces stay under customs control in a customs warehouse until a buyer
    purchases them; at purchase they are declared, classified and assessed (duty, excise, VAT).
    """
