"""The gate cannot be bypassed from model code: SystemExit and KeyboardInterrupt from a model's import,
factory or forward end that model's check with exit 3; `eqcheck check` goes on; a real Ctrl-C exits 130
and leaves no half-written report; a model that never returns is stopped by --timeout."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from eqcheck.errors import EXIT_INTERRUPTED, EXIT_MODEL

from .conftest import assert_inert, assert_one_error_line, run, run_process, write_config


@pytest.mark.parametrize("attr, raised", [("exits_in_factory", "SystemExit(0)"),
                                          ("exits_in_forward", "SystemExit(0)"),
                                          ("interrupts_in_forward", "KeyboardInterrupt"),
                                          ("exits_hard", "SystemExit(0)")])
def test_exit_and_interrupt_from_model_code_are_model_errors(capsys, hostile, attr, raised) -> None:
    code, out, err = run(capsys, "verify", f"{hostile.factories}:{attr}", "--group", "p4")
    assert raised in assert_one_error_line(err, code, EXIT_MODEL)
    assert out == ""


def test_exit_on_import_is_a_model_error_as_a_user_runs_it(hostile) -> None:
    done = run_process("verify", f"{hostile.exits_on_import}:model", "--group", "p4")
    assert "SystemExit(0)" in assert_one_error_line(done.stderr, done.returncode, EXIT_MODEL)


def test_check_goes_on_after_a_model_that_exits(capsys, tmp_path, hostile) -> None:
    config = write_config(tmp_path, (f"{hostile.factories}:exits_in_forward", "exits"), (hostile.invariant, "fine"))
    code, out, err = run(capsys, "check", "--config", config, "--json", tmp_path / "r.json")
    assert code == EXIT_MODEL
    assert "exits: the model's code raised SystemExit(0)" in err
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines() if line.split()[:1] in (["exits"], ["fine"])}
    assert rows["exits"] == "ERROR" and rows["fine"] == "PASS"
    assert '"status": "pass"' in (tmp_path / "r.json").read_text()


def test_what_a_model_prints_becomes_an_escaped_note(capsys, hostile) -> None:
    code, out, err = run(capsys, "verify", f"{hostile.factories}:prints", "--group", "p4")
    assert code == 0 and err == ""
    assert_inert(out)
    assert re.search(r"note: the model's code printed \d+ lines during the check \(not shown raw\); the first: "
                     r"::set-env", out)


def test_timeout_stops_a_model_that_never_returns(capsys, hostile) -> None:
    start = time.perf_counter()
    code, _, err = run(capsys, "verify", f"{hostile.factories}:hangs", "--group", "p4", "--timeout", "1")
    assert "did not finish within 1 s" in assert_one_error_line(err, code, EXIT_MODEL)
    assert time.perf_counter() - start < 30


def test_a_model_that_swallows_the_deadline_is_stopped_with_the_process(hostile) -> None:
    start = time.perf_counter()
    # 8 s: past the imports and the load, so that the deadline lands in the model's forward, which swallows it
    done = run_process("verify", f"{hostile.factories}:ignores_the_deadline", "--group", "p4", "--timeout", "8")
    line = assert_one_error_line(done.stderr, done.returncode, EXIT_MODEL)
    assert "did not finish within 8 s" in line and "stopped" in line
    assert time.perf_counter() - start < 40


def test_a_real_ctrl_c_exits_130_and_writes_no_report(tmp_path, hostile) -> None:
    report = tmp_path / "r.json"
    process = subprocess.Popen([sys.executable, "-m", "eqcheck", "verify", f"{hostile.factories}:sleeps",
                                "--group", "p4", "--json", str(report)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # imports done, inside the model's sleep
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED, err
    assert "eqcheck: interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
