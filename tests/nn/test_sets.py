"""Deep Sets layers are permutation-equivariant, set pooling is invariant, and the check can fail."""
from __future__ import annotations

import pytest
import torch

from eqcheck.nn import DeepSetsLayer, SetPool


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().double(), expected.detach().double()
    return float(torch.linalg.vector_norm(actual - expected) / torch.linalg.vector_norm(expected))


@pytest.mark.parametrize("pool", ["sum", "mean", "max"])
def test_deep_sets_layer_is_permutation_equivariant(pool: str) -> None:
    torch.manual_seed(0)
    layer = DeepSetsLayer(3, 5, pool=pool)
    x = torch.randn(4, 10, 3)
    out = layer(x)
    assert out.shape == (4, 10, 5)
    for _ in range(20):
        permutation = torch.randperm(10)
        assert _relative_error(layer(x[:, permutation]), out[:, permutation]) < 1e-6


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_set_pool_is_permutation_invariant(reduction: str) -> None:
    torch.manual_seed(0)
    pool = SetPool(reduction)
    x = torch.randn(4, 10, 3)
    out = pool(x)
    assert out.shape == (4, 3)
    for _ in range(20):
        assert _relative_error(pool(x[:, torch.randperm(10)]), out) < 1e-6


def test_deep_sets_layer_formula() -> None:
    torch.manual_seed(0)
    layer = DeepSetsLayer(3, 2, pool="mean")
    x = torch.randn(2, 6, 3)
    expected = x @ layer.element_weight + x.mean(dim=1, keepdim=True) @ layer.pooled_weight + layer.bias
    torch.testing.assert_close(layer(x), expected)


def test_positional_term_breaks_equivariance() -> None:
    """The same check fails on a set model with a positional embedding (CONVENTIONS section 5)."""
    torch.manual_seed(0)
    layer = DeepSetsLayer(3, 5)
    position = torch.randn(1, 10, 3)
    x = torch.randn(4, 10, 3)
    permutation = torch.roll(torch.arange(10), 1)
    error = _relative_error(layer(x[:, permutation] + position), layer(x + position)[:, permutation])
    assert error > 1e-2


def test_declared_actions_and_errors() -> None:
    assert (DeepSetsLayer.eqcheck_group, DeepSetsLayer.eqcheck_input_type, DeepSetsLayer.eqcheck_output_type) == ("perm", "set", "set")
    assert (SetPool.eqcheck_group, SetPool.eqcheck_input_type, SetPool.eqcheck_output_type) == ("perm", "set", "invariant")
    with pytest.raises(ValueError, match="reduction"):
        DeepSetsLayer(3, 4, pool="median")
    with pytest.raises(ValueError):
        SetPool()(torch.randn(3, 4))
