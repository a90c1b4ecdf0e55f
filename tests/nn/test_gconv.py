"""Plane-group convolutions are exactly equivariant, with the output action CONVENTIONS states."""
from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from eqcheck.groups.point import PointGroup
from eqcheck.nn import P4ConvP4, P4ConvZ2, P4MConvP4M, P4MConvZ2, gconv

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}
LAYERS = [P4ConvZ2, P4ConvP4, P4MConvZ2, P4MConvP4M]


def _random_input(layer, size: int, dtype: torch.dtype, batch: int = 2) -> torch.Tensor:
    group_axis = () if layer.lifting else (layer.point_group.order,)
    return torch.randn((batch, layer.in_channels) + group_axis + (size, size), dtype=dtype)


def _input_action(actions, layer, x, flip, rot):
    return actions.image(x, flip, rot) if layer.lifting else actions.regular(x, flip, rot)


def _elements(actions, layer):
    return actions.d4_elements if layer.point_group.mirrors else actions.c4_elements


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layer_class", LAYERS)
@pytest.mark.parametrize("size, padding, stride", [(9, 0, 1), (8, 1, 1), (9, 0, 2), (10, 1, 3)])
def test_conv_is_equivariant_for_every_element(actions, layer_class, dtype, size, padding, stride) -> None:
    assert (size + 2 * padding - 3) % stride == 0
    torch.manual_seed(0)
    layer = layer_class(3, 4, 3, stride=stride, padding=padding).to(dtype)
    x = _random_input(layer, size, dtype)
    out = layer(x)
    for flip, rot in _elements(actions, layer):
        transformed_first = layer(_input_action(actions, layer, x, flip, rot))
        transformed_after = actions.regular(out, flip, rot)
        assert actions.relative_error(transformed_first, transformed_after) < TOLERANCE[dtype]


def test_c4_output_rolls_plus_k_not_minus_k(actions) -> None:
    torch.manual_seed(0)
    layer = P4ConvZ2(2, 3, 3).double()
    x = torch.randn(2, 2, 9, 9, dtype=torch.float64)
    out = layer(x)
    for rot in (1, 3):
        rotated_out = layer(torch.rot90(x, rot, dims=(-2, -1)))
        assert actions.relative_error(rotated_out, actions.c4_regular(out, rot, roll_sign=+1)) < 1e-12
        assert actions.relative_error(rotated_out, actions.c4_regular(out, rot, roll_sign=-1)) > 0.1


def test_c4_roll_is_the_regular_permutation_of_the_group_law(actions) -> None:
    group = PointGroup(4)
    x = torch.randn(1, 2, 4, 5, 5)
    for element in group.elements:
        by_law = torch.rot90(x, element.rot, dims=(-2, -1))[:, :, group.regular_permutation(element)]
        assert torch.equal(by_law, actions.c4_regular(x, element.rot))


def test_d4_conventions_table_is_the_regular_permutation_of_the_group_law(actions) -> None:
    group = PointGroup(4, mirrors=True)
    for element in group.elements:
        expected = actions.d4_permutations[(element.flip, element.rot)]
        assert group.regular_permutation(element).tolist() == expected


def test_d4_output_needs_the_escnn_permutation(actions) -> None:
    """Spatial part alone, or the GrouPy channel order, does not describe the output."""
    torch.manual_seed(0)
    group = PointGroup(4, mirrors=True)
    layer = P4MConvZ2(2, 3, 3).double()
    x = torch.randn(2, 2, 9, 9, dtype=torch.float64)
    out = layer(x)
    for element in group.elements[1:]:
        flip, rot = element.flip, element.rot
        moved_out = layer(actions.image(x, flip, rot))
        assert actions.relative_error(moved_out, actions.d4_regular(out, flip, rot)) < 1e-12
        assert actions.relative_error(moved_out, actions.image(out, flip, rot)) > 0.1
        groupy = torch.as_tensor(group.regular_permutation(element, convention="groupy"))
        if not torch.equal(groupy, torch.tensor(actions.d4_permutations[(flip, rot)])):
            assert actions.relative_error(moved_out, actions.image(out, flip, rot)[:, :, groupy]) > 0.1


