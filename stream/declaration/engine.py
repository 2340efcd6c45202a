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
import orjson

from stream._backend import load_kernel
from stream._gc import gc_paused
from stream.contracts.reasons import rejection
from stream.contracts.validate import ref_of, validate_request
from stream.core.assess import DEFAULT as DEFAULT_KERNEL, AssessKernel
from stream.core.fixed import STATUS_MISSING_VOLUME, STATUS_OK, format_micro, micro
from stream.declaration._writer_py import assessment_dict
from stream.rules import Rules
from stream.rules.fx import RateNotFound

# assessment/1 lines from the columns: compiled (ext/assessment_writer.pyx) or the twin (orjson.dumps of
# the dicts `assess` returns), held equal byte for byte
writer = load_kernel("writer", "stream.declaration._writer", "stream.declaration._writer_py")

KAZAKHSTAN_UTC_OFFSET = dt.timedelta(hours=5)
_OFFSET = re.compile(r"([+-])([0-9]{2}):([0-9]{2})$")
_HS_CODE = re.compile(r"[0-9]{4,10}")  # fullmatch: no trailing newline slips through
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
    return isinstance(code, str) and _HS_CODE.fullmatch(code) is not None and code[:2] not in _RESERVED_CHAPTERS


@dataclass
class AcceptedRequest:
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


class _Memo(dict):
    """A bounded memo: feeds repeat the same prices, weights and codes, so parse each once."""

    LIMIT = 200_000

    def remember(self, key, value):
        if len(self) >= self.LIMIT:
            self.clear()
        self[key] = value
        return value


