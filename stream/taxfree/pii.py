"""Personal data of a tax-free document, kept out of state, logs, metrics and ClickHouse.

The buyer is known downstream only by `buyer_ref`, a keyed hash (HMAC-SHA256, hex) of
`COUNTRY:NUMBER` of the passport: the API compares a buyer token's subject by the same hash, and
analytics count buyers without knowing them. Shown values are masked to their last 4 characters.
The key is CUSTOMS_TAXFREE_PII_KEY (a file), by default created on first use.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache
from pathlib import Path

from stream.settings import env
from stream.taxfree.secrets_store import read_or_create, taxfree_dir


@lru_cache(maxsize=4)
def _key(path: str) -> bytes:
    key = read_or_create(Path(path), lambda: secrets.token_hex(32).encode()).strip()
    if len(key) < 16:
        raise ValueError(f"{path}: the PII key must be at least 16 bytes")
    return key


def pii_key() -> bytes:
    return _key(env("CUSTOMS_TAXFREE_PII_KEY") or str(taxfree_dir() / "pii.key"))


def keyed_hash(text: str, key: bytes) -> str:
    mac = _keyed(key).copy()
    mac.update(text.encode("utf-8"))
    return mac.hexdigest()


@lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    """HMAC-SHA256 keyed once, copied per hash: the one-shot `hmac.digest` looks the digest up in
    OpenSSL's provider store on every call, 1.5 us alone and ~10 us per document in the worker
    (a tenth of its time); a copy of the keyed state skips that."""
    return hmac.new(key, digestmod=hashlib.sha256)


def buyer_subject(country: str, number: str) -> str:
    """A buyer token's `sub` for this passport (DESIGN 8.2: COUNTRY:NUMBER)."""
    return f"{country}:{number}"


def mask(text: str, keep: int = 4) -> str:
    """All but the last `keep` characters as `*` (at least half hidden for short values)."""
    keep = min(keep, len(text) // 2)
    return "*" * (len(text) - keep) + text[len(text) - keep:]
