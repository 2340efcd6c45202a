"""Pure-Python twin of ext/feedscan.pyx (same algorithm, same results): see that file."""
from __future__ import annotations

MAX_DEPTH = 64
MAX_KEYS = 64
DUPLICATE = -1
UNSURE = -2

_WS = b" \t\n\r"


def scan_keys(text: bytes) -> int:
    """The number of key-value pairs in the JSON text, DUPLICATE (-1) when an object names a key twice,
    UNSURE (-2) when the raw bytes cannot tell (an escaped key, more than 64 keys in one object or
    nesting deeper than 64)."""
    s = bytes(text)
    n = len(s)
    i = pairs = 0
    frames: list[list[bytes] | None] = []  # None: an array
    while i < n:
        c = s[i]
        if c == 34:
            i += 1
            start = i
            escaped = False
            while i < n and s[i] != 34:
                if s[i] == 92:
                    escaped = True
                    i += 2
                else:
                    i += 1
            end = i
            i += 1
            j = i
            while j < n and s[j] in _WS:
                j += 1
            if j < n and s[j] == 58 and frames and frames[-1] is not None:
                if escaped:
                    return UNSURE
                pairs += 1
                keys = frames[-1]
                if len(keys) >= MAX_KEYS:
                    return UNSURE
                key = s[start:end]
                if key in keys:
                    return DUPLICATE
                keys.append(key)
                i = j + 1
        elif c == 123 or c == 91:
            if len(frames) >= MAX_DEPTH:
                return UNSURE
            frames.append([] if c == 123 else None)
            i += 1
        elif c == 125 or c == 93:
            if frames:
                frames.pop()
            i += 1
        else:
            i += 1
    return pairs


# -- the string patterns of the feed contracts: the validator's own checks -----------------------

def _checks():
    from stream.contracts import validate as v
    from stream.declaration import v2
    from stream.taxfree import contracts as tf

    return {
        "id": lambda s: isinstance(s, str) and v._ID(s) is not None,
        "bin": lambda s: isinstance(s, str) and v._BIN(s) is not None,
        "currency": lambda s: isinstance(s, str) and v._CURRENCY(s) is not None,
        "country": lambda s: isinstance(s, str) and v._COUNTRY(s) is not None,
        "money": lambda s: isinstance(s, str) and v._MONEY(s) is not None,
        "measure": lambda s: isinstance(s, str) and v._MEASURE(s) is not None,
        "timestamp": lambda s: isinstance(s, str) and v._valid_timestamp(s) is not None,
        "date": lambda s: isinstance(s, str) and v._valid_date(s) is not None,
        # the tax-free document's own (stream/taxfree/contracts.py)
        "passport": lambda s: isinstance(s, str) and tf._PASSPORT(s) is not None,
        "card": lambda s: isinstance(s, str) and tf._CARD(s) is not None,
        "amount": lambda s: isinstance(s, str) and tf._AMOUNT(s) is not None,
        "jws": lambda s: isinstance(s, str) and tf._JWS(s) is not None,
        # declaration/2's own (stream/declaration/v2.py)
        "kzt": lambda s: isinstance(s, str) and v2._KZT(s) is not None,
        "tariff": lambda s: isinstance(s, str) and v2._TARIFF_CODE(s) is not None,
        "weight": lambda s: isinstance(s, str) and v2._WEIGHT(s) is not None,
        "buyer_ref": lambda s: isinstance(s, str) and v2._BUYER_REF(s) is not None,
    }


_CHECKS: dict = {}


def match(kind: str, value) -> bool:
    """Whether ``value`` matches the pattern ``kind`` (id, bin, currency, country, money, measure,
    timestamp, date; the tax-free passport, card, amount, jws; declaration/2's kzt, tariff, weight, buyer_ref)."""
    if not _CHECKS:
        _CHECKS.update(_checks())
    if kind not in _CHECKS:
        raise ValueError(kind)
    return bool(_CHECKS[kind](value))


def _lines_pairs(lines, goods: bool) -> int:
    if lines.__class__ is not list:
        return -1
    pairs = 0
    for line in lines:
        if line.__class__ is not dict:
            return -1
        if not (match("id", line.get("sku")) and match("money", line.get("unit_price"))
                and match("currency", line.get("currency"))):
            return -1
        if goods:
            if not (match("country", line.get("origin")) and match("measure", line.get("unit_weight_kg"))):
                return -1
            volume = line.get("unit_volume_l")
            if volume is not None and not match("measure", volume):
                return -1
        pairs += len(line)
    return pairs


def request_pairs(doc: dict) -> int:
    """The key-value pairs of a decoded assessment-request/1 when its string patterns hold, else -1."""
    if not (match("id", doc.get("order_id")) and match("timestamp", doc.get("ordered_at"))):
        return -1
    pairs = len(doc)
    declared = doc.get("declared_at")
    if declared is not None and not match("date", declared):
        return -1
    buyer = doc.get("buyer")
    if buyer is not None:
        if buyer.__class__ is not dict or not match("bin", buyer.get("iin")):
            return -1
        pairs += len(buyer)
    lines = _lines_pairs(doc.get("lines"), True)
    return -1 if lines < 0 else pairs + lines


