"""From documents to assessments: validation, goods facts, classification, rates, kernel, output.

``Assessor.assess`` takes a batch of ``assessment-request/1`` documents and returns, in the same
order, one ``assessment/1`` or ``rejection/1`` per document. The per-document Python work is kept to
parsing and bookkeeping; the arithmetic runs column-wise in the compiled kernel
(stream/core/assess.py), once per batch.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, NamedTuple, Sequence

import numpy as np
import orjson

from stream._backend import load_kernel
from stream._gc import gc_paused
from stream.contracts.reasons import rejection
from stream.contracts.validate import ref_of, validate_request
from stream.core.assess import DEFAULT as DEFAULT_KERNEL, AssessKernel
from stream.core.fixed import STATUS_MISSING_VOLUME, STATUS_OK, format_micro
from stream.declaration._writer_py import amounts_as_text, assessment_dict
from stream.rules import Rules
from stream.rules.fx import RateNotFound

# assessment/1 lines from the columns: compiled (ext/assessment_writer.pyx) or the twin (orjson.dumps of
# the dicts `assess` returns), held equal byte for byte
writer = load_kernel("writer", "stream.declaration._writer", "stream.declaration._writer_py")
# the line columns of a batch of validated requests: compiled (ext/request_columns.pyx) or the twin
columns = load_kernel("request_columns", "stream.declaration._columns", "stream.declaration._columns_py")

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


class _Terms(NamedTuple):
    """What an order is assessed under, shared by every order of the same flow, date and currencies."""

    flow: str
    is_warehouse: bool
    declared_text: str  # the declaration date, ISO
    rule_set: Any
    eur_fx6: int
    fx_used: dict[str, int]  # EUR first, then the lines' currencies in order
    fx_text: dict[str, str]


class _Orders:
    """The accepted orders of a batch, as columns: their position in the batch, document, terms, lines
    (counts, first line) and flags."""

    __slots__ = ("index", "docs", "terms", "counts", "starts", "flags")

    def __init__(self, index: list[int], docs: list, terms: list[_Terms], counts: np.ndarray):
        self.index, self.docs, self.terms, self.counts = index, docs, terms, counts
        self.starts = np.zeros(len(counts), dtype=np.int64)
        np.cumsum(counts[:-1], out=self.starts[1:])
        self.flags = [_NO_FLAGS] * len(counts)  # replaced, never appended to


_NO_FLAGS: list[str] = []


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
        self._rate_text = _Memo()  # micro-units -> "545.10"
        self._terms_memo = _Memo()  # (flow, declared_at, ordered_at or its date, currencies) -> _Terms

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
        if validated:
            indices, accepted = list(range(len(docs))), list(docs)
        else:
            indices, accepted = [], []
            for index, doc in enumerate(docs):
                problem = validate_request(doc)
                if problem is not None:
                    results[index] = rejection(ref_of(doc), *problem)
                    continue
                indices.append(index)
                accepted.append(doc)
        orders, batch = self._collect(indices, accepted, results) if accepted else (None, None)
        if orders is not None:
            rows, hs_code, hs_source = self._classify(batch, orders)
            rejected, good, output = self._compute(orders, batch, rows, hs_code, hs_source)
            for index, result in rejected:
                results[index] = result
            index = orders.index
            if as_lines:
                for k, line in zip(good, writer.assessment_lines(good, *output)):
                    results[index[k]] = line
                if len(good) == len(docs):
                    return results
            else:
                output = amounts_as_text(output, self.kernel.format_tiyn_column)
                output[4] = [dict(texts) for texts in output[4]]  # each result its own fx dict and flags
                output[10] = [list(flags) for flags in output[10]]
                for k in good:
                    results[index[k]] = assessment_dict(k, *output)
        if as_lines:
            dumps = orjson.dumps
            for index, result in enumerate(results):
                if result.__class__ is dict:
                    results[index] = dumps(result) + b"\n"
        return results

    def _collect(self, indices: list[int], docs: list, results: list) -> tuple["_Orders | None", "_Lines"]:
        """The accepted orders and their lines' columns; an order refused here gets its rejection in
        ``results`` and its lines are dropped."""
        counts, qty, price6, weight6, volume6, lines, currency, hs_code, sku, currencies = (
            columns.request_columns(docs))
        memo = self._terms_memo
        terms: list[_Terms] = []
        dropped = None
        for k, doc in enumerate(docs):
            declared_text = doc.get("declared_at")
            if declared_text is None:
                ordered_at = doc["ordered_at"]
                # the usual case, Kazakhstan time: the date is the timestamp's own
                key = (doc["flow"], None, ordered_at[:10] if ordered_at.endswith("+05:00") else ordered_at,
                       currencies[k])
            else:
                key = (doc["flow"], declared_text, None, currencies[k])
            found = memo.get(key)
            if found is None:
                try:
                    found = memo.remember(key, self._terms(doc, currencies[k]))
                except Rejected as rejected:
                    results[indices[k]] = rejection(doc["order_id"], rejected.reason, rejected.detail)
                    if dropped is None:
                        dropped = np.zeros(len(docs), dtype=bool)
                    dropped[k] = True
                    continue
            terms.append(found)
        if dropped is not None:
            if not terms:
                return None, None
            keep = np.repeat(~dropped, counts)
            qty, price6, weight6, volume6 = qty[keep], price6[keep], weight6[keep], volume6[keep]
            counts = counts[~dropped]
            keep_list = keep.tolist()
            lines, currency, hs_code, sku = ([item for item, kept in zip(column, keep_list) if kept]
                                             for column in (lines, currency, hs_code, sku))
            kept_orders = (~dropped).tolist()
            indices = [index for index, kept in zip(indices, kept_orders) if kept]
            docs = [doc for doc, kept in zip(docs, kept_orders) if kept]
        fx6 = columns.line_rates([t.fx_used for t in terms], counts, currency)
        return _Orders(indices, docs, terms, counts), _Lines(lines, qty, price6, fx6, weight6, volume6, hs_code, sku)

    def _terms(self, doc: dict, currencies: tuple) -> _Terms:
        """An order's declaration date, rule set and exchange rates (or the `Rejected` that stops it)."""
        flow = doc["flow"]
        declared_text = doc.get("declared_at")
        try:
            declared_at = dt.date.fromisoformat(declared_text) if declared_text else declared_date(doc["ordered_at"])
        except (ValueError, OverflowError):  # RFC 3339 allows years Python's calendar does not (0000, 9999+5h)
            raise Rejected("invalid_date",
                           f"declaration date out of range: {declared_text or doc['ordered_at']!r}") from None
        rule_set = self.rules.rule_sets.in_force(flow, declared_at)
        if rule_set is None:
            raise Rejected("no_rule_set", f"no {flow} rule set is in force on {declared_at.isoformat()}")
        fx = self.rules.fx
        try:  # EUR first, then the lines' currencies in order: the first one missing is the rejection
            fx_used = {"EUR": fx.rate_micro("EUR", declared_at)}
            for currency in currencies:
                if currency not in fx_used:
                    fx_used[currency] = fx.rate_micro(currency, declared_at)
        except RateNotFound as missing:
            raise Rejected(missing.reason, missing.detail) from None
        rate_text = self._rate_text
        fx_text = {currency: rate_text.get(rate) or rate_text.remember(rate, format_micro(rate))
                   for currency, rate in fx_used.items()}
        return _Terms(flow, flow == "warehouse", declared_at.isoformat(), rule_set, fx_used["EUR"], fx_used, fx_text)

    def _classify(self, batch: "_Lines", orders: _Orders) -> tuple[list[int], list, list[str]]:
        """Every line's tariff row, HS code and its source: declared when valid, else classified."""
        hs_code = batch.hs_code
        rows = list(map(self._declared_rows.get, hs_code))  # None: a code not seen yet
        if None in rows:
            declared_row = self._declared_row
            rows = [declared_row(code) if row is None else row for code, row in zip(hs_code, rows)]
        hs_source = ["declared"] * len(rows)
        pending = np.flatnonzero(np.array(rows, dtype=np.int64) < 0).tolist()
        if not pending:
            return rows, hs_code, hs_source
        lines = batch.lines
        codes, confidence = self.classifier.classify_batch([lines[i]["description"] for i in pending],
                                                           [lines[i].get("category") for i in pending])
        from stream.classify import LOW_CONFIDENCE_PERMILLE

        tariff_row = self._tariff_row
        for i, code in zip(pending, codes):
            hs_code[i] = code
            hs_source[i] = "classified"
            rows[i] = tariff_row(code)
        low = np.zeros(len(rows), dtype=np.int64)
        low[np.asarray(pending, dtype=np.int64)] = np.asarray(confidence) < LOW_CONFIDENCE_PERMILLE
        if low.any():
            for k in np.flatnonzero(np.add.reduceat(low, orders.starts)).tolist():
                orders.flags[k] = [LOW_CONFIDENCE_FLAG]
        return rows, hs_code, hs_source

    def _compute(self, orders: _Orders, batch: "_Lines", row_list: list[int], hs_code: list, hs_source: list):
        tariff = self.rules.tariff
        n = len(row_list)
        rows = np.array(row_list, dtype=np.int64)
        # A user's tariff may lack the chapter of a classified code: those orders are rejected below.
        no_rate = rows < 0
        rows[no_rate] = 0
        qty, price6, fx6, weight6 = batch.qty, batch.price6, batch.fx6, batch.weight6
        value = np.zeros(n, dtype=np.int64)
        duty = np.zeros(n, dtype=np.int64)
        excise = np.zeros(n, dtype=np.int64)
        vat = np.zeros(n, dtype=np.int64)
        line_status = np.zeros(n, dtype=np.int8)
        line_counts, starts = orders.counts, orders.starts
        flow, is_warehouse_order, declared_text, rule_set, eur_fx6, _, fx_text = zip(*orders.terms)
        m = len(flow)

        warehouse_orders = np.array(is_warehouse_order, dtype=bool)
        is_warehouse = np.repeat(warehouse_orders, line_counts)
        if warehouse_orders.any():
            pick = np.flatnonzero(is_warehouse)
            r = rows[pick]
            counts = line_counts[warehouse_orders]
            out = self.kernel.warehouse_lines(
                qty=qty[pick], price6=price6[pick], fx6=fx6[pick], unit_weight6=weight6[pick],
                unit_volume6=batch.volume6[pick],
                ad_valorem_pct6=tariff.ad_valorem_pct6[r], specific_eur6=tariff.specific_eur6[r],
                specific_unit=tariff.specific_unit[r], combine=tariff.combine[r], excise_kzt6=tariff.excise_kzt6[r],
                excise_unit=tariff.excise_unit[r],
                eur_fx6=np.repeat(np.array(eur_fx6, dtype=np.int64)[warehouse_orders], counts),
                vat_pct6=np.repeat(np.array([s.vat_pct6 for s in rule_set], dtype=np.int64)[warehouse_orders], counts))
            value[pick], duty[pick], excise[pick], vat[pick], line_status[pick] = out

        order_status = np.zeros(m, dtype=np.int8)
        parcel_orders = ~warehouse_orders
        if parcel_orders.any():
            parcels = np.flatnonzero(parcel_orders).tolist()
            pick = np.flatnonzero(~is_warehouse)
            parcel_value, parcel_status = self.kernel.line_values(qty[pick], price6[pick], fx6[pick])
            line_status[pick] = parcel_status
            offsets = np.zeros(len(parcels) + 1, dtype=np.int64)
            offsets[1:] = np.cumsum(line_counts[parcel_orders])
            sets = [rule_set[k] for k in parcels]
            out = self.kernel.parcel_orders(
                line_value=parcel_value, qty=qty[pick], unit_weight6=weight6[pick], offsets=offsets,
                eur_fx6=[eur_fx6[k] for k in parcels], regime=[s.regime for s in sets],
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
        total = totals[1] + totals[2] + totals[3]
        start_list, stop_list = starts.tolist(), (starts + line_counts).tolist()
        order_id = [doc["order_id"] for doc in orders.docs]
        rejected = []
        if order_bad.any():
            status_list = line_status.tolist()
            good = []
            for k, bad in enumerate(order_bad.tolist()):
                if bad:
                    rejected.append((orders.index[k], self._rejected(order_id[k], start_list[k], stop_list[k],
                                                                     status_list, hs_code)))
                else:
                    good.append(k)
        else:
            good = list(range(m))
        output = [
            order_id, list(flow), list(declared_text), [s.id for s in rule_set], list(fx_text),
            *totals, total, orders.flags, start_list, stop_list,
            batch.sku, hs_code, hs_source, value, duty, excise, vat,
        ]
        return rejected, good, output

    @staticmethod
    def _rejected(order_id: str, start: int, stop: int, status: list[int], hs_code: list) -> dict:
        bad = next((i for i in range(start, stop) if status[i] != STATUS_OK), None)
        if bad is not None and status[bad] == STATUS_NO_TARIFF_RATE:
            return rejection(order_id, "no_tariff_rate", f"lines[{bad - start}]: no tariff row matches HS {hs_code[bad]}")
        if bad is not None and status[bad] == STATUS_MISSING_VOLUME:
            return rejection(order_id, "missing_volume",
                             f"lines[{bad - start}]: HS {hs_code[bad]} is charged per litre; give unit_volume_l")
        where = f"lines[{bad - start}]" if bad is not None else "order"
        return rejection(order_id, "value_out_of_range", f"{where}: an amount exceeds 10^13 KZT per line")


class _Lines:
    """Line facts of a batch: the kernel's int64 columns, the lines themselves, their codes and SKUs."""

    __slots__ = ("lines", "qty", "price6", "fx6", "weight6", "volume6", "hs_code", "sku")

    def __init__(self, lines, qty, price6, fx6, weight6, volume6, hs_code, sku):
        self.lines, self.qty, self.price6, self.fx6, self.weight6, self.volume6 = lines, qty, price6, fx6, weight6, volume6
        self.hs_code, self.sku = hs_code, sku
