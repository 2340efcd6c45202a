"""The personal-data sweep of issue 9: the buyer's IIN and name, the tourist's passport number, name and card
token are absent from every output topic, every changelog, every ClickHouse table the analytics feeder
writes, every log line of every process and every /metrics text, after a real run.

One run on the real broker (Tansu, its own log file) and the real ClickHouse server: a worker with the
domains warehouse, parcels, audit and taxfree (and the analytics feeder), and the risk agent in a worker of
its own app id, both logging at DEBUG to files. The feed carries distinctive personal data: manifests and
orders (loadgen's, with our buyers), parcels, audit events, tax-free documents and confirmations, and bad
input of each kind (malformed JSON, a malformed IIN, an IIN where a name belongs, a too-long name, an
unknown field holding a passport, an order that waits for stock and then lapses, a wrong key, an oversized
page) - rejections answer bad input and must not echo it.

The detector looks for each value as written and in its common transformations: upper/lower case, the
digits with separators (``771 203 000 123``, ``771-203-000-123``) or alone (a passport's or a card's
digits), JSON's ASCII escapes of a Cyrillic name, base64 and hex of the value, and unkeyed MD5, SHA-1 and
SHA-256 digests of an IIN (which a dictionary of birth dates would reverse). It is shown to find every kind
in the input topics the test produced, and in planted leaks, before it is trusted to find none elsewhere.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from stream.broker import Broker
from stream.loadgen import FeedConfig, generate
from stream.processes import free_port
from stream.runtime.topics import (
    AUDIT_CASES,
    AUDIT_EVENTS,
    DECLARATIONS,
    INBOUND,
    ORDERS,
    PARCELS,
    REJECTIONS,
    TAXFREE_CANCELLATIONS,
    TAXFREE_CONFIRMATIONS,
    TAXFREE_DECISIONS,
    TAXFREE_DOCUMENTS,
)
from stream.taxfree import samples
from stream.taxfree.rules import KZ_TIME
from tests.fixtures.pipeline import FAST_GROUP_ENV, stop_worker


INPUT_TOPICS = (INBOUND, ORDERS, PARCELS, AUDIT_EVENTS, TAXFREE_DOCUMENTS, TAXFREE_CONFIRMATIONS,
                TAXFREE_CANCELLATIONS)
RISK_APP_ID = "pii-sweep-risk"
APP_ID = "pii-sweep"
AUDIT_TODAY = "2026-12-15"  # the case agent's today: notifications of 10 December count into January 2027
SELLERS = [samples.entity(f"5500000000{n:02d}") for n in range(2)]


# -- the personal data of the run --------------------------------------------------------------------

def iin(n: int) -> str:
    return f"771203{n:06d}"


SURNAME = "Qwerkhanova"  # every buyer's surname starts so: one stem finds them all, inside any token
CYRILLIC_SURNAME = "Жаркынбекова"


def buyer_name(n: int) -> str:
    code = "".join(chr(ord("a") + (n // 26 ** i) % 26) for i in range(3))
    return f"Aizhan {SURNAME}{code}" if n % 4 else f"Айжан {CYRILLIC_SURNAME}{code}"


def passport(n: int) -> str:
    return f"ZQPIIX731900{n:06d}"   # 18 upper-case letters and digits; its digits alone: 731900nnnnnn


def tourist(n: int) -> str:
    return f"ZQTOURISTOVA GRETA{n}"


def card(n: int) -> str:
    return f"tok_zqcard_5821{n:08d}"


@dataclass
class Secrets:
    """What must never appear in clear, and the detector that finds it in its usual transformations."""
    iins: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    passports: set[str] = field(default_factory=set)
    cards: set[str] = field(default_factory=set)

    STEMS = (SURNAME, CYRILLIC_SURNAME, "ZQPIIX", "ZQTOURISTOVA", "zqcard")
    _DIGITS = re.compile(r"\d(?:[ \-./]?\d)+")
    _B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}")
    _HEX = re.compile(r"[0-9a-fA-F]{32,}")

    def compile(self) -> None:
        self.digit_forms: dict[str, str] = {}          # digits (separators removed) -> what it is
        for value in self.iins:
            self.digit_forms[value] = f"IIN {value}"
            self.digit_forms[value.encode().hex()] = f"hex of IIN {value}"
        for value in self.passports | self.cards:
            self.digit_forms[re.sub(r"\D", "", value)] = f"digits of {value}"
        self.digit_lengths = sorted({len(k) for k in self.digit_forms})
        self.b64_forms = {}
        for value in self.iins | self.passports | self.cards | self.names:
            for coded in (base64.b64encode(value.encode()), base64.urlsafe_b64encode(value.encode())):
                self.b64_forms[coded.decode().rstrip("=")] = f"base64 of {value}"
        self.b64_lengths = sorted({len(k) for k in self.b64_forms})
        self.digests = {}
        for value in self.iins:
            for algorithm in ("md5", "sha1", "sha256"):
                self.digests[hashlib.new(algorithm, value.encode()).hexdigest()] = f"{algorithm} of IIN {value}"
        self.stems = {}
        for stem in self.STEMS:
            self.stems[stem.casefold()] = stem
            escaped = json.dumps(stem)[1:-1]                     # a Cyrillic stem as \\u0416\\u0430...
            if escaped != stem:
                self.stems[escaped.casefold()] = f"JSON escapes of {stem}"
        for value in self.names:  # a name whose stem was cut: its first name and code still name the person
            self.stems[value.casefold()] = value

    def find(self, text: str, limit: int = 5) -> list[str]:
        """What of the secrets ``text`` holds, with where (at most ``limit``)."""
        found: list[str] = []

        def hit(what: str, start: int) -> None:
            found.append(f"{what} at {start}: ...{text[max(start - 60, 0):start + 60]!r}...")

        folded = text.casefold()
        for stem, what in self.stems.items():
            at = folded.find(stem)
            if at >= 0:
                hit(what, at)
        for match in self._DIGITS.finditer(text):
            run = re.sub(r"\D", "", match.group())
            if len(run) < self.digit_lengths[0]:
                continue
            for size in self.digit_lengths:
                for i in range(len(run) - size + 1):
                    what = self.digit_forms.get(run[i:i + size])
                    if what is not None:
                        hit(what, match.start())
                        break
            if len(found) >= limit:
                return found
        for match in self._B64.finditer(text):
            run = match.group()
            for size in self.b64_lengths:
                for i in range(len(run) - size + 1):
                    what = self.b64_forms.get(run[i:i + size])
                    if what is not None:
                        hit(what, match.start())
                        break
        for match in self._HEX.finditer(text):
            run = match.group().lower()
            for size in (32, 40, 64):
                for i in range(len(run) - size + 1):
                    what = self.digests.get(run[i:i + size])
                    if what is not None:
                        hit(what, match.start())
        return found[:limit]


# -- the feed -----------------------------------------------------------------------------------------

def warehouse_feed(secrets: Secrets) -> tuple[list[tuple[str, bytes, bytes]], set[str]]:
    """loadgen's manifests and orders, every order bought by one of our buyers: (topic, key, value)."""
    messages, order_ids = [], set()
    n = 0
    for page in generate(FeedConfig(orders=240, page_size=20, warehouses=2, skus=120, seed=97, wave_orders=120)):
        doc = orjson.loads(page.value)
        if page.topic == ORDERS:
            for item in doc["items"]:
                item["buyer"] = {"iin": iin(n), "name": buyer_name(n)}
                secrets.iins.add(iin(n))
                secrets.names.add(buyer_name(n))
                order_ids.add(item["order_id"])
                n += 1
        messages.append((page.topic, page.key, orjson.dumps(doc)))
    return messages, order_ids


