"""PyG-style graphs: node features ``[N, F]`` and an ``edge_index [2, E]`` whose values name nodes, checked
under ``perm:axis=0`` (CONVENTIONS 9: ``x' = x[p]``, ``edge_index' = p_inv[edge_index][:, s]``, per-edge
values ``e[s]``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import eqcheck
from eqcheck.actions.representations import EdgeIndexAction, SetAction
from eqcheck.groups import parse_group
from eqcheck.groups.base import SamplingContext


class MessagePassing(nn.Module):
    """Sum of transformed neighbour features (``index_add`` over ``edge_index``), optionally plus an
    embedding of each node's index, which does not move with the nodes."""

    example_input_shapes = {"x": (7, 4), "edge_index": (2, 15)}  # edge_index: an integer input by its name

    def __init__(self, index_embedding: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.embed = nn.Embedding(7, 4) if index_embedding else None

    def forward(self, x, edge_index):
        if self.embed is not None:
            x = x + self.embed(torch.arange(x.shape[0]))
        source, target = edge_index
        return torch.zeros_like(x).index_add(0, target, self.lin(x)[source])


def test_relabelling_the_edge_index_is_the_node_permutation() -> None:
    group = parse_group("perm:axis=0")
    element = group.testing_elements(SamplingContext(rng=np.random.default_rng(0), set_size=6))[2]
    rng = np.random.default_rng(1)
    x, edges = rng.standard_normal((6, 3)), rng.integers(0, 6, (2, 10))

    def aggregate(features, edge_index):
        out = np.zeros_like(features)
        np.add.at(out, edge_index[1], features[edge_index[0]])
        return out

    moved = aggregate(SetAction(spec="set:axis=0", axis=0).apply(element, x), EdgeIndexAction().apply(element, edges))
    np.testing.assert_allclose(moved, aggregate(x, edges)[list(element.permutation)])
    assert EdgeIndexAction().apply(element, edges).dtype == edges.dtype


def test_sparse_message_passing_passes_and_its_edge_index_stays_integer() -> None:
    torch.manual_seed(0)
    result = eqcheck.verify(MessagePassing().eval(), "perm:axis=0")
    assert result.passed and result.output.max_rel_error < 1e-6
    assert result.run.input_actions == {"x": "set:axis=0", "edge_index": "edge_index"}
    assert result.first_failing_layer is None


def test_a_node_index_embedding_fails_and_its_layer_is_named() -> None:
    torch.manual_seed(0)
    result = eqcheck.verify(MessagePassing(index_embedding=True).eval(), "perm:axis=0")
    assert not result.passed and result.output.max_rel_error > 0.1
    assert result.first_failing_layer == "forward.add"
    assert [layer.name for layer in result.layers if not layer.passed] == ["forward.add"]


def test_an_integer_input_of_another_name_is_declared_by_the_module() -> None:
    class Renamed(MessagePassing):
        example_input_shapes = {"x": (7, 4), "edges": (2, 15)}
        example_input_dtypes = {"edges": "int64"}

        def forward(self, x, edges):
            return super().forward(x, edges)

    torch.manual_seed(0)
    result = eqcheck.verify(Renamed().eval(), "perm:axis=0")
    assert result.passed and result.run.input_actions["edges"] == "edge_index"


class WeightedMessagePassing(MessagePassing):
    """Edge weights [E]: they follow their edges (E == N here: told apart from nodes by their name)."""

    example_input_shapes = {"x": (7, 4), "edge_index": (2, 7), "edge_weight": (7,)}

    def forward(self, x, edge_index, edge_weight):
        source, target = edge_index
        return torch.zeros_like(x).index_add(0, target, self.lin(x)[source] * edge_weight[:, None])


def test_edge_features_are_not_taken_for_node_features_when_there_are_as_many_edges_as_nodes() -> None:
    torch.manual_seed(0)
    result = eqcheck.verify(WeightedMessagePassing().eval(), "perm:axis=0")
    assert result.run.input_actions["edge_weight"] == "edge" and result.passed


def test_a_node_permutation_lists_the_edges_in_its_own_order_the_same_for_every_per_edge_tensor() -> None:
    from eqcheck.actions.representations import EdgeAction, edge_order

    group = parse_group("perm:axis=0")
    identity, swap, *others = group.testing_elements(SamplingContext(rng=np.random.default_rng(0), set_size=6))
    assert edge_order(identity, 10) is None
    order = edge_order(others[0], 10)
    assert sorted(order) == list(range(10)) and not np.array_equal(order, np.arange(10))
    np.testing.assert_array_equal(order, edge_order(others[0], 10))  # drawn from the element, every time
    edges = np.random.default_rng(1).integers(0, 6, (2, 10))
    features = np.arange(10.0)[:, None]
    moved, moved_features = EdgeIndexAction().apply(others[0], edges), EdgeAction().apply(others[0], features)
    inverse = np.argsort(np.asarray(others[0].permutation))
    np.testing.assert_array_equal(moved, inverse[edges][:, order])  # relabelled, then reordered
    np.testing.assert_array_equal(moved_features[:, 0], order)  # features follow their edges


class EdgeOutputs(nn.Module):
    """Node outputs and the messages along each edge (an edge-level output); ``by_position``: each message
    scaled by its edge's position in the list, which a model of the graph must not depend on."""

    example_input_shapes = {"x": (7, 4), "edge_index": (2, 15)}

    def __init__(self, by_position: bool = False) -> None:
        super().__init__()
        self.lin, self.by_position = nn.Linear(4, 4), by_position

    def forward(self, x, edge_index):
        source, target = edge_index
        messages = self.lin(x)[source]
        if self.by_position:
            messages = messages * torch.linspace(0.5, 1.5, messages.shape[0])[:, None]
        return torch.zeros_like(x).index_add(0, target, messages), messages


def test_an_edge_level_output_is_typed_by_its_edges_and_an_edge_order_dependence_fails() -> None:
    torch.manual_seed(0)
    exact = eqcheck.verify(EdgeOutputs().eval(), "perm:axis=0")
    assert exact.passed and [o.representation for o in exact.outputs] == ["set:axis=0", "edge"]
    assert max(o.max_rel_error for o in exact.outputs) < 1e-6
    broken = eqcheck.verify(EdgeOutputs(by_position=True).eval(), "perm:axis=0")
    assert not broken.passed and all(o.max_rel_error > 0.01 for o in broken.outputs)


def test_an_edge_index_outside_the_graph_is_a_usage_error(tmp_path) -> None:
    from eqcheck.errors import UsageError

    data = tmp_path / "graph.npz"
    np.savez(data, x=np.zeros((7, 4), np.float32), edge_index=np.array([[0, 1], [2, 9]]))
    with pytest.raises(UsageError, match="edge index"):
        eqcheck.verify(MessagePassing().eval(), "perm:axis=0", inputs=str(data))


class TypedSet(nn.Module):
    """Features [B, N, F] and integer types [B, N] per element, under perm (axis 1): types follow."""

    example_input_shapes = {"x": (2, 6, 4), "types": (2, 6)}
    example_input_dtypes = {"types": "int64"}

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.lin = nn.Embedding(5, 4), nn.Linear(4, 4)

    def forward(self, x, types):
        return self.lin(x + self.embed(types))


def test_integer_labels_per_set_element_follow_their_elements() -> None:
    torch.manual_seed(0)
    result = eqcheck.verify(TypedSet().eval(), "perm")
    assert result.run.input_actions == {"x": "set", "types": "set"} and result.passed


def test_an_edge_level_output_is_told_from_a_node_level_one_when_there_are_as_many_edges_as_nodes() -> None:
    class Square(EdgeOutputs):
        example_input_shapes = {"x": (7, 4), "edge_index": (2, 7)}

    torch.manual_seed(0)
    result = eqcheck.verify(Square().eval(), "perm:axis=0")
    assert result.passed and [o.representation for o in result.outputs] == ["set:axis=0", "edge"]
