"""Cost of a whole-model check against the forward passes it needs, and the CLI's start-up time.

Run: python benchmarks/bench_verify.py [--batch 32] [--repeats 5]
Prints, from one run, the ratio (check time) / (time of the forward passes the check makes): the
reference, the unrelated input (the spread) and one pass per group element, each of the check's batch,
run one by one on a warm session; the check and the passes interleaved in a new order every round,
medians (and the median of per-round ratios).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eqcheck import verify  # noqa: E402
from eqcheck.models.loader import load_model  # noqa: E402


def median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_check(model: str, group: str, batch: int, repeats: int, elements: int, **options) -> None:
    """The check, loading the model, the passes it needs on a warm session, and loading + those passes on a
    fresh one, interleaved in a new order every round (drift and cache state hit all alike); medians, and
    the median of the per-round ratios."""
    shape_given = options.pop("input_shape")
    options.setdefault("per_layer", False)  # the output-only check (per-layer analysis: bench_layers_analysis.py)
    x = np.random.default_rng(0).standard_normal(shape_given).astype(np.float32)
    runner = load_model(model)
    feeds = {runner.inputs[0].name: x}

    def by_hand():
        fresh = load_model(model)
        for _ in range(elements + 2):
            fresh.run({fresh.inputs[0].name: x})

    measures = {
        "check": lambda: verify(model, group, input_shape=shape_given, **options),
        "load": lambda: load_model(model),
        "passes": lambda: [runner.run(feeds) for _ in range(elements + 2)],
        "by hand": by_hand,
    }
    for measure in measures.values():  # warm-up: imports, first sessions
        measure()
    times: dict[str, list[float]] = {name: [] for name in measures}
    order = np.random.default_rng(1)
    for _ in range(repeats):
        for name in order.permutation(list(measures)):
            start = time.perf_counter()
            measures[name]()
            times[name].append(time.perf_counter() - start)
    check, load, passes, hand = (statistics.median(times[n]) for n in ("check", "load", "passes", "by hand"))
    paired = statistics.median(c / p for c, p in zip(times["check"], times["passes"]))
    print(f"{Path(model).name} under {group}, batch {batch}, {elements} elements, {repeats} interleaved rounds:")
    print(f"  its forward passes ({elements} + reference + unrelated, one by one): {passes * 1e3:6.1f} ms")
    print(f"  the same by hand on a fresh session (load + passes):  {hand * 1e3:8.1f} ms")
    print(f"  eqcheck.verify, whole call:                         {check * 1e3:8.1f} ms")
    print(f"  of which loading the model:                         {load * 1e3:8.1f} ms")
    print(f"  ratio check / its forward passes:                   {check / passes:8.2f} (per round: {paired:.2f})")
    print(f"  ratio (check - load) / its forward passes:          {(check - load) / passes:8.2f}")
    print(f"  ratio check / the same by hand:                     {check / hand:8.2f}")
    quartiles = statistics.quantiles(times["check"], n=4)
    print(f"  noise: the check's quartiles {quartiles[0] * 1e3:.1f}-{quartiles[2] * 1e3:.1f} ms")


def bench_startup(repeats: int) -> None:
    exe = Path(sys.executable).with_name("eqcheck")
    command = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "eqcheck", "--help"]
    subprocess.run(command, capture_output=True, check=True)
    startup = median_time(lambda: subprocess.run(command, capture_output=True, check=True), repeats)
    print(f"`eqcheck --help` start-up (median of {repeats}): {startup * 1e3:.0f} ms (goal < 500 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    samples = ROOT / "sample_models"
    bench_check(str(samples / "p4mcnn.onnx"), "p4m", args.batch, args.repeats, 8,
                input_shape=(args.batch, 1, 28, 28))
    bench_check(str(samples / "p4cnn.onnx"), "p4", args.batch, args.repeats, 4,
                input_shape=(args.batch, 1, 28, 28))
    bench_startup(args.repeats)


if __name__ == "__main__":
    main()
