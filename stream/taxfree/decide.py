"""The tax-free decision: pure logic over one partition's documents (no Kafka, no clock, no I/O).

A `Decider` (rules, trading entities' keys, the PII key) turns one input document into an `Outcome`:
the record changes for the `Ledger` (the state), the decision to publish when it changed, or the
`rejection/1` for input that cannot be applied. It never mutates the ledger: the caller applies
`outcome.body` (the stream's runtime does, and replays it from the changelog after a crash; the
offline `taxfree decide` does the same in a loop), so both give the same decisions.

Decisions (DESIGN 8.2): a valid document is `pending` until the airport confirms; it is refused at
once when a rule fails (all reasons that apply are listed); a confirmation decides `refund` or
`refusal`; a cancellation refuses a pending document; the validity lapse refuses what was never
confirmed. Double refunds are impossible: a receipt counts in one live (not cancelled) document
(the ledger's receipt index on one partition; claimed from the receipt's partition with more:
`Decider.claim`, `Decider.answer`, stream/taxfree/claims.py),
a document is decided once, and a redelivered input (same id, same content digest) changes nothing.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import orjson

from stream.contracts.reasons import rejection
from stream.money import format_tiyn, parse_tiyn
from stream.taxfree import contracts
from stream.taxfree.contracts import REFUSAL_REASONS
from stream.taxfree.pii import buyer_subject, keyed_hash, mask
from stream.taxfree.qr import KeySet, payload_matches
from stream.taxfree.rules import KZ_TIME, Rules, add_months, end_of_validity

RECORD_VERSION = 1
LAPSE_CHUNK = 500  # documents refused per tick body at most (bodies stay bounded)
_ORDER = {code: i for i, code in enumerate(REFUSAL_REASONS)}


def digest(doc: dict) -> str:
    return hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def qr_digest(qr: str | None) -> str | None:
    """What the ledger keeps of a QR to compare the airport's scan with (the JWS is 400+ bytes)."""
    return None if qr is None else hashlib.blake2b(qr.encode(), digest_size=16).hexdigest()


# What a final document keeps once compacted (CUSTOMS_TAXFREE_FINAL_DAYS after its final decision): what
# recognises a redelivery (its digest, the confirmation's and cancellation's), what the API shows and
# checks access by (form, issue time, BIN, buyer_ref, masked passport and card, the decision), and the
# receipts it still holds (the receipt rule). The figures used to decide (VAT, commission, payment days,
# validity, the QR digest, the arrival time) go: a final document is never decided again, and the
# decision it got keeps them.
_TOMBSTONE = ("digest", "bin", "form", "issued_at", "buyer_ref", "passport", "card", "confirmation",
              "cancellation", "holds")


_REBUILT = ("schema", "document_id", "trading_entity_bin", "buyer_ref")  # a decision's members the record has


def tombstone(record: dict) -> dict:
    """The compact record of a final document (see _TOMBSTONE); its decision without the members
    `expanded` puts back from the record."""
    kept = {k: record[k] for k in _TOMBSTONE}
    kept["receipts"] = record["receipts"] if record["holds"] else []
    kept["decision"] = {k: v for k, v in record["decision"].items() if k not in _REBUILT}
    kept["compact"] = True
    return kept


def expanded(document_id: str, record: dict) -> dict:
    """A record whose decision is whole (a tombstone's is put together again, in the decision's order)."""
    if not record.get("compact"):
        return record
    d = record["decision"]
    decision = {"schema": "taxfree-decision/1", "document_id": document_id, "decision": d["decision"],
                "reasons": d["reasons"], "vat": d["vat"], "commission": d["commission"], "refund": d["refund"],
                "pay_from": d["pay_from"], "pay_by": d["pay_by"], "trading_entity_bin": record["bin"],
                "decided_on": d["decided_on"], "buyer_ref": record["buyer_ref"]}
    return {**record, "decision": decision}


def kz_date(timestamp: str) -> date:
    return contracts.timestamp_of(timestamp).astimezone(KZ_TIME).date()


def receipt_key(bin_: str, number: str) -> str:
    return f"{bin_}:{number}"


