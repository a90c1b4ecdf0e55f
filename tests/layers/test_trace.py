"""Cutting stacked runs into items: the batch axis found from the reference run, merged batch layouts."""
from __future__ import annotations

import numpy as np

from eqcheck.layers.trace import batch_axis, split_runs, stack_items


def test_batch_axis_is_the_axis_that_grew() -> None:
    assert batch_axis((2, 10, 16), (8, 10, 16), 4) == 0
    assert batch_axis((10, 2, 16), (10, 8, 16), 4) == 1  # sequence-first, as torch's attention exports
    assert batch_axis((3, 16), (3, 16), 4) is None  # a constant: it does not carry the batch
    assert batch_axis((2, 10), (8, 11), 4) is None


def test_items_stacked_batch_major_come_back_in_order() -> None:
    items = [np.full((2, 3), k, dtype=np.float32) for k in range(4)]
    stacked = stack_items(items, 0)
    cut, layout = split_runs(items[0], [(stacked, 4)], identity=0)
    assert layout == (0, 1)
    assert [int(c[0, 0]) for c in cut] == [0, 1, 2, 3]


def test_a_batch_merged_inside_another_axis_is_found_from_the_identity_item() -> None:
    # [N*B, D] with the sequence outermost: item k holds rows n*B*count + k*B + b
    rng = np.random.default_rng(0)
    items = [rng.standard_normal((5 * 2, 3)).astype(np.float32) for _ in range(3)]
    merged = stack_items(items, 0, outer=5)
    assert merged.shape == (30, 3)
    assert np.array_equal(merged.reshape(5, 3, 2, 3)[:, 1].reshape(10, 3), items[1])
    cut, layout = split_runs(items[1], [(merged, 3)], identity=1, batch=2)
    assert layout == (0, 5)
    assert all(np.array_equal(a, b) for a, b in zip(cut, items))
    again, _ = split_runs(items[1], [(merged, 3)], layout=layout)
    assert np.array_equal(again[2], items[2])


def test_several_runs_are_cut_with_one_layout() -> None:
    items = [np.full((1, 4, 2), k, dtype=np.float32) for k in range(5)]
    runs = [(stack_items(items[:3], 0), 3), (stack_items(items[3:], 0), 2)]
    cut, layout = split_runs(items[0], runs)
    assert layout == (0, 1) and [int(c[0, 0, 0]) for c in cut] == [0, 1, 2, 3, 4]
