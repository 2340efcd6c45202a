"""Pure-Python twin of ext/request_columns.pyx (same API, same results): see that file."""
from __future__ import annotations

import numpy as np

from stream.money import micro


def request_columns(docs: list):
    """(line_counts, qty, price6, weight6, volume6, lines, currency, hs_code, sku, currencies) of
    validated assessment-request/1 documents: int64 arrays (volume6 -1 when a line gives none), the
    lines themselves and their currency, hs_code (None when absent) and sku, and per order the tuple
    of its distinct currencies in the order of its lines."""
    counts, qty, price6, weight6, volume6 = [], [], [], [], []
    lines, currency, hs_code, sku, currencies = [], [], [], [], []
    for doc in docs:
        doc_lines = doc["lines"]
        counts.append(len(doc_lines))
        seen: list[str] = []
        for line in doc_lines:
            lines.append(line)
            qty.append(int(line["qty"]))
            price6.append(micro(line["unit_price"]))
            weight6.append(micro(line["unit_weight_kg"]))
            volume = line.get("unit_volume_l")
            volume6.append(-1 if volume is None else micro(volume))
            code = line["currency"]
            currency.append(code)
            if code not in seen:
                seen.append(code)
            hs_code.append(line.get("hs_code"))
            sku.append(line["sku"])
        currencies.append(tuple(seen))
    arrays = [np.array(column, dtype=np.int64) for column in (counts, qty, price6, weight6, volume6)]
    return (*arrays, lines, currency, hs_code, sku, currencies)


def line_rates(rates: list, line_counts, currency: list):
    """Per line, the rate of its currency in its order's ``rates`` (a dict currency -> fx6 per order)."""
    out = []
    i = 0
    for order_rates, count in zip(rates, np.asarray(line_counts).tolist()):
        for _ in range(count):
            out.append(order_rates[currency[i]])
            i += 1
    return np.array(out, dtype=np.int64)
