"""Inferring the action of an intermediate tensor: named candidates, their margin, permutations found."""
from __future__ import annotations

import numpy as np
import pytest

from eqcheck.actions.parse import parse_representation
from eqcheck.actions.representations import apply_representation
from eqcheck.compare import Geometry
from eqcheck.groups import parse_group
from eqcheck.groups.base import SamplingContext
from eqcheck.layers.expectation import Expectation
from eqcheck.layers.infer import choose, find_permutation, find_row_order, homomorphism, scoring_elements
from eqcheck.layers.layer_actions import (
    ChannelPermutationAction, RowOrderAction, SetAxesAction, layer_candidates, parse_layer_type,
)


def _setup(spec: str, shape, rep_spec: str | None, seed: int = 0, set_size=None):
    group = parse_group(spec)
    rng = np.random.default_rng(seed)
    elements = group.testing_elements(SamplingContext(rng=rng, set_size=set_size))
    x = rng.standard_normal(shape).astype(np.float32)
    rep = parse_representation(rep_spec, shape) if rep_spec else None
    observed = [apply_representation(rep, group, g, x) for g in elements] if rep else None
    return group, elements, x, observed


@pytest.mark.parametrize("spec, group_spec", [
    ("regular:field-major", "p4"), ("regular:field-major:cw", "p4"), ("regular:group-major", "p4"),
    ("regular:field-major", "p4m"), ("regular:field-major:groupy", "p4m"), ("regular:group-major:groupy:cw", "p4m"),
    ("image", "p4m"), ("invariant", "p4"),
])
def test_the_action_that_made_the_data_wins_clearly(spec, group_spec) -> None:
    group, elements, x, observed = _setup(group_spec, (2, 16, 7, 7), spec)
    picked = scoring_elements(group, elements)
    choice = choose(Expectation(group, x, Geometry()), layer_candidates(group, x.shape, None),
                    [elements[i] for i in picked], [observed[i] for i in picked])
    assert choice.rep.spec == spec
    assert choice.error < 1e-6
    assert choice.margin > 1e5  # every other candidate is off by an error of order one


def test_p4m_scoring_uses_both_generators() -> None:
    group = parse_group("p4m")
    elements = group.testing_elements(SamplingContext(rng=np.random.default_rng(0)))
    picked = [elements[i].label for i in scoring_elements(group, elements)]
    assert picked == ["rot90", "flip"]


def test_a_channel_permutation_nobody_named_is_found_and_checked_to_be_a_homomorphism() -> None:
    group, elements, x, observed = _setup("p4", (2, 12, 7, 7), "regular:field-major")
    shuffle = np.random.default_rng(1).permutation(12)  # channels of 3 regular fields, interleaved
    x_s, observed_s = x[:, shuffle], [o[:, shuffle] for o in observed]
    expect = Expectation(group, x_s, Geometry())
    picked = scoring_elements(group, elements)
    named = choose(expect, layer_candidates(group, x_s.shape, None), [elements[i] for i in picked],
                   [observed_s[i] for i in picked])
    assert named.error > 0.5
    found = find_permutation(expect, [elements[i] for i in picked], [observed_s[i] for i in picked])
    assert isinstance(found.rep, ChannelPermutationAction) and found.source == "found"
    for g, seen in zip(elements, observed_s):  # the found action explains every element, not only r
        assert np.allclose(expect(found.rep, g), seen)


def test_noise_finds_no_permutation() -> None:
    group, elements, x, _ = _setup("p4", (2, 8, 7, 7), None)
    rng = np.random.default_rng(5)
    noise = [rng.standard_normal(x.shape).astype(np.float32) for _ in elements]
    picked = scoring_elements(group, elements)
    assert find_permutation(Expectation(group, x, Geometry()), [elements[i] for i in picked],
                            [noise[i] for i in picked]) is None


def test_homomorphism_needs_the_group_relations() -> None:
    group = parse_group("p4")
    r = group.point_group.element(1)
    roll = np.array([3, 0, 1, 2])
    assert len(homomorphism(group, {r: roll}, 4)) == 4
    assert homomorphism(group, {r: np.array([1, 2, 0, 3])}, 4) is None  # a 3-cycle: r^4 would not be e
    d4 = parse_group("p4m")
    r, f = d4.point_group.generators()
    regular = {s: d4.point_group.regular_permutation(s) for s in (r, f)}
    assert len(homomorphism(d4, regular, 8)) == 8
    assert homomorphism(d4, {r: regular[r], f: np.array([1, 0, 2, 3, 4, 5, 6, 7])}, 8) is None  # f r f != r^-1


