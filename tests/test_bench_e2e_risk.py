"""`customs-stream bench e2e --with-risk --risk-agents N` works: the risk agents beside the worker count every
declaration of the measured feed, and the figures are reported side by side (tested for working, never for speed)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from stream.benchmarks.e2e import e2e_command, run

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_e2e_with_two_risk_agents_reports_both_rates(tmp_path):
    result = run(orders=1500, partitions=2, page_size=250, with_risk=True, risk_agents=2, floor=False,
                 log_dir=str(tmp_path), timeout=240)
    pipeline, risk = result["pipeline"], result["risk"]
    assert pipeline["orders"] == 1500 and pipeline["duplicate_declarations"] == 0
    assert pipeline["risk"]["agents"] == 2
    # every declaration of the feed counted once by the agents together, each scored
    assert pipeline["risk"]["declarations"] == 1500
    assert pipeline["risk"]["outcomes"].get("scored") == 1500
    assert pipeline["risk"]["seconds"] >= pipeline["seconds"] > 0
    assert risk["worker_declarations_per_second"] == pipeline["declarations_per_second"] > 0
    assert risk["risk_declarations_per_second"] == pipeline["risk"]["declarations_per_second"] > 0
    assert risk["keeps_up"] == (risk["risk_declarations_per_second"] >= risk["worker_declarations_per_second"])
    assert result["transport_floor"] is None
    assert risk["cpu_seconds"]["workers"] > 0 and risk["cpu_seconds"]["risk_agents"] > 0
    assert risk["cpu_ms_per_declaration"]["risk_agents"] == pytest.approx(
        risk["cpu_seconds"]["risk_agents"] * 1000 / 1500, abs=0.001)


def test_the_options_are_on_the_command():
    out = CliRunner().invoke(e2e_command, ["--help"])
    assert out.exit_code == 0
    assert "--with-risk" in out.output and "--risk-agents" in out.output and "--profile-risk" in out.output
