"""The tariff: HS-code prefixes to duty and excise rates, longest prefix wins.

File format (schemas/tariff-csv.json): a CSV with the header
``code,description,ad_valorem_pct,specific_eur,specific_unit,combine,excise_kzt,excise_unit``;
extra columns (ours adds ``source``) are ignored, so an official file with exactly these columns can
replace the shipped one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.core.fixed import (
    COMBINE_AD_VALOREM,
    COMBINE_MAX,
    COMBINE_SPECIFIC,
    COMBINE_SUM,
    UNIT_CODES,
    UNIT_PAIR,
    parse_micro,
)
from stream.rules.csv_files import rows_of

COLUMNS = ("code", "description", "ad_valorem_pct", "specific_eur", "specific_unit", "combine", "excise_kzt", "excise_unit")
_CODE = re.compile(r"[0-9]{2,10}").fullmatch  # fullmatch: `$` would accept a trailing newline
_COMBINE = {"max": COMBINE_MAX, "sum": COMBINE_SUM}
_MAX_PCT_MICRO = 1000 * 10**6
_MAX_EUR_MICRO = 10_000 * 10**6
_MAX_EXCISE_MICRO = 10**9 * 10**6


class TariffError(ValueError):
    """The tariff file is not in the documented format."""


@dataclass(frozen=True)
class Tariff:
    """Rate columns indexed by row; ``lookup`` maps an HS code to its row by longest prefix."""

    codes: tuple[str, ...]
    descriptions: tuple[str, ...]
    ad_valorem_pct6: np.ndarray  # int64, percent * 10**6
    specific_eur6: np.ndarray  # int64, EUR per unit * 10**6
    specific_unit: np.ndarray  # int8, UNIT_*
    combine: np.ndarray  # int8, COMBINE_*
    excise_kzt6: np.ndarray  # int64, KZT per unit * 10**6
    excise_unit: np.ndarray  # int8, UNIT_*
    row_of_code: dict[str, int]

    def lookup(self, hs_code: str) -> int:
        """Row index of the longest tariff prefix of ``hs_code``, or -1 when none matches."""
        row_of_code = self.row_of_code
        for length in range(min(len(hs_code), 10), 1, -1):
            row = row_of_code.get(hs_code[:length])
            if row is not None:
                return row
        return -1

    def __len__(self) -> int:
        return len(self.codes)


def _row_error(path: Path, line: int, message: str) -> TariffError:
    return TariffError(f"{path}:{line}: {message}")


def load_tariff(path: str | Path) -> Tariff:
    path = Path(path)
    codes: list[str] = []
    descriptions: list[str] = []
    columns: dict[str, list[int]] = {name: [] for name in ("adv", "spec", "spec_unit", "combine", "excise", "excise_unit")}
    for line, row in rows_of(path, COLUMNS, TariffError):
        code = (row["code"] or "").strip()
        if not _CODE(code):
            raise _row_error(path, line, f"code {code!r} is not 2-10 digits")
        try:
            adv_text, spec_text = row["ad_valorem_pct"].strip(), row["specific_eur"].strip()
            adv = parse_micro(adv_text, "ad_valorem_pct") if adv_text else None
            spec = parse_micro(spec_text, "specific_eur") if spec_text else None
            excise_text = row["excise_kzt"].strip()
            excise = parse_micro(excise_text, "excise_kzt") if excise_text else 0
        except ValueError as error:
            raise _row_error(path, line, str(error)) from None
        spec_unit_text, excise_unit_text = row["specific_unit"].strip(), row["excise_unit"].strip()
        combine_text = row["combine"].strip()
        if spec_unit_text not in UNIT_CODES or excise_unit_text not in UNIT_CODES:
            raise _row_error(path, line, "units must be kg, piece, pair or litre")
        if (spec is None) != (spec_unit_text == ""):
            raise _row_error(path, line, "specific_eur and specific_unit go together")
        if (excise_text == "") != (excise_unit_text == ""):
            raise _row_error(path, line, "excise_kzt and excise_unit go together")
        if UNIT_CODES[excise_unit_text] == UNIT_PAIR:
            raise _row_error(path, line, "excise_unit must be kg, piece or litre")
        if adv is not None and spec is not None:
            if combine_text not in _COMBINE:
                raise _row_error(path, line, "a row with both ad valorem and specific parts needs combine max or sum")
            combine = _COMBINE[combine_text]
        elif combine_text:
            raise _row_error(path, line, "combine is only for rows with both parts")
        else:
            combine = COMBINE_SPECIFIC if spec is not None else COMBINE_AD_VALOREM
        if (adv or 0) > _MAX_PCT_MICRO or (spec or 0) > _MAX_EUR_MICRO or excise > _MAX_EXCISE_MICRO:
            raise _row_error(path, line, "rate out of range (ad valorem <= 1000%, EUR <= 10000, excise <= 1e9 KZT)")
        codes.append(code)
        descriptions.append(row["description"])
        columns["adv"].append(adv or 0)
        columns["spec"].append(spec or 0)
        columns["spec_unit"].append(UNIT_CODES[spec_unit_text])
        columns["combine"].append(combine)
        columns["excise"].append(excise)
        columns["excise_unit"].append(UNIT_CODES[excise_unit_text])
    row_of_code = {}
    for index, code in enumerate(codes):
        if code in row_of_code:
            raise TariffError(f"{path}: duplicate code {code}")
        row_of_code[code] = index
    if not codes:
        raise TariffError(f"{path}: no rows")
    return Tariff(
        codes=tuple(codes),
        descriptions=tuple(descriptions),
        ad_valorem_pct6=np.array(columns["adv"], dtype=np.int64),
        specific_eur6=np.array(columns["spec"], dtype=np.int64),
        specific_unit=np.array(columns["spec_unit"], dtype=np.int8),
        combine=np.array(columns["combine"], dtype=np.int8),
        excise_kzt6=np.array(columns["excise"], dtype=np.int64),
        excise_unit=np.array(columns["excise_unit"], dtype=np.int8),
        row_of_code=row_of_code,
    )