def parcel(n: int, secrets: Secrets) -> dict:
    secrets.iins.add(iin(n))
    secrets.names.add(buyer_name(n))
    return {"schema": "assessment-request/1", "order_id": f"PII-P-{n}", "flow": "parcel", "marketplace": "temu",
            "ordered_at": "2026-11-21T10:00:00+05:00", "buyer": {"iin": iin(n), "name": buyer_name(n)},
            "lines": [{"sku": f"SKU-{n}", "qty": 1 + n % 3, "unit_price": f"{20 + 13 * (n % 40)}.50",
                       "currency": "USD", "description": "Wireless earbuds with charging case",
                       "hs_code": "8518300000", "origin": "CN", "unit_weight_kg": "0.120"}]}


def parcels_feed(secrets: Secrets) -> tuple[list[tuple[str, bytes, bytes]], set[str]]:
    docs = [parcel(1000 + i, secrets) for i in range(80)]
    pages = [(PARCELS, f"PAGE-{p}".encode(), orjson.dumps({"schema": "page/1", "items": docs[10 * p:10 * p + 10]}))
             for p in range(6)]
    singles = [(PARCELS, d["order_id"].encode(), orjson.dumps(d)) for d in docs[60:]]
    return pages + singles, {d["order_id"] for d in docs}