class Ledger:
    """One partition's tax-free documents, as records without personal data.

    A record: digest, trading entity BIN, form, dates (ordinals), receipts held, a digest of the QR,
    buyer_ref and the masked passport and card, the confirmation and cancellation digests, and the
    current decision. `receipts` maps each receipt held by a live document to that document.
    """

    def __init__(self, partition: int = 0):
        self.partition = partition  # where its documents are keyed (claims are answered here)
        self.docs: dict[str, dict] = {}
        self.receipts: dict[str, str] = {}
        # the registry of the receipts keyed to this partition, across partitions (stream/taxfree/claims.py):
        # receipt -> the document holding it
        self.claims: dict[str, str] = {}
        self.pending: dict[str, int] = {}  # document_id -> last valid day (ordinal)
        # confirmations and cancellations that arrived before their document (the input topics are
        # read independently, so a backlog can deliver them first): document_id -> [parked input]
        self.parked: dict[str, list[dict]] = {}
        # final documents not yet compacted, by the day of their final decision (ordinal) -> ids
        self.final_by_day: dict[int, set[str]] = {}

    def apply(self, body: dict) -> None:
        for step in body.get("steps", ()):  # a page: its items' bodies in order
            self.apply(step)
        for document_id in body.get("unpark", ()):
            self.parked.pop(document_id, None)
        for document_id, inputs in body.get("park", {}).items():
            self.parked.setdefault(document_id, []).extend(inputs)
        for receipt, holder in body.get("claims", {}).items():
            if holder is None:
                self.claims.pop(receipt, None)
            else:
                self.claims[receipt] = holder
        for document_id, record in body.get("docs", {}).items():
            old = self.docs.get(document_id)
            if old is not None:
                for key in old["receipts"]:
                    if self.receipts.get(key) == document_id:
                        del self.receipts[key]
            self.docs[document_id] = record
            if record["holds"]:
                for key in record["receipts"]:
                    self.receipts.setdefault(key, document_id)
            decision = record["decision"]
            if decision["decision"] == "pending":
                if not record.get("awaiting"):
                    self.pending[document_id] = record["valid_to"]
                continue
            self.pending.pop(document_id, None)
            day = date.fromisoformat(decision["decided_on"]).toordinal()
            if record.get("compact"):
                bucket = self.final_by_day.get(day)
                if bucket is not None:
                    bucket.discard(document_id)
                    if not bucket:
                        del self.final_by_day[day]
            else:
                self.final_by_day.setdefault(day, set()).add(document_id)

    def snapshot(self) -> dict:
        body = {"v": RECORD_VERSION, "docs": dict(self.docs), "park": {k: list(v) for k, v in self.parked.items()}}
        if self.claims:
            body["claims"] = dict(self.claims)
        return body

    def decision(self, document_id: str) -> dict | None:
        record = self.docs.get(document_id)
        return None if record is None else expanded(document_id, record)["decision"]


@dataclass
class Outcome:
    body: dict | None = None                   # record changes: {"v", "docs": {id: record}}
    decisions: list[dict] = field(default_factory=list)
    rejections: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)   # to the receipts' partitions: {receipt, document_id, op}
    answers: list[tuple[int, dict]] = field(default_factory=list)  # (reply_to partition, {receipt, document_id, granted})


def _reject(ref, reason: str, detail: str) -> Outcome:
    return Outcome(rejections=[rejection(ref, reason, detail)])


def _sorted(reasons: set[str]) -> list[str]:
    return sorted(reasons, key=_ORDER.__getitem__)


def vat_in_price(price_tiyn: int, rate_pct: Decimal) -> int:
    """The VAT a VAT-inclusive price holds: price x r / (1 + r), rounded half up to the tiyn.

    In integers, exactly: with the rate as a fraction n / d of 100 (16% -> 16/1), the VAT is
    price x n / (100 d + n), rounded half up."""
    n, d = rate_pct.as_integer_ratio()
    denominator = 100 * d + n
    return (2 * price_tiyn * n + denominator) // (2 * denominator)


def commission_of(vat_tiyn: int, pct: Decimal) -> int:
    """`percent_of(vat, pct)` in integers (vat >= 0): vat x n / (100 d) rounded half up, pct = n / d."""
    n, d = pct.as_integer_ratio()
    return (2 * vat_tiyn * n + 100 * d) // (200 * d)


