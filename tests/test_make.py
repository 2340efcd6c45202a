"""CI covers both backends: `make test` runs the suite on the compiled kernels, then on the twins."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_test_runs_the_suite_on_both_backends_after_lint():
    plan = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.splitlines()
    runs = [line for line in plan if "-m pytest" in line]
    assert [("CUSTOMS_STREAM_PUREPYTHON=0" in run, "CUSTOMS_STREAM_PUREPYTHON=1" in run) for run in runs] == [
        (True, False), (False, True)]
    assert any("ruff check" in line for line in plan[: plan.index(runs[0])])
    assert "make test" in (ROOT / ".ci" / "run").read_text()
