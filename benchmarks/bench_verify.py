"""Cost of a whole-model check against the forward passes it needs, and the CLI's start-up time.

Run: python benchmarks/bench_verify.py [--batch 32] [--repeats 5]
Prints, from one run, the ratio (check time) / (time of the forward passes a check needs): one
reference pass plus one pass per group element, each of the check's batch, run one by one.
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


def forward_passes_needed(model: str, shape: tuple[int, ...], elements: int, repeats: int) -> tuple[float, float]:
    """(warm, cold): the passes on a warmed-up session, and loading + the passes on a fresh one."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    def by_hand():
        runner = load_model(model)
        feeds = {runner.inputs[0].name: x}
        for _ in range(elements + 1):
            runner.run(feeds)

    runner = load_model(model)
    feeds = {runner.inputs[0].name: x}
    runner.run(feeds)  # warm-up
    warm = median_time(lambda: [runner.run(feeds) for _ in range(elements + 1)], repeats)
    return warm, median_time(by_hand, repeats)


def bench_check(model: str, group: str, batch: int, repeats: int, elements: int, **options) -> None:
    shape_given = options.pop("input_shape")
    options.setdefault("per_layer", False)  # the output-only check (per-layer analysis: bench_layers_analysis.py)
    verify(model, group, input_shape=shape_given, **options)  # warm-up (imports, first session)
    check = median_time(lambda: verify(model, group, input_shape=shape_given, **options), repeats)
    load = median_time(lambda: load_model(model), repeats)
    passes, by_hand = forward_passes_needed(model, shape_given, elements, repeats)
    print(f"{Path(model).name} under {group}, batch {batch}, {elements} elements:")
    print(f"  forward passes needed ({elements} + 1 reference, one by one): {passes * 1e3:8.1f} ms")
    print(f"  the same by hand on a fresh session (load + passes):  {by_hand * 1e3:8.1f} ms")
    print(f"  eqcheck.verify, whole call:                         {check * 1e3:8.1f} ms")
    print(f"  of which loading the model:                         {load * 1e3:8.1f} ms")
    print(f"  ratio check / forward passes needed:                {check / passes:8.2f}")
    print(f"  ratio (check - load) / forward passes needed:       {(check - load) / passes:8.2f}")
    print(f"  ratio check / the same by hand:                     {check / by_hand:8.2f}")


def bench_startup(repeats: int) -> None:
    exe = Path(sys.executable).with_name("eqcheck")
    command = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "eqcheck", "--help"]
    subprocess.run(command, capture_output=True, check=True)
    startup = median_time(lambda: subprocess.run(command, capture_output=True, check=True), repeats)
    print(f"`eqcheck --help` start-up (median of {repeats}): {startup * 1e3:.0f} ms (goal < 500 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    samples = ROOT / "sample_models"
    bench_check(str(samples / "p4mcnn.onnx"), "p4m", args.batch, args.repeats, 8,
                input_shape=(args.batch, 1, 28, 28))
    bench_check(str(samples / "p4cnn.onnx"), "p4", args.batch, args.repeats, 4,
                input_shape=(args.batch, 1, 28, 28))
    bench_startup(args.repeats)


if __name__ == "__main__":
    main()