def taxfree_feed(secrets: Secrets) -> tuple[list[tuple[str, bytes, bytes]], set[str]]:
    # issued yesterday in Kazakhstan (after the samples' receipts of 14:18), confirmed in the evening
    day = (dt.datetime.now(KZ_TIME).date() - dt.timedelta(days=1)).isoformat()
    issued, later = f"{day}T15:00:00+05:00", f"{day}T18:00:00+05:00"
    docs, rest = [], []
    for i in range(36):
        doc = samples.document(f"TF-PII-{i:03d}", SELLERS[i % 2], issued_at=issued, passport=passport(i),
                               country="KZ" if i % 12 == 0 else "DE", lines=[samples.line(f"{95000 + 101 * i}.00")])
        doc["buyer"]["name"] = tourist(i)           # not in the QR's payload: the signature still holds
        doc["buyer"]["card_token"] = card(i)
        secrets.passports.add(passport(i))
        secrets.names.add(tourist(i))
        secrets.cards.add(card(i))
        docs.append(doc)
        if i % 3 != 2:
            rest.append(samples.confirmation(doc, at=later, airport="ALA" if i % 7 else "GUW"))
        elif i % 6 == 5:
            rest.append(samples.cancellation(doc, at=later))
    bad_vat = dict(docs[1], document_id="TF-PII-BADVAT", lines=[{**docs[1]["lines"][0], "vat": "1.00"}])
    bad_passport = json.loads(json.dumps(docs[2]))
    bad_passport.update(document_id="TF-PII-BADPASS")
    bad_passport["buyer"]["passport"]["number"] = passport(90).lower()  # lower case: not a passport number
    secrets.passports.add(passport(90))
    stray = json.loads(json.dumps(docs[3]))
    stray.update(document_id="TF-PII-STRAY")
    stray["buyer"]["passport_copy"] = passport(91)                    # an unknown field, holding a passport
    secrets.passports.add(passport(91))
    broken = (b'{"schema": "taxfree-document/1", "document_id": "TF-PII-BROKEN", "buyer": {"passport": '
              b'{"number": "' + passport(92).encode() + b'"}, "card_token": "' + card(92).encode() + b'", "name"')
    secrets.passports.add(passport(92))
    secrets.cards.add(card(92))
    topic = {"taxfree-document/1": TAXFREE_DOCUMENTS, "taxfree-confirmation/1": TAXFREE_CONFIRMATIONS,
             "taxfree-cancellation/1": TAXFREE_CANCELLATIONS}
    messages = [(topic[m["schema"]], m["document_id"].encode(), orjson.dumps(m))
                for m in docs + [bad_vat, bad_passport, stray] + rest]
    messages.append((TAXFREE_DOCUMENTS, b"TF-PII-BROKEN", broken))
    return messages, {d["document_id"] for d in docs}


