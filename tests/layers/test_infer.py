"""Inferring the action of an intermediate tensor: named candidates, their margin, permutations found."""
from __future__ import annotations

import numpy as np
import pytest

from eqcheck.actions.parse import parse_representation
from eqcheck.actions.representations import apply_representation
from eqcheck.compare import Geometry
from eqcheck.groups import parse_group
from eqcheck.groups.base import SamplingContext
from eqcheck.layers.infer import (
    ChannelPermutationAction, Expectation, SetAxesAction, choose, find_permutation, homomorphism,
    layer_candidates, parse_layer_type, scoring_elements,
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
    assert parse_layer_type("set:axes=2,3", x.shape) == rep
