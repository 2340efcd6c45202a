"""Pure-Python twin of ext/assessment_writer.pyx: the assessment/1 dicts, serialised by orjson.dumps.

`assessment_dict` is the one definition of the document's shape: the engine's `Assessor.assess` returns
these dicts, and the compiled writer is held to their orjson bytes.
"""
from __future__ import annotations

import orjson


def assessment_dict(k: int, order_id, flow, declared_at, rule_set, fx, customs_value, duty, excise, vat, total,
                    flags, starts, stops, sku, hs_code, hs_source, line_value, line_duty, line_excise,
                    line_vat) -> dict:
    """The assessment/1 document of order ``k`` (see `assessment_lines` for the columns)."""
    return {
        "schema": "assessment/1",
        "order_id": order_id[k],
        "flow": flow[k],
        "declared_at": declared_at[k],
        "rule_set": rule_set[k],
        "currency": "KZT",
        "fx": fx[k],
        "customs_value": customs_value[k],
        "duty": duty[k],
        "excise": excise[k],
        "vat": vat[k],
        "total": total[k],
        "lines": [{"sku": sku[i], "hs_code": hs_code[i], "hs_source": hs_source[i], "value": line_value[i],
                   "duty": line_duty[i], "excise": line_excise[i], "vat": line_vat[i]}
                  for i in range(starts[k], stops[k])],
        "flags": flags[k],
    }


def assessment_lines(rows, *columns) -> list[bytes]:
    """One assessment/1 JSON line (ending in a newline) for each order index in ``rows``.

    Per order k: order_id, flow, declared_at, rule_set, fx (a dict currency -> rate text), the five
    totals as text, flags (a list of strings) and its lines starts[k]:stops[k]; per line: sku, hs_code,
    hs_source and the four amounts as text."""
    dumps = orjson.dumps
    return [dumps(assessment_dict(k, *columns)) + b"\n" for k in rows]