def bad_orders(secrets: Secrets, warehouse: str) -> list[tuple[str, bytes, bytes]]:
    """Bad input of the warehouse that carries personal data: every one must be answered, none echoed."""
    def order(oid: str, n: int, **changes) -> dict:
        secrets.iins.add(iin(n))
        secrets.names.add(buyer_name(n))
        doc = {"schema": "order/1", "order_id": oid, "marketplace": "aliexpress", "warehouse_id": warehouse,
               "ordered_at": "2026-11-21T10:00:00+05:00", "buyer": {"iin": iin(n), "name": buyer_name(n)},
               "lines": [{"sku": "NEVER-RECEIVED-1", "qty": 1, "unit_price": "5.10", "currency": "USD"}]}
        doc.update(changes)
        return doc

    short_iin = iin(2001)[:11]
    secrets.iins.add(short_iin)
    long_name = (buyer_name(2005) + " ") * 30
    secrets.passports.add(passport(93))
    docs = [
        order("PII-BAD-IIN", 2001, buyer={"iin": short_iin, "name": buyer_name(2001)}),      # 11 digits
        order("PII-IIN-AS-NAME", 2002, buyer={"iin": iin(2002), "name": iin(2003)}),          # an IIN as name
        order("PII-NUMBER-IIN", 2004, buyer={"iin": int(iin(2004)), "name": buyer_name(2004)}),  # a number
        order("PII-LONG-NAME", 2005, buyer={"iin": iin(2005), "name": long_name}),
        order("PII-STRAY", 2006, buyer_passport=passport(93)),                                 # unknown field
        order("PII-CURRENCY", 2007, lines=[{"sku": "NEVER-RECEIVED-1", "qty": 1, "unit_price": "5.10",
                                             "currency": "XXX"}]),
        order("PII-WAITS", 2008),                                   # no stock ever: pending, then too late
    ]
    secrets.iins.add(iin(2003))
    broken = (b'{"schema": "order/1", "order_id": "PII-BROKEN", "buyer": {"iin": "' + iin(2009).encode()
              + b'", "name": "' + buyer_name(2009).encode() + b'"}, "lines": [')
    secrets.iins.add(iin(2009))
    secrets.names.add(buyer_name(2009))
    wrong_key = order("PII-WRONG-KEY", 2010)
    oversized = {"schema": "page/1", "items": [order(f"PII-BIG-{i}", 2100 + i) for i in range(3500)]}
    return ([(ORDERS, warehouse.encode(), orjson.dumps(d)) for d in docs]
            + [(ORDERS, warehouse.encode(), broken), (ORDERS, b"KZ-SOMEWHERE-ELSE", orjson.dumps(wrong_key)),
               (ORDERS, warehouse.encode(), orjson.dumps(oversized))])


def bad_parcels(secrets: Secrets) -> list[tuple[str, bytes, bytes]]:
    doc = parcel(2500, secrets)
    doc["lines"][0]["currency"] = "XXX"
    doc["order_id"] = "PII-P-CURRENCY"
    no_buyer_iin = parcel(2501, secrets)
    no_buyer_iin["order_id"] = "PII-P-IIN"
    no_buyer_iin["buyer"]["iin"] = iin(2501) + "0"     # 13 digits
    secrets.iins.add(iin(2501) + "0")
    return [(PARCELS, b"PII-P-CURRENCY", orjson.dumps(doc)), (PARCELS, b"PII-P-IIN", orjson.dumps(no_buyer_iin)),
            (PARCELS, b"PII-P-BROKEN", b'{"schema": "assessment-request/1", "buyer": {"iin": "'
             + iin(2502).encode() + b'"')]


def audit_feed(secrets: Secrets) -> tuple[list[tuple[str, bytes, bytes]], set[str]]:
    messages, cases = [], set()
    for i in range(6):
        case = f"CASE-PII-{i}"
        cases.add(case)
        events = [{"schema": "audit-event/1", "case_id": case, "kind": "opened", "on": "2026-12-01",
                   "declaration_id": f"D-PII-{i}", "findings": "unit value far under the price index",
                   "additional_accruals": "1000.00"},
                  {"schema": "audit-event/1", "case_id": case, "kind": "notification_delivered", "on": "2026-12-10"}]
        messages += [(AUDIT_EVENTS, case.encode(), orjson.dumps(e)) for e in events]
    secrets.iins.add(iin(3000))
    stray = {"schema": "audit-event/1", "case_id": "CASE-PII-0", "kind": "paid", "on": "2026-12-11",
             "amount": "10.00", "buyer_iin": iin(3000)}
    messages.append((AUDIT_EVENTS, b"CASE-PII-0", orjson.dumps(stray)))
    messages.append((AUDIT_EVENTS, b"CASE-PII-1", b'{"schema": "audit-event/1", "iin": "' + iin(3001).encode()))
    secrets.iins.add(iin(3001))
    return messages, cases


# -- processes ----------------------------------------------------------------------------------------

