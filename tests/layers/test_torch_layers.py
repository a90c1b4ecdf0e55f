"""Per-layer analysis of PyTorch models: hooks, declared actions, nesting, glue code, breaks."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import eqcheck
from eqcheck.errors import UsageError
from eqcheck.nn import GroupPool, P4ConvP4, P4ConvZ2, SpatialPool

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build().eval()


def exact_p4():
    return _seeded(lambda: nn.Sequential(OrderedDict(
        conv1=P4ConvZ2(1, 4, 3), relu1=nn.ReLU(), conv2=P4ConvP4(4, 4, 3), pool=GroupPool("max"),
        head=SpatialPool("mean"))))


class FlatPlainConv(nn.Module):
    """A plain Conv2d on [B, C*4, H, W], not declared: its filters are not rotated."""

    def __init__(self, fields: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(fields * 4, fields * 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x.flatten(1, 2)).unflatten(1, (-1, 4))


def rows(result):
    return {layer.name: layer for layer in result.layers}


def test_exact_p4_network_passes_at_every_layer_with_declared_and_inferred_actions() -> None:
    result = eqcheck.verify(exact_p4(), "p4", input_shape=[2, 1, 11, 11])
    assert result.passed and result.first_failing_layer is None
    layers = rows(result)
    assert list(layers) == ["conv1", "relu1", "conv2", "pool", "head"]
    assert all(layer.passed and layer.local_rel_error < 1e-5 for layer in layers.values())
    assert layers["conv1"].representation == "regular:5d" and layers["conv1"].representation_source == "declared"
    assert layers["relu1"].representation == "regular:5d" and layers["relu1"].representation_source == "auto"
    assert layers["relu1"].representation_margin > 1e4  # the other candidates are off by order one
    assert layers["pool"].representation == "image" and layers["head"].representation == "invariant"
    assert layers["conv2"].shape == (2, 4, 4, 7, 7) and layers["conv2"].op == "P4ConvP4"


def test_a_plain_conv_inside_an_undeclared_module_is_the_first_failing_layer() -> None:
    model = _seeded(lambda: nn.Sequential(OrderedDict(
        conv1=P4ConvZ2(1, 4, 3), relu1=nn.ReLU(), plain=FlatPlainConv(4), conv2=P4ConvP4(4, 4, 3),
        pool=GroupPool("max"), head=SpatialPool("mean"))))
    result = eqcheck.verify(model, "p4", input_shape=[2, 1, 11, 11])
    assert not result.passed
    assert result.first_failing_layer == "plain.conv"  # the innermost failing module of "plain"
    layers = rows(result)
    # the container is traced through: its ops and its child are the layers, the container is no row
    assert list(layers) == ["conv1", "relu1", "plain.flatten", "plain.conv", "plain.unflatten", "conv2", "pool",
                            "head"]
    assert [name for name, layer in layers.items() if not layer.passed] == ["plain.conv"]
    assert layers["plain.conv"].local_rel_error > 0.3 and layers["plain.conv"].representation_source == "kept"
    # the layers after it are exact on an exact input: the error is carried, not made, there
    assert layers["conv2"].passed and layers["conv2"].local_rel_error < 1e-5 < 0.1 < layers["conv2"].max_rel_error
    assert not layers["conv2"].cumulative_passed
    causes = [d for d in result.diagnoses if d.layer == "plain.conv"]
    assert [d.code for d in causes] == ["plain-layer"] and "between group layers" in causes[0].message


def test_the_sample_broken_p4cnn_names_its_broken_module() -> None:
    result = eqcheck.verify(f"{SAMPLES / 'models.py'}:p4cnn_broken", "p4")
    assert result.first_failing_layer == "conv4_broken_plain"  # declared: the author's unit, not its child
    assert [layer.name for layer in result.layers if not layer.passed] == ["conv4_broken_plain"]  # one unit, one row


def test_a_module_called_twice_gives_one_row_per_call() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2, self.act = P4ConvZ2(1, 2, 3), P4ConvP4(2, 2, 3), nn.ReLU()

        def forward(self, x):
            return self.act(self.conv2(self.act(self.conv1(x))))

    result = eqcheck.verify(_seeded(Twice), "p4", input_shape=[2, 1, 9, 9], output_type="regular")
    assert [layer.name for layer in result.layers] == ["conv1", "act#1", "conv2", "act#2"]
    assert result.passed and all(layer.passed for layer in result.layers)


@pytest.mark.parametrize("size, passes", [(13, True), (12, False)])
def test_stride_two_keeps_the_grid_centred_only_on_odd_sizes(size, passes) -> None:
    model = _seeded(lambda: nn.Sequential(P4ConvZ2(1, 4, 3, padding=1), nn.ReLU(),
                                          P4ConvP4(4, 4, 3, stride=2, padding=1), GroupPool("max"),
                                          SpatialPool("mean")))
    result = eqcheck.verify(model, "p4", input_shape=[2, 1, size, size])
    assert result.passed is passes
    assert result.first_failing_layer == (None if passes else "2")
    codes = {d.code for d in result.diagnoses if d.layer == "2"}
    assert codes == (set() if passes else {"stride-alignment", "even-size"})


class SetEncoder(nn.Module):
    def __init__(self, positional: bool) -> None:
        super().__init__()
        self.pos = nn.Parameter(0.5 * torch.randn(1, 5, 8)) if positional else None
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)

    def forward(self, x):
        return self.encoder(x + self.pos if self.pos is not None else x)


@pytest.mark.parametrize("positional", [False, True])
def test_a_positional_embedding_is_named_as_the_break_of_a_set_transformer(positional) -> None:
    result = eqcheck.verify(_seeded(lambda: SetEncoder(positional)), "perm", input_shape=[2, 5, 8])
    assert result.passed is not positional
    layers = rows(result)
    assert layers["encoder"].representation == "set" and layers["encoder"].passed
    if positional:
        assert result.first_failing_layer == "pos" and layers["pos"].op == "add"
        assert layers["encoder"].local_rel_error < 1e-5 < 0.1 < layers["encoder"].max_rel_error
        assert any(d.code == "positional-embedding" and d.layer == "pos" for d in result.diagnoses)
    else:
        assert result.first_failing_layer is None and all(layer.passed for layer in result.layers)


def test_dropout_in_train_mode_is_found_by_the_identity_element() -> None:
    model = _seeded(lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.Dropout(0.5),
                                          nn.Conv2d(4, 2, 3, padding=1, padding_mode="circular")))
    result = eqcheck.verify(model, "translation", input_shape=[2, 1, 12, 12], train_mode=True)
    assert result.first_failing_layer == "1"
    assert any(d.code == "non-determinism" and d.layer == "1" for d in result.diagnoses)


def test_layer_type_overrides_the_inferred_action() -> None:
    result = eqcheck.verify(exact_p4(), "p4", input_shape=[2, 1, 11, 11], layer_types=["relu1=image"])
    relu = rows(result)["relu1"]
    assert relu.representation == "image" and relu.representation_source == "given"
    assert not relu.passed  # regular fields do not transform as plain images
    with pytest.raises(UsageError, match="names no layer"):
        eqcheck.verify(exact_p4(), "p4", input_shape=[2, 1, 11, 11], layer_types={"nope": "image"})


class PlainBetweenGroupLayers(nn.Module):
    """A plain conv on the folded group axis between two group convolutions: breaks p4 there."""

    def __init__(self) -> None:
        super().__init__()
        self.lift, self.plain, self.group = P4ConvZ2(1, 4, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1), P4ConvP4(4, 4, 3, padding=1)

    def forward(self, x):
        y = torch.relu(self.lift(x))
        b, c, k, h, w = y.shape
        return self.group(self.plain(y.reshape(b, c * k, h, w)).reshape(b, c, k, h, w)).amax(dim=(2, 3, 4))


class CircularWithBranch(nn.Module):
    """Circular convolutions and an ``if`` that torch.jit.script keeps as control flow."""

    def __init__(self, padding_mode: str) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular")
        self.b = nn.Conv2d(4, 4, 3, padding=1, padding_mode=padding_mode)

    def forward(self, x):
        y = torch.relu(self.a(x))
        if y.shape[1] > 2:
            y = self.b(y)
        return y


def test_a_torchscript_model_gets_its_per_layer_table_from_its_onnx_export(tmp_path) -> None:
    path = tmp_path / "broken.ts"
    torch.jit.trace(_seeded(PlainBetweenGroupLayers), torch.randn(2, 1, 12, 12)).save(str(path))
    result = eqcheck.verify(path, "p4", input_shape=[2, 1, 12, 12])
    assert not result.passed and result.first_failing_layer == "/plain/Conv"
    assert [layer.name for layer in result.layers if not layer.passed] == ["/plain/Conv"]
    assert any("ONNX export" in note for note in result.run.notes)
    for mode, passes in (("circular", True), ("zeros", False)):
        path = tmp_path / f"{mode}.ts"
        torch.jit.script(_seeded(lambda: CircularWithBranch(mode))).save(str(path))
        result = eqcheck.verify(path, "translation", input_shape=[2, 1, 12, 12])
        assert result.passed is passes and result.layers
        assert result.first_failing_layer == (None if passes else "/If")  # the scripted branch holds b


def test_a_traced_torchscript_of_the_reference_layers_exports_and_gets_its_per_layer_table(tmp_path) -> None:
    """eqcheck.nn's group convolutions are traced to ops that the ONNX exporter takes from a loaded
    TorchScript graph (unflatten's needs a rank that graph does not carry: no table, only a note)."""
    path = tmp_path / "p4.ts"
    torch.jit.trace(exact_p4(), torch.randn(2, 1, 11, 11)).save(str(path))
    result = eqcheck.verify(path, "p4", input_shape=[2, 1, 11, 11])
    assert result.passed and len(result.layers) >= 4 and all(layer.passed for layer in result.layers)
    assert not any("export failed" in note for note in result.run.notes)


def test_a_torchscript_model_whose_export_fails_is_checked_on_its_output(tmp_path, monkeypatch) -> None:
    path = tmp_path / "model.ts"
    torch.jit.trace(exact_p4(), torch.randn(2, 1, 11, 11)).save(str(path))

    def refused(*args, **kwargs):
        raise RuntimeError("Unsupported: ONNX export of operator dim. Please feel free to request support")

    monkeypatch.setattr(torch.onnx, "export", refused)
    result = eqcheck.verify(path, "p4", input_shape=[2, 1, 11, 11])
    assert result.passed and result.layers == () and result.first_failing_layer is None
    note = next(note for note in result.run.notes if "TorchScript" in note)
    assert "ONNX export failed (Unsupported: ONNX export of operator dim)" in note


def test_per_layer_can_be_turned_off() -> None:
    result = eqcheck.verify(exact_p4(), "p4", input_shape=[2, 1, 11, 11], per_layer=False)
    assert result.layers == () and result.first_failing_layer is None


def test_every_layer_gets_its_own_local_error_however_many_break(monkeypatch) -> None:
    import eqcheck.layers.propagate as propagate

    captures = []
    original = propagate.LayerAnalysis._capture_and_read

    def counted(self, sites, reference, items, patches, exact=True, **options):
        captures.append(len(patches) if exact else 0)
        return original(self, sites, reference, items, patches, exact, **options)

    monkeypatch.setattr(propagate.LayerAnalysis, "_capture_and_read", counted)
    model = _seeded(lambda: nn.Sequential(*[m for _ in range(5) for m in (nn.Conv2d(2, 2, 3, padding=1), nn.Tanh())]))
    result = eqcheck.verify(model, "p4", input_shape=[2, 2, 9, 9])
    rows = {layer.name: layer for layer in result.layers}
    assert result.first_failing_layer == "0"
    # five plain convs break p4; each tanh, on an exact input, makes no error of its own
    assert all(not rows[str(i)].passed and rows[str(i)].local_rel_error > 0.1 for i in range(0, 10, 2))
    assert all(rows[str(i)].passed and rows[str(i)].local_rel_error < 1e-5 for i in range(1, 10, 2))
    assert all(not rows[str(i)].cumulative_passed for i in range(10))
    # one capture on the transformed inputs, one with every tensor made exact: not one per break
    assert captures[0] == 0 and len(captures) == 2 and captures[1] > 0
    causes = [d for d in result.diagnoses if d.severity == "cause"]  # one cause, its five layers listed
    assert [d.layer for d in causes] == ["0"]
    assert causes[0].message.startswith("each of 0 (Conv2d), 2 (Conv2d), 4 (Conv2d), 6 (Conv2d) and 8 (Conv2d)")


class TwoOutputsAfterBranch(nn.Module):
    """Control flow on values (no fx trace: module hooks), and a second output computed after the last
    module: a position-dependent offset there breaks translations."""

    def __init__(self, offset: bool) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
        self.b = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
        self.shift = nn.Parameter(torch.randn(1, 2, 8, 8) if offset else torch.zeros(1, 2, 8, 8))

    def forward(self, x):
        if float(x.abs().sum()) < 0:  # never: but fx cannot know
            x = -x
        return self.a(x), self.b(x) + self.shift


def test_hooks_show_each_output_that_code_after_the_last_module_computes() -> None:
    broken = eqcheck.verify(_seeded(lambda: TwoOutputsAfterBranch(True)), "translation", input_shape=[2, 1, 8, 8])
    assert not broken.passed and [o.passed for o in broken.outputs] == [True, False]
    assert any("module hooks" in note for note in broken.run.notes)
    # the forward cannot be traced, so the code is named by the output it computes
    assert broken.first_failing_layer == "forward:output1"
    assert [layer.name for layer in broken.layers if not layer.passed] == ["forward:output1"]
    exact = eqcheck.verify(_seeded(lambda: TwoOutputsAfterBranch(False)), "translation", input_shape=[2, 1, 8, 8])
    assert exact.passed and exact.first_failing_layer is None and all(layer.passed for layer in exact.layers)


class Aggregate(nn.Module):
    """Sums messages ``[E', F]`` into their target nodes (PyG's SumAggregation)."""

    def forward(self, messages, target, nodes: int):
        return torch.zeros(nodes, messages.shape[1], dtype=messages.dtype).index_add(0, target, messages)


class GCNLike(nn.Module):
    """Two rounds of message passing as PyG's GCNConv computes them: self loops appended to the edges (so
    the messages ``[E + N, F]`` are rows of neither the nodes nor the input's edges), messages gathered by
    code between modules, summed by a module. ``index_feature``: each node's index is a feature (breaks
    node permutations, in the code before the first layer). ``int(...)`` on a value: no fx trace."""

    example_input_shapes = {"x": (9, 3), "edge_index": (2, 20)}

    def __init__(self, index_feature: bool) -> None:
        super().__init__()
        self.index_feature = index_feature
        self.lin1, self.aggr1 = nn.Linear(4, 8), Aggregate()
        self.lin2, self.aggr2 = nn.Linear(8, 8), Aggregate()

    def forward(self, x, edge_index):
        nodes = int(x.shape[0])
        index = torch.arange(nodes, dtype=x.dtype)[:, None] / nodes
        h = torch.cat([x, index if self.index_feature else torch.zeros_like(index)], dim=1)
        loops = torch.arange(nodes)
        source, target = torch.cat([edge_index[0], loops]), torch.cat([edge_index[1], loops])
        h = self.aggr1(self.lin1(h)[source] * 0.5, target, nodes).relu()
        return self.aggr2(self.lin2(h)[source] * 0.5, target, nodes)


def test_messages_over_added_self_loops_are_typed_by_their_rows_and_nothing_after_a_break_is_blamed() -> None:
    """The messages are typed by the order of their rows (found); after the break of the index feature,
    the one line that says why names the code before the first layer, not the exact layers and messages
    downstream of it (each of them was blamed, under an action guessed for the messages)."""
    exact = eqcheck.verify(_seeded(lambda: GCNLike(False)), "perm:axis=0")
    assert exact.passed and all(layer.passed for layer in exact.layers)
    broken = eqcheck.verify(_seeded(lambda: GCNLike(True)), "perm:axis=0")
    assert not broken.passed and any("module hooks" in note for note in broken.run.notes)
    assert broken.first_failing_layer == "lin1:input"
    causes = [d for d in broken.diagnoses if d.severity == "cause"]
    assert [d.layer for d in causes] == ["lin1:input"]
    rows = {layer.name: layer for layer in broken.layers}
    assert rows["aggr1"].passed and rows["aggr1"].local_rel_error < 1e-5
    assert rows["aggr2"].passed and rows["aggr2"].local_rel_error < 1e-5
