"""The risk router's paging (stream/audit/risk_route.py): every declaration goes to the partition of its buyer_ref
(else its declaration_id) in input order, in pages within the byte and item limits; what is not a JSON object
goes alone, untouched."""
from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.audit.risk_route import pages_of, partition_of
from tests.schema_oracle import schema_validator

refs = st.one_of(st.none(), st.sampled_from(["b1", "b2", "b3", "b4", "b5", "b6", "b7"]))
docs = st.builds(lambda n, ref, pad: {"schema": "declaration/2", "declaration_id": f"D-{n}", "buyer_ref": ref,
                                      "pad": "x" * pad},
                 st.integers(0, 10**6), refs, st.integers(0, 300))
junk = st.sampled_from([b"{not json", b"[1,2]", b"7", b'{"a":1,"a":2}', None])
feeds = st.lists(st.one_of(docs.map(orjson.dumps), junk), max_size=80)


def route_of(value) -> int:
    doc = orjson.loads(value)
    return partition_of((doc["buyer_ref"] or doc["declaration_id"]).encode(), 4)


@settings(max_examples=300, deadline=None)
@given(feeds, st.integers(300, 3000), st.integers(1, 9))
def test_every_declaration_once_in_its_buyers_partition_in_order(values, page_bytes, max_items):
    out = pages_of(values, 4, page_bytes, max_items)
    got: dict[int, list] = {}
    for partition, message in out:
        try:
            doc = orjson.loads(message) if message is not None else None
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and doc.get("schema") == "page/1":
            assert len(message) <= page_bytes and 1 <= len(doc["items"]) <= max_items
            for item in doc["items"]:
                assert route_of(orjson.dumps(item)) == partition
                got.setdefault(partition, []).append(orjson.dumps(item))
        else:
            got.setdefault(partition, []).append(message)  # alone: junk, or a declaration too big for a page
    for partition in got:
        assert got[partition] == [v for v in values if _partition(v) == partition]
    assert sum(len(v) for v in got.values()) == len(values)


def _is_declaration(value) -> bool:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and value.count(b":") == orjson.dumps(doc).count(b":")


def _partition(value) -> int:
    if value is not None and _is_declaration(value):
        return route_of(value)
    return partition_of(value or b"", 4)


def test_one_buyers_declarations_share_a_partition_whatever_their_warehouse():
    values = [orjson.dumps({"schema": "declaration/2", "declaration_id": f"D-{n}", "buyer_ref": "same",
                            "warehouse_id": f"W-{n}"}) for n in range(50)]
    out = pages_of(values, 8, 1 << 20)
    assert len(out) == 1 and out[0][0] == partition_of(b"same", 8)
    assert [orjson.dumps(i) for i in orjson.loads(out[0][1])["items"]] == values


def test_a_message_over_the_page_limit_is_refused_not_routed():
    from stream.audit.risk_route import refuse_oversized

    small = orjson.dumps({"schema": "declaration/2", "declaration_id": "D-1", "buyer_ref": None})
    values, refused = refuse_oversized([("declarations", 0, 5, small), ("declarations", 1, 9, b"x" * 2000),
                                        ("declarations", 0, 6, None)], 1000)
    assert values == [small, None]
    [doc] = [orjson.loads(r) for r in refused]
    assert doc["reason"] == "too_large" and doc["ref"] is None and doc["source"] == "declarations/1/9/0"
    schema_validator("rejection-1.json").validate(doc)
