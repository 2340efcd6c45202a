"""Public entry to the assessment kernel: validates and coerces columns (once, here, for both
backends), then calls the compiled module (ext/assess.pyx) or its pure-Python twin
(stream/core/_assess_py.py). `AssessKernel(module)` binds the entry points to one backend (the
assessor takes one, as the classifier takes its kernel); the module-level functions use the one
stream._backend chose.

All inputs are integer fixed-point columns (stream/core/fixed.py); outputs are int64 tiyn.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from types import ModuleType

from stream._backend import backend as _backend_of_name, backend_of, load_kernel

kernel_module: ModuleType = load_kernel("assess", "stream.core._assess", "stream.core._assess_py")


def backend() -> str:
    """"compiled" or "python": the backend the module-level functions run on."""
    return _backend_of_name("assess")


class WarehouseLines(NamedTuple):
    value: np.ndarray
    duty: np.ndarray
    excise: np.ndarray
    vat: np.ndarray
    status: np.ndarray


class ParcelOrders(NamedTuple):
    duty: np.ndarray
    vat: np.ndarray
    line_duty: np.ndarray
    line_vat: np.ndarray
    status: np.ndarray


def _columns(length: int | None, names: tuple[str, ...], values: tuple, dtype) -> list[np.ndarray]:
    arrays = []
    for name, value in zip(names, values):
        array = np.ascontiguousarray(value, dtype=dtype)
        if array.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional")
        if length is not None and len(array) != length:
            raise ValueError(f"{name} has {len(array)} rows, expected {length}")
        if dtype is np.int64 and name not in ("unit_volume6", "threshold_kg6") and len(array) and array.min() < 0:
            raise ValueError(f"{name} must not be negative")
        arrays.append(array)
    return arrays


def _int64(length, **columns):
    return _columns(length, tuple(columns), tuple(columns.values()), np.int64)


def _int8(length, **columns):
    return _columns(length, tuple(columns), tuple(columns.values()), np.int8)


class AssessKernel:
    """The checked entry points of the assessment kernel over one backend module."""

    def __init__(self, module: ModuleType | None = None):
        self.module = module if module is not None else kernel_module
        self.backend = backend_of(self.module)

    def line_values(self, qty, price6, fx6) -> tuple[np.ndarray, np.ndarray]:
        """Customs value per line, round(qty * price * fx), in tiyn, and a status per line."""
        n = len(qty)
        return self.module.line_values(*_int64(n, qty=qty, price6=price6, fx6=fx6))

    def warehouse_lines(self, *, qty, price6, fx6, unit_weight6, unit_volume6, ad_valorem_pct6, specific_eur6,
                        specific_unit, combine, excise_kzt6, excise_unit, eur_fx6, vat_pct6) -> WarehouseLines:
        """Value, duty, excise and VAT per line under the warehouse flow (unit_volume6 = -1: unknown)."""
        n = len(qty)
        q, p, f, w, vol, adv, spec = _int64(n, qty=qty, price6=price6, fx6=fx6, unit_weight6=unit_weight6,
                                            unit_volume6=unit_volume6, ad_valorem_pct6=ad_valorem_pct6,
                                            specific_eur6=specific_eur6)
        exc, eur, vat = _int64(n, excise_kzt6=excise_kzt6, eur_fx6=eur_fx6, vat_pct6=vat_pct6)
        spec_unit, comb, exc_unit = _int8(n, specific_unit=specific_unit, combine=combine, excise_unit=excise_unit)
        return WarehouseLines(*self.module.warehouse_lines(q, p, f, w, vol, adv, spec, spec_unit, comb, exc, exc_unit,
                                                           eur, vat))

    def parcel_orders(self, *, line_value, qty, unit_weight6, offsets, eur_fx6, regime, threshold_eur6,
                      threshold_kg6, duty_pct6, min_eur_per_kg6, vat_pct6) -> ParcelOrders:
        """Duty and VAT per order under its parcel regime, split over its lines (offsets: CSR bounds)."""
        n = len(line_value)
        value, q, w = _int64(n, line_value=line_value, qty=qty, unit_weight6=unit_weight6)
        (bounds,) = _int64(None, offsets=offsets)
        if len(bounds) == 0 or bounds[0] != 0 or bounds[-1] != n or np.any(np.diff(bounds) < 0):
            raise ValueError("offsets must run from 0 to the number of lines, non-decreasing")
        m = len(bounds) - 1
        eur, thr_eur, thr_kg, pct, per_kg, vat = _int64(m, eur_fx6=eur_fx6, threshold_eur6=threshold_eur6,
                                                        threshold_kg6=threshold_kg6, duty_pct6=duty_pct6,
                                                        min_eur_per_kg6=min_eur_per_kg6, vat_pct6=vat_pct6)
        (reg,) = _int8(m, regime=regime)
        return ParcelOrders(*self.module.parcel_orders(value, q, w, bounds, eur, reg, thr_eur, thr_kg, pct, per_kg,
                                                       vat))

    def format_tiyn_column(self, amounts) -> list[str]:
        """Amounts in tiyn as KZT strings with two decimals, one per element."""
        return self.module.format_tiyn_column(np.ascontiguousarray(amounts, dtype=np.int64))


DEFAULT = AssessKernel()
line_values = DEFAULT.line_values
warehouse_lines = DEFAULT.warehouse_lines
parcel_orders = DEFAULT.parcel_orders
format_tiyn_column = DEFAULT.format_tiyn_column
