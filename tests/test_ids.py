"""Declaration ids: the fast computation equals RFC 4122 uuid5 of the order id, always."""
from __future__ import annotations

import random
import uuid

from hypothesis import given, settings, strategies as st

from stream.declaration.ids import DECLARATION_NAMESPACE, declaration_id


def reference(order_id: str) -> str:
    return str(uuid.uuid5(DECLARATION_NAMESPACE, order_id))


def test_fast_id_equals_uuid5_on_many_ids():
    rng = random.Random(20261121)
    ids = [f"AE-{i:09d}" for i in range(20_000)]
    ids += ["", "O-1", "заказ-№42", "订单-7", "x" * 1000, "emoji-\U0001f4e6", "tab\tand\nnewline"]
    alphabet = "abcXYZ0189-_:/ ёЖ中\u00e9"
    ids += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(20_000)]
    for oid in ids:
        assert declaration_id(oid) == reference(oid), oid


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_fast_id_equals_uuid5_on_any_text(order_id):
    got = declaration_id(order_id)
    assert got == reference(order_id)
    parsed = uuid.UUID(got)
    assert parsed.version == 5 and parsed.variant == uuid.RFC_4122


def test_every_variant_nibble_is_covered():
    seen = {reference(f"O-{i}")[19] for i in range(200)}
    assert seen == set("89ab")
    for i in range(200):
        assert declaration_id(f"O-{i}") == reference(f"O-{i}")
