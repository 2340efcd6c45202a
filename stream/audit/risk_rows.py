"""The risk agent's ClickHouse rows: `risk-score/1` documents of risk.hits as rows of `risk_scores` (one
per score) and `risk_hits` (one per indicator hit); schemas/clickhouse/301_risk_scores.sql and
302_risk_hits.sql. Registered with the analytics sink on import (the sink imports this module by itself).
Scores are stored as integer parts per ten thousand, money as exact tiyn; a score carries no personal
data, so neither do the rows."""
from __future__ import annotations

from datetime import date

import orjson

from stream.analytics.rows import Source, Table, register, text, tiyn, to_date
from stream.runtime.topics import RISK_HITS

SCORES_TABLE = Table("risk_scores", (
    ("declaration_id", "str"), ("order_id", "str"), ("declared_on", "date"), ("profile", "str"),
    ("score_permyriad", "int"), ("revenue_at_risk_tiyn", "int"), ("selected", "str"), ("indicators", "strarray"),
    ("stream_partition", "int"),
), ddl="301_risk_scores.sql")

HITS_TABLE = Table("risk_hits", (
    ("declaration_id", "str"), ("declared_on", "date"), ("indicator", "str"), ("line", "int"), ("profile", "str"),
    ("score_permyriad", "int"), ("revenue_at_risk_tiyn", "int"), ("selected", "str"), ("evidence", "str"),
    ("stream_partition", "int"),
), ddl="302_risk_hits.sql")

NO_DATE = date(1970, 1, 1)


def permyriad(score: object) -> int:
    """A score in [0, 1] as an integer 0..10000 (rounded half up)."""
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
        raise ValueError("score: expected a number in [0, 1]")
    return int(score * 10000 + 0.5)


def score_rows(docs: list[dict], source: Source) -> dict[str, list[tuple]]:
    scores, hits = [], []
    for doc in docs:
        ident = text(doc["declaration_id"], "declaration_id")
        day = to_date(doc["declared_at"]) if doc.get("declared_at") else NO_DATE
        profile = text(doc["profile"], "profile")
        selected = text(doc.get("selected"), "selected", "")
        found = doc["hits"]
        if not isinstance(found, list):
            raise TypeError("hits: expected an array")
        scores.append((ident, text(doc["order_id"], "order_id"), day, profile, permyriad(doc["score"]),
                       tiyn(doc["revenue_at_risk"]), selected, [text(h["indicator"], "indicator") for h in found],
                       source.partition))
        for h in found:
            line = h.get("line")
            hits.append((ident, day, text(h["indicator"], "indicator"), -1 if line is None else int(line), profile,
                         permyriad(h["score"]), tiyn(h["revenue_at_risk"]), selected,
                         orjson.dumps(h.get("evidence", {}), option=orjson.OPT_SORT_KEYS).decode(), source.partition))
    return {"risk_scores": scores, "risk_hits": hits}


register("risk_score", topic=RISK_HITS, tables=(SCORES_TABLE, HITS_TABLE), convert=score_rows)
