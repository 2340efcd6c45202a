"""Writes stream/rules/data/fx.csv: an ILLUSTRATIVE rate file in the official format.

The rates follow a smooth deterministic path near the real levels of 2023-2026 on working days only
(the rate of a Friday holds over the weekend), so that the demo and tests exercise the lookup rule.
Replace the file with the National Bank of Kazakhstan's published rates for real use.
"""
from __future__ import annotations

import datetime as dt
import math
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

# currency -> (KZT per unit on 2023-01-02, on 2026-12-31, decimals)
LEVELS = {
    "USD": ("462.65", "478.25", 2),
    "EUR": ("493.33", "545.10", 2),
    "CNY": ("66.91", "66.20", 2),
    "RUB": ("6.32", "5.95", 2),
    "TRY": ("24.72", "11.35", 2),
    "GBP": ("557.10", "628.40", 2),
    "JPY": ("3.5210", "3.1480", 4),
    "KRW": ("0.3658", "0.3452", 4),
    "AED": ("125.97", "130.22", 2),
    "KGS": ("5.38", "5.47", 2),
    "UZS": ("0.0410", "0.0382", 4),
    "BYN": ("183.20", "152.60", 2),
}
START, END = dt.date(2023, 1, 2), dt.date(2026, 12, 31)


def rows():
    span = (END - START).days
    day = START
    while day <= END:
        if day.weekday() < 5:
            t = (day - START).days / span
            for index, (currency, (first, last, places)) in enumerate(LEVELS.items()):
                base = float(first) + (float(last) - float(first)) * t
                wobble = 1 + 0.012 * math.sin(2 * math.pi * (t * 9 + index / 7))
                rate = Decimal(repr(base * wobble)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
                yield day.isoformat(), currency, str(rate)
        day += dt.timedelta(days=1)


def main(path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("date,currency,kzt_per_unit\n")
        for row in rows():
            out.write(",".join(row) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "stream/rules/data/fx.csv")
