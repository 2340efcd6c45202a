"""Keep schemas/rejection-1.json's `reason` enum equal to REASONS (every domain's codes, in order).

Domains add their codes to their block of reasons.py; `python -m stream.contracts.rejection_schema`
then rewrites the enum of the schema (nothing else in the file), and tests/test_contracts.py checks
the two are equal.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from stream.contracts.reasons import REASONS

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "rejection-1.json"
_ENUM = re.compile(r'("reason": \{\s*"enum": \[)\n.*?\n(\s*\])', re.S)


def synced(text: str) -> str:
    body = ",\n".join(f'        "{code}"' for code in REASONS)
    new, found = _ENUM.subn(lambda m: f"{m.group(1)}\n{body}\n{m.group(2)}", text, count=1)
    if not found:
        raise ValueError("no reason enum found in rejection-1.json")
    json.loads(new)  # still a JSON document
    return new


def main() -> None:
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    SCHEMA_PATH.write_text(synced(text), encoding="utf-8")
    print(f"{SCHEMA_PATH}: {len(REASONS)} reason codes")


if __name__ == "__main__":
    main()
