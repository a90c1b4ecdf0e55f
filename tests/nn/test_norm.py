"""GroupBatchNorm keeps one set of statistics per field and commutes with the group action."""
from __future__ import annotations

import pytest
import torch

from eqcheck.nn import GroupBatchNorm


def test_statistics_are_per_field_over_batch_group_and_space() -> None:
    torch.manual_seed(0)
    norm = GroupBatchNorm(3, momentum=None)
    x = torch.randn(4, 3, 8, 5, 5) * torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1, 1) + 1.5
    out = norm(x)
    assert norm.running_mean.shape == (3,) and norm.weight.shape == (3,) and norm.bias.shape == (3,)
    torch.testing.assert_close(norm.running_mean, x.mean(dim=(0, 2, 3, 4)))
    torch.testing.assert_close(out.mean(dim=(0, 2, 3, 4)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(dim=(0, 2, 3, 4), unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("order", [4, 8])
def test_group_batch_norm_is_equivariant(actions, order, training) -> None:
    torch.manual_seed(0)
    norm = GroupBatchNorm(3).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
        norm.running_mean.uniform_(-1.0, 1.0)
        norm.running_var.uniform_(0.5, 2.0)
    norm.train(training)
    x = torch.randn(2, 3, order, 7, 7, dtype=torch.float64)
    out = norm(x)
    for flip, rot in actions.d4_elements if order == 8 else actions.c4_elements:
        error = actions.relative_error(norm(actions.regular(x, flip, rot)), actions.regular(out, flip, rot))
        assert error < 1e-12


def test_declared_action_and_rank_check() -> None:
    assert (GroupBatchNorm.eqcheck_input_type, GroupBatchNorm.eqcheck_output_type) == ("regular", "regular")
    with pytest.raises(ValueError, match="GroupBatchNorm"):
        GroupBatchNorm(3)(torch.randn(2, 3, 5, 5))