def start_worker(tmp_path: Path, broker_url: str, name: str, args: list[str], **env) -> subprocess.Popen:
    full = {**os.environ, **FAST_GROUP_ENV, "KAFKA_BROKER": broker_url, "CUSTOMS_DATA_DIR": str(tmp_path),
            "CUSTOMS_PARTITIONS": "2", **{k: str(v) for k, v in env.items()}}
    log = open(tmp_path / f"{name}.log", "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "stream", "worker", *args, "--loglevel", "debug"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=full, start_new_session=True)
    finally:
        log.close()


def produce(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 << 20)
        await producer.start()
        try:
            for topic, key, value in messages:
                await producer.send(topic, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(go())


def read_every_topic(bootstrap: str) -> dict[str, list[tuple[bytes | None, bytes | None]]]:
    """Every topic the broker holds, each partition from its first offset to its end: (key, value)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def go():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
        await consumer.start()
        try:
            topics = sorted(await consumer.topics())
            parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            got: dict[str, list] = {t: [] for t in topics}
            remaining = {tp for tp in parts if ends[tp] > 0}
            deadline = time.monotonic() + 90
            while remaining and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    got[tp.topic].extend((m.key, m.value) for m in messages)
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
            assert not remaining, f"could not read to the end of {sorted(map(str, remaining))}"
            return got
        finally:
            await consumer.stop()

    return asyncio.run(go())


def as_text(messages) -> str:
    return "\n".join((k or b"").decode("utf-8", "replace") + "\t" + (v or b"").decode("utf-8", "replace")
                     for k, v in messages)


def docs_of(messages) -> list[dict]:
    out = []
    for _, value in messages:
        try:
            out.append(orjson.loads(value))
        except orjson.JSONDecodeError:
            pass
    return out


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def wait_for(what: str, predicate, timeout: float, missing: dict | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f" (missing: {missing})" if missing else ""))
        time.sleep(1.0)


def metric_sum(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


# -- the detector is trusted only after it finds what it should -----------------------------------------

def test_the_detector_finds_each_kind_and_its_transformations():
    secrets = Secrets(iins={iin(7)}, names={buyer_name(8), buyer_name(9), tourist(3)},
                      passports={passport(3)}, cards={card(3)})
    secrets.compile()
    planted = {
        "plain": f'{{"iin": "{iin(7)}"}}',
        "spaced": "buyer 771 203 000 007 declared",
        "dashed": "771-203-000-007",
        "dotted digits": "iin=771.203.000.007;",
        "a number in a longer run": f"ref 9{iin(7)}1",
        "hex": iin(7).encode().hex(),
        "base64": base64.b64encode(iin(7).encode()).decode(),
        "sha256": hashlib.sha256(iin(7).encode()).hexdigest(),
        "md5": "x" + hashlib.md5(iin(7).encode()).hexdigest().upper(),
        "name": f"buyer {buyer_name(8).upper()}",
        "cyrillic name": f"buyer {buyer_name(8)}",
        "ascii-escaped cyrillic": json.dumps({"name": buyer_name(8)}),
        "tourist": tourist(3).lower(),
        "passport": passport(3),
        "passport digits": "passport no. 731 900 000 003",
        "card": card(3),
        "card digits": "5821 0000 0003",
        "base64 of a card": base64.urlsafe_b64encode(card(3).encode()).decode(),
    }
    for what, text in planted.items():
        assert secrets.find(text), what
    clean = ("buyer_ref 3f9a0c77e1b2 order AX-ORD-97-000000012 at 2026-11-02T09:00:12+05:00 offset 771203 "
             "passport ZQ******0003 card tok_****0003 1764633600.123 " + hashlib.sha256(b"other").hexdigest())
    assert secrets.find(clean) == []


# -- the leak the sweep found: a pending order kept a feed's extra fields in its changelog record --------

def test_a_pending_order_keeps_no_field_the_contract_does_not_name():
    from stream.warehouse.agents import WarehouseDomain
    from tests.fixtures.builders import fake_assess, manifest, order, warehouse_harness

    domain = WarehouseDomain(assess=fake_assess, hold_seconds=3600.0, buyer_secret=b"test-secret")
    with warehouse_harness(domain) as h:
        waiting = order("PD-EXTRA", ("LATER", 1))
        waiting["buyer"] = {"iin": iin(4000), "name": buyer_name(4001)}
        waiting["buyer_passport"] = passport(4000)                   # a feed's extra fields, personal data
        waiting["lines"][0]["gift_card"] = card(4000)
        h.feed("orders", waiting)
        secrets = Secrets(iins={iin(4000)}, names={buyer_name(4001)}, passports={passport(4000)},
                          cards={card(4000)})
        secrets.compile()
        records = "\n".join(value.decode() for _, _, value in h.changelog)
        assert "PD-EXTRA" in records and secrets.find(records) == []
        h.feed("goods.inbound", manifest("M-L", ("LATER", 1)))       # the order still declares
        assert [d["order_id"] for d in h.sent("declarations")] == ["PD-EXTRA"]


# -- the sweep ----------------------------------------------------------------------------------------

@pytest.mark.broker
@pytest.mark.clickhouse
@pytest.mark.slow
def test_no_personal_data_in_any_topic_table_log_or_metric(clickhouse_server, clickhouse_url, tmp_path, monkeypatch):
    from stream.analytics import schema

    monkeypatch.setenv("CUSTOMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CUSTOMS_PARTITIONS", "2")
    monkeypatch.setenv("RUST_LOG", "warn")  # Tansu at info writes every request: gigabytes in a minute
    (tmp_path / "taxfree").mkdir()
    (tmp_path / "taxfree" / "jwks.json").write_text(json.dumps(samples.jwks(*SELLERS)))
    secrets = Secrets()
    warehouse, order_ids = warehouse_feed(secrets)
    parcels, parcel_ids = parcels_feed(secrets)
    taxfree, document_ids = taxfree_feed(secrets)
    audit, case_ids = audit_feed(secrets)
    first_warehouse = orjson.loads(next(v for t, _, v in warehouse if t == ORDERS))["items"][0]["warehouse_id"]
    bad = bad_orders(secrets, first_warehouse) + bad_parcels(secrets)
    secrets.compile()

    broker = Broker(host="127.0.0.1", partitions=2, app_id=APP_ID, log_path=str(tmp_path / "broker.log"))
    broker.start()
    ports = {"worker": free_port(), "risk": free_port()}
    worker = start_worker(tmp_path, broker.url, "worker", ["--domains", "warehouse,parcels,audit,taxfree",
                                                           "--app-id", APP_ID],
                          CUSTOMS_METRICS_PORT=ports["worker"], CLICKHOUSE_URL=clickhouse_url,
                          CUSTOMS_SINK_MAX_AGE_SECONDS="0.5", CUSTOMS_PENDING_HOLD_SECONDS="4",
                          CUSTOMS_PARCEL_OPERATOR_BIN="123456789012", CUSTOMS_AUDIT_TODAY=AUDIT_TODAY,
                          CUSTOMS_AUDIT_TICK_SECONDS="1")
    risk = start_worker(tmp_path, broker.url, "risk", ["--domains", "risk", "--app-id", RISK_APP_ID],
                        CUSTOMS_METRICS_PORT=ports["risk"])
    workers = [worker, risk]
    try:
        produce(broker.bootstrap, warehouse + parcels + taxfree + audit + bad)

        missing: dict[str, list] = {}
        pending = {f"TF-PII-{i:03d}" for i in range(36) if i % 3 == 2 and i % 6 != 5}  # never confirmed

        def outputs_done():
            topics = read_every_topic(broker.bootstrap)
            declared = {d.get("order_id") for d in docs_of(topics.get(DECLARATIONS, []))}
            decided = {d.get("document_id") for d in docs_of(topics.get(TAXFREE_DECISIONS, []))
                       if d.get("decision") != "pending" or d.get("document_id") in pending}
            cased = {d.get("case_id") for d in docs_of(topics.get(AUDIT_CASES, []))}
            refs = {r.get("ref") for r in docs_of(topics.get(REJECTIONS, []))}
            missing["declarations"] = sorted((order_ids | parcel_ids) - declared)[:5]
            missing["decisions"] = sorted(document_ids - decided)[:5]
            missing["cases"] = sorted(case_ids - cased)[:5]
            missing["rejection of PII-WAITS"] = [] if "PII-WAITS" in refs else ["PII-WAITS"]
            return topics if not any(missing.values()) else None

        topics = wait_for("every output", outputs_done, 240, missing)
        declarations = len(topics[DECLARATIONS])
        wait_for("the risk agent to read every declaration",
                 lambda: metric_sum(scrape(ports["risk"]), "customs_risk_declarations_total") >= declarations, 120)

        database = clickhouse_url.rsplit("/", 1)[1]
        client = schema.client(schema.parse_url(clickhouse_url))
        try:
            def table_counts():
                return {t: client.execute(f"SELECT count() FROM `{t}`")[0][0]
                        for (t,) in client.execute("SHOW TABLES")}

            wait_for("declarations and tax-free decisions in ClickHouse",
                     # the warehouse's declarations and the parcels' (warehouse_id null: rows with '')
                     lambda: (lambda c: c.get("declarations", 0) >= len(order_ids) + len(parcel_ids)
                              and c.get("taxfree_decisions", 0) > 0 and c.get("rejections", 1) > 0)(table_counts()),
                     120)
            time.sleep(2.0)  # the feeder's last batches (rejections, cases, risk scores)
            tables = {t: client.execute(f"SELECT * FROM `{t}`") for t in table_counts()}
        finally:
            client.disconnect()
        metrics = {name: scrape(port) for name, port in ports.items()}
        topics = read_every_topic(broker.bootstrap)
    finally:
        for process in workers:
            if process.poll() is None:
                stop_worker(process)
        broker.stop()

    # what the sweep reads is the whole run: every topic, changelogs of both app ids, filled tables, DEBUG logs
    changelogs = sorted(t for t in topics if t.endswith("-changelog"))
    assert any(t.startswith(APP_ID + "-") for t in changelogs) and any(t.startswith(RISK_APP_ID) for t in changelogs)
    assert all(topics[t] for t in changelogs if "assignor" not in t), {t: len(topics[t]) for t in changelogs}
    assert topics[DECLARATIONS] and topics[AUDIT_CASES] and topics[TAXFREE_DECISIONS] and topics[REJECTIONS]
    reasons = {r["reason"] for r in docs_of(topics[REJECTIONS])}
    assert {"malformed_json", "invalid_code", "too_large", "wrong_key"} <= reasons, reasons
    filled = {t for t, rows in tables.items() if rows}
    assert {"declarations", "declaration_lines", "taxfree_decisions", "rejections"} <= filled, sorted(filled)
    logs = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in sorted(tmp_path.glob("*.log"))}
    assert set(logs) == {"broker.log", "worker.log", "risk.log"}
    # and the ClickHouse server's own logs (its query log names what the feeder inserted)
    for path in sorted(clickhouse_server.data_dir.rglob("*.log")):
        logs[f"clickhouse {path.name}"] = path.read_text(encoding="utf-8", errors="replace")
    assert "DEBUG" in logs["worker.log"] and "DEBUG" in logs["risk.log"]
    assert all("customs_" in text for text in metrics.values())

    # the planted-leak check on the real run: the input topics do hold every kind of personal data
    inputs = as_text(m for t in INPUT_TOPICS for m in topics.get(t, []))
    found = " ".join(secrets.find(inputs, limit=10_000))
    for kind, sample in (("IIN", iin(0)), ("name", SURNAME), ("passport", "ZQPIIX"), ("card", "zqcard"),
                         ("Cyrillic name", CYRILLIC_SURNAME), ("tourist", "ZQTOURISTOVA")):
        assert sample in found or sample.casefold() in found.casefold(), f"the detector misses the {kind} of the input"

    leaks: dict[str, list[str]] = {}
    for topic, messages in topics.items():
        if topic in INPUT_TOPICS:
            continue
        hits = secrets.find(as_text(messages))
        if hits:
            leaks[f"topic {topic}"] = hits
    for table, rows in tables.items():
        hits = secrets.find("\n".join(repr(row) for row in rows))
        if hits:
            leaks[f"ClickHouse {table}"] = hits
    for name, text in logs.items():
        hits = secrets.find(text)
        if hits:
            leaks[f"log {name}"] = hits
    for name, text in metrics.items():
        hits = secrets.find(text)
        if hits:
            leaks[f"/metrics of {name}"] = hits
    assert not leaks, json.dumps(leaks, indent=1, ensure_ascii=False)[:6000]
    assert database  # the test's own database, dropped by the fixture
