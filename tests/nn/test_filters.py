"""Filter expansion agrees with GrouPy's semantics and with the CONVENTIONS tables."""
from __future__ import annotations

import pytest
import torch

from eqcheck.groups.point import PointGroup
from eqcheck.nn import P4ConvP4, P4ConvZ2, P4MConvP4M, P4MConvZ2, filter_index_table, transform_filter


def _copies(layer: torch.nn.Module) -> torch.Tensor:
    """Expanded filters as [C_out, |H|, C_in, n_in, k, k]."""
    expanded = layer.expanded_weight()
    order = layer.point_group.order
    return expanded.reshape(layer.out_channels, order, layer.in_channels, layer.in_orientations,
                            layer.kernel_size, layer.kernel_size)


def test_rot90_of_a_numbered_filter_is_counter_clockwise() -> None:
    numbered = torch.arange(9).reshape(3, 3)
    expected = torch.tensor([[2, 5, 8], [1, 4, 7], [0, 3, 6]])
    assert torch.equal(torch.rot90(numbered, 1, dims=(-2, -1)), expected)


def test_z2_to_p4_filters_are_rot90_of_the_filter() -> None:
    torch.manual_seed(0)
    layer = P4ConvZ2(2, 3, 3)
    copies = _copies(layer)
    for r in range(4):
        assert torch.equal(copies[:, r, :, 0], torch.rot90(layer.weight, r, dims=(-2, -1)))


def test_z2_to_p4_numbered_filter_test_vector() -> None:
    layer = P4ConvZ2(1, 1, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(9.0).reshape(1, 1, 3, 3))
    copies = _copies(layer)[0, :, 0, 0]
    assert copies[1].tolist() == [[2, 5, 8], [1, 4, 7], [0, 3, 6]]
    assert copies[2].tolist() == [[8, 7, 6], [5, 4, 3], [2, 1, 0]]
    assert copies[3].tolist() == [[6, 3, 0], [7, 4, 1], [8, 5, 2]]


def test_p4_to_p4_filters_are_rolled_rot90() -> None:
    torch.manual_seed(0)
    layer = P4ConvP4(2, 3, 3)
    copies = _copies(layer)
    for r in range(4):
        expected = torch.roll(torch.rot90(layer.weight, r, dims=(-2, -1)), r, dims=2)
        assert torch.equal(copies[:, r], expected)


def test_p4_to_p4_orientation_test_vector() -> None:
    """A filter that is nonzero only on input orientation 0 moves to input orientation r in copy r."""
    layer = P4ConvP4(1, 1, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4, 1, 1))
    copies = _copies(layer)[0, :, 0, :, 0, 0]
    assert copies.tolist() == [[1, 2, 3, 4], [4, 1, 2, 3], [3, 4, 1, 2], [2, 3, 4, 1]]


def test_p4m_lifting_filters_flip_then_rotate(actions) -> None:
    torch.manual_seed(0)
    layer = P4MConvZ2(2, 3, 3)
    copies = _copies(layer)
    for flip, rot in actions.d4_elements:
        expected = actions.image(layer.weight, flip, rot)
        assert torch.equal(copies[:, 4 * flip + rot, :, 0], expected)


def test_p4m_group_filters_use_the_conventions_table(actions) -> None:
    torch.manual_seed(0)
    layer = P4MConvP4M(2, 3, 3)
    copies = _copies(layer)
    for (flip, rot), permutation in actions.d4_permutations.items():
        expected = actions.image(layer.weight, flip, rot)[:, :, permutation]
        assert torch.equal(copies[:, 4 * flip + rot], expected)


@pytest.mark.parametrize("mirrors", [False, True])
@pytest.mark.parametrize("lifting", [True, False])
def test_index_table_rows_are_permutations(mirrors: bool, lifting: bool) -> None:
    group = PointGroup(4, mirrors)
    table = filter_index_table(group, 3, lifting)
    n_in = 1 if lifting else group.order
    assert table.shape == (group.order, n_in, 3, 3)
    for row in table.reshape(group.order, -1):
        assert torch.equal(row.sort().values, torch.arange(n_in * 9))
    assert torch.equal(table[0].reshape(-1), torch.arange(n_in * 9))  # identity copy unchanged


@pytest.mark.parametrize("mirrors", [False, True])
def test_filter_transform_is_a_group_action(mirrors: bool) -> None:
    """Transforming by b then by a equals transforming by a * b, for every pair of elements."""
    group = PointGroup(4, mirrors)
    weight = torch.randn(2, group.order, 3, 3, dtype=torch.float64)
    for a in group.elements:
        for b in group.elements:
            twice = transform_filter(transform_filter(weight, group, b, False), group, a, False)
            once = transform_filter(weight, group, group.compose(a, b), False)
            assert torch.equal(twice, once)


def test_even_kernel_expands_like_odd_kernel() -> None:
    torch.manual_seed(0)
    layer = P4ConvP4(2, 2, 4)
    copies = _copies(layer)
    expected = torch.roll(torch.rot90(layer.weight, 3, dims=(-2, -1)), 3, dims=2)
    assert torch.equal(copies[:, 3], expected)
