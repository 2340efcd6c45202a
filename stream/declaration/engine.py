"""From documents to assessments: validation, goods facts, classification, rates, kernel, output.

``Assessor.assess`` takes a batch of ``assessment-request/1`` documents and returns, in the same
order, one ``assessment/1`` or ``rejection/1`` per document. The per-document Python work is kept to
parsing and bookkeeping; the arithmetic runs column-wise in the compiled kernel
(stream/core/assess.py), once per batch.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from stream.contracts.reasons import rejection
from stream.contracts.validate import ref_of, validate_request
from stream.core import assess as kernel
from stream.core.fixed import (
    STATUS_MISSING_VOLUME,
    STATUS_OK,
    format_micro,
    format_tiyn,
    micro,
)
from stream.rules import Rules
from stream.rules.fx import RateNotFound

KAZAKHSTAN_UTC_OFFSET = dt.timedelta(hours=5)
_OFFSET = re.compile(r"([+-])([0-9]{2}):([0-9]{2})$")
_HS_CODE = re.compile(r"^[0-9]{4,10}$")
_RESERVED_CHAPTERS = frozenset({"00", "77", "98", "99"})
LOW_CONFIDENCE_FLAG = "low_confidence_classification"
STATUS_NO_TARIFF_RATE = 100  # engine-level line status, beside the kernel's


class Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def declared_date(ordered_at: str) -> dt.date:
    """Calendar date in Kazakhstan (UTC+5) of an RFC 3339 timestamp (validated beforehand).

    Parsed by position rather than datetime.fromisoformat, which refuses what RFC 3339 allows
    (lower-case separators, a leap second).
    """
    if ordered_at.endswith("+05:00"):  # the feeds' usual case: already Kazakhstan time
        return dt.date(int(ordered_at[0:4]), int(ordered_at[5:7]), int(ordered_at[8:10]))
    local = dt.datetime(int(ordered_at[0:4]), int(ordered_at[5:7]), int(ordered_at[8:10]),
                        int(ordered_at[11:13]), int(ordered_at[14:16]))
    if ordered_at[-1] in "Zz":
        offset = dt.timedelta(0)
    else:
        sign, hours, minutes = _OFFSET.search(ordered_at).groups()
        offset = dt.timedelta(hours=int(hours), minutes=int(minutes)) * (1 if sign == "+" else -1)
    return (local - offset + KAZAKHSTAN_UTC_OFFSET).date()


def is_nomenclature_code(code: object) -> bool:
    """A declared HS code is used as is when it has 4-10 digits in an existing HS chapter."""
    return isinstance(code, str) and _HS_CODE.match(code) is not None and code[:2] not in _RESERVED_CHAPTERS


@dataclass
class _Order:
    """Bookkeeping of one accepted document while its batch is assessed."""

    index: int
    doc: dict
    flow: str
    declared_at: dt.date
    rule_set: Any
    eur_fx6: int
    fx_used: dict[str, int]
    first_line: int
    line_count: int
    flags: list[str] = field(default_factory=list)


class Assessor:
    """Assesses batches of assessment requests under one set of rules."""

    def __init__(self, rules: Rules, classifier=None):
        self.rules = rules
        self._classifier = classifier
        self._tariff_rows: dict[str, int] = {}

    @property
    def classifier(self):
        if self._classifier is None:
            from stream.classify import Classifier

            self._classifier = Classifier.load()
        return self._classifier

    def _tariff_row(self, code: str) -> int:
        row = self._tariff_rows.get(code)
        if row is None:
            row = self._tariff_rows[code] = self.rules.tariff.lookup(code)
        return row

    def assess(self, docs: Sequence[Any], *, validated: bool = False) -> list[dict]:
        """One assessment/1 or rejection/1 per document, in order. Never raises on bad input."""
        results: list[dict | None] = [None] * len(docs)
        orders: list[_Order] = []
        columns = _LineColumns()
        for index, doc in enumerate(docs):
            problem = None if validated else validate_request(doc)
            if problem is not None:
                results[index] = rejection(ref_of(doc), *problem)
                continue
            try:
                orders.append(self._collect(index, doc, columns))
            except Rejected as rejected:
                columns.truncate(orders[-1].first_line + orders[-1].line_count if orders else 0)
                results[index] = rejection(doc["order_id"], rejected.reason, rejected.detail)
        if orders:
            self._classify(columns, orders)
            for index, result in self._compute(orders, columns):
                results[index] = result
        return results  # type: ignore[return-value]

    def _collect(self, index: int, doc: dict, columns: "_LineColumns") -> _Order:
        fx = self.rules.fx
        flow = doc["flow"]
        declared_text = doc.get("declared_at")
        try:
            declared_at = dt.date.fromisoformat(declared_text) if declared_text else declared_date(doc["ordered_at"])
        except (ValueError, OverflowError):  # RFC 3339 allows years Python's calendar does not (0000, 9999+5h)
            raise Rejected("invalid_date", f"declaration date out of range: {declared_text or doc['ordered_at']!r}")
        rule_set = self.rules.rule_sets.in_force(flow, declared_at)
        if rule_set is None:
            raise Rejected("no_rule_set", f"no {flow} rule set is in force on {declared_at.isoformat()}")
        try:
            eur_fx6 = fx.rate_micro("EUR", declared_at)
            fx_used = {"EUR": eur_fx6}
            first_line = len(columns.qty)
            for line in doc["lines"]:
                currency = line["currency"]
                rate = fx_used.get(currency)
                if rate is None:
                    rate = fx_used[currency] = fx.rate_micro(currency, declared_at)
                columns.append(line, rate, eur_fx6, rule_set.vat_pct6)
        except RateNotFound as missing:
            raise Rejected(missing.reason, missing.detail) from None
        return _Order(index, doc, flow, declared_at, rule_set, eur_fx6, fx_used, first_line, len(doc["lines"]))

    def _classify(self, columns: "_LineColumns", orders: list[_Order]) -> None:
        """Give every line an HS code and a tariff row: declared when valid, else classified."""
        pending = [i for i, code in enumerate(columns.hs_code) if not is_nomenclature_code(code)
                   or self._tariff_row(code) < 0]
        if not pending:
            return
        codes, confidence = self.classifier.classify_batch([columns.description[i] for i in pending],
                                                           [columns.category[i] for i in pending])
        from stream.classify import LOW_CONFIDENCE_PERMILLE

        low = set()
        for i, code, permille in zip(pending, codes, confidence.tolist()):
            columns.hs_code[i] = code
            columns.hs_source[i] = "classified"
            if permille < LOW_CONFIDENCE_PERMILLE:
                low.add(i)
        if low:
            for order in orders:
                if any(i in low for i in range(order.first_line, order.first_line + order.line_count)):
                    order.flags.append(LOW_CONFIDENCE_FLAG)

    def _compute(self, orders: list[_Order], columns: "_LineColumns"):
        tariff = self.rules.tariff
        rows = np.fromiter((self._tariff_row(code) for code in columns.hs_code), dtype=np.int64,
                           count=len(columns.hs_code))
        # A user's tariff may lack the chapter of a classified code: those orders are rejected below.
        no_rate = rows < 0
        rows[no_rate] = 0
        qty = np.array(columns.qty, dtype=np.int64)
        price6 = np.array(columns.price6, dtype=np.int64)
        fx6 = np.array(columns.fx6, dtype=np.int64)
        weight6 = np.array(columns.weight6, dtype=np.int64)
        value = np.zeros(len(qty), dtype=np.int64)
        duty = np.zeros(len(qty), dtype=np.int64)
        excise = np.zeros(len(qty), dtype=np.int64)
        vat = np.zeros(len(qty), dtype=np.int64)
        line_status = np.zeros(len(qty), dtype=np.int8)

        is_warehouse = np.array([order.flow == "warehouse" for order in orders for _ in range(order.line_count)],
                                dtype=bool)
        if is_warehouse.any():
            pick = np.flatnonzero(is_warehouse)
            r = rows[pick]
            out = kernel.warehouse_lines(
                qty=qty[pick], price6=price6[pick], fx6=fx6[pick], unit_weight6=weight6[pick],
                unit_volume6=np.array(columns.volume6, dtype=np.int64)[pick],
                ad_valorem_pct6=tariff.ad_valorem_pct6[r], specific_eur6=tariff.specific_eur6[r],
                specific_unit=tariff.specific_unit[r], combine=tariff.combine[r], excise_kzt6=tariff.excise_kzt6[r],
                excise_unit=tariff.excise_unit[r], eur_fx6=np.array(columns.eur_fx6, dtype=np.int64)[pick],
                vat_pct6=np.array(columns.vat_pct6, dtype=np.int64)[pick])
            value[pick], duty[pick], excise[pick], vat[pick], line_status[pick] = out

        order_status: dict[int, int] = {}
        parcels = [order for order in orders if order.flow == "parcel"]
        if parcels:
            pick = np.concatenate([np.arange(o.first_line, o.first_line + o.line_count) for o in parcels])
            parcel_value, parcel_status = kernel.line_values(qty[pick], price6[pick], fx6[pick])
            line_status[pick] = parcel_status
            offsets = np.zeros(len(parcels) + 1, dtype=np.int64)
            offsets[1:] = np.cumsum([o.line_count for o in parcels])
            sets = [o.rule_set for o in parcels]
            out = kernel.parcel_orders(
                line_value=parcel_value, qty=qty[pick], unit_weight6=weight6[pick], offsets=offsets,
                eur_fx6=[o.eur_fx6 for o in parcels], regime=[s.regime for s in sets],
                threshold_eur6=[s.threshold_eur6 for s in sets], threshold_kg6=[s.threshold_kg6 for s in sets],
                duty_pct6=[s.duty_pct6 for s in sets], min_eur_per_kg6=[s.min_eur_per_kg6 for s in sets],
                vat_pct6=[s.vat_pct6 for s in sets])
            value[pick] = parcel_value
            duty[pick], vat[pick] = out.line_duty, out.line_vat
            order_status = {o.index: int(s) for o, s in zip(parcels, out.status.tolist())}
        line_status[no_rate & is_warehouse] = STATUS_NO_TARIFF_RATE  # parcels are charged on value and weight alone

        value_l, duty_l, excise_l, vat_l, status_l = (a.tolist() for a in (value, duty, excise, vat, line_status))
        for order in orders:
            start, stop = order.first_line, order.first_line + order.line_count
            yield order.index, self._result(order, columns, start, stop, value_l, duty_l, excise_l, vat_l, status_l,
                                            order_status.get(order.index, STATUS_OK))

    @staticmethod
    def _result(order: _Order, columns: "_LineColumns", start: int, stop: int, value, duty, excise, vat, status,
                order_status: int) -> dict:
        doc = order.doc
        bad = next((i for i in range(start, stop) if status[i] != STATUS_OK), None)
        if bad is not None or order_status != STATUS_OK:
            if bad is not None and status[bad] == STATUS_NO_TARIFF_RATE:
                return rejection(doc["order_id"], "no_tariff_rate",
                                 f"lines[{bad - start}]: no tariff row matches HS {columns.hs_code[bad]}")
            if bad is not None and status[bad] == STATUS_MISSING_VOLUME:
                return rejection(doc["order_id"], "missing_volume",
                                 f"lines[{bad - start}]: HS {columns.hs_code[bad]} is charged per litre; "
                                 "give unit_volume_l")
            where = f"lines[{bad - start}]" if bad is not None else "order"
            return rejection(doc["order_id"], "value_out_of_range",
                             f"{where}: an amount exceeds 10^13 KZT per line")
        lines = []
        totals = [0, 0, 0, 0]
        for i in range(start, stop):
            amounts = (value[i], duty[i], excise[i], vat[i])
            for k in range(4):
                totals[k] += amounts[k]
            lines.append({"sku": columns.sku[i], "hs_code": columns.hs_code[i], "hs_source": columns.hs_source[i],
                          "value": format_tiyn(value[i]), "duty": format_tiyn(duty[i]),
                          "excise": format_tiyn(excise[i]), "vat": format_tiyn(vat[i])})
        customs_value, total_duty, total_excise, total_vat = totals
        return {
            "schema": "assessment/1",
            "order_id": doc["order_id"],
            "flow": order.flow,
            "declared_at": order.declared_at.isoformat(),
            "rule_set": order.rule_set.id,
            "currency": "KZT",
            "fx": {currency: format_micro(rate) for currency, rate in order.fx_used.items()},
            "customs_value": format_tiyn(customs_value),
            "duty": format_tiyn(total_duty),
            "excise": format_tiyn(total_excise),
            "vat": format_tiyn(total_vat),
            "total": format_tiyn(total_duty + total_excise + total_vat),
            "lines": lines,
            "flags": order.flags,
        }


class _LineColumns:
    """Line facts of a batch, appended document by document (plain lists: cheapest to append)."""

    __slots__ = ("sku", "qty", "price6", "fx6", "weight6", "volume6", "hs_code", "hs_source", "description",
                 "category", "eur_fx6", "vat_pct6")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, [])

    def append(self, line: dict, fx6: int, eur_fx6: int, vat_pct6: int) -> None:
        self.sku.append(line["sku"])
        self.qty.append(int(line["qty"]))
        self.price6.append(micro(line["unit_price"]))
        self.fx6.append(fx6)
        self.weight6.append(micro(line["unit_weight_kg"]))
        volume = line.get("unit_volume_l")
        self.volume6.append(micro(volume) if volume is not None else -1)
        self.hs_code.append(line.get("hs_code"))
        self.hs_source.append("declared")
        self.description.append(line["description"])
        self.category.append(line.get("category"))
        self.eur_fx6.append(eur_fx6)
        self.vat_pct6.append(vat_pct6)

    def truncate(self, length: int) -> None:
        """Drop the lines of a document rejected half-way through collection."""
        for name in self.__slots__:
            del getattr(self, name)[length:]
