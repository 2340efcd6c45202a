"""`customs-stream bench ...`: benchmark figures as JSON."""
from __future__ import annotations

from stream.cli import LazyGroup

import click

SUBCOMMANDS = {
    "core": "stream.benchmarks.core:core_command",
    "e2e": "stream.benchmarks.e2e:e2e_command",
    "sink": "stream.benchmarks.sink:sink_command",
    "memory": "stream.benchmarks.memory:memory_command",
    "soak": "stream.benchmarks.soak:soak_command",
    "risk": "stream.audit.bench:risk_bench_command",
    "taxfree": "stream.taxfree.bench:taxfree_bench_command",
}


@click.group(cls=LazyGroup, lazy_commands=SUBCOMMANDS)
def bench():
    """Measure the system and print the figures as JSON."""