class Assessor:
    """Assesses batches of assessment requests under one set of rules."""

    def __init__(self, rules: Rules, classifier=None, kernel: AssessKernel | None = None):
        self.rules = rules
        self.kernel = kernel if kernel is not None else DEFAULT_KERNEL  # compiled or twin, like the classifier's
        self._classifier = classifier
        self._tariff_rows: dict[str, int] = {}
        self._declared_rows = _Memo()  # declared code -> tariff row, -1 when it must be classified
        self._micro = _Memo()  # decimal string -> micro-units
        self._rate_text = _Memo()  # micro-units -> "545.10"

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

    def _declared_row(self, code) -> int:
        row = self._declared_rows.get(code)
        if row is None:
            row = self._tariff_row(code) if is_nomenclature_code(code) else -1
            self._declared_rows.remember(code, row)
        return row

    def assess(self, docs: Sequence[Any], *, validated: bool = False) -> list[dict]:
        """One assessment/1 or rejection/1 per document, in order. Never raises on bad input."""
        with gc_paused():
            return self._assess(docs, validated, False)

    def assess_lines(self, docs: Sequence[Any], *, validated: bool = False) -> list[bytes]:
        """`assess` as JSON lines, each ending in a newline: ``orjson.dumps`` of what `assess` returns,
        byte for byte, the assessments written from the kernel's columns by the writer (compiled, or its
        twin) without building their dicts."""
        with gc_paused():
            return self._assess(docs, validated, True)

    def _assess(self, docs: Sequence[Any], validated: bool, as_lines: bool) -> list:
        results: list = [None] * len(docs)
        orders: list[AcceptedRequest] = []
        batch = _Lines()
        for index, doc in enumerate(docs):
            problem = None if validated else validate_request(doc)
            if problem is not None:
                results[index] = rejection(ref_of(doc), *problem)
                continue
            try:
                orders.append(self._collect(index, doc, batch))
            except Rejected as rejected:
                batch.truncate(orders[-1].first_line + orders[-1].line_count if orders else 0)
                results[index] = rejection(doc["order_id"], rejected.reason, rejected.detail)
        if orders:
            rows, hs_code, hs_source = self._classify(batch, orders)
            rejected, good, columns = self._compute(orders, batch, rows, hs_code, hs_source)
            for index, result in rejected:
                results[index] = result
            if as_lines:
                for k, line in zip(good, writer.assessment_lines(good, *columns)):
                    results[orders[k].index] = line
            else:
                for k in good:
                    results[orders[k].index] = assessment_dict(k, *columns)
        if as_lines:
            dumps = orjson.dumps
            for index, result in enumerate(results):
                if result.__class__ is dict:
                    results[index] = dumps(result) + b"\n"
        return results

    def _collect(self, index: int, doc: dict, batch: "_Lines") -> AcceptedRequest:
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
        memo, parse = self._micro, self._micro.remember
        lines, qty, price6, fx6, weight6, volume6 = (batch.lines, batch.qty, batch.price6, batch.fx6, batch.weight6,
                                                     batch.volume6)
        first_line = len(lines)
        try:
            eur_fx6 = fx.rate_micro("EUR", declared_at)
            fx_used = {"EUR": eur_fx6}
            for line in doc["lines"]:
                currency = line["currency"]
                rate = fx_used.get(currency)
                if rate is None:
                    rate = fx_used[currency] = fx.rate_micro(currency, declared_at)
                lines.append(line)
                qty.append(int(line["qty"]))
                text = line["unit_price"]
                price6.append(memo.get(text) or parse(text, micro(text)))
                fx6.append(rate)
                text = line["unit_weight_kg"]
                weight6.append(memo.get(text) or parse(text, micro(text)))
                text = line.get("unit_volume_l")
                volume6.append(-1 if text is None else memo.get(text) or parse(text, micro(text)))
        except RateNotFound as missing:
            raise Rejected(missing.reason, missing.detail) from None
        return AcceptedRequest(index, doc, flow, declared_at, rule_set, eur_fx6, fx_used, first_line, len(doc["lines"]))

    def _classify(self, batch: "_Lines", orders: list[AcceptedRequest]) -> tuple[list[int], list, list[str]]:
        """Every line's tariff row, HS code and its source: declared when valid, else classified."""
        hs_code = [line.get("hs_code") for line in batch.lines]
        declared_row = self._declared_row
        rows = [declared_row(code) for code in hs_code]
        hs_source = ["declared"] * len(rows)
        pending = [i for i, row in enumerate(rows) if row < 0]
        if not pending:
            return rows, hs_code, hs_source
        lines = batch.lines
        codes, confidence = self.classifier.classify_batch([lines[i]["description"] for i in pending],
                                                           [lines[i].get("category") for i in pending])
        from stream.classify import LOW_CONFIDENCE_PERMILLE

        low = set()
        for i, code, permille in zip(pending, codes, confidence.tolist()):
            hs_code[i] = code
            hs_source[i] = "classified"
            rows[i] = self._tariff_row(code)
            if permille < LOW_CONFIDENCE_PERMILLE:
                low.add(i)
        if low:
            for order in orders:
                if any(i in low for i in range(order.first_line, order.first_line + order.line_count)):
                    order.flags.append(LOW_CONFIDENCE_FLAG)
        return rows, hs_code, hs_source

    def _compute(self, orders: list[AcceptedRequest], batch: "_Lines", row_list: list[int], hs_code: list, hs_source: list):
        tariff = self.rules.tariff
        n = len(row_list)
        rows = np.array(row_list, dtype=np.int64)
        # A user's tariff may lack the chapter of a classified code: those orders are rejected below.
        no_rate = rows < 0
        rows[no_rate] = 0
        qty = np.array(batch.qty, dtype=np.int64)
        price6 = np.array(batch.price6, dtype=np.int64)
        fx6 = np.array(batch.fx6, dtype=np.int64)
        weight6 = np.array(batch.weight6, dtype=np.int64)
        value = np.zeros(n, dtype=np.int64)
        duty = np.zeros(n, dtype=np.int64)
        excise = np.zeros(n, dtype=np.int64)
        vat = np.zeros(n, dtype=np.int64)
        line_status = np.zeros(n, dtype=np.int8)
        line_counts = np.array([order.line_count for order in orders], dtype=np.int64)
        starts = np.array([order.first_line for order in orders], dtype=np.int64)

        warehouse_orders = np.array([order.flow == "warehouse" for order in orders], dtype=bool)
        is_warehouse = np.repeat(warehouse_orders, line_counts)
        if warehouse_orders.any():
            pick = np.flatnonzero(is_warehouse)
            r = rows[pick]
            per_order = [o for o in orders if o.flow == "warehouse"]
            counts = line_counts[warehouse_orders]
            out = self.kernel.warehouse_lines(
                qty=qty[pick], price6=price6[pick], fx6=fx6[pick], unit_weight6=weight6[pick],
                unit_volume6=np.array(batch.volume6, dtype=np.int64)[pick],
                ad_valorem_pct6=tariff.ad_valorem_pct6[r], specific_eur6=tariff.specific_eur6[r],
                specific_unit=tariff.specific_unit[r], combine=tariff.combine[r], excise_kzt6=tariff.excise_kzt6[r],
                excise_unit=tariff.excise_unit[r],
                eur_fx6=np.repeat(np.array([o.eur_fx6 for o in per_order], dtype=np.int64), counts),
                vat_pct6=np.repeat(np.array([o.rule_set.vat_pct6 for o in per_order], dtype=np.int64), counts))
            value[pick], duty[pick], excise[pick], vat[pick], line_status[pick] = out

        order_status = np.zeros(len(orders), dtype=np.int8)
        parcel_orders = ~warehouse_orders
        if parcel_orders.any():
            parcels = [order for order in orders if order.flow == "parcel"]
            pick = np.flatnonzero(~is_warehouse)
            parcel_value, parcel_status = self.kernel.line_values(qty[pick], price6[pick], fx6[pick])
            line_status[pick] = parcel_status
            offsets = np.zeros(len(parcels) + 1, dtype=np.int64)
            offsets[1:] = np.cumsum(line_counts[parcel_orders])
            sets = [o.rule_set for o in parcels]
            out = self.kernel.parcel_orders(
                line_value=parcel_value, qty=qty[pick], unit_weight6=weight6[pick], offsets=offsets,
                eur_fx6=[o.eur_fx6 for o in parcels], regime=[s.regime for s in sets],
                threshold_eur6=[s.threshold_eur6 for s in sets], threshold_kg6=[s.threshold_kg6 for s in sets],
                duty_pct6=[s.duty_pct6 for s in sets], min_eur_per_kg6=[s.min_eur_per_kg6 for s in sets],
                vat_pct6=[s.vat_pct6 for s in sets])
            value[pick] = parcel_value
            duty[pick], vat[pick] = out.line_duty, out.line_vat
            order_status[parcel_orders] = out.status
        line_status[no_rate & is_warehouse] = STATUS_NO_TARIFF_RATE  # parcels are charged on value and weight alone

        # order totals are sums of the rounded lines; every order has at least one line
        totals = [np.add.reduceat(column, starts) for column in (value, duty, excise, vat)]
        order_bad = np.add.reduceat(line_status != STATUS_OK, starts) > 0
        order_bad |= order_status != STATUS_OK
        text = self.kernel.format_tiyn_column
        value_t, duty_t, excise_t, vat_t = (text(column) for column in (value, duty, excise, vat))
        total_value_t, total_duty_t, total_excise_t, total_vat_t = (text(column) for column in totals)
        total_t = text(totals[1] + totals[2] + totals[3])
        skus = [line["sku"] for line in batch.lines]
        rate_text = self._rate_text
        rejected = []
        if order_bad.any():
            status_list = line_status.tolist()
            good = []
            for k in range(len(orders)):
                if order_bad[k]:
                    order = orders[k]
                    rejected.append((order.index, self._rejected(order, order.first_line,
                                                                 order.first_line + order.line_count,
                                                                 status_list, hs_code)))
                else:
                    good.append(k)
        else:
            good = list(range(len(orders)))
        columns = (
            [order.doc["order_id"] for order in orders],
            [order.flow for order in orders],
            [order.declared_at.isoformat() for order in orders],
            [order.rule_set.id for order in orders],
            [{currency: rate_text.get(rate) or rate_text.remember(rate, format_micro(rate))
              for currency, rate in order.fx_used.items()} for order in orders],
            total_value_t, total_duty_t, total_excise_t, total_vat_t, total_t,
            [order.flags for order in orders],
            starts.tolist(), (starts + line_counts).tolist(),
            skus, hs_code, hs_source, value_t, duty_t, excise_t, vat_t,
        )
        return rejected, good, columns

    @staticmethod
    def _rejected(order: AcceptedRequest, start: int, stop: int, status: list[int], hs_code: list) -> dict:
        order_id = order.doc["order_id"]
        bad = next((i for i in range(start, stop) if status[i] != STATUS_OK), None)
        if bad is not None and status[bad] == STATUS_NO_TARIFF_RATE:
            return rejection(order_id, "no_tariff_rate", f"lines[{bad - start}]: no tariff row matches HS {hs_code[bad]}")
        if bad is not None and status[bad] == STATUS_MISSING_VOLUME:
            return rejection(order_id, "missing_volume",
                             f"lines[{bad - start}]: HS {hs_code[bad]} is charged per litre; give unit_volume_l")
        where = f"lines[{bad - start}]" if bad is not None else "order"
        return rejection(order_id, "value_out_of_range", f"{where}: an amount exceeds 10^13 KZT per line")


class _Lines:
    """Line facts of a batch, appended document by document (plain lists: cheapest to append)."""

    __slots__ = ("lines", "qty", "price6", "fx6", "weight6", "volume6")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, [])

    def truncate(self, length: int) -> None:
        """Drop the lines of a document rejected half-way through collection."""
        for name in self.__slots__:
            del getattr(self, name)[length:]
