"""Goods under customs control: the pure logic of one partition's stock (no Kafka, no Faust).

`Stock` is the warehouse domain's partition state (stream/runtime/domain.py: `State`): it changes
only through `Stock.apply(body)`. A `Txn` (one input message, or one timer tick) reads the state,
decides, and yields a *body*: the message's effects as one JSON-able dict. The runtime writes that
body in one changelog record (stream/runtime/state.py), so a message is applied entirely or not at
all, and recovery replays the bodies through the same `apply`. Nothing else mutates the state.

Invariants (checked by tests/test_stock.py):
- per (warehouse, sku): received - declared = on hand >= 0;
- a manifest id is counted once, an order id is declared at most once (by id and content digest);
- an order short of stock waits as pending, is declared when goods arrive, or is rejected
  (`unknown_sku` / `insufficient_stock`) once it has waited the hold time.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable

import orjson

from stream.contracts.reasons import rejection
from stream.declaration.ids import declaration_id
from stream.declaration.v2 import Source
from stream.warehouse._columns_py import movement_doc
from stream.warehouse.columns import kernel as _columns

log = logging.getLogger(__name__)

# statuses of an order id
DECLARED, REJECTED, PENDING = "D", "R", "P"
# goods facts a manifest line carries into the warehouse (enrich the order lines at declaration;
# the manifest's price and currency value the stock and are overridden by the order's own)
FACT_FIELDS = ("description", "hs_code", "origin", "unit_weight_kg", "unit_volume_l", "category", "unit_price",
               "currency")
# the facts an assessment request line takes from them (the order's price and currency win)
REQUEST_FACT_FIELDS = tuple(name for name in FACT_FIELDS if name not in ("unit_price", "currency"))


def digest(doc: dict) -> str:
    """A short content digest: the same id with other content is a conflicting duplicate."""
    return hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


def _need(order: dict) -> dict[tuple[str, str], int]:
    """Units the order needs per (warehouse, sku)."""
    wh = order["warehouse_id"]
    need: dict[tuple[str, str], int] = {}
    get = need.get
    for line in order["lines"]:
        key = (wh, line["sku"])
        need[key] = get(key, 0) + line["qty"]
    return need


class Stock:
    """The state of one partition: stock per (warehouse, sku), goods facts, ids seen, pending orders."""

    def __init__(self, partition: int = 0, buyer_secret: bytes | None = None) -> None:
        self.partition = partition  # of goods.inbound and orders: stock movements name it
        self.buyer_secret = buyer_secret  # keys the buyer pseudonym of a pending order (None: the setting)
        self.received: dict[tuple[str, str], int] = {}
        self.declared: dict[tuple[str, str], int] = {}
        self.facts: dict[tuple[str, str], dict] = {}
        self.manifests: dict[str, str] = {}          # manifest_id -> digest
        self.orders: dict[str, tuple[str, str]] = {}  # order_id -> (status, digest)
        # order_id -> when it was first recorded (None: before times were kept), in that order; ids
        # older than the window are forgotten (`Txn.forget_order_ids`), so the state stays bounded
        self.order_times: dict[str, float | None] = {}
        self.pending: dict[str, tuple[float, dict]] = {}  # order_id -> (since, order), FIFO
        # derived from pending (not in the body): per (warehouse, sku), the pending orders needing it, FIFO
        self._waiting: dict[tuple[str, str], dict[str, None]] = {}
        self._rank: dict[str, int] = {}  # order_id -> its place in the FIFO
        self._next_rank = 0
        self.seq = 0  # stock transactions applied: every input message and every tick that moved something
        # derived (not in the body): the totals kept between calls of `totals` with a token, and the
        # keys `apply` changed since
        self._valued: dict[tuple[str, str], tuple[int, int, int, int]] | None = None
        self._sums: dict[str, dict[str, int]] = {}
        self._valued_token: object = None
        self._dirty: set[tuple[str, str]] = set()

    def on_hand(self, key: tuple[str, str]) -> int:
        return self.received.get(key, 0) - self.declared.get(key, 0)

    def totals(self, value_of: Callable[[int, str, str], int] | None = None,
               token: object = None) -> dict[str, dict[str, int]]:
        """Per warehouse: units received, declared, on hand, the number of SKUs held and, with
        ``value_of(units, unit_price, currency) -> tiyn``, the value of what is on hand.

        With a ``token`` (what ``value_of``'s answers depend on besides its arguments: the valuer
        and the day), the totals are kept between calls and only the keys changed since (by
        `apply`) are valued again; another token values every key again. Without one, every key
        is valued (the result is the same)."""
        if token is None:
            out: dict[str, dict[str, int]] = {}
            for key in self.received:
                self._add_row(out, key, self._row(key, value_of), 1)
            return out
        if self._valued is None or self._valued_token != token:
            self._valued, self._sums, self._valued_token = {}, {}, token
            changed = list(self.received)
        else:
            changed = list(self._dirty)
        self._dirty = set()
        valued, sums = self._valued, self._sums
        for key in changed:
            old = valued.pop(key, None)
            if old is not None:
                self._add_row(sums, key, old, -1)
            if key in self.received:
                row = valued[key] = self._row(key, value_of)
                self._add_row(sums, key, row, 1)
        return {wh: dict(row) for wh, row in sums.items()}

    def _row(self, key: tuple[str, str], value_of) -> tuple[int, int, int, int]:
        """One key's part of the totals: received, declared, SKUs held (0 or 1), value on hand."""
        received = self.received[key]
        declared = self.declared.get(key, 0)
        value = 0
        if value_of is not None and received > declared:
            facts = self.facts.get(key) or {}
            if "unit_price" in facts:  # records written before prices were kept have none
                value = value_of(received - declared, facts["unit_price"], facts["currency"])
        return received, declared, 1 if received > declared else 0, value

    @staticmethod
    def _add_row(out: dict, key: tuple[str, str], part: tuple[int, int, int, int], sign: int) -> None:
        row = out.get(key[0])
        if row is None:
            row = out[key[0]] = {"received": 0, "declared": 0, "on_hand": 0, "skus": 0, "value_tiyn": 0}
        received, declared, held, value = part
        row["received"] += sign * received
        row["declared"] += sign * declared
        row["on_hand"] += sign * (received - declared)
        row["skus"] += sign * held
        row["value_tiyn"] += sign * value

    def begin(self, now: float) -> "Txn":
        return Txn(self, now)

    def apply(self, body: dict) -> None:
        """Apply one transaction's body (live, or replayed from the changelog on recovery; the
        runtime applies each record once). A snapshot's body carries the ``seq`` it was taken at."""
        dirty = self._dirty if self._valued is not None else None
        for wh, sku, qty in body.get("recv", ()):
            key = (wh, sku)
            self.received[key] = self.received.get(key, 0) + qty
            if dirty is not None:
                dirty.add(key)
        for wh, sku, facts in body.get("facts", ()):
            self.facts[(wh, sku)] = facts
            if dirty is not None:
                dirty.add((wh, sku))
        for wh, sku, qty in body.get("decl", ()):
            key = (wh, sku)
            self.declared[key] = self.declared.get(key, 0) + qty
            if dirty is not None:
                dirty.add(key)
        self.manifests.update(body.get("m", {}))
        at = body.get("at")
        times = self.order_times
        for order_id, (status, dig) in body.get("o", {}).items():
            self.orders[order_id] = (status, dig)
            if order_id not in times:
                times[order_id] = at
        times.update(body.get("ot", {}))  # a snapshot's own times
        for order_id in body.get("oforget", ()):
            self.orders.pop(order_id, None)
            times.pop(order_id, None)
        for order_id in body.get("pdel", ()):
            found = self.pending.pop(order_id, None)
            if found is not None:
                self._unindex(order_id, found[1])
        for order_id, (since, order) in body.get("padd", {}).items():
            if order_id in self.pending:
                self._unindex(order_id, self.pending[order_id][1])
            self.pending[order_id] = (since, order)
            self._index(order_id, order)
        self.seq = body["seq"] if "seq" in body else self.seq + 1

    def _index(self, order_id: str, order: dict) -> None:
        self._rank[order_id] = self._next_rank
        self._next_rank += 1
        for key in _need(order):
            self._waiting.setdefault(key, {})[order_id] = None

    def _unindex(self, order_id: str, order: dict) -> None:
        self._rank.pop(order_id, None)
        for key in _need(order):
            waiting = self._waiting.get(key)
            if waiting is not None:
                waiting.pop(order_id, None)
                if not waiting:
                    del self._waiting[key]

    def oldest_order_time(self) -> float | None:
        """When the oldest order id still remembered was recorded (None: none, or unknown)."""
        for at in self.order_times.values():
            if at is not None:
                return at
        return None

    def waiting_for(self, key: tuple[str, str]) -> list[str]:
        """The pending orders that need ``key`` (warehouse, sku), oldest first."""
        return list(self._waiting.get(key, ()))

    def pending_needing(self, keys) -> list[str]:
        """The pending orders that need any of ``keys``, in FIFO order."""
        found: dict[str, None] = {}
        for key in keys:
            found.update(self._waiting.get(key, {}))
        return sorted(found, key=self._rank.__getitem__)

    def snapshot(self) -> dict:
        """A body that rebuilds this whole state on an empty Stock (for compaction and tests)."""
        return {
            "seq": self.seq,
            "recv": [[wh, sku, q] for (wh, sku), q in self.received.items()],
            "decl": [[wh, sku, q] for (wh, sku), q in self.declared.items()],
            "facts": [[wh, sku, f] for (wh, sku), f in self.facts.items()],
            "m": dict(self.manifests),
            "o": {k: list(v) for k, v in self.orders.items()},
            "ot": {k: t for k, t in self.order_times.items() if t is not None},
            "padd": {k: [since, order] for k, (since, order) in self.pending.items()},
        }

    @classmethod
    def from_snapshot(cls, snap: dict, partition: int = 0) -> "Stock":
        stock = cls(partition)
        stock.apply(snap)
        return stock


