"""Group pooling is invariant over the point group; spatial pooling of group maps is equivariant."""
from __future__ import annotations

import pytest
import torch

from eqcheck.nn import GroupPool, GroupSpatialMaxPool, SpatialPool

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["max", "mean"])
@pytest.mark.parametrize("order", [4, 8])
def test_group_pool_turns_regular_into_image_action(actions, order, reduction, dtype) -> None:
    torch.manual_seed(0)
    pool = GroupPool(reduction)
    x = torch.randn(2, 3, order, 7, 7, dtype=dtype)
    out = pool(x)
    assert out.shape == (2, 3, 7, 7)
    for flip, rot in actions.d4_elements if order == 8 else actions.c4_elements:
        error = actions.relative_error(pool(actions.regular(x, flip, rot)), actions.image(out, flip, rot))
        assert error < TOLERANCE[dtype]


def test_group_pool_values() -> None:
    x = torch.arange(8.0).reshape(1, 1, 8, 1, 1)
    assert float(GroupPool("max")(x)) == 7.0
    assert float(GroupPool("mean")(x)) == 3.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("order", [4, 8])
@pytest.mark.parametrize("size, kernel, stride, padding", [(8, 2, 2, 0), (9, 3, 3, 0), (9, 3, 2, 1), (7, 3, 1, 1)])
def test_spatial_max_pool_of_group_maps_is_equivariant(actions, order, dtype, size, kernel, stride, padding) -> None:
    assert (size + 2 * padding - kernel) % stride == 0
    torch.manual_seed(0)
    pool = GroupSpatialMaxPool(kernel, stride, padding)
    x = torch.randn(2, 3, order, size, size, dtype=dtype)
    out = pool(x)
    for flip, rot in actions.d4_elements if order == 8 else actions.c4_elements:
        error = actions.relative_error(pool(actions.regular(x, flip, rot)), actions.regular(out, flip, rot))
        assert error < TOLERANCE[dtype]


def test_spatial_max_pool_off_centre_grid_breaks_equivariance(actions) -> None:
    size, kernel, stride = 9, 2, 2
    assert (size - kernel) % stride != 0
    torch.manual_seed(0)
    pool = GroupSpatialMaxPool(kernel, stride)
    x = torch.randn(2, 3, 4, size, size, dtype=torch.float64)
    error = actions.relative_error(pool(actions.regular(x, 0, 1)), actions.regular(pool(x), 0, 1))
    assert error > 0.1


def test_spatial_max_pool_keeps_each_orientation_apart() -> None:
    x = torch.randn(2, 3, 4, 6, 6)
    expected = torch.nn.functional.max_pool2d(x.flatten(1, 2), 2).unflatten(1, (3, 4))
    assert torch.equal(GroupSpatialMaxPool(2)(x), expected)


@pytest.mark.parametrize("reduction", ["max", "mean"])
def test_spatial_pool_is_invariant(actions, reduction) -> None:
    torch.manual_seed(0)
    pool = SpatialPool(reduction)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    out = pool(x)
    assert out.shape == (2, 3)
    for flip, rot in actions.d4_elements:
        assert actions.relative_error(pool(actions.image(x, flip, rot)), out) < 1e-12


def test_declared_actions_and_errors() -> None:
    assert (GroupPool.eqcheck_group, GroupPool.eqcheck_input_type, GroupPool.eqcheck_output_type) == (None, "regular", "image")
    assert (GroupSpatialMaxPool.eqcheck_input_type, GroupSpatialMaxPool.eqcheck_output_type) == ("regular", "regular")
    assert (SpatialPool.eqcheck_input_type, SpatialPool.eqcheck_output_type) == ("image", "invariant")
    with pytest.raises(ValueError, match="reduction"):
        GroupPool("median")
    with pytest.raises(ValueError):
        GroupPool()(torch.randn(1, 2, 5, 5))
