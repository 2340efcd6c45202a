"""README.md stays true: its tables mirror the code and its quickstart example runs."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
sys.path.insert(0, str(ROOT / "scripts"))

import update_readme  # noqa: E402


def test_tables_mirror_the_code():
    assert update_readme.render(README) == README, "README.md is out of date: run scripts/update_readme.py"


def test_quickstart_assessment_example_runs():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    [example] = [block for block in blocks if "customs-stream assess" in block and "echo" in block]
    done = subprocess.run(["bash", "-c", example], cwd=ROOT, capture_output=True, check=True, timeout=120)
    [result] = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert result["schema"] == "assessment/1"
    assert result["order_id"] == "AX-ORD-778899"
    assert result["customs_value"] != "0.00" and result["lines"][0]["hs_source"] == "declared"


def test_quickstart_names_the_two_commands_and_ci_runs_one_of_them():
    assert "make demo" in README and "make test" in README
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec make test")
