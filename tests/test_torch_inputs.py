"""What eqcheck reads from a Python module besides its weights: integer inputs that index an embedding,
declared dtypes, and dict outputs named by their keys."""
from __future__ import annotations

import torch
from torch import nn

import eqcheck


class Tokens(nn.Module):
    """Token indices [B, T] into an embedding, mean-pooled: invariant to permutations of the tokens."""

    example_input_shape = (2, 6)

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.out = nn.Embedding(11, 4), nn.Linear(4, 3)

    def forward(self, tokens):
        return self.out(self.embed(tokens).mean(1))


def test_an_argument_that_indexes_an_embedding_is_generated_as_indices_below_its_rows() -> None:
    torch.manual_seed(0)
    result = eqcheck.verify(Tokens().eval(), "perm")
    assert result.passed and result.output.max_rel_error < 1e-6
    assert result.run.input_actions == {"tokens": "set"}


class Heads(nn.Module):
    example_input_shape = (2, 1, 9, 9)

    def forward(self, x):
        return {"seg": x * 2, "shifted": torch.roll(x, 1, -1)}


def test_dict_outputs_are_named_by_their_keys_and_declared_by_them() -> None:
    result = eqcheck.verify(Heads(), "p4", output_type=["seg=image", "shifted=image"], per_layer=False)
    assert [(o.name, o.passed) for o in result.outputs] == [("seg", True), ("shifted", False)]
    assert not result.passed and result.output.name == "shifted"


def test_an_argument_called_batch_is_an_image_batch_outside_a_graph_signature() -> None:
    class Images(nn.Module):
        example_input_shape = (2, 1, 9, 9)

        def forward(self, batch):
            return batch.mean((1, 2, 3))

    assert eqcheck.verify(Images(), "p4", per_layer=False).passed


def test_a_dict_with_one_key_is_named_by_it() -> None:
    class One(nn.Module):
        example_input_shape = (2, 1, 9, 9)

        def forward(self, x):
            return {"logits": x.mean((1, 2, 3))}

    result = eqcheck.verify(One(), "p4", output_type="logits=invariant", per_layer=False)
    assert [o.name for o in result.outputs] == ["logits"] and result.passed


class CrossProduct(nn.Module):
    """Two inputs of one shape, ``pos`` and ``vel`` ``[B, N, 3]``: fed the same array, any check is void."""

    example_input_shapes = {"pos": (2, 5, 3), "vel": (2, 5, 3)}

    def forward(self, pos, vel):
        return torch.cross(pos - pos.mean(1, keepdim=True), vel, dim=-1).sum(1)


def test_an_input_file_feeds_each_input_the_array_named_for_it_or_is_refused(tmp_path) -> None:
    import numpy as np
    import pytest

    from eqcheck.errors import UsageError

    rng = np.random.default_rng(0)
    pos, vel = rng.standard_normal((2, 2, 5, 3)).astype(np.float32)
    for name, arrays in (("one", {"vel": vel}), ("renamed", {"position": pos, "vel": vel})):
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(UsageError, match="no array named 'pos'"):
            eqcheck.verify(CrossProduct(), "o3", inputs=tmp_path / f"{name}.npz")
    np.save(tmp_path / "one.npy", pos)
    with pytest.raises(UsageError, match="one array"):
        eqcheck.verify(CrossProduct(), "o3", inputs=tmp_path / "one.npy")
    np.savez(tmp_path / "positional.npz", pos, vel)  # arr_0, arr_1: the inputs in order
    np.savez(tmp_path / "named.npz", vel=vel, pos=pos)
    positional = eqcheck.verify(CrossProduct(), "o3", inputs=tmp_path / "positional.npz", per_layer=False)
    named = eqcheck.verify(CrossProduct(), "o3", inputs=tmp_path / "named.npz", per_layer=False)
    assert positional.passed and named.passed
    assert positional.outputs[0].max_rel_error == named.outputs[0].max_rel_error


class OneHotCharge(nn.Module):
    """An integer input no embedding indexes (``F.one_hot``): its range is declared."""

    example_input_shapes = {"pos": (2, 6, 3), "charge": (2, 6)}
    example_input_dtypes = {"charge": "int64"}
    example_input_ranges = {"charge": 3}

    def forward(self, pos, charge):
        centred = pos - pos.mean(1, keepdim=True)
        return (centred.norm(dim=-1, keepdim=True) * torch.nn.functional.one_hot(charge, 3)).sum(1)


def test_an_integer_input_gets_the_range_the_module_declares() -> None:
    import pytest

    from eqcheck.errors import ModelLoadError

    result = eqcheck.verify(OneHotCharge(), "e3", per_layer=False)
    assert result.passed and result.run.input_actions["charge"] == "invariant"
    broken = OneHotCharge()
    broken.example_input_ranges = {"charge": 0}
    with pytest.raises(ModelLoadError, match="example_input_ranges"):
        eqcheck.verify(broken, "e3", per_layer=False)
