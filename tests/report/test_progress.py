"""The progress bar: only for a terminal and not with -q, shown after a delay, fed by verify's callback."""
from __future__ import annotations

import io
import time

import pytest

import eqcheck
from eqcheck.report.progress import ProgressBar, progress_bar, wanted


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def terminal_env(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "120")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def test_wanted_only_on_a_terminal_without_quiet(monkeypatch) -> None:
    assert wanted(FakeTerminal(), quiet=False)
    assert not wanted(FakeTerminal(), quiet=True)
    assert not wanted(io.StringIO(), quiet=False)
    monkeypatch.setenv("TERM", "dumb")
    assert not wanted(FakeTerminal(), quiet=False)


def test_no_bar_into_a_pipe_or_with_quiet() -> None:
    with progress_bar(stream=io.StringIO()) as progress:
        assert progress is None
    with progress_bar(quiet=True, stream=FakeTerminal()) as progress:
        assert progress is None


def test_a_quick_run_shows_nothing() -> None:
    stream = FakeTerminal()
    with progress_bar(stream=stream, delay=5.0) as progress:
        progress("forward passes", 1, 2)
    assert not progress.shown and stream.getvalue() == ""


def test_a_slow_run_shows_the_bar_then_clears_it() -> None:
    stream = FakeTerminal()
    with progress_bar(stream=stream, delay=0.0) as progress:
        deadline = time.monotonic() + 5
        while not progress.shown and time.monotonic() < deadline:
            time.sleep(0.01)
        progress("forward passes", 3, 4)
        task = progress.progress.tasks[0]
        assert (task.description, task.completed, task.total) == ("forward passes", 3, 4)
        progress("[1/2] model.onnx: loading", 0, 0)
        assert progress.progress.tasks[0].total is None  # started, no count yet
    assert progress.shown and not progress.progress.live.is_started
    assert "\x1b[" in stream.getvalue()  # drawn, then erased (transient)


def test_verify_drives_the_callback_through_its_stages(sample) -> None:
    calls = []
    eqcheck.verify(sample("p4cnn"), "p4", progress=lambda stage, done, total: calls.append((stage, done, total)))
    stages = [stage for stage, _, _ in calls]
    assert stages[0] == "forward passes" and "per-layer analysis" in stages
    assert all(0 <= done <= total for _, done, total in calls)
    assert calls[-1][1] == calls[-1][2]


def test_bar_can_be_used_directly() -> None:
    with ProgressBar(FakeTerminal(), delay=10.0) as bar:
        bar("per-layer analysis", 1, 5)
        assert bar.progress.tasks[0].completed == 1
