"""Independent group actions for the layer tests, written from CONVENTIONS with torch.rot90, flip and roll."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# CONVENTIONS section 2, the escnn D4 table, typed here as a test vector: new[i] = old[PERM[g][i]].
D4_PERMUTATIONS = {
    (0, 0): [0, 1, 2, 3, 4, 5, 6, 7],
    (0, 1): [3, 0, 1, 2, 7, 4, 5, 6],
    (0, 2): [2, 3, 0, 1, 6, 7, 4, 5],
    (0, 3): [1, 2, 3, 0, 5, 6, 7, 4],
    (1, 0): [4, 7, 6, 5, 0, 3, 2, 1],
    (1, 1): [5, 4, 7, 6, 1, 0, 3, 2],
    (1, 2): [6, 5, 4, 7, 2, 1, 0, 3],
    (1, 3): [7, 6, 5, 4, 3, 2, 1, 0],
}
C4_ELEMENTS = [(0, k) for k in range(4)]
D4_ELEMENTS = [(f, k) for f in (0, 1) for k in range(4)]


def image_action(x: Tensor, flip: int, rot: int) -> Tensor:
    """D4/C4 element (f, k) on the last two axes: rot90(flip_W(x) if f else x, k)."""
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, rot, dims=(-2, -1))


def c4_regular_action(x: Tensor, rot: int, roll_sign: int = 1) -> Tensor:
    """r^k on [B, C, 4, H, W]: rot90 spatially, then roll the group axis by +k (or -k for roll_sign=-1)."""
    return torch.rot90(x, rot, dims=(-2, -1)).roll(roll_sign * rot, dims=2)


def d4_regular_action(x: Tensor, flip: int, rot: int) -> Tensor:
    """(f, k) on [B, C, 8, H, W]: spatial part, then new[i] = old[PERM[(f, k)][i]] on the group axis."""
    permutation = torch.tensor(D4_PERMUTATIONS[(flip, rot)], device=x.device)
    return image_action(x, flip, rot).index_select(2, permutation)


def regular_action(x: Tensor, flip: int, rot: int) -> Tensor:
    """Dispatch on the size of the group axis: 4 -> C4, 8 -> D4 (escnn order)."""
    if x.shape[2] == 4:
        if flip:
            raise ValueError("C4 has no mirrors")
        return c4_regular_action(x, rot)
    return d4_regular_action(x, flip, rot)


def relative_error(actual: Tensor, expected: Tensor) -> float:
    """||a - b|| / ||b||, computed in float64 (CONVENTIONS section 3)."""
    actual, expected = actual.detach().double(), expected.detach().double()
    return float(torch.linalg.vector_norm(actual - expected) / torch.linalg.vector_norm(expected))


@pytest.fixture
def actions() -> SimpleNamespace:
    return SimpleNamespace(
        image=image_action,
        c4_regular=c4_regular_action,
        d4_regular=d4_regular_action,
        regular=regular_action,
        relative_error=relative_error,
        d4_permutations=D4_PERMUTATIONS,
        c4_elements=C4_ELEMENTS,
        d4_elements=D4_ELEMENTS,
    )
