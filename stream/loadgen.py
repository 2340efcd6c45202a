"""A realistic synthetic marketplace feed: `customs-stream loadgen`.

Several marketplaces sell through several customs warehouses. The catalogue holds thousands of SKUs
over the e-commerce headings (apparel, footwear, phones, cosmetics, toys...), with titles, prices,
weights and origins drawn per heading; buyers pick SKUs with skewed (Zipf) popularity. The feed runs
in waves: the manifests that bring the goods a wave needs into the warehouse come before its orders.
Everything is deterministic for a seed. Messages are `page/1` pages keyed by warehouse_id.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import math
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator

import click
import orjson

from stream.broker import bootstrap_of
from stream.money import format_tiyn, parse_tiyn
from stream.runtime.topics import INBOUND, ORDERS

MARKETPLACES = (("aliexpress", "AX", 0.38), ("wildberries", "WB", 0.24), ("ozon", "OZ", 0.18),
                ("temu", "TM", 0.12), ("amazon", "AM", 0.08))
WAREHOUSES = ("KZ-ALA-CW-01", "KZ-AST-CW-01", "KZ-SHY-CW-01", "KZ-KGF-CW-01", "KZ-AKT-CW-01", "KZ-PVL-CW-01")
OPERATORS = ("123456789012", "210340017789", "180940025541")
ORIGINS = (("CN", 60), ("TR", 9), ("KR", 6), ("DE", 4), ("US", 4), ("IT", 3), ("VN", 4), ("IN", 3), ("PL", 2),
           ("JP", 2), ("GB", 1), ("UZ", 2))
CURRENCIES = (("USD", 80), ("EUR", 12), ("CNY", 8))
FIRST_NAMES = ("Aigerim", "Dana", "Aliya", "Madina", "Yerlan", "Nurlan", "Arman", "Daniyar", "Olga", "Sergey",
               "Asel", "Zhanna", "Timur", "Ruslan", "Kamila", "Bekzat")

# heading: (hs_code, category, nouns, materials/adjectives, price USD cents (lo, hi), unit weight g (lo, hi), weight)
HEADINGS = (
    ("6109100000", "apparel", ("T-shirt", "tank top", "long-sleeve tee"), ("cotton", "organic cotton", "printed cotton"),
     (300, 2500), (120, 260), 14),
    ("6110", "apparel", ("sweater", "hoodie", "cardigan", "pullover"), ("knitted wool", "fleece", "cashmere blend"),
     (900, 6000), (300, 800), 8),
    ("6204", "apparel", ("dress", "skirt", "women's trousers", "blazer"), ("woven polyester", "linen", "viscose"),
     (900, 7000), (200, 700), 9),
    ("6115", "apparel", ("socks, 5 pairs", "tights", "compression socks"), ("knitted cotton", "nylon"),
     (150, 1500), (50, 200), 6),
    ("640411", "footwear", ("running shoes", "trainers", "canvas sneakers"), ("textile upper", "mesh upper"),
     (1500, 9000), (500, 1100), 7),
    ("6403", "footwear", ("leather boots", "leather loafers", "chelsea boots"), ("genuine leather",),
     (3000, 15000), (700, 1500), 3),
    ("851713", "electronics", ("smartphone 128 GB", "smartphone 256 GB", "5G smartphone"), ("Android", "dual-SIM"),
     (9000, 90000), (170, 240), 4),
    ("851830", "electronics", ("wireless earbuds", "over-ear headphones", "gaming headset"), ("Bluetooth 5.3", "noise-cancelling"),
     (800, 25000), (40, 350), 7),
    ("847130", "electronics", ("laptop 14\"", "tablet 11\"", "ultrabook 13\""), ("16 GB RAM", "8 GB RAM"),
     (20000, 150000), (450, 1900), 2),
    ("3304", "cosmetics", ("face serum", "moisturising cream", "sunscreen SPF 50", "lipstick set"), ("hyaluronic", "vitamin C", "Korean"),
     (300, 4000), (30, 250), 8),
    ("3305", "cosmetics", ("shampoo", "hair mask", "hair oil"), ("argan", "keratin"), (300, 2500), (100, 600), 4),
    ("9503", "toys", ("building blocks set", "plush bear", "RC car", "puzzle 1000 pcs"), ("kids'", "educational"),
     (400, 8000), (150, 1500), 7),
    ("420292", "bags", ("backpack", "travel bag", "sports bag"), ("nylon", "polyester", "waterproof"), (900, 8000), (300, 1200), 5),
    ("420232", "accessories", ("phone case", "wallet", "card holder"), ("silicone", "textile"), (150, 2500), (20, 120), 6),
    ("9102", "accessories", ("quartz wrist-watch", "smart band", "digital watch"), ("steel", "silicone strap"),
     (1200, 20000), (40, 150), 3),
    ("7117", "accessories", ("earrings", "necklace", "bracelet"), ("imitation jewellery", "gold-plated"), (100, 3000), (5, 60), 4),
    ("8516", "home", ("hair dryer", "electric kettle", "curling iron"), ("1800 W", "ceramic"), (1200, 9000), (400, 1600), 3),
    ("4901", "books", ("paperback novel", "children's book", "cookbook"), ("printed",), (500, 3000), (200, 900), 2),
)


@dataclass(frozen=True)
class FeedConfig:
    orders: int = 10_000
    page_size: int = 500
    warehouses: int = 4
    skus: int = 5_000
    seed: int = 7
    zipf: float = 1.1
    wave_orders: int = 20_000
    invalid_rate: float = 0.0
    unclassified_rate: float = 0.03  # SKUs whose manifests carry no HS code (the classifier decides)
    start: str = "2026-11-02T09:00:00+05:00"


@dataclass
class Page:
    topic: str
    key: bytes
    value: bytes
    order_ids: list[str]
    lines: int


class Catalogue:
    def __init__(self, cfg: FeedConfig, rng: random.Random):
        headings_cum = list(itertools.accumulate(h[-1] for h in HEADINGS))
        origins = [o for o, _ in ORIGINS]
        origins_cum = list(itertools.accumulate(w for _, w in ORIGINS))
        currencies_cum = list(itertools.accumulate(w for _, w in CURRENCIES))
        self.by_marketplace: dict[str, list[dict]] = {m: [] for m, _, _ in MARKETPLACES}
        self.cum: dict[str, list[float]] = {}
        mp_cum = list(itertools.accumulate(w for _, _, w in MARKETPLACES))
        for i in range(cfg.skus):
            mp, prefix, _ = rng.choices(MARKETPLACES, cum_weights=mp_cum)[0]
            hs, category, nouns, adjectives, (plo, phi), (wlo, whi), _ = rng.choices(HEADINGS, cum_weights=headings_cum)[0]
            currency = rng.choices(CURRENCIES, cum_weights=currencies_cum)[0][0]
            usd_cents = int(plo * (phi / plo) ** rng.random())
            price = usd_cents if currency == "USD" else (usd_cents * 92 // 100 if currency == "EUR" else usd_cents * 72 // 10)
            sku = {
                "sku": f"{prefix}-{100000 + i}",
                "description": f"{rng.choice(adjectives).capitalize()} {rng.choice(nouns)}, {rng.choice(('black', 'white', 'blue', 'red', 'grey', 'beige', 'green', 'pink'))}",
                "hs_code": None if rng.random() < cfg.unclassified_rate else hs,
                "origin": rng.choices(origins, cum_weights=origins_cum)[0],
                "unit_price_cents": price, "currency": currency,
                "unit_weight_kg": f"{rng.randint(wlo, whi) / 1000:.3f}", "category": category,
            }
            self.by_marketplace[mp].append(sku)
        for mp, skus in self.by_marketplace.items():
            # popularity: Zipf over a random rank order
            rng.shuffle(skus)
            self.cum[mp] = list(itertools.accumulate(1.0 / (rank + 1) ** cfg.zipf for rank in range(len(skus))))


def generate(cfg: FeedConfig) -> Iterator[Page]:
    """The feed's pages, deterministic for ``cfg``: per wave, manifests first, then orders."""
    rng = random.Random(cfg.seed)
    cat = Catalogue(cfg, rng)
    warehouses = WAREHOUSES[: cfg.warehouses]
    markets = [m for m, _, _ in MARKETPLACES if cat.by_marketplace[m]]
    mp_cum = list(itertools.accumulate(w for m, _, w in MARKETPLACES if cat.by_marketplace[m]))
    wh_cum = list(itertools.accumulate(1.0 / (i + 1) ** 0.6 for i in range(len(warehouses))))
    start = dt.datetime.fromisoformat(cfg.start)
    on_hand: dict[tuple[str, str], int] = {}
    manifest_no = itertools.count(1)
    made = 0
    clock = 0
    while made < cfg.orders:
        wave = min(cfg.wave_orders, cfg.orders - made)
        orders_by_wh: dict[str, list[dict]] = {wh: [] for wh in warehouses}
        demand: dict[tuple[str, str], int] = {}
        facts: dict[str, dict] = {}
        market_of: dict[str, str] = {}
        for n in range(made, made + wave):
            mp = rng.choices(markets, cum_weights=mp_cum)[0]
            wh = rng.choices(warehouses, cum_weights=wh_cum)[0]
            k = min(1 + int(rng.expovariate(0.9)), 8)
            picks = rng.choices(cat.by_marketplace[mp], cum_weights=cat.cum[mp], k=k)
            lines = []
            for sku in dict.fromkeys(s["sku"] for s in picks):
                s = next(p for p in picks if p["sku"] == sku)
                qty = 1 if rng.random() < 0.8 else rng.randint(2, 4)
                markup = 110 + rng.randint(0, 50)
                lines.append({"sku": sku, "qty": qty, "unit_price": format_tiyn(s["unit_price_cents"] * markup // 100),
                              "currency": s["currency"]})
                demand[(wh, sku)] = demand.get((wh, sku), 0) + qty
                facts[sku] = s
                market_of[sku] = mp
            clock += rng.randint(1, 20)
            ordered = (start + dt.timedelta(seconds=clock)).isoformat()
            order = {"schema": "order/1", "order_id": f"{mp[:2].upper()}-ORD-{cfg.seed}-{n:09d}", "marketplace": mp,
                     "warehouse_id": wh, "ordered_at": ordered,
                     "buyer": {"iin": f"{rng.randint(0, 10**12 - 1):012d}",
                               "name": f"{rng.choice(FIRST_NAMES)} {rng.choice('ABDEKMNSTZ')}."},
                     "lines": lines}
            if cfg.invalid_rate and rng.random() < cfg.invalid_rate:
                _spoil(order, rng)
            orders_by_wh[wh].append(order)
        made += wave
        # manifests: restock what the wave needs, grouped per warehouse and marketplace
        arrived = (start + dt.timedelta(seconds=max(clock - 3600, 0))).isoformat().replace("+05:00", "Z")
        for wh in warehouses:
            need: dict[str, list] = {}
            for (w, sku), qty in demand.items():
                if w != wh:
                    continue
                short = qty - on_hand.get((wh, sku), 0)
                if short > 0:
                    restock = short + rng.randint(0, 20)
                    on_hand[(wh, sku)] = on_hand.get((wh, sku), 0) + restock
                    need.setdefault(market_of[sku], []).append((facts[sku], restock))
            manifests = []
            for mp, rows in need.items():
                for chunk in range(0, len(rows), 200):
                    lines = []
                    for s, qty in rows[chunk:chunk + 200]:
                        line = {"sku": s["sku"], "description": s["description"], "origin": s["origin"], "qty": qty,
                                "unit_price": format_tiyn(s["unit_price_cents"]), "currency": s["currency"],
                                "unit_weight_kg": s["unit_weight_kg"], "category": s["category"]}
                        if s["hs_code"]:
                            line["hs_code"] = s["hs_code"]
                        lines.append(line)
                    manifests.append({"schema": "goods-manifest/1", "manifest_id": f"MF-{cfg.seed}-{next(manifest_no):07d}",
                                      "operator_bin": OPERATORS[warehouses.index(wh) % len(OPERATORS)],
                                      "warehouse_id": wh, "marketplace": mp, "arrived_at": arrived, "lines": lines})
            for i in range(0, len(manifests), 20):
                items = manifests[i:i + 20]
                yield Page(INBOUND, wh.encode(), orjson.dumps({"schema": "page/1", "items": items}), [],
                           sum(len(m["lines"]) for m in items))
        for (wh, sku), qty in demand.items():
            on_hand[(wh, sku)] -= qty
        # orders, interleaved across warehouses page by page
        queues = {wh: orders for wh, orders in orders_by_wh.items() if orders}
        while queues:
            for wh in list(queues):
                items, queues[wh] = queues[wh][: cfg.page_size], queues[wh][cfg.page_size:]
                if not queues[wh]:
                    del queues[wh]
                yield Page(ORDERS, wh.encode(), orjson.dumps({"schema": "page/1", "items": items}),
                           [o["order_id"] for o in items], sum(len(o.get("lines") or ()) for o in items))


def _spoil(order: dict, rng: random.Random) -> None:
    """Make an order invalid the way real feeds do (for demos: rejections by reason)."""
    kind = rng.randrange(4)
    line = order["lines"][0]
    if kind == 0:
        line["unit_price"] = float(line["unit_price"])  # money as a JSON number
    elif kind == 1:
        line["qty"] = 0
    elif kind == 2:
        line["currency"] = "XAU"  # no exchange rate known
    else:
        line["sku"] = "UNKNOWN-" + line["sku"]  # never received: waits, then unknown_sku


async def produce(pages, bootstrap: str, rate: float = 0.0, progress=None, on_sent=None,
                  max_request_size: int = 8 << 20) -> dict:
    """Send the pages; ``rate`` caps order lines per second (0: as fast as possible)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1 << 20,
                                max_request_size=max_request_size, acks=1)
    await producer.start()
    started = time.monotonic()
    sent_lines = sent_pages = sent_bytes = 0
    try:
        for page in pages:
            if rate and page.topic != INBOUND:
                ahead = sent_lines / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await producer.send(page.topic, page.value, key=page.key)
            if on_sent is not None:
                on_sent(page, time.time())
            sent_pages += 1
            sent_bytes += len(page.value)
            if page.topic != INBOUND:  # order lines (or the same bytes on a scratch topic)
                sent_lines += page.lines
                if progress is not None:
                    progress.update(page.lines)
        await producer.flush()
    finally:
        await producer.stop()
    return {"pages": sent_pages, "bytes": sent_bytes, "order_lines": sent_lines,
            "seconds": time.monotonic() - started}


@click.command("loadgen")
@click.option("--broker", "broker_url", default=None, help="Kafka URL (default: KAFKA_BROKER)")
@click.option("--orders", default=10_000, show_default=True, help="orders to produce")
@click.option("--page-size", default=500, show_default=True, help="documents per page/1 message")
@click.option("--warehouses", default=4, show_default=True, type=click.IntRange(1, len(WAREHOUSES)))
@click.option("--skus", default=5_000, show_default=True, help="SKUs in the catalogue")
@click.option("--seed", default=7, show_default=True, help="same seed, same feed")
@click.option("--rate", default=0.0, show_default=True, help="target order lines per second (0: as fast as possible)")
@click.option("--invalid-rate", default=0.0, show_default=True, help="share of orders spoiled on purpose")
def loadgen_command(broker_url, orders, page_size, warehouses, skus, seed, rate, invalid_rate):
    """Produce a realistic synthetic marketplace feed (manifests before orders) into the broker."""
    from tqdm import tqdm

    from stream import settings as settings_module

    url = broker_url or settings_module.load().broker
    cfg = FeedConfig(orders=orders, page_size=page_size, warehouses=warehouses, skus=skus, seed=seed,
                     invalid_rate=invalid_rate)
    with tqdm(unit=" lines", desc="order lines", unit_scale=True) as bar:
        stats = asyncio.run(produce(generate(cfg), bootstrap_of(url), rate=rate, progress=bar))
    click.echo(orjson.dumps(stats).decode())


# -- the risk feed: parcels and warehouse releases with planted fraud and its ground truth ---------------
#
# `risk_feed` yields assessment-request/1 documents in time order, each with the truth about it: honest,
# or which fraud was planted and the revenue it costs (exact tiyn: the engine's assessment of the true
# facts minus that of the declared ones). A planted change that would cost nothing (an undervalued
# parcel still under the duty-free threshold, a lighter weight on an ad valorem line) is not planted:
# a fraud here is a declaration that underpays. Confounders are honest: frequent buyers of small
# parcels, expensive parcels declared at their price, natural price noise, cheap SKUs at the bottom of
# their code's price band, and the classifier's own honest disagreements with declared codes.

RISK_FRAUDS = ("undervaluation", "misclassification", "weight_mismatch", "splitting")
# Codes a misdeclaring operator picks for dutiable goods: duty-free headings of the tariff.
CHEAP_CODES = ("4901100000", "8471300000", "8517130000")
KG_DUTY_HEADINGS = ("6110", "6204")  # "10% but not less than EUR 2 per kg" in the shipped tariff
SUBCODE_BANDS = 3  # each heading's price range splits into this many 10-digit codes (narrower price bands)


@dataclass(frozen=True)
class RiskFeedConfig:
    declarations: int = 20_000
    seed: int = 101
    skus: int = 3_000
    buyers: int = 6_000
    frequent_buyers: int = 150          # honest confounder: many small parcels each
    frequent_share: float = 0.15        # share of honest parcels bought by frequent buyers
    parcel_share: float = 0.7           # the rest are warehouse releases
    days: int = 40
    start: str = "2026-09-01T09:00:00+05:00"
    price_noise: float = 0.12           # log-normal sigma of a sale's price around its SKU's list price
    undervaluation_rate: float = 0.08 
    misclassification_rate: float = 0.05   # planted on warehouse releases only (a parcel's duty ignores the code)
    weight_rate: float = 0.04              # warehouse releases only, on goods with a duty per kg
    splitting_rate: float = 0.02       # consignments split into parcels (each parcel after the first counts)


@dataclass
class Truth:
    order_id: str
    fraud: str | None
    revenue: int  # tiyn the declaration underpays (0 when honest)
    customs_value: int = 0  # tiyn, as assessed (for the highest-value-first baseline)


def _risk_catalogue(cfg: RiskFeedConfig, rng: random.Random) -> list[dict]:
    headings_cum = list(itertools.accumulate(h[-1] for h in HEADINGS))
    origins = [o for o, _ in ORIGINS]
    origins_cum = list(itertools.accumulate(w for _, w in ORIGINS))
    skus = []
    for i in range(cfg.skus):
        hs, category, nouns, adjectives, (plo, phi), (wlo, whi), _ = rng.choices(HEADINGS, cum_weights=headings_cum)[0]
        band = rng.randrange(SUBCODE_BANDS)
        lo = plo * (phi / plo) ** (band / SUBCODE_BANDS)
        hi = plo * (phi / plo) ** ((band + 1) / SUBCODE_BANDS)
        code = (hs + "0000")[:6] + f"{band + 1:02d}00" if len(hs) < 10 else hs[:8] + f"{band + 1:02d}"
        noun = nouns[band % len(nouns)]
        skus.append({
            "sku": f"RK-{100000 + i}", "hs_code": code, "heading": hs, "category": category,
            "description": f"{rng.choice(adjectives).capitalize()} {noun}, "
                           f"{rng.choice(('black', 'white', 'blue', 'red', 'grey', 'beige', 'green', 'pink'))}",
            "origin": rng.choices(origins, cum_weights=origins_cum)[0],
            "usd_cents": int(lo * (hi / lo) ** rng.random()),
            "weight_g": rng.randint(wlo, whi),
        })
    return skus


def _line(sku: dict, qty: int, usd_cents: int) -> dict:
    return {"sku": sku["sku"], "qty": qty, "unit_price": format_tiyn(max(usd_cents, 1)), "currency": "USD",
            "description": sku["description"], "hs_code": sku["hs_code"], "origin": sku["origin"],
            "unit_weight_kg": f"{sku['weight_g'] / 1000:.3f}", "category": sku["category"]}


def risk_feed(cfg: RiskFeedConfig, assessor=None) -> Iterator[tuple[dict, Truth]]:
    """(assessment-request/1, Truth) pairs in time order, deterministic for ``cfg``."""
    from stream.declaration.engine import Assessor
    from stream.rules import load_rules

    assessor = assessor or Assessor(load_rules())
    rng = random.Random(cfg.seed)
    skus = _risk_catalogue(cfg, rng)
    popularity = list(itertools.accumulate(1.0 / (rank + 1) ** 0.8 for rank in range(len(skus))))
    expensive = [s for s in skus if s["usd_cents"] >= 6000] or skus  # worth undervaluing or splitting
    cheap = [s for s in skus if s["usd_cents"] <= 3000]
    mid_priced = [s for s in skus if 6000 <= s["usd_cents"] < 19000] or skus  # a split consignment's parts
    by_weight_duty = [s for s in skus if s["heading"][:4] in KG_DUTY_HEADINGS]
    start = dt.datetime.fromisoformat(cfg.start)
    step = cfg.days * 86400 / cfg.declarations
    iins = [f"{rng.randint(10**11, 10**12 - 1):012d}" for _ in range(cfg.buyers)]
    frequent = iins[: cfg.frequent_buyers]
    frequent_set = set(frequent)
    made = 0
    clock = 0.0
    pending: list[tuple[dict, str]] = []  # parcels of a split consignment still to send: (request, buyer)

    def stamp() -> str:
        return (start + dt.timedelta(seconds=int(clock))).isoformat()

    def request(n: int, flow: str, lines: list[dict], iin: str, marketplace: str) -> dict:
        doc = {"schema": "assessment-request/1", "order_id": f"RK-{cfg.seed}-{n:08d}", "flow": flow,
               "marketplace": marketplace, "ordered_at": stamp(), "operator_bin": rng.choice(OPERATORS),
               "buyer": {"iin": iin, "name": f"{rng.choice(FIRST_NAMES)} {rng.choice('ABDEKMNSTZ')}."}, "lines": lines}
        if flow == "warehouse":
            doc["warehouse_id"] = rng.choice(WAREHOUSES[:4])
        return doc

    def total(doc: dict) -> tuple[int, int]:
        [answer] = assessor.assess([doc])
        if answer.get("schema") != "assessment/1":
            return -1, 0
        return parse_tiyn(answer["total"]), parse_tiyn(answer["customs_value"])

    while made < cfg.declarations:
        clock += rng.expovariate(1.0 / step)
        if pending:
            doc, truth_revenue = pending.pop(0)
            doc["ordered_at"] = stamp()
            paid, value = total(doc)
            yield doc, Truth(doc["order_id"], "splitting" if truth_revenue > 0 else None, truth_revenue, value)
            made += 1
            continue
        marketplace = rng.choices([m for m, _, _ in MARKETPLACES], cum_weights=list(
            itertools.accumulate(w for _, _, w in MARKETPLACES)))[0]
        roll = rng.random()
        flow = "parcel" if rng.random() < cfg.parcel_share else "warehouse"
        if flow == "parcel" and roll < cfg.splitting_rate:
            planted = _plant_split(cfg, rng, made, mid_priced, request, marketplace, iins, total)
            if planted:
                first, rest = planted[0], planted[1:]
                pending.extend(rest)
                doc, _ = first
                paid, value = total(doc)
                yield doc, Truth(doc["order_id"], None, 0, value)
                made += 1
                continue
        iin = rng.choice(frequent) if rng.random() < cfg.frequent_share else rng.choice(iins)
        buying_often = iin in frequent_set
        k = 1 if buying_often else min(1 + int(rng.expovariate(1.2)), 5)
        if buying_often:  # small everyday parcels
            picks = [rng.choice(cheap)]
        else:
            picks = rng.choices(skus, cum_weights=popularity, k=k)
        lines = []
        for sku in {s["sku"]: s for s in picks}.values():
            qty = 1 if rng.random() < 0.8 else rng.randint(2, 4)
            price = int(sku["usd_cents"] * math.exp(rng.gauss(0.0, cfg.price_noise)))
            lines.append(_line(sku, qty, price))
        doc = request(made, flow, lines, iin, marketplace)
        fraud, revenue = None, 0
        roll -= cfg.splitting_rate
        for kind, rate in (("undervaluation", cfg.undervaluation_rate), ("misclassification", cfg.misclassification_rate),
                           ("weight_mismatch", cfg.weight_rate)):
            if 0 <= roll < rate:
                fraud = kind
                break
            roll -= rate
        if fraud is not None:
            planted = _plant(fraud, doc, rng, expensive, by_weight_duty)
            if planted is not None:
                true_paid, _ = total(doc)
                declared_paid, _ = total(planted)
                if true_paid >= 0 and declared_paid >= 0 and true_paid > declared_paid:
                    doc, revenue = planted, true_paid - declared_paid
                else:
                    fraud = None
            else:
                fraud = None
        _, value = total(doc)
        yield doc, Truth(doc["order_id"], fraud, revenue, value)
        made += 1


def _plant(fraud: str, doc: dict, rng: random.Random, expensive: list[dict], by_weight_duty: list[dict]) -> dict | None:
    """A copy of ``doc`` with one fact falsified, or None when this fraud does not fit the document."""
    planted = orjson.loads(orjson.dumps(doc))
    lines = planted["lines"]
    if fraud == "undervaluation":
        if rng.random() < 0.6:  # fraudsters undervalue what is worth it
            sku = rng.choice(expensive)
            price = int(sku["usd_cents"] * math.exp(rng.gauss(0.0, 0.12)))
            lines[0] = _line(sku, 1, price)
            doc["lines"][0] = dict(lines[0])
        line = lines[0]
        cents = int(Decimal(line["unit_price"]) * 100)
        line["unit_price"] = format_tiyn(max(1, int(cents * rng.uniform(0.08, 0.4))))
        return planted
    if fraud == "misclassification":
        if planted["flow"] != "warehouse":
            return None
        line = max(lines, key=lambda x: Decimal(x["unit_price"]) * x["qty"])
        line["hs_code"] = rng.choice([c for c in CHEAP_CODES if c[:4] != (line["hs_code"] or "")[:4]])
        return planted
    if fraud == "weight_mismatch":
        if planted["flow"] != "warehouse":
            return None  # a parcel pays on weight only when heavy and cheap: too rare to plant
        heavy = [s for s in by_weight_duty if s["usd_cents"] < 2500]
        if heavy:  # a duty per kg bites on cheap heavy goods: there a lighter weight pays less
            sku = rng.choice(heavy)
            lines[0] = _line(sku, rng.randint(2, 8), int(sku["usd_cents"] * math.exp(rng.gauss(0.0, 0.12))))
            doc["lines"][0] = dict(lines[0])
        line = lines[0]
        grams = int(Decimal(line["unit_weight_kg"]) * 1000)
        line["unit_weight_kg"] = f"{max(1, int(grams * rng.uniform(0.1, 0.4))) / 1000:.3f}"
        return planted
    return None


def _plant_split(cfg, rng, made, mid_priced, request, marketplace, iins, total):
    """A consignment over the duty-free threshold sent as 2-4 parcels each under it, over a day or two.

    Returns [(request, marginal revenue)] for the parcels in sending order, or None when the draw does
    not make a consignment that pays more than its parcels. The first parcel is honest on its own; each
    later one completes the fraud and carries what it adds: assess(parcels 1..j as one) - assess(1..j-1)."""
    iin = rng.choice(iins)
    parts = rng.randint(2, 4)
    lines = []
    for _ in range(parts):
        sku = rng.choice(mid_priced)
        lines.append(_line(sku, 1, int(sku["usd_cents"] * math.exp(rng.gauss(0.0, cfg.price_noise)))))
    docs = [request(made + j, "parcel", [line], iin, marketplace) for j, line in enumerate(lines)]
    for j, doc in enumerate(docs):
        doc["order_id"] = f"RK-{cfg.seed}-{made:08d}-{j}"
    out = []
    before = 0
    for j in range(len(docs)):
        merged = dict(docs[0], order_id=docs[0]["order_id"] + "-m", lines=[d["lines"][0] for d in docs[: j + 1]])
        together, _ = total(merged)
        alone, _ = total(docs[j])
        if together < 0 or alone != 0:
            return None  # a part above the threshold: not a split
        out.append((docs[j], together - before))
        before = together
    if before <= 0:
        return None
    return out
