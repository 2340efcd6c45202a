"""Reading the rule data files: CSV with a header row that must name the contract's columns."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator


def rows_of(path: Path, columns: tuple[str, ...], error: type[ValueError]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of each data row; ``error`` names the file and the columns it lacks.
    Extra columns are allowed, so an official file with just the contract's columns drops in."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in columns if name not in (reader.fieldnames or ())]
        if missing:
            raise error(f"{path}: missing columns {', '.join(missing)} (expected {','.join(columns)})")
        for row in reader:
            if None in row.values():  # csv.DictReader fills the cells a short row lacks with None
                cells = sum(value is not None for value in row.values())
                raise error(f"{path}:{reader.line_num}: {cells} cells, the header names {len(reader.fieldnames)}")
            yield reader.line_num, row
