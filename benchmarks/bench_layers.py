"""Time P4ConvP4(16, 16, 3) against a plain Conv2d(64, 64, 3) on the same data, in eval mode without
gradients and as a training step (train mode, forward and backward); goal: both ratios <= 1.2.

Usage: ``python benchmarks/bench_layers.py [--threads N] [--repeats N]``. If ``escnn`` imports in
the running interpreter, escnn's R2Conv of the same size is timed too (train mode expands its
filter every call, eval mode caches it); otherwise that part is skipped.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eqcheck.nn import P4ConvP4  # noqa: E402

BATCH, FIELDS, ORIENTATIONS, SIZE = 8, 16, 4, 32


def median_seconds(functions: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, float]:
    """Median wall time of each function, calls interleaved so that load changes hit all alike."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def escnn_ratios(x: torch.Tensor, warmup: int, repeats: int) -> dict[str, float] | None:
    """R2Conv on 16 regular C4 fields against Conv2d(64, 64), timed pairwise; None without escnn."""
    try:
        from escnn import gspaces, nn as escnn_nn
    except ImportError:
        return None
    space = gspaces.rot2dOnR2(N=ORIENTATIONS)
    field_type = escnn_nn.FieldType(space, FIELDS * [space.regular_repr])
    conv = escnn_nn.R2Conv(field_type, field_type, 3, padding=1)
    tensor = escnn_nn.GeometricTensor(x.reshape(BATCH, FIELDS * ORIENTATIONS, SIZE, SIZE), field_type)
    plain_conv = torch.nn.Conv2d(FIELDS * ORIENTATIONS, FIELDS * ORIENTATIONS, 3, padding=1)
    with torch.no_grad():
        conv.train()
        train = median_seconds({"escnn": lambda: conv(tensor), "plain": lambda: plain_conv(tensor.tensor)},
                               warmup, repeats)
        conv.eval()
        evaluated = median_seconds({"escnn": lambda: conv(tensor), "plain": lambda: plain_conv(tensor.tensor)},
                                   warmup, repeats)
    return {
        "escnn R2Conv (train: expands filter)": train["escnn"] / train["plain"],
        "escnn R2Conv (eval: cached filter)": evaluated["escnn"] / evaluated["plain"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    group_conv = P4ConvP4(FIELDS, FIELDS, 3, padding=1)
    plain_conv = torch.nn.Conv2d(FIELDS * ORIENTATIONS, FIELDS * ORIENTATIONS, 3, padding=1)
    x = torch.randn(BATCH, FIELDS, ORIENTATIONS, SIZE, SIZE)
    x_flat = x.reshape(BATCH, FIELDS * ORIENTATIONS, SIZE, SIZE)

    with torch.no_grad():
        seconds = median_seconds(
            {"group": lambda: group_conv(x), "plain": lambda: plain_conv(x_flat), "expand": group_conv.expanded_weight},
            args.warmup,
            args.repeats,
        )
    group_seconds, plain_seconds, expand_seconds = seconds["group"], seconds["plain"], seconds["expand"]

    print(f"torch {torch.__version__}, {args.threads} threads, input {tuple(x.shape)}, "
          f"median of {args.repeats} after {args.warmup} warm-up calls")
    print(f"  P4ConvP4(16, 16, 3, padding=1)     {group_seconds * 1e3:8.3f} ms")
    print(f"    of which filter expansion         {expand_seconds * 1e3:8.3f} ms")
    print(f"  nn.Conv2d(64, 64, 3, padding=1)    {plain_seconds * 1e3:8.3f} ms")
    print(f"  ratio {'P4ConvP4 / Conv2d':<45} {group_seconds / plain_seconds:8.3f}  (goal <= 1.2)")

    # training: forward and backward in train mode, gradients of the weights and of the input (a layer
    # inside a network), the same loss for both
    group_conv.train()
    plain_conv.train()
    x_train, x_flat_train = x.clone().requires_grad_(True), x_flat.clone().requires_grad_(True)

    def step(layer, data):
        return lambda: layer(data).square().mean().backward()

    trained = median_seconds({"group": step(group_conv, x_train), "plain": step(plain_conv, x_flat_train)},
                             args.warmup, args.repeats)
    print("  training step (train mode, forward + backward, weight and input gradients):")
    print(f"  P4ConvP4(16, 16, 3, padding=1)     {trained['group'] * 1e3:8.3f} ms")
    print(f"  nn.Conv2d(64, 64, 3, padding=1)    {trained['plain'] * 1e3:8.3f} ms")
    print(f"  ratio {'P4ConvP4 / Conv2d (training step)':<45} {trained['group'] / trained['plain']:8.3f}  (goal <= 1.2)")

    ratios = escnn_ratios(x, args.warmup, args.repeats)
    if ratios is None:
        print("  escnn not importable here: skipped")
        return
    for label, ratio in ratios.items():
        print(f"  ratio {label + ' / Conv2d':<45} {ratio:8.3f}")


if __name__ == "__main__":
    main()
