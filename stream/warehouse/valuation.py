"""The value of goods under customs control, for the operator's metrics."""
from __future__ import annotations

import datetime as dt

from stream.declaration.engine import KAZAKHSTAN_UTC_OFFSET
from stream.money import micro, micro_product_tiyn
from stream.rules.fx import RateNotFound


class StockValuer:
    """Value of goods under customs control: their manifest price at today's National Bank rate
    (Kazakhstan's calendar date), in exact tiyn; goods in a currency without a rate count as 0."""

    def __init__(self, fx, today=None):
        self.fx = fx
        self.today = today or (lambda: (dt.datetime.now(dt.timezone.utc) + KAZAKHSTAN_UTC_OFFSET).date())

    def __call__(self, units: int, unit_price: str, currency: str) -> int:
        try:
            rate6 = self.fx.rate_micro(currency, self.today())
        except RateNotFound:
            return 0
        return micro_product_tiyn(units, micro(unit_price), rate6)