def test_attention_maps_permute_two_set_axes() -> None:
    group, elements, x, observed = _setup("perm", (2, 3, 6, 6), None, set_size=6)
    rep = SetAxesAction(spec="set:axes=2,3", axes=(2, 3))
    observed = [rep.apply(g, x) for g in elements]
    candidates = layer_candidates(group, x.shape, 6)
    assert [c.spec for c in candidates] == ["invariant", "set:axis=2", "set:axis=3", "set:axes=2,3"]
    choice = choose(Expectation(group, x, Geometry()), candidates, elements[1:3], observed[1:3])
    assert choice.rep.spec == "set:axes=2,3"
    assert parse_layer_type("set:axes=2,3", x.shape, group) == rep


def _scored_in_full(expect, candidates, elements, observed):
    """choose() as it was before candidates could be left out: every candidate on every element."""
    from eqcheck.layers.infer import score

    if expect.reference.shape[0] > 1:
        expect = Expectation(expect.group, expect.reference[:1], expect.geometry)
        observed = [seen[:1] for seen in observed]
    scored = [(score(expect, rep, elements, observed), rep) for rep in candidates]
    best_error, best = scored[0]
    for error, rep in scored[1:]:
        if error < best_error * (1 - 1e-6):
            best_error, best = error, rep
    others = [e for e, rep in scored if rep is not best
              and not (e <= best_error * (1 + 1e-6)
                       and all(np.array_equal(expect(rep, g), expect(best, g)) for g in elements))]
    return best, best_error, (min(others) + 1e-12) / (best_error + 1e-12) if others else None


@pytest.mark.parametrize("group_spec, spec, noise", [
    ("p4m", "regular:field-major", 0.0), ("p4m", "regular:group-major:groupy", 1e-3), ("p4m", "image", 0.3),
    ("p4m", "regular:field-major", 3.0), ("p4", "regular:field-major:cw", 0.0), ("p4m", "invariant", 0.05),
])
@pytest.mark.parametrize("first", [None, "regular:field-major", "image"])
def test_candidates_left_out_early_change_neither_the_choice_nor_a_margin_under_ten(group_spec, spec, noise,
                                                                                     first) -> None:
    from eqcheck.layers.infer import CLEAR_MARGIN

    group, elements, x, observed = _setup(group_spec, (2, 16, 7, 7), spec)
    rng = np.random.default_rng(3)
    observed = [o + noise * rng.standard_normal(o.shape).astype(np.float32) for o in observed]
    picked = scoring_elements(group, elements)
    candidates = layer_candidates(group, x.shape, None)
    args = ([elements[i] for i in picked], [observed[i] for i in picked])
    best, error, margin = _scored_in_full(Expectation(group, x, Geometry()), candidates, *args)
    preferred = next((c for c in candidates if c.spec == first), None)
    choice = choose(Expectation(group, x, Geometry()), candidates, *args, first=preferred)
    assert choice.rep == best and choice.error == error
    if margin is None or margin < CLEAR_MARGIN:
        assert choice.margin == margin
    else:  # a lower bound, never under the threshold the text report marks unclear margins with
        assert CLEAR_MARGIN <= choice.margin <= margin


def test_expectations_built_for_ranking_hold_the_same_numbers_as_views() -> None:
    group, elements, x, _ = _setup("p4m", (2, 8, 8, 5, 5), None)
    views, flat = Expectation(group, x, Geometry()), Expectation(group, x, Geometry(), contiguous=True)
    for rep in layer_candidates(group, x.shape, None):
        for g in elements:
            a, b = views(rep, g), flat(rep, g)
            assert b.flags.c_contiguous and np.array_equal(a, b) and np.array_equal(views.once(rep, g), a)


@pytest.mark.parametrize("group_spec, shape", [("p4", (2, 16, 7, 7)), ("p4m", (2, 8, 8, 6, 6)), ("p4m", (2, 24, 9, 9)),
                                              ("c8", (2, 16, 9, 9)), ("d4", (2, 24, 8, 8))])
