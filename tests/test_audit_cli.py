"""`customs-stream audit` without a broker: deadlines, help, and events refused before they are sent.
tests/test_audit_broker.py drives the writing and reading commands against a real broker."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from stream.cli import main


def run(*args):
    return CliRunner().invoke(main, ["audit", *args])


def test_deadlines_prints_exactly_the_contract():
    # through the installed entry point, as a user types it
    out = subprocess.run([sys.executable, "-m", "stream", "audit", "deadlines", "--delivered", "2026-03-02"],
                         capture_output=True, text=True, check=True).stdout
    assert out == '{"comply_by": "2026-04-03", "answer_by": null}\n'
    result = run("deadlines", "--delivered", "2026-03-02", "--explanation-received", "2026-03-20")
    assert json.loads(result.output) == {"comply_by": "2026-04-03", "answer_by": "2026-04-08"}


@pytest.mark.parametrize("args, message", [
    (["--delivered", "2027-12-20"], "outside the working-day calendar"),
    (["--delivered", "2023-06-01"], "outside the working-day calendar"),
    (["--delivered", "2026-02-30"], "is not a date"),
    (["--delivered", "2026-03-02", "--explanation-received", "2026-03-01"], "before the notification"),
    ([], "Missing option"),
])
def test_deadlines_refuses_what_it_cannot_answer(args, message):
    result = run("deadlines", *args)
    assert result.exit_code == 2 and message in result.output


def test_a_late_explanation_is_noted():
    result = CliRunner().invoke(main, ["audit", "deadlines", "--delivered", "2026-03-02",
                                       "--explanation-received", "2026-04-06"])
    assert result.exit_code == 0 and "unfulfilled" in result.output


@pytest.mark.parametrize("command", ["open", "deliver", "pay", "explain", "accept", "reject", "show", "list",
                                     "deadlines"])
def test_every_command_explains_itself(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and len(result.output) > 200


@pytest.mark.parametrize("args, reason", [
    (["pay", "CASE-1", "100.505", "--on", "2026-03-02"], "invalid_number"),
    (["pay", "CASE-1", "0", "--on", "2026-03-02"], "out_of_range"),
    (["pay", "CASE 1", "10", "--on", "2026-03-02"], "invalid_code"),
    (["open", "--declaration", "D-1", "--accruals", "12,5", "--findings", "x"], "invalid_number"),
])
def test_an_invalid_event_is_refused_before_any_broker_is_asked(args, reason):
    result = run(*args, "--broker", "kafka://127.0.0.1:9")
    assert result.exit_code == 2 and reason in result.output


def test_an_unreachable_broker_is_reported_without_a_traceback():
    result = run("deliver", "CASE-1", "--on", "2026-03-02", "--broker", "kafka://127.0.0.1:9")
    assert result.exit_code == 1 and "could not send" in result.output and "Traceback" not in result.output
