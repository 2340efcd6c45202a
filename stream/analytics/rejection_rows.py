"""`rejection/1` documents (topic rejections, every domain's) as rows of the `rejections` table.

Each rejection gets its own id, so identical rejections of different inputs stay distinct rows
(two malformed messages give the same reason and detail): the id is a digest of the document
together with where it came from.
- A producer that knows the input a rejection answers puts it in the optional `source` field
  (``"orders/3/1234/7"``: topic/partition/offset/item); the id then depends on content + source
  only, so a redelivered rejection (a worker repeating a page's outputs after a crash) keeps its
  id and ReplacingMergeTree collapses it, while distinct inputs stay distinct.
- Without `source`, the rejection's own position in the rejections topic (partition, offset)
  is used: distinct rejections never collapse; a redelivered one is then counted again.
- Outside Kafka (no offsets: tests, benchmarks), the content alone.
"""
from __future__ import annotations

import hashlib
import time

import orjson

from stream.analytics.rows import Source, Table, register, text, to_epoch
from stream.runtime.topics import REJECTIONS

REJECTIONS_TABLE = Table("rejections", (
    ("rejection_id", "str"), ("ref", "str"), ("reason", "str"), ("detail", "str"), ("at", "datetime"),
    ("stream_partition", "int"),
), ddl="004_rejections.sql")


def rejection_id(doc: dict, topic: str, partition: int, offset: int | None) -> str:
    digest = hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=16)
    if not isinstance(doc.get("source"), str) and offset is not None:
        digest.update(f"\0{topic}/{partition}/{offset}".encode())
    return digest.hexdigest()


def rejection_rows(docs: list[dict], source: Source) -> dict[str, list[tuple]]:
    now = int(time.time())
    offsets = source.offsets or (None,) * len(docs)
    rows = []
    for doc, offset in zip(docs, offsets):
        at = doc.get("at")
        rows.append((rejection_id(doc, source.topic, source.partition, offset), text(doc.get("ref"), "ref", ""),
                     text(doc["reason"], "reason"), text(doc.get("detail"), "detail", ""),
                     to_epoch(at) if at else now, source.partition))
    return {"rejections": rows}


register("rejection", topic=REJECTIONS, tables=(REJECTIONS_TABLE,), convert=rejection_rows)