def test_distances_read_from_views_of_runs_of_channels_are_those_of_the_made_expectation(group_spec, shape,
                                                                                         monkeypatch) -> None:
    """Expectation.distance2 (no rho(g) x made for regular actions) against the squared distance to the made
    array, in both modes, for every candidate and element, on data that fits an action and on noise; the
    permutations of the regular actions are read in at most MAX_RUNS runs (else the test would not test it)."""
    from eqcheck.actions.representations import RegularFieldAction
    from eqcheck.layers import expectation
    from eqcheck.layers.expectation import fiber_runs, squared_distance

    monkeypatch.setattr(expectation, "RUNS_FROM_ENTRIES", 0)  # these small tensors too

    group, elements, x, _ = _setup(group_spec, shape, None)
    rng = np.random.default_rng(3)
    exact = [g for g in elements if g.quarter_turns is not None and not g.shifts]
    assert exact
    for contiguous in (False, True):
        expect, made = Expectation(group, x, Geometry(), contiguous), Expectation(group, x, Geometry(), contiguous)
        for rep in layer_candidates(group, x.shape, None):
            for g in exact:
                if isinstance(rep, RegularFieldAction) and not g.is_identity:
                    assert fiber_runs(rep, group, g, x.shape) is not None, (rep.spec, g.label)
                for seen in (made(rep, g) + 0.01 * rng.standard_normal(x.shape).astype(np.float32),
                             rng.standard_normal(x.shape).astype(np.float32)):
                    for dtype in (np.float64, np.float32):
                        reference = squared_distance(seen, made(rep, g), dtype)
                        assert expect.distance2(rep, g, seen, dtype) == pytest.approx(reference, rel=1e-5 if dtype is
                                                                                      np.float32 else 1e-12)
        assert not expect._done  # nothing was made by distance2


def test_runs_of_a_permutation_read_it_whole() -> None:
    from eqcheck.layers.expectation import _runs

    rng = np.random.default_rng(0)
    for perm in ([1, 2, 3, 0], [3, 2, 1, 0], [0, 3, 2, 1], [2, 1, 0, 3, 4, 5, 7, 6], list(rng.permutation(13))):
        runs = _runs(tuple(perm))
        rebuilt = np.empty(len(perm), dtype=int)
        for target, source in runs:
            rebuilt[target] = np.arange(len(perm))[source]
        assert rebuilt.tolist() == list(perm)
    assert len(_runs((1, 2, 3, 0))) == 2 and len(_runs((3, 2, 1, 0))) == 1


@pytest.mark.parametrize("group_spec, shape", [("p4", (2, 16, 7, 7)), ("p4m", (2, 8, 8, 6, 6)), ("p4m", (2, 24, 9, 9))])
def test_a_candidates_leading_channels_bound_its_ranking_error_from_below(group_spec, shape) -> None:
    from eqcheck.layers.expectation import fast_rel

    group, elements, x, _ = _setup(group_spec, shape, None)
    rng = np.random.default_rng(5)
    expect = Expectation(group, x[:1], Geometry(), contiguous=True)
    for rep in layer_candidates(group, shape, None):
        for g in elements:
            for seen in (expect(rep, g) + 0.1 * rng.standard_normal(x[:1].shape).astype(np.float32),
                         rng.standard_normal(x[:1].shape).astype(np.float32)):
                bound = expect.leading_bound(rep, g, np.ascontiguousarray(seen))
                assert bound is None or bound <= fast_rel(seen, expect(rep, g))


@pytest.mark.parametrize("spec, noise, cap, within", [
    ("regular:field-major", 0.0, 1e-5, True), ("image", 0.0, 1e-5, True),
    ("regular:field-major", 1e-3, 1e-5, False), ("regular:field-major", 1e-3, 1e-2, True),
    ("regular:field-major", 1e-6, 1e-5, True),  # within the cap, not ten times under it: ranked as without
])
def test_a_capped_choice_is_none_or_the_uncapped_one(spec, noise, cap, within) -> None:
    group, elements, x, observed = _setup("p4m", (2, 16, 7, 7), spec)
    rng = np.random.default_rng(7)
    observed = [o + noise * np.abs(o).max() * rng.standard_normal(o.shape).astype(np.float32) for o in observed]
    picked = scoring_elements(group, elements)
    args = (layer_candidates(group, x.shape, None), [elements[i] for i in picked], [observed[i] for i in picked])
    uncapped = choose(Expectation(group, x, Geometry()), *args)
    capped = choose(Expectation(group, x, Geometry()), *args, cap=cap)
    if within:
        assert capped == uncapped and uncapped.error <= cap
    else:
        assert capped is None and uncapped.error > cap