def order_pairs(doc: dict) -> int:
    """The key-value pairs of a decoded order/1 when its string patterns hold, else -1."""
    buyer = doc.get("buyer")
    if not (match("id", doc.get("order_id")) and match("id", doc.get("warehouse_id"))
            and match("timestamp", doc.get("ordered_at")) and buyer.__class__ is dict
            and match("bin", buyer.get("iin"))):
        return -1
    lines = _lines_pairs(doc.get("lines"), False)
    return -1 if lines < 0 else len(doc) + len(buyer) + lines


def manifest_pairs(doc: dict) -> int:
    """The key-value pairs of a decoded goods-manifest/1 when its string patterns hold, else -1."""
    if not (match("id", doc.get("manifest_id")) and match("bin", doc.get("operator_bin"))
            and match("id", doc.get("warehouse_id")) and match("timestamp", doc.get("arrived_at"))):
        return -1
    lines = _lines_pairs(doc.get("lines"), True)
    return -1 if lines < 0 else len(doc) + lines


def taxfree_document_pairs(doc: dict) -> int:
    """The key-value pairs of a decoded taxfree-document/1 when its string patterns hold and an electronic
    form carries its QR (stream/taxfree/contracts.py), else -1."""
    entity, buyer = doc.get("trading_entity"), doc.get("buyer")
    if not (match("id", doc.get("document_id")) and match("timestamp", doc.get("issued_at"))
            and entity.__class__ is dict and match("bin", entity.get("bin"))
            and buyer.__class__ is dict and match("card", buyer.get("card_token"))):
        return -1
    passport = buyer.get("passport")
    if not (passport.__class__ is dict and match("country", passport.get("country"))
            and match("passport", passport.get("number")) and match("date", passport.get("issued_on"))):
        return -1
    qr = doc.get("qr")
    if qr is None:
        if doc.get("form") == "electronic":
            return -1
    elif not match("jws", qr):
        return -1
    pairs = len(doc) + len(entity) + len(buyer) + len(passport)
    receipts, lines = doc.get("receipts"), doc.get("lines")
    if receipts.__class__ is not list or lines.__class__ is not list:
        return -1
    for receipt in receipts:
        if receipt.__class__ is not dict or not (match("id", receipt.get("number"))
                                                and match("timestamp", receipt.get("issued_at"))):
            return -1
        pairs += len(receipt)
    for line in lines:
        if line.__class__ is not dict or not (match("amount", line.get("price")) and match("amount", line.get("vat"))):
            return -1
        pairs += len(line)
    return pairs


def declaration_pairs(doc: dict) -> int:
    """The key-value pairs of a decoded declaration/2 when its string patterns hold and each line names
    hs_classified and confidence together or neither (stream/declaration/v2.py), else -1."""
    warehouse, buyer_ref, fx = doc.get("warehouse_id"), doc.get("buyer_ref"), doc.get("fx")
    if not (match("id", doc.get("order_id")) and match("id", doc.get("declaration_id"))
            and (warehouse is None or match("id", warehouse)) and match("bin", doc.get("operator_bin"))
            and (buyer_ref is None or match("buyer_ref", buyer_ref)) and match("timestamp", doc.get("ordered_at"))
            and match("date", doc.get("declared_at")) and match("id", doc.get("rule_set"))
            and all(match("kzt", doc.get(k)) for k in ("customs_value", "duty", "excise", "vat", "total"))
            and fx.__class__ is dict):
        return -1
    if not all(match("currency", currency) and match("money", rate) for currency, rate in fx.items()):
        return -1
    pairs = len(doc) + len(fx)
    lines = doc.get("lines")
    if lines.__class__ is not list:
        return -1
    for line in lines:
        if line.__class__ is not dict:
            return -1
        if not (match("id", line.get("sku")) and match("tariff", line.get("hs_code"))
                and all(match("kzt", line.get(k)) for k in ("value", "duty", "excise", "vat"))
                and match("country", line.get("origin")) and match("weight", line.get("weight_kg"))):
            return -1
        classified = line.get("hs_classified")
        if (classified is None) != (line.get("confidence") is None):
            return -1
        if classified is not None and not match("tariff", classified):
            return -1
        pairs += len(line)
    return pairs


def vouch(text: bytes, docs: list, kind: int, extra: int) -> bool:
    """Whether the decoded ``docs`` (kind 0: assessment-request/1, 1: order/1, 2: goods-manifest/1,
    3: taxfree-document/1, 4: declaration/2) hold their patterns and, with ``extra`` pairs of an envelope, every key-value
    pair of the message ``text`` (no key repeated, none dropped): the fast path's one question, in one call."""
    count = (request_pairs, order_pairs, manifest_pairs, taxfree_document_pairs, declaration_pairs)[kind]
    pairs = extra
    for doc in docs:
        n = count(doc)
        if n < 0:
            return False
        pairs += n
    return len(text) > 0 and scan_keys(text) == pairs