# Dates the contract accepts (year 0001 to 9999) but no tax-free document can carry; at the edges
# time-zone conversion and month arithmetic would overflow.
MIN_YEAR, MAX_YEAR = 1900, 2999


def _implausible_year(doc: dict) -> str | None:
    """The path of the first date outside MIN_YEAR..MAX_YEAR, or None."""
    for path in ("issued_at", "at"):
        value = doc.get(path)
        if value is not None and not MIN_YEAR <= int(value[:4]) <= MAX_YEAR:
            return path
    for i, receipt in enumerate(doc.get("receipts", ())):
        if not MIN_YEAR <= int(receipt["issued_at"][:4]) <= MAX_YEAR:
            return f"receipts[{i}].issued_at"
    if "buyer" in doc and not MIN_YEAR <= int(doc["buyer"]["passport"]["issued_on"][:4]) <= MAX_YEAR:
        return "buyer.passport.issued_on"
    return None


MAX_PARKED = 4  # inputs held per unknown document at most (a flood of them is rejected)
_WAITING = ("awaiting", "held_reasons", "denied", "deferred")  # a record's fields while its claims are out


class Decider:
    def __init__(self, rules: Rules, keys: KeySet, pii_key: bytes, hold_seconds: float = 60.0):
        self.rules = rules
        self.keys = keys
        self.pii_key = pii_key
        self.hold_seconds = hold_seconds
        # receipts are claimed from their partitions (CUSTOMS_TAXFREE_PARTITIONS > 1, claims.py); off, the
        # ledger's own receipt index decides at once (one partition: it sees every document)
        self.claims = False
        self._by_receipt_day: dict[date, tuple] = {}
        self._by_issue_day: dict[date, tuple] = {}

    # The figures in force on a day, looked up once per day (documents of a day share them).
    def _receipt_terms(self, on: date):
        terms = self._by_receipt_day.get(on)
        if terms is None:
            rules = self.rules
            terms = (rules.vat_rate_pct.at(on), rules.commission_pct.at(on), rules.minimum_tiyn(on),
                     rules.payment_window.at(on))
            if len(self._by_receipt_day) < 10_000:
                self._by_receipt_day[on] = terms
        return terms

    def _issue_terms(self, on: date):
        terms = self._by_issue_day.get(on)
        if terms is None:
            terms = (self.rules.validity.at(on), self.rules.eaeu_states.at(on))
            if len(self._by_issue_day) < 10_000:
                self._by_issue_day[on] = terms
        return terms

    # -- one input ----------------------------------------------------------------------------

    def handle(self, ledger: Ledger, doc: dict, now: float = 0.0) -> Outcome:
        """`doc` already passed `contracts.check`. A confirmation or cancellation of a document not
        (yet) received is held until it arrives, for `hold_seconds` at most (then `unknown_document`)."""
        kind = doc["schema"]
        field = _implausible_year(doc)
        if field is not None:
            return _reject(doc["document_id"], "invalid_date",
                           f"{field}: a year from {MIN_YEAR} to {MAX_YEAR} is expected")
        if kind == "taxfree-document/1":
            outcome = self.document(ledger, doc, now)
            parked = ledger.parked.get(doc["document_id"])
            if parked and outcome.body is not None:
                record = outcome.body["docs"][doc["document_id"]]
                if record.get("awaiting"):  # the held inputs wait with it for its receipts
                    record["deferred"] = [{"digest": p["digest"], "input": p["input"]} for p in parked]
                    outcome.body["unpark"] = [doc["document_id"]]
                else:
                    outcome = self._replay_parked(ledger, doc["document_id"], outcome, parked)
            return outcome
        record = ledger.docs.get(doc["document_id"])
        if record is None:
            return self._park(ledger, doc, now)
        if record.get("awaiting"):
            return self._defer(record, doc)
        if kind == "taxfree-confirmation/1":
            return self.confirmation(ledger, doc)
        return self.cancellation(ledger, doc)

    def _park(self, ledger: Ledger, doc: dict, now: float) -> Outcome:
        document_id = doc["document_id"]
        held = ledger.parked.get(document_id, ())
        content = digest(doc)
        if any(p["digest"] == content for p in held):
            return Outcome()  # redelivered while held
        if len(held) >= MAX_PARKED:
            return _reject(document_id, "unknown_document",
                           "document_id: no tax-free document with this id was received")
        return Outcome({"v": RECORD_VERSION, "park": {document_id: [{"digest": content, "at": now, "input": doc}]}})

    def _replay_parked(self, ledger: Ledger, document_id: str, outcome: Outcome, parked: list[dict]) -> Outcome:
        """The document just decided, then the inputs held for it, in their arrival order."""
        outcome = self._replay(document_id, outcome.body["docs"][document_id], outcome, parked)
        outcome.body["unpark"] = [document_id]
        return outcome

    def _replay(self, document_id: str, record: dict, outcome: Outcome, held_inputs: list[dict]) -> Outcome:
        scratch = Ledger()
        scratch.docs[document_id] = record
        decisions, rejections, claims = list(outcome.decisions), list(outcome.rejections), list(outcome.claims)
        for held in held_inputs:
            step = (self.confirmation if held["input"]["schema"] == "taxfree-confirmation/1"
                    else self.cancellation)(scratch, held["input"])
            if step.body is not None:
                scratch.docs.update(step.body["docs"])
            decisions += step.decisions
            rejections += step.rejections
            claims += step.claims
        return Outcome({"v": RECORD_VERSION, "docs": {document_id: scratch.docs[document_id]}},
                       decisions, rejections, claims)

    def _defer(self, record: dict, doc: dict) -> Outcome:
        """A confirmation or cancellation of a document whose receipts are not all answered yet: kept in
        its record, applied once they are (a second distinct one of a kind is refused as it would be then)."""
        document_id = doc["document_id"]
        content = digest(doc)
        deferred = record["deferred"]
        if any(d["digest"] == content for d in deferred):
            return Outcome()  # redelivered while it waits
        if any(d["input"]["schema"] == doc["schema"] for d in deferred):
            if doc["schema"] == "taxfree-confirmation/1":
                return _reject(document_id, "already_confirmed",
                               "the document already has the airport's outcome; a second one is not applied")
            return _reject(document_id, "already_cancelled", "the document was already cancelled")
        record = {**record, "deferred": [*deferred, {"digest": content, "input": doc}]}
        return Outcome({"v": RECORD_VERSION, "docs": {document_id: record}})

    # -- receipts across partitions (claims.py) -------------------------------------------------

    def claim(self, ledger: Ledger, entries: list[dict], reply_to: int) -> Outcome:
        """Claims and releases of receipts keyed to this partition, in order: a claim is granted when the
        receipt is free or held by the same document, denied otherwise; a release frees a receipt its
        holder names. Every claim is answered (a repeat gets the same answer)."""
        changes: dict[str, str | None] = {}
        answers = []
        for entry in entries:
            receipt, document_id = entry["receipt"], entry["document_id"]
            holder = changes[receipt] if receipt in changes else ledger.claims.get(receipt)
            if entry["op"] == "claim":
                if holder is None:
                    changes[receipt] = holder = document_id
                answers.append((reply_to, {"receipt": receipt, "document_id": document_id,
                                           "granted": holder == document_id}))
            elif holder == document_id:
                changes[receipt] = None
        changes = {k: v for k, v in changes.items() if v != ledger.claims.get(k)}
        return Outcome({"v": RECORD_VERSION, "claims": changes} if changes else None, answers=answers)

    def answer(self, ledger: Ledger, entries: list[dict]) -> Outcome:
        """The receipts' partitions' answers for documents of this one: a document all of whose
        receipts are answered is decided (_settle). An answer nobody waits for (a repeat) changes nothing."""
        changed: dict[str, dict] = {}
        decisions, rejections, claims = [], [], []
        for entry in entries:
            document_id, receipt = entry["document_id"], entry["receipt"]
            record = changed.get(document_id) or ledger.docs.get(document_id)
            if record is None or receipt not in record.get("awaiting", ()):
                continue
            record = {**record, "awaiting": [k for k in record["awaiting"] if k != receipt]}
            if not entry["granted"]:
                record["denied"] = [*record["denied"], receipt]
            if not record["awaiting"]:
                settled = self._settle(document_id, record)
                record = settled.body["docs"][document_id]
                decisions += settled.decisions
                rejections += settled.rejections
                claims += settled.claims
            changed[document_id] = record
        return Outcome({"v": RECORD_VERSION, "docs": changed} if changed else None, decisions, rejections, claims)

    def _settle(self, document_id: str, record: dict) -> Outcome:
        """Every receipt answered: the document's first decision, as one partition would have given it
        (a denied receipt is `duplicate_receipt`: the document then holds none and releases what it got),
        then the confirmations and cancellations that waited, in their order."""
        denied = record["denied"]
        reasons = set(record["held_reasons"])
        deferred = record["deferred"]
        record = {k: v for k, v in record.items() if k not in _WAITING}
        claims = []
        if denied:
            reasons.add("duplicate_receipt")
            record["holds"] = False
            claims = [{"receipt": k, "document_id": document_id, "op": "release"}
                      for k in dict.fromkeys(record["receipts"]) if k not in denied]
        record["decision"] = _decision(document_id, record, reasons, date.fromordinal(record["issued_on"]))
        return self._replay(document_id, record, Outcome(decisions=[record["decision"]], claims=claims), deferred)

    def expire_parked(self, ledger: Ledger, now: float | None) -> Outcome | None:
        """Reject (unknown_document) held inputs older than the hold; all of them when `now` is None
        (the end of an offline run: the input is over)."""
        due = sorted(document_id for document_id, held in ledger.parked.items()
                     if now is None or now - held[0]["at"] >= self.hold_seconds)[:LAPSE_CHUNK]
        if not due:
            return None
        rejections = [rejection(document_id, "unknown_document",
                                "document_id: no tax-free document with this id was received"
                                + ("" if now is None else f" within {self.hold_seconds:g} s"))
                      for document_id in due for _ in ledger.parked[document_id]]
        return Outcome({"v": RECORD_VERSION, "unpark": due}, rejections=rejections)

    def document(self, ledger: Ledger, doc: dict, now: float = 0.0) -> Outcome:
        document_id = doc["document_id"]
        content = digest(doc)
        known = ledger.docs.get(document_id)
        if known is not None:
            if known["digest"] == content:
                return Outcome()  # redelivered: nothing changes
            return _reject(document_id, "conflicting_duplicate",
                           "document_id: a different tax-free document with this id was received before "
                           "(changes are not allowed; cancel it and issue a new one)")
        issued_at = contracts.timestamp_of(doc["issued_at"])
        issued_on = issued_at.astimezone(KZ_TIME).date()
        receipt_days = set()
        for i, receipt in enumerate(doc["receipts"]):
            at = contracts.timestamp_of(receipt["issued_at"])
            if at > issued_at:
                return _reject(document_id, "dates_out_of_order",
                               f"receipts[{i}].issued_at: the receipt is later than the document's issued_at")
            receipt_days.add(at.astimezone(KZ_TIME).date())
        if date.fromisoformat(doc["buyer"]["passport"]["issued_on"]) > issued_on:
            return _reject(document_id, "dates_out_of_order",
                           "buyer.passport.issued_on: the passport is issued after the document")
        receipt_on = min(receipt_days)
        rate, commission_pct, minimum, window = self._receipt_terms(receipt_on)
        months, states = self._issue_terms(issued_on)
        if None in (rate, commission_pct, minimum, window, months, states):
            return _reject(document_id, "no_rule_set",
                           f"no tax-free rule (VAT rate, commission, MCI, minimum, payment window, validity) "
                           f"in force on {receipt_on.isoformat()}; see the rules file")
        total = vat = 0
        for i, line in enumerate(doc["lines"]):
            price, line_vat = parse_tiyn(line["price"]), parse_tiyn(line["vat"])
            expected = vat_in_price(price, rate)
            if line_vat != expected:
                return _reject(document_id, "vat_mismatch",
                               f"lines[{i}].vat: {line['vat']} is not the VAT in the line's price at {rate}% "
                               f"({format_tiyn(expected)})")
            total += price
            vat += line_vat
        bin_ = doc["trading_entity"]["bin"]
        passport = doc["buyer"]["passport"]
        reasons = set()
        if passport["country"] in states:
            reasons.add("buyer_eaeu_citizen")
        if total < minimum:
            reasons.add("below_minimum")
        if len(receipt_days) > 1 or len({r["register_address"] for r in doc["receipts"]}) > 1:
            reasons.add("receipts_not_same_day")
        qr = doc.get("qr")
        if doc["form"] == "electronic" or qr is not None:
            if not payload_matches(self.keys.verify(qr, bin_), doc, format_tiyn(vat)):
                reasons.add("qr_mismatch")
        keys = [receipt_key(bin_, r["number"]) for r in doc["receipts"]]
        if len(set(keys)) != len(keys) or any(
                ledger.receipts.get(k, document_id) != document_id for k in keys):
            reasons.add("duplicate_receipt")
        not_before_days, within_months = window
        commission = commission_of(vat, commission_pct)
        record = {
            "digest": content, "bin": bin_, "form": doc["form"], "issued_at": doc["issued_at"],
            "issued_on": issued_on.toordinal(), "valid_to": end_of_validity(issued_on, months).toordinal(),
            "receipts": keys, "holds": "duplicate_receipt" not in reasons, "qr": qr_digest(qr),
            "buyer_ref": keyed_hash(buyer_subject(passport["country"], passport["number"]), self.pii_key),
            "passport": {"country": passport["country"], "number": mask(passport["number"])},
            "card": mask(doc["buyer"]["card_token"]),
            "vat": vat, "commission": commission,
            "pay_from": (receipt_on + timedelta(days=not_before_days)).toordinal(),
            "pay_by": add_months(receipt_on, within_months).toordinal(),
            "confirmation": None, "cancellation": None, "arrived": now,
        }
        if self.claims and record["holds"]:
            # its receipts are claimed from their partitions; decided when all are answered (_settle)
            record.update(awaiting=list(dict.fromkeys(keys)), held_reasons=_sorted(reasons), denied=[], deferred=[])
            record["decision"] = _decision(document_id, record, set(), issued_on)  # shown pending meanwhile
            return Outcome({"v": RECORD_VERSION, "docs": {document_id: record}},
                           claims=[{"receipt": k, "document_id": document_id, "op": "claim"} for k in record["awaiting"]])
        decision = _decision(document_id, record, reasons, issued_on)
        record["decision"] = decision
        return Outcome({"v": RECORD_VERSION, "docs": {document_id: record}}, [decision])

    @staticmethod
    def _against(ledger: Ledger, doc: dict, field: str):
        """The document a confirmation or cancellation is about, and the event's digest; or the
        Outcome that ends it (unknown document, a redelivery of the same event)."""
        document_id = doc["document_id"]
        record = ledger.docs.get(document_id)
        if record is None:
            return _reject(document_id, "unknown_document",
                           "document_id: no tax-free document with this id was received"), None, None
        content = digest(doc)
        if record[field] == content:
            return Outcome(), None, None
        return None, record, content

    def confirmation(self, ledger: Ledger, doc: dict) -> Outcome:
        document_id = doc["document_id"]
        ended, record, content = self._against(ledger, doc, "confirmation")
        if ended is not None:
            return ended
        if record["confirmation"] is not None:
            return _reject(document_id, "already_confirmed",
                           "the document already has the airport's outcome; a second one is not applied")
        at = contracts.timestamp_of(doc["at"])
        if at < contracts.timestamp_of(record["issued_at"]):
            return _reject(document_id, "dates_out_of_order", "at: the confirmation is earlier than the document")
        on = at.astimezone(KZ_TIME).date()
        record = {**record, "confirmation": content}
        if record["decision"]["decision"] != "pending":
            # already decided (refused at once, cancelled, or lapsed): recorded, the decision stands
            return Outcome({"v": RECORD_VERSION, "docs": {document_id: record}})
        reasons = set()
        if on.toordinal() > record["valid_to"]:
            reasons.add("export_not_confirmed")  # a confirmation after the validity counts as none
        else:
            if doc["outcome"] == "refused":
                reasons.add("export_refused")
            if doc["airport"] not in (self.rules.pilot_airports.at(on) or ()):
                reasons.add("not_pilot_airport")
            scanned = doc.get("qr_scanned")
            if (record["form"] == "electronic" and doc["outcome"] == "confirmed") or scanned is not None:
                if qr_digest(scanned) != record["qr"]:
                    reasons.add("qr_mismatch")
        record["decision"] = _decision(document_id, record, reasons, on, final=True)
        return Outcome({"v": RECORD_VERSION, "docs": {document_id: record}}, [record["decision"]])

    def cancellation(self, ledger: Ledger, doc: dict) -> Outcome:
        document_id = doc["document_id"]
        ended, record, content = self._against(ledger, doc, "cancellation")
        if ended is not None:
            return ended
        if record["cancellation"] is not None:
            return _reject(document_id, "already_cancelled", "the document was already cancelled")
        if record["decision"]["decision"] == "refund":
            return _reject(document_id, "already_refunded",
                           "the document was refunded; a refunded document cannot be cancelled")
        at = contracts.timestamp_of(doc["at"])
        if at < contracts.timestamp_of(record["issued_at"]):
            return _reject(document_id, "dates_out_of_order", "at: the cancellation is earlier than the document")
        releases = ([{"receipt": k, "document_id": document_id, "op": "release"}
                     for k in dict.fromkeys(record["receipts"])] if self.claims and record["holds"] else [])
        record = {**record, "cancellation": content, "holds": False}
        if record["decision"]["decision"] != "pending":
            return Outcome({"v": RECORD_VERSION, "docs": {document_id: record}}, claims=releases)
        on = at.astimezone(KZ_TIME).date()
        record["decision"] = _decision(document_id, record, {"cancelled"}, on, final=True)
        return Outcome({"v": RECORD_VERSION, "docs": {document_id: record}}, [record["decision"]], claims=releases)

    # -- the validity lapse -------------------------------------------------------------------

    def lapse(self, ledger: Ledger, today: date, now: float | None = None, min_age: float = 0.0,
              limit: int = LAPSE_CHUNK) -> Outcome | None:
        """Refuse (export_not_confirmed) pending documents whose validity ended before `today`; with
        `now`, only those that arrived at least `min_age` seconds ago (their confirmation may be right
        behind them on its own topic)."""
        cutoff = today.toordinal()
        due = [document_id for document_id, valid_to in ledger.pending.items() if valid_to < cutoff
               and (now is None or now - ledger.docs[document_id].get("arrived", 0.0) >= min_age)]
        if not due:
            return None
        due.sort()
        changes, decisions = {}, []
        for document_id in due[:limit]:
            record = dict(ledger.docs[document_id])
            decided_on = date.fromordinal(record["valid_to"] + 1)
            record["decision"] = _decision(document_id, record, {"export_not_confirmed"}, decided_on, final=True)
            changes[document_id] = record
            decisions.append(record["decision"])
        return Outcome({"v": RECORD_VERSION, "docs": changes}, decisions)

    # -- compaction ----------------------------------------------------------------------------

    def compact(self, ledger: Ledger, before: date, limit: int = LAPSE_CHUNK) -> Outcome | None:
        """The records of documents finally decided before `before`, as tombstones (no output)."""
        cutoff = before.toordinal()
        due = []
        for day in sorted(d for d in ledger.final_by_day if d < cutoff):
            due.extend(sorted(ledger.final_by_day[day]))
            if len(due) >= limit:
                break
        if not due:
            return None
        return Outcome({"v": RECORD_VERSION, "docs": {document_id: tombstone(ledger.docs[document_id])
                                                      for document_id in due[:limit]}})


def _decision(document_id: str, record: dict, reasons: set[str], decided_on: date, final: bool = False) -> dict:
    refused = bool(reasons)
    kind = "refusal" if refused else ("refund" if final else "pending")
    vat = record["vat"]
    commission = 0 if refused else record["commission"]
    return {
        "schema": "taxfree-decision/1", "document_id": document_id, "decision": kind,
        "reasons": _sorted(reasons), "vat": format_tiyn(vat), "commission": format_tiyn(commission),
        "refund": format_tiyn(0 if refused else vat - commission),
        "pay_from": None if refused else date.fromordinal(record["pay_from"]).isoformat(),
        "pay_by": None if refused else date.fromordinal(record["pay_by"]).isoformat(),
        "trading_entity_bin": record["bin"], "decided_on": decided_on.isoformat(),
        "buyer_ref": record["buyer_ref"],
    }