def test_sums_of_squares_are_float64_whatever_the_dtype() -> None:
    from eqcheck.metrics import sum_of_squares

    rng = np.random.default_rng(0)
    x = rng.standard_normal(100_003).astype(np.float32)
    exact = float(np.dot(x.astype(np.float64), x.astype(np.float64)))
    assert sum_of_squares(x) == pytest.approx(exact, rel=1e-14)
    big = np.full(1 << 20, 3.0, dtype=np.float32)  # a float32 running sum would drift here
    assert sum_of_squares(big) == 9.0 * (1 << 20)
    out = np.empty(x.shape)
    assert sum_of_squares(x, out=out) == sum_of_squares(x) and np.array_equal(out, x.astype(np.float64) ** 2)


def test_a_tensor_keeps_only_the_chosen_actions_copies_once_its_layer_is_read() -> None:
    group, elements, x, observed = _setup("p4", (1, 16, 7, 7), "regular:field-major")
    expect = Expectation(group, x, Geometry())
    candidates = layer_candidates(group, x.shape, None)
    for rep in candidates:
        for g in elements:
            expect(rep, g)
    chosen = next(rep for rep in candidates if rep.spec == "regular:field-major")
    expect.keep_only(chosen)
    assert {rep for rep, _ in expect._done} == {chosen}
    np.testing.assert_array_equal(expect(chosen, elements[1]), observed[1])


def test_chunks_count_each_tensor_once_and_hold_the_budget() -> None:
    from eqcheck.layers.propagate import chunk_sites
    from eqcheck.layers.trace import Site

    reference = {f"t{k}": np.zeros(1000, np.float32) for k in range(7)}  # 4,000 bytes each
    chain = [Site(name=f"l{k}", op="Conv", output=f"t{k}", inputs=(f"t{k - 1}",)) for k in range(1, 7)]
    per_tensor = 4000 * (2 * 3 + 2)  # three items: captured, expected, the reference and a patch
    chunks = chunk_sites(chain, reference, 3, 4 * per_tensor)
    # a chain of layers reads what the one before wrote: four tensors are three layers (t0..t3), then t3..t6
    assert [[s.name for s in c] for c in chunks] == [["l1", "l2", "l3"], ["l4", "l5", "l6"]]
    assert [len(c) for c in chunk_sites(chain, reference, 3, per_tensor)] == [1] * 6  # never an empty chunk


def _graph_messages(nodes: int = 6, edges: int = 14, features: int = 5):
    """Messages over a sparse graph's edges and the self loops a layer appends (as GCNConv does), for
    each element of ``perm:axis=0``, computed from the permuted graph; and their target nodes."""
    from eqcheck.actions.representations import EdgeIndexAction

    group = parse_group("perm:axis=0")
    elements = group.testing_elements(SamplingContext(rng=np.random.default_rng(0), set_size=nodes))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((nodes, features))
    edge_index = rng.integers(0, nodes, (2, edges))

    def messages(x, edge_index):
        source = np.concatenate([edge_index[0], np.arange(len(x))])
        target = np.concatenate([edge_index[1], np.arange(len(x))])
        return x[source] * x[target].sum(axis=1, keepdims=True), target

    reference = messages(x, edge_index)
    observed = [messages(x[list(g.permutation)] if g.permutation else x, EdgeIndexAction().apply(g, edge_index))
                for g in elements]
    return group, elements, reference, observed


def test_messages_over_added_self_loops_are_a_reordering_of_their_rows_and_their_targets_relabelled() -> None:
    group, elements, (messages, target), observed = _graph_messages()
    assert len(messages) == 20
    for index, values in ((0, messages), (1, target)):
        found = find_row_order(Expectation(group, values, Geometry()), elements, [o[index] for o in observed], 6)
        assert isinstance(found.rep, RowOrderAction) and found.error < 1e-12
        assert found.rep.node_labels == (index == 1)


def test_rows_that_are_not_a_reordering_or_are_the_nodes_themselves_are_not_found() -> None:
    group, elements, (messages, _), observed = _graph_messages()
    rng = np.random.default_rng(2)
    broken = [o[0] + 0.1 * rng.standard_normal(o[0].shape) for o in observed]  # not equivariant
    assert find_row_order(Expectation(group, messages, Geometry()), elements, broken, 6) is None
    nodes = messages[:6]  # as many rows as nodes: the node permutation is the contract, not any reordering
    shuffled = [nodes[rng.permutation(6)] for _ in elements]
    assert find_row_order(Expectation(group, nodes, Geometry()), elements, shuffled, 6) is None


