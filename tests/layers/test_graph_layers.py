"""PyTorch models shaped like real code: layers are leaf modules and the ops between them (torch.fx, or a
.pt2's own graph), containers are never rows, an exact layer is never blamed, whatever came before it."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import eqcheck
from eqcheck.nn import GroupPool, P4ConvP4, P4ConvZ2, SpatialPool


class PlainOnGroup(nn.Module):
    """A plain 3x3 conv on ``[B, C*4, H, W]``: its filters are not rotated (breaks p4)."""

    def __init__(self, fields: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4 * fields, 4 * fields, 3, padding=1)

    def forward(self, x):
        return self.conv(x.flatten(1, 2)).unflatten(1, (-1, 4))


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build().eval()


def _rows(result):
    return {layer.name: layer for layer in result.layers}


def _failing(result):
    return [layer.name for layer in result.layers if not layer.passed]


class Nested(nn.Module):
    example_input_shape = (2, 1, 13, 13)

    def __init__(self, broken: bool) -> None:
        super().__init__()
        middle = PlainOnGroup(4) if broken else P4ConvP4(4, 4, 3, padding=1)
        self.blocks = nn.Sequential(P4ConvZ2(1, 4, 3, padding=1), nn.ReLU(), P4ConvP4(4, 4, 3, padding=1), nn.ReLU(),
                                    middle, nn.ReLU(), P4ConvP4(4, 4, 3, padding=1), nn.ReLU(),
                                    P4ConvP4(4, 4, 3, padding=1), nn.ReLU())
        self.pool, self.head = GroupPool("max"), SpatialPool("mean")

    def forward(self, x):
        return self.head(self.pool(self.blocks(x)))


@pytest.mark.parametrize("broken", [True, False])
def test_a_fault_deep_in_a_sequential_is_named_and_nothing_after_it_is_blamed(broken) -> None:
    result = eqcheck.verify(_seeded(lambda: Nested(broken)), "p4")
    layers = _rows(result)
    assert "blocks" not in layers  # a container is never a row
    assert result.passed is not broken
    if broken:
        assert result.first_failing_layer == "blocks.4.conv"
        assert _failing(result) == ["blocks.4.conv"]
        assert layers["blocks.4.conv"].local_rel_error > 0.3
        # the exact layers after it are exact on an exact input; the carried error is still shown
        for name in ("blocks.6", "blocks.8", "pool", "head"):
            assert layers[name].local_rel_error < 1e-5 < 0.01 < layers[name].max_rel_error
        assert [d.layer for d in result.diagnoses if d.layer] == ["blocks.4.conv"]  # the cause, said once
    else:
        assert result.first_failing_layer is None and not _failing(result)
        assert max(layer.local_rel_error for layer in result.layers) < 1e-5


class Loop(nn.Module):
    """A ModuleList run in a loop and a ModuleDict called by key; one stage is plain."""

    example_input_shape = (2, 1, 11, 11)

    def __init__(self) -> None:
        super().__init__()
        self.lift = P4ConvZ2(1, 3, 3, padding=1)
        self.stages = nn.ModuleList([P4ConvP4(3, 3, 3, padding=1), PlainOnGroup(3), P4ConvP4(3, 3, 3, padding=1)])
        self.heads = nn.ModuleDict({"pool": GroupPool("mean"), "space": SpatialPool("max")})

    def forward(self, x):
        x = self.lift(x)
        for stage in self.stages:
            x = torch.relu(stage(x))
        return self.heads["space"](self.heads["pool"](x))


def test_module_lists_and_dicts_are_traced_through() -> None:
    result = eqcheck.verify(_seeded(Loop), "p4")
    layers = _rows(result)
    assert not result.passed and result.first_failing_layer == "stages.1.conv"
    assert _failing(result) == ["stages.1.conv"]
    assert {"stages", "heads", "stages.1"}.isdisjoint(layers)
    assert [name for name in layers if name.startswith("forward.relu")] == [
        "forward.relu#1", "forward.relu#2", "forward.relu#3"]  # one op, three calls
    assert layers["stages.2"].local_rel_error < 1e-5 and layers["heads.space"].local_rel_error < 1e-5


class Rolled(nn.Module):
    example_input_shape = (2, 1, 11, 11)

    def __init__(self) -> None:
        super().__init__()
        self.lift, self.conv = P4ConvZ2(1, 3, 3, padding=1), P4ConvP4(3, 3, 3, padding=1)
        self.pool, self.head = GroupPool("max"), SpatialPool("mean")

    def forward(self, x):
        x = torch.relu(self.lift(x))
        x = torch.roll(x, 1, dims=-1)  # a shift along one axis: breaks rotations
        return self.head(self.pool(torch.relu(self.conv(x))))


def test_a_functional_op_between_modules_is_a_layer_and_is_blamed() -> None:
    result = eqcheck.verify(_seeded(Rolled), "p4")
    layers = _rows(result)
    assert not result.passed and result.first_failing_layer == "forward.roll"
    assert layers["forward.roll"].op == "roll" and _failing(result) == ["forward.roll"]
    assert layers["conv"].local_rel_error < 1e-5


class Folded(nn.Module):
    """The group axis folded into the batch for a pointwise block: exact."""

    example_input_shape = (2, 1, 11, 11)

    def __init__(self) -> None:
        super().__init__()
        self.lift = P4ConvZ2(1, 3, 3, padding=1)
        self.pointwise = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())
        self.pool, self.head = GroupPool("max"), SpatialPool("mean")

    def forward(self, x):
        y = self.lift(x)
        b, c, g, h, w = y.shape
        folded = y.permute(0, 2, 1, 3, 4).reshape(b * g, c, h, w)
        y = self.pointwise(folded).reshape(b, g, c, h, w).permute(0, 2, 1, 3, 4)
        return self.head(self.pool(y))


def test_the_group_axis_folded_into_the_batch_passes_with_no_failing_row() -> None:
    result = eqcheck.verify(_seeded(Folded), "p4")
    assert result.passed and result.first_failing_layer is None
    assert not _failing(result)


class Untraceable(Nested):
    def forward(self, x):
        if float(x.abs().sum()) >= 0:  # control flow on a value: torch.fx cannot trace it
            x = self.blocks(x)
        return self.head(self.pool(x))


def test_an_untraceable_forward_falls_back_to_hooks_on_the_layer_modules() -> None:
    result = eqcheck.verify(_seeded(lambda: Untraceable(True)), "p4")
    layers = _rows(result)
    assert not result.passed and result.first_failing_layer == "blocks.4.conv"
    assert "blocks" not in layers and "blocks.4" not in layers
    assert layers["blocks.6"].passed and layers["blocks.6"].local_rel_error < 1e-5


def test_a_pt2_is_analysed_on_its_exported_graph(tmp_path) -> None:
    model = _seeded(lambda: Nested(True))
    path = tmp_path / "nested.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(*Nested.example_input_shape),)), str(path))
    result = eqcheck.verify(str(path), "p4")
    layers = _rows(result)
    assert not result.passed and result.first_failing_layer == "blocks.4.conv"
    assert _failing(result) == ["blocks.4.conv"]
    assert layers["blocks.6"].local_rel_error < 1e-5 and layers["blocks.6"].op == "P4ConvP4"
    assert "blocks" not in layers and "blocks.4" not in layers


class TinyViT(nn.Module):
    """Patch embedding, a cls token, a learned position embedding, an encoder: not p4-invariant."""

    example_input_shape = (2, 3, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, 8, 2, stride=2)
        self.cls_token = nn.Parameter(0.5 * torch.randn(1, 1, 8))
        self.pos_embed = nn.Parameter(0.5 * torch.randn(1, 17, 8))
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos_embed
        return self.head(self.encoder(t)[:, 0])


def test_a_vit_is_analysed_to_the_end_and_tensors_of_unknown_type_are_not_judged() -> None:
    result = eqcheck.verify(_seeded(TinyViT), "p4")
    layers = _rows(result)
    assert not result.passed and result.first_failing_layer == "patch_embed"
    assert _failing(result) == ["patch_embed"]
    # flattened and transposed tokens carry an action eqcheck has no name for: shown, not judged
    assert layers["forward.flatten"].representation == "undetermined"
    assert layers["forward.flatten"].local_rel_error is None and layers["encoder"].representation == "undetermined"
    assert list(layers)[-1] == "head"
    assert any("--layer-type 'forward.flatten=TYPE'" in note for note in result.run.notes)


def test_one_cause_of_many_layers_is_said_once() -> None:
    model = _seeded(lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
                                          nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)))
    result = eqcheck.verify(model, "p4", input_shape=[2, 1, 13, 13])
    assert _failing(result) == ["0", "2", "4"]
    plain = [d for d in result.diagnoses if d.code == "plain-layer"]
    assert len(plain) == 1 and plain[0].layer == "0"
    assert plain[0].message.startswith("each of 0 (Conv2d), 2 (Conv2d) and 4 (Conv2d) is a plain layer")


class InPlace(nn.Module):
    """``y.mul_(w)`` with a weight per pixel breaks rotations: the in-place op is the layer blamed."""

    example_input_shape = (2, 1, 9, 9)

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 4, 1)
        self.w = nn.Parameter(torch.randn(1, 4, 9, 9))

    def forward(self, x, mask=None):  # an argument with a default is traced at its default
        y = self.c1(x)
        y.mul_(self.w)
        if mask is not None:
            y = y * mask
        return self.c2(y).mean((2, 3))


def test_an_in_place_op_is_a_layer_and_an_argument_with_a_default_is_traced() -> None:
    result = eqcheck.verify(_seeded(InPlace), "p4")
    assert not result.passed and result.first_failing_layer == "w"
    assert _failing(result) == ["w"] and _rows(result)["c2"].passed


def test_a_traced_graph_that_cannot_run_falls_back_to_hooks() -> None:
    class Forces(nn.Module):  # fx drops `with torch.enable_grad()`: the graph cannot take the gradient
        example_input_shape = (2, 5, 3)

        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(1, 1)

        def forward(self, pos):
            with torch.enable_grad():
                pos = pos.detach().requires_grad_(True)
                energy = self.lin((pos[:, :, None] - pos[:, None]).pow(2).sum(-1, keepdim=True)).sum((1, 2, 3))
                return energy, -torch.autograd.grad(energy.sum(), pos)[0]

    result = eqcheck.verify(_seeded(Forces), "e3")
    assert result.passed and [layer.name for layer in result.layers] == ["lin"]
    assert not any("stopped" in note for note in result.run.notes)


def test_a_pt2_gives_one_row_per_call_of_a_module(tmp_path) -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c, self.act = nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular"), nn.ReLU()

        def forward(self, x):
            return self.act(self.act(self.c(self.c(x))))

    path = tmp_path / "twice.pt2"
    torch.export.save(torch.export.export(_seeded(Twice), (torch.randn(2, 2, 8, 8),)), str(path))
    result = eqcheck.verify(str(path), "translation")
    assert [layer.name for layer in result.layers] == ["c#1", "c#2", "act#1", "act#2"] and result.passed


class Halves(nn.Module):
    """A leaf module with two outputs (e3nn's ``Extract`` hands on three): both are read further on."""

    def forward(self, x):
        return x[:, :2], x[:, 2:]


class Extracted(nn.Module):
    """The same as e3nn's ``Extract`` writes it: a new buffer filled in place through a view."""

    def forward(self, x):
        first = x.new_zeros(x.shape[0], 2, *x.shape[2:])
        first.narrow(1, 0, 2).copy_(x.narrow(1, 0, 2))
        return first, x[:, 2:]


class SplitAfterShift(nn.Module):
    """A position-dependent bias on channels 0-1 breaks translations; the split hands those channels on
    first, the exact ones last, and the product afterwards carries the error to the output."""

    def __init__(self, split=Halves) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular")
        bias = torch.zeros(1, 4, 8, 8)
        bias[:, :2] = torch.randn(1, 2, 8, 8)
        self.absolute = nn.Parameter(bias)
        self.halves = split()
        self.head = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        broken, exact = self.halves(self.conv(x) + self.absolute)
        return self.head(broken) * exact


@pytest.mark.parametrize("split", [Halves, Extracted])
def test_a_pt2_layer_with_several_outputs_shows_each_and_the_break_before_it_is_named(tmp_path, split) -> None:
    path = tmp_path / "split.pt2"
    model = _seeded(lambda: SplitAfterShift(split))
    torch.export.save(torch.export.export(model, (torch.randn(2, 1, 8, 8),)), str(path))
    result = eqcheck.verify(str(path), "translation")
    layers = _rows(result)
    assert not result.passed and result.first_failing_layer == "absolute"
    assert _failing(result) == ["absolute"]
    assert layers["halves[0]"].local_rel_error < 1e-6 and layers["halves[1]"].local_rel_error < 1e-6
    assert layers["halves[0]"].max_rel_error > 0.1 > layers["halves[1]"].max_rel_error