@pytest.mark.parametrize("layer_class", [P4ConvP4, P4MConvP4M])
def test_stride_two_on_even_input_breaks_equivariance(actions, layer_class) -> None:
    size, padding, stride = 8, 1, 2
    assert (size + 2 * padding - 3) % stride != 0
    torch.manual_seed(0)
    layer = layer_class(3, 4, 3, stride=stride, padding=padding).double()
    x = _random_input(layer, size, torch.float64)
    error = actions.relative_error(layer(actions.regular(x, 0, 1)), actions.regular(layer(x), 0, 1))
    assert error > 0.1


@pytest.mark.parametrize("layer_class", LAYERS)
def test_forward_equals_a_loop_over_reference_filters(actions, layer_class) -> None:
    """One conv over the gathered bank equals |H| convs with filters built by rot90/flip/permute."""
    torch.manual_seed(0)
    layer = layer_class(2, 3, 3, padding=1).double()
    x = _random_input(layer, 7, torch.float64)
    flat_x = x if layer.lifting else x.flatten(1, 2)
    outputs = []
    for flip, rot in _elements(actions, layer):
        weight = actions.image(layer.weight, flip, rot)
        if not layer.lifting:
            order = layer.point_group.order
            permutation = actions.d4_permutations[(flip, rot)] if order == 8 else [(i - rot) % 4 for i in range(4)]
            weight = weight[:, :, permutation].flatten(1, 2)
        outputs.append(F.conv2d(flat_x, weight, layer.bias, padding=1))
    expected = torch.stack(outputs, dim=2)
    assert actions.relative_error(layer(x), expected) < 1e-14


def test_filter_bank_expanded_once_and_one_conv_per_forward() -> None:
    layer = P4MConvP4M(2, 3, 3)
    x = torch.randn(1, 2, 8, 7, 7)
    with mock.patch.object(gconv.F, "conv2d", wraps=F.conv2d) as conv:
        with mock.patch.object(gconv, "expand_filter_bank", wraps=gconv.expand_filter_bank) as expand:
            layer(x)
    assert conv.call_count == 1
    assert expand.call_count == 1


def test_bias_is_one_per_field_shared_over_the_group_axis() -> None:
    layer = P4ConvP4(2, 3, 3)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([1.0, -2.0, 0.5]))
    out = layer(torch.randn(1, 2, 4, 5, 5))
    assert layer.bias.shape == (3,)
    assert torch.equal(out, torch.tensor([1.0, -2.0, 0.5]).reshape(1, 3, 1, 1, 1).expand_as(out))


@pytest.mark.parametrize("layer_class, fan_in", [(P4ConvZ2, 32 * 9), (P4ConvP4, 32 * 4 * 9), (P4MConvP4M, 32 * 8 * 9)])
def test_he_init_counts_the_group_axis(layer_class, fan_in: int) -> None:
    torch.manual_seed(0)
    layer = layer_class(32, 64, 3)
    assert layer.fan_in == fan_in
    std = float(layer.weight.detach().std())
    assert abs(std / math.sqrt(2.0 / fan_in) - 1.0) < 0.05
    assert float(layer.bias.detach().abs().max()) <= 1.0 / math.sqrt(fan_in)


def test_declared_actions() -> None:
    assert (P4ConvZ2.eqcheck_group, P4ConvZ2.eqcheck_input_type, P4ConvZ2.eqcheck_output_type) == ("p4", "image", "regular")
    assert (P4ConvP4.eqcheck_group, P4ConvP4.eqcheck_input_type, P4ConvP4.eqcheck_output_type) == ("p4", "regular", "regular")
    assert (P4MConvZ2.eqcheck_group, P4MConvZ2.eqcheck_input_type) == ("p4m", "image")
    assert (P4MConvP4M.eqcheck_group, P4MConvP4M.eqcheck_output_type) == ("p4m", "regular")


def test_wrong_input_rank_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="5-D"):
        P4ConvP4(2, 3, 3)(torch.randn(1, 8, 5, 5))
    with pytest.raises(ValueError, match="4-D"):
        P4ConvZ2(2, 3, 3)(torch.randn(1, 2, 4, 5, 5))


def test_state_dict_holds_only_the_free_parameters() -> None:
    assert set(P4MConvP4M(2, 3, 3).state_dict()) == {"weight", "bias"}
    assert P4MConvP4M(2, 3, 3).weight.shape == (3, 2, 8, 3, 3)
    assert P4ConvZ2(2, 3, 5).weight.shape == (3, 2, 5, 5)