def test_a_channel_action_on_linearly_dependent_channels_is_fitted_exactly() -> None:
    """Quotient fields of one input channel have linearly dependent channels: a least-squares fit is free on
    what the data does not span (its fourth power is no identity: no representation), the signed
    permutation is not."""
    from eqcheck.discovery import procrustes
    from eqcheck.layers.infer import _channel_fit

    rng = np.random.default_rng(0)
    base = rng.standard_normal((4, 300))
    source = np.concatenate([base, rng.standard_normal((4, 4)) @ base])  # 8 channels, rank 4
    perm = np.array([2, 3, 0, 1, 6, 7, 4, 5])  # a quarter turn of two C8/C2 quotient fields: shift by 2
    target = source[perm]
    fitted = _channel_fit(target, source)
    assert np.array_equal(fitted, np.eye(8)[perm])
    assert np.abs(np.linalg.matrix_power(fitted, 4) - np.eye(8)).max() == 0
    least_squares = procrustes(target, source)
    assert np.abs(least_squares @ source - target).max() < 1e-9  # fits the data, yet:
    assert np.abs(np.linalg.matrix_power(least_squares, 4) - np.eye(8)).max() > 1e-3


def test_a_capture_buffer_is_used_again_only_once_nothing_reads_it() -> None:
    from eqcheck.layers.buffers import BufferPool

    pool = BufferPool()
    a, b = pool.take([((2, 3, 4), np.float32), ((5,), np.float64)])
    first, second = a.ctypes.data, b.ctypes.data
    view = a[1:].reshape(-1)  # a view holds its owner: the buffer is still read
    del a
    c, = pool.take([((2, 3, 4), np.float32)])
    assert c.ctypes.data != first and c.shape == (2, 3, 4)
    del view
    d, e = pool.take([((4, 6), np.float32), ((5,), np.float64)])  # the same bytes in another shape
    assert d.ctypes.data == first and d.shape == (4, 6) and d.dtype == np.float32
    assert e.ctypes.data != second  # b was still held when c was taken
    del b, c, d, e
    f, = pool.take([((8,), np.float32)])  # no free buffer of that size: a new one, and the free ones go
    assert len(pool._buffers) == 1 and f.shape == (8,)


def test_items_cut_from_one_array_are_fed_as_that_array() -> None:
    from eqcheck.layers.trace import _cut, stack_items

    whole = np.arange(4 * 6 * 3, dtype=np.float32).reshape(4, 6, 3)
    for axis in (0, 1):
        items = _cut(whole, axis, 2, 1)
        joined = stack_items(items, axis, copy=False)
        assert np.shares_memory(joined, whole) and np.array_equal(joined, whole) and not joined.flags.writeable
        assert not np.shares_memory(stack_items(items, axis), whole)  # copy=True (torch may write into it)
    apart = [whole[:2].copy(), whole[2:].copy()]
    assert np.array_equal(stack_items(apart, 0, copy=False), whole)
    reordered = _cut(whole, 0, 2, 1)[::-1]
    assert np.array_equal(stack_items(reordered, 0, copy=False), np.concatenate(reordered))


@pytest.mark.parametrize("source_spec, target_spec, alike", [
    ("regular:field-major", "regular:5d", True),  # [B, C*4, H, W] -> [B, C, 4, H, W]: C order keeps the action
    ("regular:group-major", "regular:5d", False),  # the same reshape splits a group-major field wrongly
    ("regular:field-major", "regular:field-major", True),
])
def test_a_reshape_keeps_an_action_where_the_channel_maps_agree(source_spec, target_spec, alike) -> None:
    from eqcheck.layers.expectation import Expectation, fast_rel, moves_alike

    group, elements, x, _ = _setup("p4m", (2, 24, 6, 6), None)
    target_shape = (2, 3, 8, 6, 6) if target_spec.endswith("5d") else x.shape
    source = parse_representation(source_spec, x.shape)
    target = parse_representation(target_spec, target_shape)
    assert moves_alike(group, elements, target, target_shape, source, x.shape) is alike
    # the data say the same: the reshaped rho(g) x against rho(g) on the reshaped x
    moved = Expectation(group, x.reshape(target_shape), Geometry())
    errors = [fast_rel(apply_representation(source, group, g, x).reshape(target_shape), moved(target, g))
              for g in elements]
    assert (max(errors) < 1e-6) is alike
    assert moves_alike(group, elements, target, target_shape, parse_representation("image", x.shape), x.shape) is None
