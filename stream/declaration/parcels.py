"""The parcel flow in the stream (README: post-release control): topic `parcels` with `assessment-request/1` documents of
flow "parcel" (goods sent straight to a buyer, not through a customs warehouse; single documents or
`page/1`), each valid one assessed and declared on `declarations` as `declaration/2`, with
`warehouse_id` null. A Domain of the shared runtime (stream/runtime/domain.py).

Guarantees, as for warehouse orders:
- at-least-once with idempotent effects: the state remembers every order id it declared or rejected with
  its content digest, so a redelivered parcel changes nothing and an order id that comes back with other
  content is a `conflicting_duplicate`; the declaration id is deterministic from the order id, so the
  repeat of a crash between outputs and record carries the same id (consumers deduplicate by it);
- bounded state: an order id is remembered for CUSTOMS_PARCEL_DEDUP_DAYS days, then forgotten by the
  timer (in chunks); redeliveries come within minutes, a feed that repeats an order after that is
  declared again under the same declaration id;
- bad input gets `rejection/1` with its reason and its own ref, and the page's other items go on.

Redeliveries are caught in the partition that holds the order: a producer retrying a message sends it
with the same key, to the same partition. Producers key single parcels by order_id.

The declarant of a parcel is the operator running the flow: CUSTOMS_PARCEL_OPERATOR_BIN, or the
request's own `operator_bin` (an extension the schema allows; checked here). The buyer leaves only as
`buyer_ref` (stream/declaration/v2.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Sequence

import orjson

from stream.contracts.reasons import rejection
from stream.contracts.validate import _bin_check, parse_json_line, ref_of, validate_document
from stream.runtime.domain import Effects
from stream.runtime.pages import page_items
from stream.runtime.topics import DECLARATIONS, PARCELS, REJECTIONS

REQUEST_SCHEMA = "assessment-request/1"
DECLARED, REJECTED = "D", "R"
FORGET_PER_TICK = 50_000
_DAY_SECONDS = 86_400
_check_bin = _bin_check()


def digest(doc: dict) -> str:
    return hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


class ParcelsState:
    """Order ids seen in one partition: order_id -> [status, content digest, day seen (days since epoch)]."""

    def __init__(self, partition: int | None = None):
        self.partition = partition
        self.orders: dict[str, list] = {}

    def apply(self, body: dict) -> None:
        self.orders.update(body.get("o", {}))
        for order_id in body.get("forget", ()):
            self.orders.pop(order_id, None)

    def snapshot(self) -> dict:
        return {"o": dict(self.orders)}


@dataclass
class ParcelsDomain:
    """Parcels in, declarations and rejections out."""
    assess: Callable[[list[dict]], list[dict]]              # validated requests -> assessment/1 or rejection/1
    build: Callable[[Sequence[tuple[dict, dict, str]]], list[dict]]  # (assessment, request, bin) -> declaration/2
    operator_bin: str = ""
    dedup_days: int = 3
    tick_seconds: float = 60.0
    name: str = "parcels"
    inputs: tuple[str, ...] = (PARCELS,)
    outputs: tuple[str, ...] = (DECLARATIONS, REJECTIONS)
    counts: dict = field(default_factory=dict)

    def new_state(self, partition: int) -> ParcelsState:
        return ParcelsState(partition)

    def handle(self, state: ParcelsState, topic: str, key: bytes | None, value: bytes | None, now: float) -> Effects:
        rejections: list[dict] = []
        if value is None:
            return self._effects([], [rejection(None, "malformed_json", "empty message (a tombstone) on parcels")], {})
        doc = parse_json_line(value)
        if isinstance(doc, tuple):
            return self._effects([], [rejection(None, *doc)], {})
        items = page_items(doc)
        if isinstance(items, tuple):
            return self._effects([], [rejection(ref_of(doc), *items)], {})
        day = int(now // _DAY_SECONDS)
        seen: dict[str, list] = {}
        candidates: list[tuple[dict, str]] = []
        for item in items:
            problem = validate_document(item, (REQUEST_SCHEMA,))
            ref = ref_of(item)
            if problem is not None:
                rejections.append(rejection(ref, *problem))
                continue
            if item["flow"] != "parcel":
                rejections.append(rejection(ref, "unknown_flow",
                                            f"flow: {PARCELS} takes flow 'parcel' only, not {item['flow']!r}"))
                continue
            operator_bin = item.get("operator_bin", self.operator_bin)
            if not operator_bin:
                rejections.append(rejection(ref, "missing_field", "operator_bin: the parcel names no operator and "
                                                                  "CUSTOMS_PARCEL_OPERATOR_BIN is not set"))
                continue
            if _check_bin(operator_bin) is not None:
                rejections.append(rejection(ref, "invalid_code", "operator_bin: is not a 12-digit BIN"))
                continue
            order_id = item["order_id"]
            content = digest(item)
            known = seen.get(order_id) or state.orders.get(order_id)
            if known is not None:
                if known[1] != content:
                    rejections.append(rejection(order_id, "conflicting_duplicate",
                                                "order_id: seen before with other content"))
                continue  # a redelivery: declared (or rejected) once already
            seen[order_id] = [None, content, day]
            candidates.append((item, operator_bin))
        declarations = []
        if candidates:
            results = self.assess([request for request, _ in candidates])
            assessed = []
            for (request, operator_bin), result in zip(candidates, results):
                entry = seen[request["order_id"]]
                if result.get("schema") == "assessment/1":
                    entry[0] = DECLARED
                    assessed.append((result, request, operator_bin))
                else:
                    entry[0] = REJECTED
                    rejections.append(result)
            declarations = self.build(assessed) if assessed else []
        return self._effects(declarations, rejections, seen)

    @staticmethod
    def _effects(declarations: list[dict], rejections: list[dict], seen: dict) -> Effects:
        outputs: dict[str, list] = {}
        if declarations:
            outputs[DECLARATIONS] = [(d["declaration_id"].encode(), orjson.dumps(d)) for d in declarations]
        if rejections:
            outputs[REJECTIONS] = [((r["ref"] or "").encode() or None, orjson.dumps(r)) for r in rejections]
        counts = (len(declarations), [r["reason"] for r in rejections])
        return Effects(outputs=outputs, body={"o": seen} if seen else None, counts=counts)

    def tick(self, state: ParcelsState, now: float) -> Effects | None:
        oldest = int(now // _DAY_SECONDS) - self.dedup_days
        forget = []
        for order_id, (_, _, day) in state.orders.items():
            if day < oldest:
                forget.append(order_id)
                if len(forget) >= FORGET_PER_TICK:
                    break
        return Effects(body={"forget": forget}) if forget else None

    def on_delivered(self, counts) -> None:
        if counts is None:
            return
        declared, reasons = counts
        self.counts["declared"] = self.counts.get("declared", 0) + declared
        for reason in reasons:
            self.counts[reason] = self.counts.get(reason, 0) + 1


def parcels_domain(cfg, *, assessor=None, builder=None) -> ParcelsDomain:
    """The parcel flow for a worker. ``assessor`` defaults to the rules of ``cfg``."""
    from stream.declaration.v2 import DeclarationBuilder, Source
    from stream.settings import env

    if assessor is None:
        from stream.declaration.engine import Assessor
        from stream.rules import load_rules

        assessor = Assessor(load_rules(cfg))
    if builder is None:
        builder = DeclarationBuilder(classifier=assessor.classifier)

    def build(assessed):
        return builder.build_many([Source(result, request, None, operator_bin)
                                   for result, request, operator_bin in assessed])

    return ParcelsDomain(assess=lambda docs: assessor.assess(docs, validated=True), build=build,
                         operator_bin=env("CUSTOMS_PARCEL_OPERATOR_BIN"),
                         dedup_days=int(env("CUSTOMS_PARCEL_DEDUP_DAYS")))

