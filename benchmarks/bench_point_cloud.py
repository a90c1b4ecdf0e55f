"""What a 3-D check costs on a 1,000-atom point cloud, against the forward passes it needs, interleaved,
medians of repeated runs.

    python benchmarks/bench_point_cloud.py [--atoms 1000] [--repeats 7]

The model: per-atom features from Gaussian-smeared distances to every other atom (a [N, N] distance
matrix, as dense MLIPs compute it), a small MLP, an energy per cloud and forces by autograd (two
outputs). The check under e3 (11 elements: identity, inversion, rotations, translations) is timed
with the per-layer analysis off and on; the forward passes are the same calls made by hand. In float32
this model fails by rounding (a sum over 1,000 atoms), so the check runs it again in float64 to say so
(eqcheck/precision.py): those passes are the same calls by hand on a float64 copy, and the ratio is
given against the float32 passes alone and against all the passes the check needs.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import eqcheck  # noqa: E402
from eqcheck.groups import parse_group  # noqa: E402
from eqcheck.groups.base import SamplingContext  # noqa: E402


class Potential(torch.nn.Module):
    def __init__(self, atoms: int) -> None:
        super().__init__()
        self.example_input_shape = (1, atoms, 3)
        self.centres = torch.nn.Parameter(torch.linspace(0.5, 4.0, 16), requires_grad=False)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.SiLU(), torch.nn.Linear(32, 1))

    def forward(self, pos):
        with torch.enable_grad():
            pos = pos.detach().requires_grad_(True)
            distance = torch.cdist(pos, pos)
            features = torch.exp(-(distance[..., None] - self.centres) ** 2).sum(-2)
            energy = self.mlp(features).sum((-2, -1))
            forces = -torch.autograd.grad(energy.sum(), pos)[0]
        return energy, forces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Potential(args.atoms).eval()
    elements = parse_group("e3").testing_elements(SamplingContext(rng=np.random.default_rng(0)))
    x = torch.randn(1, args.atoms, 3)

    def passes(module, inputs):  # the reference, the unrelated input and one pass per element
        def run():
            with torch.no_grad():
                for _ in range(len(elements) + 2):
                    module(inputs)
        return run

    reruns = any(d.code == "precision" and "float64" in d.message
                 for d in eqcheck.verify(model, "e3", per_layer=False).diagnoses)
    double = copy.deepcopy(model).double()
    checks = {"forward passes by hand": passes(model, x),
              "the float64 re-run's by hand": passes(double, x.double()),
              "eqcheck.verify, output only": lambda: eqcheck.verify(model, "e3", per_layer=False),
              "eqcheck.verify, per layer": lambda: eqcheck.verify(model, "e3")}
    for run in checks.values():
        run()  # warm-up
    times = {name: [] for name in checks}
    for _ in range(args.repeats):
        for name, run in checks.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name:>28}: median {medians[name] * 1e3:8.1f} ms (min {min(values) * 1e3:.1f}, "
              f"max {max(values) * 1e3:.1f})")
    hand = medians["forward passes by hand"]
    needed = hand + (medians["the float64 re-run's by hand"] if reruns else 0.0)
    check = medians['eqcheck.verify, output only']
    print(f"output-only check / its float32 forward passes: {check / hand:.2f}x")
    print(f"output-only check / every forward pass it needs ({'float32 and the float64 re-run' if reruns else 'float32'}): "
          f"{check / needed:.2f}x (goal <= 1.5x)")
    print(f"per-layer / output-only check: {medians['eqcheck.verify, per layer'] / medians['eqcheck.verify, output only']:.2f}x "
          f"(goal <= 3x)")


if __name__ == "__main__":
    main()
