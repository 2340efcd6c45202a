"""Deterministic identifiers: a redelivered order can never mint a second declaration."""
from __future__ import annotations

import uuid

# Fixed namespace of this project's declaration ids; changing it would re-key all history.
DECLARATION_NAMESPACE = uuid.UUID("5b0f7c8e-3f4a-5d6b-9e2a-6b7a1c0de001")


def declaration_id(order_id: str) -> str:
    """The declaration id of an order: a name-based UUID (RFC 4122 v5) of its order id."""
    return str(uuid.uuid5(DECLARATION_NAMESPACE, order_id))
