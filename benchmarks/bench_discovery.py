"""What finding an output's type from the data costs (eqcheck/discovery.py), against one forward pass of
the sample models, interleaved, medians of repeated runs.

    OMP_NUM_THREADS=1 python benchmarks/bench_discovery.py [--repeats 15]

(OMP_NUM_THREADS=1: torch's idle OpenMP threads would slow numpy's BLAS in this mixed benchmark.)

A [2, 64, 64, 64] output under p4m (8 elements) whose channels carry 32 copies of escnn's irrep(1,1) of D4
(rotated pairs, one field type no named candidate explains) is discovered; the forward passes are those
of sample_models/p4cnn.onnx and p4mcnn.onnx at their own input shapes, batch 2, and of a model that makes
such a map (two 3x3 convolutions, 16 and 64 channels, on a [2, 3, 64, 64] input, eqcheck.nn's P4ConvZ2
and P4ConvP4 in eval mode under torch.no_grad). Printed twice: interleaved in a new order every round,
and each measure back to back.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eqcheck.actions.parse import field_type  # noqa: E402
from eqcheck.discovery import discover  # noqa: E402
from eqcheck.groups import parse_group  # noqa: E402
from eqcheck.groups.base import SamplingContext  # noqa: E402
from eqcheck.models.loader import load_model  # noqa: E402


def steerable_output(group, elements, rng):
    """A [2, 64, 64, 64] reference and its exactly transformed copies under 32*irrep(1,1)."""
    action = field_type("32*irrep(1,1)", group.field_group)
    reference = rng.standard_normal((2, 64, 64, 64)).astype(np.float32)
    return reference, [action.apply(g, reference) for g in elements]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    group = parse_group("p4m")
    elements = group.testing_elements(SamplingContext(rng=rng))
    reference, transformed = steerable_output(group, elements, rng)
    runners = {name: load_model(str(ROOT / "sample_models" / f"{name}.onnx")) for name in ("p4cnn", "p4mcnn")}
    feeds = {name: {r.inputs[0].name: rng.standard_normal((2, *r.inputs[0].shape[1:])).astype(np.float32)}
             for name, r in runners.items()}
    import torch

    from eqcheck.nn import P4ConvP4, P4ConvZ2

    torch.manual_seed(0)
    maker = torch.nn.Sequential(P4ConvZ2(3, 4, 3, padding=1), torch.nn.ReLU(), P4ConvP4(4, 16, 3, padding=1)).eval()
    image = torch.randn(2, 3, 64, 64)
    found = []

    def discovery():
        found.append(discover(group, elements, reference, transformed, 1e-5))

    def forward(runner):
        return lambda: runner.run(feeds[runner_names[runner]])

    def make_map():
        with torch.no_grad():
            maker(image)

    runner_names = {runner: name for name, runner in runners.items()}
    measures = {"discovery": discovery, **{f"forward {name}": forward(r) for name, r in runners.items()},
                "forward 64-channel maker": make_map}
    times = {name: [] for name in measures}
    order = np.random.default_rng(1)
    for _ in range(args.repeats):  # interleaved, in a new order every round: drift, and the state of the
        for name in order.permutation(list(measures)):  # caches what ran before leaves, hit all alike
            start = time.perf_counter()
            measures[name]()
            times[name].append(time.perf_counter() - start)
    last = found[-1]
    print(f"found: {last.spec if last else None}")
    for name, values in times.items():
        values = sorted(values)
        print(f"{name:>18}: median {statistics.median(values) * 1e3:7.2f} ms  (min {values[0] * 1e3:.2f}, "
              f"max {values[-1] * 1e3:.2f})")
    for name in [n for n in measures if n != "discovery"]:
        ratio = statistics.median(times["discovery"]) / statistics.median(times[name])
        print(f"discovery / one {name.replace('forward', 'forward pass of')} (batch 2): {ratio:.2f}x")
    quartiles = statistics.quantiles(times["discovery"], n=4)
    print(f"noise: discovery's quartiles {quartiles[0] * 1e3:.2f}-{quartiles[2] * 1e3:.2f} ms around its median")
    # the same measures, each run back to back (its caches and the CPU warm from its own previous run):
    # interleaved, every measure starts where another left the machine, and many small numpy calls
    # (discovery) pay more for that than a few large kernels (a forward pass)
    warm = {}
    for name, measure in measures.items():
        measure()
        warm[name] = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            measure()
            warm[name].append(time.perf_counter() - start)
    for name in [n for n in measures if n != "discovery"]:
        ratio = statistics.median(warm["discovery"]) / statistics.median(warm[name])
        print(f"back to back: discovery {statistics.median(warm['discovery']) * 1e3:.2f} ms / "
              f"{name} {statistics.median(warm[name]) * 1e3:.2f} ms: {ratio:.2f}x")


if __name__ == "__main__":
    main()
