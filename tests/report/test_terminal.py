"""The terminal report: a long per-layer table folds its runs of passing layers, and keeps every failing one."""
from __future__ import annotations

from dataclasses import replace

from rich.console import Console

from eqcheck.report.terminal import FOLD_ABOVE, FOLD_RUN, render
from eqcheck.result import LayerResult

from test_html import broken  # noqa: E402  (pytest puts this folder on the path)


def _layers(count: int, failing: set[int]) -> tuple[LayerResult, ...]:
    return tuple(LayerResult(name=f"/block{i}/Conv", op="Conv", shape=(2, 8, 5, 5), representation="regular:5d",
                             max_rel_error=0.5 if i >= min(failing, default=count) else 1e-7 * (i + 1),
                             local_rel_error=0.5 if i in failing else 1e-7, passed=i not in failing,
                             cumulative_passed=i < min(failing, default=count))
                 for i in range(count))


def _table_lines(result) -> list[str]:
    console = Console(record=True, width=200, color_system=None)
    render(result, console)
    return [line for line in console.export_text().splitlines() if "/block" in line or "more layers" in line]


def test_a_long_table_folds_runs_of_passing_layers_and_keeps_the_failing_ones() -> None:
    layers = _layers(60, failing={30})
    result = replace(broken(), layers=layers, first_failing_layer="/block30/Conv")
    lines = _table_lines(result)
    folded = [line for line in lines if "more layers" in line]
    # layers 0-29 pass: 0 and 29 shown, 28 folded; 30 fails; 31-59 show its error (cumulative): all shown
    assert len(folded) == 1 and "... 28 more layers" in folded[0] and "2.90e-06" in folded[0]  # worst of layers 1..28
    assert sum("/block" in line for line in lines) == 2 + 1 + 29
    assert any("/block30/Conv" in line and "FAIL <- first" in line for line in lines)


def test_a_short_table_shows_every_layer() -> None:
    layers = _layers(FOLD_ABOVE, failing=set())
    lines = _table_lines(replace(broken(), layers=layers, first_failing_layer=None))
    assert len(lines) == FOLD_ABOVE and not any("more layers" in line for line in lines)


def test_runs_shorter_than_the_fold_stay() -> None:
    failing = set(range(0, 60, FOLD_RUN - 1))  # passing runs of FOLD_RUN - 2 layers between failing ones
    lines = _table_lines(replace(broken(), layers=_layers(60, failing), first_failing_layer="/block0/Conv"))
    assert not any("more layers" in line for line in lines) and len(lines) == 60


def test_causes_beyond_the_first_eight_are_counted_not_printed() -> None:
    from eqcheck.report.terminal import MAX_CAUSES
    from eqcheck.result import Diagnosis

    causes = tuple(Diagnosis("plain-layer", f"cause number {i}", "cause", layer=f"/l{i}") for i in range(12))
    console = Console(record=True, width=200, color_system=None)
    render(replace(broken(), diagnoses=causes), console)
    why = [line for line in console.export_text().splitlines() if line.startswith("  why:")]
    assert len(why) == MAX_CAUSES + 1 and "cause number 0" in why[0]
    assert why[-1] == f"  why: ... {12 - MAX_CAUSES} more (the JSON and HTML reports list them all)"
