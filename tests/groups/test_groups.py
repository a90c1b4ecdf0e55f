"""Groups: specs print back, the group law holds, testing elements are what CONVENTIONS asks."""
import math

import numpy as np
import pytest

from eqcheck.errors import GroupSpecError
from eqcheck.groups import PointGroup, SamplingContext, parse_group

SPECS = ["p4", "p4m", "p4m:groupy", "p4:shifts", "c8", "d3", "so2", "so2:36", "so2:order=1",
         "translation", "translation:interior", "translation:interior:margin=3", "perm", "perm:axis=2"]


def ctx(seed=0, **kw):
    defaults = dict(samples=8, set_size=6, spatial_size=(12, 12))
    defaults.update(kw)
    return SamplingContext(rng=np.random.default_rng(seed), **defaults)


@pytest.mark.parametrize("spec", SPECS)
def test_spec_prints_back(spec):
    group = parse_group(spec)
    assert str(group) == spec
    assert parse_group(str(group)) == group


def test_spec_is_case_insensitive_and_canonical():
    assert str(parse_group("P4M:GrouPy")) == "p4m:groupy"


@pytest.mark.parametrize("bad", ["p5", "p4:groupy", "p4m:bogus", "c0", "so2:order=9", "translation:sideways",
                                 "perm:axis=x", ""])
def test_bad_specs_are_rejected(bad):
    with pytest.raises(GroupSpecError):
        parse_group(bad)


@pytest.mark.parametrize("spec,count", [("p4", 4), ("p4m", 8), ("c8", 8), ("d8", 16)])
def test_finite_groups_test_every_element_identity_first(spec, count):
    elements = parse_group(spec).testing_elements(ctx())
    assert len(elements) == count
    assert len({e.label for e in elements}) == count
    assert elements[0].is_identity


def test_so2_always_includes_the_right_angles_exactly():
    elements = parse_group("so2").testing_elements(ctx())
    right = [e for e in elements if e.exact]
    assert [e.quarter_turns for e in right] == [0, 1, 2, 3]
    assert all(not e.exact for e in elements[4:])


def test_c8_odd_steps_interpolate_and_even_steps_do_not():
    elements = parse_group("c8").testing_elements(ctx())
    assert [e.exact for e in elements] == [True, False] * 4


def test_sampling_repeats_with_a_seed_and_changes_without():
    group = parse_group("perm")
    a = [e.permutation for e in group.testing_elements(ctx(1))]
    b = [e.permutation for e in group.testing_elements(ctx(1))]
    c = [e.permutation for e in group.testing_elements(ctx(2))]
    assert a == b and a != c


def test_translation_shifts_are_multiples_of_the_stride():
    elements = parse_group("translation").testing_elements(ctx(stride=2, spatial_size=(32, 32)))
    assert len(elements) == 9
    assert all(s % 2 == 0 for e in elements for s in e.shift)


GROUPS_WITH_LAW = ["p4", "p4m", "p4m:groupy", "p4:shifts", "c8", "d3", "translation", "perm"]


@pytest.mark.parametrize("spec", GROUPS_WITH_LAW)
def test_group_law_identity_inverse_associativity(spec):
    group = parse_group(spec)
    elements = group.testing_elements(ctx())
    e = group.identity(ctx())
    for a in elements:
        assert group.compose(a, group.inverse(a)).is_identity
        assert group.compose(e, a) == group.compose(a, e)
        for b in elements[:4]:
            for c in elements[:3]:
                assert group.compose(group.compose(a, b), c) == group.compose(a, group.compose(b, c))


def test_so2_composes_angles():
    group = parse_group("so2")
    a, b = group.rotation(0.3), group.rotation(math.pi / 2 - 0.3)
    assert group.compose(a, b).quarter_turns == 1


# CONVENTIONS section 2: the escnn table, used as test vectors (the code derives it from the group law)
ESCNN_D4_PERM = {
    (0, 0): [0, 1, 2, 3, 4, 5, 6, 7], (0, 1): [3, 0, 1, 2, 7, 4, 5, 6],
    (0, 2): [2, 3, 0, 1, 6, 7, 4, 5], (0, 3): [1, 2, 3, 0, 5, 6, 7, 4],
    (1, 0): [4, 7, 6, 5, 0, 3, 2, 1], (1, 1): [5, 4, 7, 6, 1, 0, 3, 2],
    (1, 2): [6, 5, 4, 7, 2, 1, 0, 3], (1, 3): [7, 6, 5, 4, 3, 2, 1, 0],
}


def test_d4_regular_permutations_match_the_escnn_table():
    d4 = PointGroup(4, mirrors=True)
    for (f, k), expected in ESCNN_D4_PERM.items():
        assert d4.regular_permutation(d4.element(k, f)).tolist() == expected


def test_groupy_order_is_escnn_after_the_g2e_channel_map():
    d4 = PointGroup(4, mirrors=True)
    g2e = [0, 1, 2, 3, 6, 5, 4, 7]
    groupy, escnn = d4.channel_order("groupy"), d4.channel_order("escnn")
    assert [escnn.index(h) for h in groupy] == g2e


def test_c4_rolls_plus_k_and_the_cw_convention_rolls_minus_k():
    c4 = PointGroup(4)
    for k in range(4):
        assert c4.regular_permutation(c4.element(k)).tolist() == [(j - k) % 4 for j in range(4)]
        assert c4.regular_permutation(c4.element(k), orientation="cw").tolist() == [(j + k) % 4 for j in range(4)]


def test_groupy_reflected_block_rolls_the_other_way():
    d4 = PointGroup(4, mirrors=True)
    perm = d4.regular_permutation(d4.element(1), convention="groupy")
    assert perm[:4].tolist() == [3, 0, 1, 2]
    assert perm[4:].tolist() == [5, 6, 7, 4]
