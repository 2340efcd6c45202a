"""Pure-Python twin of ext/assessment_writer.pyx: the assessment/1 dicts, serialised by orjson.dumps.

`assessment_dict` is the one definition of the document's shape: the engine's `Assessor.assess` returns
these dicts, and the compiled writer is held to their orjson bytes.
"""
from __future__ import annotations

import orjson

from stream.money import format_tiyn


def assessment_dict(k: int, order_id, flow, declared_at, rule_set, fx, customs_value, duty, excise, vat, total,
                    flags, starts, stops, sku, hs_code, hs_source, line_value, line_duty, line_excise,
                    line_vat) -> dict:
    """The assessment/1 document of order ``k`` (the columns of `assessment_lines`, amounts as text:
    `amounts_as_text`)."""
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


AMOUNT_COLUMNS = (5, 6, 7, 8, 9, 16, 17, 18, 19)  # the positions of the amounts among the columns


def amounts_as_text(columns, format_column=None) -> list:
    """The columns with each amount column (tiyn) as KZT strings, as `assessment_dict` takes them."""
    if format_column is None:
        def format_column(amounts):
            return [format_tiyn(int(amount)) for amount in amounts]
    columns = list(columns)
    for position in AMOUNT_COLUMNS:
        columns[position] = format_column(columns[position])
    return columns


def assessment_lines(rows, *columns) -> list[bytes]:
    """One assessment/1 JSON line (ending in a newline) for each order index in ``rows``.

    Per order k: order_id, flow, declared_at, rule_set, fx (a dict currency -> rate text), the five
    totals in tiyn (int64 arrays), flags (a list of strings) and its lines starts[k]:stops[k]; per line:
    sku, hs_code, hs_source and the four amounts in tiyn (int64 arrays)."""
    dumps = orjson.dumps
    text = amounts_as_text(columns)
    return [dumps(assessment_dict(k, *text)) + b"\n" for k in rows]
