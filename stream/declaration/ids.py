"""Deterministic identifiers: a redelivered order can never mint a second declaration."""
from __future__ import annotations

import hashlib
import uuid

# Fixed namespace of this project's declaration ids; changing it would re-key all history.
DECLARATION_NAMESPACE = uuid.UUID("5b0f7c8e-3f4a-5d6b-9e2a-6b7a1c0de001")

# uuid.uuid5(ns, name) is SHA-1(ns.bytes + name as UTF-8), first 16 bytes, version nibble set to 5
# and the variant bits to 10xx. The same computation on the hex digest, with the namespace already
# hashed, is several times cheaper than building UUID objects (tests/test_ids.py checks equality).
_SEEDED = hashlib.sha1(DECLARATION_NAMESPACE.bytes)
_VARIANT = {c: "89ab"[int(c, 16) & 0x3] for c in "0123456789abcdef"}


def declaration_id(order_id: str) -> str:
    """The declaration id of an order: a name-based UUID (RFC 4122 v5) of its order id,
    equal to ``str(uuid.uuid5(DECLARATION_NAMESPACE, order_id))``."""
    sha = _SEEDED.copy()
    sha.update(order_id.encode())
    h = sha.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
