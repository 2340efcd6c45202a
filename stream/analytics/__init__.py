"""Analytics: the ClickHouse sink, its schema, a local ClickHouse server and operator reports.

The worker calls `make_sink(settings)`; it returns None when no ClickHouse is configured
(CLICKHOUSE_URL empty), and the worker runs without a sink.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.analytics.sink import Sink
    from stream.settings import Settings

__all__ = ["make_sink"]


def make_sink(settings: "Settings", metrics=None) -> "Sink | None":
    if not settings.clickhouse_url:
        return None
    from stream.analytics.sink import Sink

    return Sink(
        settings.clickhouse_url,
        batch_rows=settings.sink_batch_rows,
        max_age=settings.sink_max_age_seconds,
        max_rows=settings.sink_max_rows,
        metrics=metrics,
    )
