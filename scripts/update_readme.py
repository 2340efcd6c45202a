"""Regenerates the tables of README.md that mirror the code (reason codes, settings).

Run after changing stream/contracts/reasons.py or stream/settings.py; tests/test_readme.py fails
while README.md is out of date.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.contracts.reasons import REASONS  # noqa: E402
from stream.settings import ENVIRONMENT  # noqa: E402


def reasons_table() -> str:
    rows = [f"| `{code}` | {meaning} |" for code, meaning in REASONS.items()]
    return "\n".join(["| code | meaning |", "| --- | --- |", *rows])


def settings_table() -> str:
    def shown(default: str) -> str:
        default = default.replace(str(ROOT) + "/", "")
        return f"`{default}`" if default else "(empty)"

    rows = [f"| `{name}` | {shown(default)} | {meaning} |" for name, (default, meaning) in ENVIRONMENT.items()]
    return "\n".join(["| variable | default | meaning |", "| --- | --- | --- |", *rows])


BLOCKS = {"reasons": reasons_table, "settings": settings_table}


def render(text: str) -> str:
    for name, table in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda match: match.group(1) + table() + "\n" + match.group(2), text)
    return text


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text(encoding="utf-8")), encoding="utf-8")
