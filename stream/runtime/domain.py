"""The interface between the shared runtime and a domain: what a domain gives, what it gets back.

A domain (the warehouse, audit, tax-free, ...) is pure decision logic over a partition's state. The
runtime (stream/runtime/) owns everything around it: consuming the co-partitioned inputs, the page
pipeline, the changelog, recovery, timers and rebalances. For every input message it calls

    effects = domain.handle(state, topic, key, value, now)

and then, in this order: applies ``effects.body`` to the state (``state.apply``; the next message
reads it), sends ``effects.outputs``, waits until the broker acknowledged every output, writes the
record (the runtime's envelope around ``effects.body``) to the state table's changelog, and only then
acknowledges the input message. After ``on_delivered(effects.counts)`` the domain may count metrics.

Rules a domain follows (they make at-least-once delivery safe):

- ``handle`` and ``tick`` never mutate the state: they decide against it and return a body. The body
  is the ONLY way state changes, live and on recovery (``State.apply`` replays the changelog).
- A redelivered input changes nothing: deduplicate by id and content digest inside the state.
- A crash between outputs and record repeats the same outputs: give outputs deterministic ids.
- Bodies are JSON-able dicts, bounded in size (chunk large work over ticks), with no personal data.
- ``handle`` never raises for bad input: it turns it into `rejection/1` outputs. If it raises anyway,
  the runtime rejects the message with ``internal_error`` and records it as applied.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Effects:
    """What one input message (or one tick) does.

    outputs: topic -> [(key, value)], sent (and acknowledged) before the record is written; a key of
        None lets the producer choose the partition. Values are bytes, already serialised.
    body: the record body to apply to the state (and write to the changelog); None: state unchanged.
        For an input message the runtime still records the input offset it applied.
    counts: anything; handed to ``Domain.on_delivered`` once the outputs were acknowledged.
    """
    outputs: dict[str, list[tuple[bytes | None, bytes]]] = field(default_factory=dict)
    body: dict | None = None
    counts: Any = None


@runtime_checkable
class State(Protocol):
    """One partition's state of a domain. Pure: no Kafka, no clock, no I/O."""

    def apply(self, body: dict) -> None:
        """Apply one record body: the only way the state changes, live and on changelog replay."""
        ...

    def snapshot(self) -> dict:
        """A body that, applied to an empty state (``new_state``), rebuilds this whole state."""
        ...


@runtime_checkable
class Domain(Protocol):
    """A domain agent as the runtime drives it.

    Optional members the runtime looks for with ``getattr`` (a domain may leave them out):
    ``routes(app) -> None``: add HTTP routes to the Faust web server (CUSTOMS_WEB_PORT), e.g.
    ``app.page("/taxfree/{doc_id}")(view)``; called once by the app factory, before the app starts.
    ``tick_seconds: float``: how often ``tick`` is called (default: the runtime's tick interval).
    """

    name: str                      # agent name and state-table name
    inputs: tuple[str, ...]        # co-partitioned input topics (same key, same partition count)
    outputs: tuple[str, ...]       # topics it writes

    def new_state(self, partition: int) -> State:
        """An empty state for a partition this worker holds (then rebuilt from the changelog)."""
        ...

    def handle(self, state: Any, topic: str, key: bytes | None, value: bytes | None, now: float) -> Effects:
        """Decide one input message against ``state`` (without mutating it)."""
        ...

    def tick(self, state: Any, now: float) -> Effects | None:
        """Timer work (deadlines, expiry) for one partition; None: nothing to do."""
        ...

    def on_delivered(self, counts: Any) -> None:
        """Count metrics for effects whose outputs were acknowledged (``Effects.counts``)."""
        ...