@dataclass(slots=True)
class Candidate:
    order: dict
    need: list[tuple[tuple[str, str], int]]  # (key, qty) per line (or per key): what it reserved
    digest: str
    from_pending: bool


@dataclass
class Outcome:
    """What a transaction emits."""
    declarations: list[dict] = field(default_factory=list)
    rejections: list[dict] = field(default_factory=list)
    movements: list[dict] = field(default_factory=list)
    # declarations written as bytes (``settle(..., write=True)``: the worker's path) and, per one of
    # them, (warehouse_id, duty, excise, vat) as the assessment has them (the metrics' counts)
    written: list[bytes] = field(default_factory=list)
    declared: list[tuple[str, str, str, str]] = field(default_factory=list)


class Txn:
    """One page or tick: decisions against the state plus this transaction's own effects."""

    def __init__(self, stock: Stock, now: float) -> None:
        self.stock = stock
        self.now = now
        self.recv: dict[tuple[str, str], int] = {}
        self.decl: dict[tuple[str, str], int] = {}
        self.reserved: dict[tuple[str, str], int] = {}
        self.facts: dict[tuple[str, str], dict] = {}
        self.m: dict[str, str] = {}
        self.o: dict[str, list] = {}
        self.padd: dict[str, list] = {}
        self.pdel: list[str] = []
        self.oforget: list[str] = []
        self._candidates: list[Candidate] = []
        # orders of this page not reserved yet: (order, digest, its lines' (warehouse, sku) keys); they
        # are reserved together, in arrival order, over columns (`_flush`) before anything reads stock
        self._queued: list[tuple[dict, str, list]] = []
        self.out = Outcome()
        self.manifest_lines = 0
        self.order_lines = 0
        self.examined = 0  # pending orders looked at by retry_pending and expire (their cost)
        # available units per key, computed once per transaction and kept current as recv, decl
        # and reserved change (received + recv - declared - decl - reserved)
        self._avail: dict[tuple[str, str], int] = {}
        # per key: the goods facts an assessment request line carries (REQUEST_FACT_FIELDS)
        self._line_facts: dict[tuple[str, str], dict] = {}

    # -- reads through this transaction ------------------------------------------------------

    @property
    def candidates(self) -> list[Candidate]:
        """The orders reserved in this transaction and not settled yet, in order."""
        if self._queued:
            self._flush()
        return self._candidates

    @candidates.setter
    def candidates(self, value: list[Candidate]) -> None:
        self._candidates = value

    @property
    def availability(self) -> dict[tuple[str, str], int]:
        """The running availability per key this transaction has computed so far (a cache of `available`)."""
        if self._queued:
            self._flush()
        return dict(self._avail)

    def available(self, key: tuple[str, str]) -> int:
        if self._queued:
            self._flush()
        return self._available(key)

    def _available(self, key: tuple[str, str]) -> int:
        found = self._avail.get(key)
        if found is None:
            s = self.stock
            found = self._avail[key] = (s.received.get(key, 0) + self.recv.get(key, 0) - s.declared.get(key, 0)
                                        - self.decl.get(key, 0) - self.reserved.get(key, 0))
        return found

    def _facts(self, key: tuple[str, str]) -> dict | None:
        found = self.facts.get(key)
        return found if found is not None else self.stock.facts.get(key)

    def _order_status(self, order_id: str):
        found = self.o.get(order_id)
        return found if found is not None else self.stock.orders.get(order_id)

    def reject(self, ref: str | None, reason: str, detail: str) -> None:
        self.out.rejections.append(rejection(ref, reason, detail))

    # -- inputs ------------------------------------------------------------------------------

    def receive(self, manifest: dict) -> None:
        """A valid goods-manifest/1: goods enter the customs warehouse (once per manifest id).
        What can fail (the content digest) runs before the transaction changes: a failing item
        leaves it as it was (the page handler rejects that item alone)."""
        mid = manifest["manifest_id"]
        dig = digest(manifest)
        if self._queued:  # orders before this manifest reserve what was there before it
            self._flush()
        seen = self.m.get(mid) or self.stock.manifests.get(mid)
        if seen is not None:
            if seen != dig:
                self.reject(mid, "conflicting_duplicate",
                            f"manifest {mid} was received before with different content")
            return  # a redelivery: counted once
        self.m[mid] = dig
        wh = manifest["warehouse_id"]
        operator_bin = manifest["operator_bin"]
        avail = self._avail
        for line in manifest["lines"]:
            key = (wh, line["sku"])
            self.recv[key] = self.recv.get(key, 0) + line["qty"]
            if key in avail:
                avail[key] += line["qty"]
            facts = {name: line[name] for name in FACT_FIELDS if line.get(name) is not None}
            facts["operator_bin"] = operator_bin
            if self._facts(key) != facts:
                self.facts[key] = facts
                self._line_facts.pop(key, None)
        self.manifest_lines += len(manifest["lines"])

    def order(self, order: dict) -> None:
        """A valid order/1: a candidate for declaration now, or pending until goods arrive (what
        can fail runs first, as in `receive`)."""
        oid = order["order_id"]
        dig = digest(order)
        seen = self._order_status(oid)
        if seen is not None:
            if seen[1] != dig:
                self.reject(oid, "conflicting_duplicate",
                            f"order {oid} was received before with different content")
            return  # a redelivery: declared (or pending, or rejected) once
        wh = order["warehouse_id"]
        keys = [(wh, line["sku"]) for line in order["lines"]]
        self.order_lines += len(keys)
        self.o[oid] = [PENDING, dig]  # settled or kept pending when the page's orders are reserved
        self._queued.append((order, dig, keys))

    def _flush(self) -> None:
        """Reserve the queued orders in arrival order, over columns: per line the slot of its
        (warehouse, sku) in an array of available units (-1: never received) and its quantity, per
        order where its lines start; the columns kernel decides every order in one call. Reserved
        orders become candidates, the others wait as pending."""
        queued, self._queued = self._queued, []
        needs = _columns.reserve_orders(queued, self.facts, self.stock.facts, self._available, self._avail,
                                        self.reserved)
        candidates, padd, now = self._candidates, self.padd, self.now
        for (order, dig, _), need in zip(queued, needs):
            if need is not None:
                candidates.append(Candidate(order, need, dig, False))
                continue
            oid = order["order_id"]
            try:
                padd[oid] = [now, self._kept(order)]
            except Exception as exc:  # the item alone is rejected, as the intake does for an item that fails
                log.exception("order %s could not be kept pending", oid)
                del self.o[oid]
                self.order_lines -= len(order["lines"])
                self.reject(oid, "internal_error", f"the item could not be processed ({type(exc).__name__}); "
                            "the operators have the log")

    def _kept(self, order: dict) -> dict:
        """What a pending order keeps in the state (and so in the changelog): the fields of order/1
        without its buyer, whose IIN becomes a keyed pseudonym (buyer_ref = HMAC-SHA256, as declaration/2
        has it). Fields the contract does not name are dropped: a feed's extra field (a phone, an address,
        a passport) would otherwise sit in clear in the changelog (tests/test_pii_sweep.py)."""
        from stream.contracts.validate import ORDER_FIELDS, ORDER_LINE_FIELDS

        kept = {k: order[k] for k in ORDER_FIELDS if k in order and k != "buyer"}
        if isinstance(kept.get("lines"), list):
            kept["lines"] = [{k: line[k] for k in ORDER_LINE_FIELDS if k in line} if isinstance(line, dict) else line
                             for line in kept["lines"]]
        buyer = order.get("buyer")
        if buyer is None:
            return kept
        from stream.declaration.v2 import buyer_ref, buyer_secret

        secret = self.stock.buyer_secret if self.stock.buyer_secret is not None else buyer_secret()
        kept["buyer_ref"] = buyer_ref(buyer["iin"], secret)
        return kept

    def _reserve(self, need: dict[tuple[str, str], int]) -> bool:
        facts, known, avail = self.facts, self.stock.facts, self._avail
        for key, qty in need.items():
            if key not in facts and key not in known:
                return False
            have = avail.get(key)
            if have is None:
                have = self.available(key)
            if have < qty:
                return False
        reserved = self.reserved
        for key, qty in need.items():
            reserved[key] = reserved.get(key, 0) + qty
            avail[key] -= qty
        return True

    def received_keys(self):
        """The (warehouse, sku) this transaction received goods for."""
        return self.recv.keys()

    def retry_pending(self, keys=None) -> None:
        """Pending orders (oldest first) that the stock now covers become candidates: those that
        need one of ``keys`` (what a manifest brought; the index in the stock finds them without
        walking the backlog), or every pending order when ``keys`` is None (the timer)."""
        if self._queued:
            self._flush()
        stock = self.stock
        if not stock.pending:
            return
        pending = stock.pending
        order_ids = pending if keys is None else stock.pending_needing(keys)
        for oid in order_ids:
            self.examined += 1
            order = pending[oid][1]
            need = _need(order)
            if self._reserve(need):
                self._candidates.append(Candidate(order, list(need.items()), stock.orders[oid][1], True))

    def forget_order_ids(self, before: float, limit: int = 10_000) -> None:
        """Order ids recorded before ``before`` (declared or rejected, never a pending one) are
        forgotten, at most ``limit`` per transaction (bodies stay bounded; the next tick goes on)."""
        if self._queued:
            self._flush()
        stock = self.stock
        for oid, at in stock.order_times.items():
            if at is None:
                continue  # recorded before times were kept: remembered
            if at >= before or len(self.oforget) >= limit:
                break
            if oid not in stock.pending and oid not in self.o:
                self.oforget.append(oid)

    def expire(self, hold_seconds: float) -> None:
        """Pending orders that waited the hold time (and are not candidates now) are rejected;
        only the ones old enough are looked at."""
        if self._queued:
            self._flush()
        chosen = {c.order["order_id"] for c in self.candidates}
        for oid, (since, order) in self.stock.pending.items():
            self.examined += 1
            if self.now - since < hold_seconds:
                break  # pending is in arrival order: the rest waited less
            if oid in chosen:
                continue
            missing = [key for key in _need(order) if self._facts(key) is None]
            if missing:
                skus = ", ".join(sku for _, sku in missing)
                self.reject(oid, "unknown_sku", f"never received into {order['warehouse_id']}: {skus} "
                            f"(waited {self.now - since:.0f} s)")
            else:
                short = [f"{sku} (need {qty}, on hand {max(self.available((wh, sku)), 0)})"
                         for (wh, sku), qty in _need(order).items() if self.available((wh, sku)) < qty]
                self.reject(oid, "insufficient_stock", "; ".join(short) + f" after {self.now - since:.0f} s")
            self.o[oid] = [REJECTED, self.stock.orders[oid][1]]
            self.pdel.append(oid)

    # -- assessment ----------------------------------------------------------------------------

    def requests(self) -> list[dict]:
        """assessment-request/1 documents for the candidates (lines enriched from the manifests;
        the columns kernel builds them: `_columns_py.requests`)."""
        if self._queued:
            self._flush()
        return _columns.requests(self._candidates, self._line_facts, self._facts, REQUEST_FACT_FIELDS)

    def settle(self, results: list[dict], requests: list[dict] | None = None, builder=None,
               write: bool = False) -> None:
        """Take the assessor's answers (same order as `requests()`): declare or reject each. With a
        ``builder`` (stream/declaration/v2.py) and the ``requests`` answered, declarations are
        declaration/2; without, the answer extended in place (declaration/1). With ``write`` too, the
        declaration/2 documents go to ``out.written`` as their bytes (``orjson.dumps`` of the dicts
        ``out.declarations`` would hold), written by the columns kernel."""
        if self._queued:
            self._flush()
        if len(results) != len(self._candidates):
            raise ValueError(f"{len(results)} results for {len(self.candidates)} candidates")
        sources = [] if builder is not None else None
        _columns.settle(self._candidates, results, requests, self.reserved, self.decl, self._avail, self.o,
                        self.out.rejections, self.out.declarations, self._facts, sources, Source, self.pdel,
                        DECLARED, REJECTED, declaration_id)
        if sources:
            if write:
                self.out.written.extend(builder.write_many(sources))
                self.out.declared.extend((src.warehouse_id, src.assessment["duty"], src.assessment["excise"],
                                          src.assessment["vat"]) for src in sources)
            else:
                self.out.declarations.extend(builder.build_many(sources))
        self.candidates = []

    # -- result --------------------------------------------------------------------------------

    def body(self, page: bool = True) -> dict | None:
        """The transaction's effects as one body. An input message always has one (its record is
        the stock transaction ``seq``, and stock movements are numbered by it); a tick that changes
        nothing has none."""
        if self._queued:
            self._flush()
        if self._queued or self._candidates:
            raise RuntimeError("settle() the candidates before taking the body")
        if not page and not (self.recv or self.decl or self.facts or self.m or self.o or self.padd or self.pdel
                             or self.oforget):
            return None
        body: dict = {}
        if self.recv:
            body["recv"] = [[wh, sku, q] for (wh, sku), q in self.recv.items()]
        if self.facts:
            body["facts"] = [[wh, sku, f] for (wh, sku), f in self.facts.items()]
        if self.decl:
            body["decl"] = [[wh, sku, q] for (wh, sku), q in self.decl.items()]
        if self.m:
            body["m"] = self.m
        if self.o:
            body["o"] = self.o
            body["at"] = self.now  # when these ids were recorded: they are remembered for a window
        if self.oforget:
            body["oforget"] = self.oforget
        if self.padd:
            # an order that arrived and waits: kept unless it was settled in this same transaction
            body["padd"] = self.padd
        if self.pdel:
            body["pdel"] = self.pdel
        return body

    def _moved(self):
        """Per (warehouse, sku) this transaction moved: (warehouse, sku, received now, declared now,
        received, declared) (the totals valid after the body is applied)."""
        if self._queued:
            self._flush()
        s = self.stock
        recv, decl = self.recv, self.decl
        s_received, s_declared = s.received, s.declared
        for key in (dict.fromkeys(list(recv) + list(decl)) if decl and recv else (recv or decl)):
            rq, dq = recv.get(key, 0), decl.get(key, 0)
            yield key[0], key[1], rq, dq, s_received.get(key, 0) + rq, s_declared.get(key, 0) + dq

    def movements(self, at: str) -> list[dict]:
        """stock-movement/1 documents: one per (warehouse, sku) this transaction moved, with the
        quantities moved and the resulting totals (valid after the body is applied)."""
        partition, seq = self.stock.partition, self.stock.seq + 1
        return [movement_doc(wh, sku, at, partition, seq, rq, dq, received, declared)
                for wh, sku, rq, dq, received, declared in self._moved()]

    def movement_values(self, at: str) -> list[tuple[bytes, bytes]]:
        """`movements` as the worker sends them: (warehouse_id key, the document's bytes), written
        by the columns kernel (``orjson.dumps`` of `movements`' dicts, byte for byte)."""
        partition, seq = self.stock.partition, self.stock.seq + 1
        write = _columns.movement
        keys: dict[str, bytes] = {}
        out = []
        for wh, sku, rq, dq, received, declared in self._moved():
            key = keys.get(wh)
            if key is None:
                key = keys[wh] = wh.encode()
            out.append((key, write(wh, sku, at, partition, seq, rq, dq, received, declared)))
        return out
