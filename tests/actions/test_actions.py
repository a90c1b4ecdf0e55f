"""Actions on tensors: homomorphism, identity and inverse for every group and layout; CONVENTIONS vectors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqcheck.actions.parse import candidate_representations, parse_representation
from eqcheck.actions.representations import apply_representation
from eqcheck.actions.spatial import apply_spatial, interior_mask, rotate_interpolated
from eqcheck.errors import UsageError
from eqcheck.groups import SamplingContext, parse_group

CASES = [
    ("p4", "image", (2, 3, 5, 5)),
    ("p4", "regular:5d", (2, 3, 4, 5, 5)),
    ("p4", "regular:field-major", (2, 8, 5, 5)),
    ("p4", "regular:group-major:cw", (2, 8, 5, 5)),
    ("p4m", "regular:5d", (2, 2, 8, 7, 7)),
    ("p4m", "regular:field-major:groupy", (2, 16, 7, 7)),
    ("p4m:groupy", "regular:group-major:groupy:cw", (1, 16, 6, 6)),
    ("p4:shifts", "image", (2, 3, 6, 6)),
    ("p4:shifts", "regular:5d", (2, 1, 4, 6, 6)),
    ("c8", "regular:field-major", (1, 16, 5, 5)),
    ("d3", "regular:5d", (1, 2, 6, 1, 1)),
    ("translation", "image", (2, 3, 5, 7)),
    ("perm", "set", (2, 6, 3)),
    ("perm", "graph", (2, 6, 6)),
    ("p4m", "invariant", (2, 10)),
]


def elements_for(group, shape):
    ctx = SamplingContext(rng=np.random.default_rng(0), samples=4, set_size=shape[1], spatial_size=shape[-2:])
    elements = group.testing_elements(ctx)
    # interpolated rotations compose only approximately: the law is tested on exact elements
    return [e for e in elements if e.exact]


@pytest.mark.parametrize("spec,rep_spec,shape", CASES)
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_action_is_a_homomorphism(spec, rep_spec, shape, seed):
    group = parse_group(spec)
    rep = parse_representation(rep_spec, shape)
    assert rep.fits(group, shape, shape[1]) is None
    x = np.random.default_rng(seed).standard_normal(shape)
    elements = elements_for(group, shape)
    act = lambda g, t: apply_representation(rep, group, g, t)  # noqa: E731
    for g in elements:
        assert np.array_equal(act(group.inverse(g), act(g, x)), x)
        for h in elements:
            assert np.array_equal(act(g, act(h, x)), act(group.compose(g, h), x))
    identity = group.identity(SamplingContext(np.random.default_rng(0), set_size=shape[1]))
    assert np.array_equal(act(identity, x), x)


def test_rotation_is_counter_clockwise_as_displayed():
    x = np.zeros((3, 3))
    x[0, 2] = 1.0  # top right
    g = parse_group("p4").testing_elements(SamplingContext(np.random.default_rng(0)))[1]
    assert apply_spatial(g, x)[0, 0] == 1.0  # moves to the top left


def test_mirror_is_left_right_in_escnn_convention():
    x = np.arange(9.0).reshape(3, 3)
    flip = parse_group("p4m").testing_elements(SamplingContext(np.random.default_rng(0)))[4]
    assert np.array_equal(apply_spatial(flip, x), x[:, ::-1])


def test_interpolated_rotation_at_90_degrees_equals_rot90_in_sign():
    x = np.random.default_rng(0).standard_normal((9, 9))
    assert np.allclose(rotate_interpolated(x, np.pi / 2, order=1), np.rot90(x), atol=1e-9)


def test_right_angles_never_interpolate():
    group = parse_group("so2")
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32)
    g = group.rotation(np.pi / 2)
    assert g.exact
    assert np.array_equal(apply_spatial(g, x), np.rot90(x, 1, axes=(-2, -1)))


def test_p4_regular_field_under_r_rolls_the_group_axis_by_plus_one():
    group = parse_group("p4")
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 5, 5))
    r = group.testing_elements(SamplingContext(np.random.default_rng(0)))[1]
    moved = apply_representation(parse_representation("regular:5d"), group, r, x)
    expected = np.roll(np.rot90(x, 1, axes=(-2, -1)), 1, axis=2)
    assert np.array_equal(moved, expected)


def test_field_major_and_5d_layouts_agree():
    group = parse_group("p4m")
    x5 = np.random.default_rng(1).standard_normal((2, 3, 8, 5, 5))
    x4 = x5.reshape(2, 24, 5, 5)
    for g in group.testing_elements(SamplingContext(np.random.default_rng(0))):
        a = apply_representation(parse_representation("regular:5d"), group, g, x5)
        b = apply_representation(parse_representation("regular:field-major"), group, g, x4)
        assert np.array_equal(a.reshape(2, 24, 5, 5), b)


def test_candidates_fit_the_shape():
    p4m = parse_group("p4m")
    specs = [c.spec for c in candidate_representations(p4m, (2, 16, 9, 9))]
    assert specs[:2] == ["invariant", "image"]
    assert "regular:field-major:groupy:cw" in specs and "regular:5d" not in specs
    assert [c.spec for c in candidate_representations(p4m, (2, 10))] == ["invariant"]
    orders = [f"{layout}{order}{orientation}" for layout in ("field-major", "group-major")
              for order in ("", ":axis0", ":groupy") for orientation in ("", ":cw")]
    assert [c.spec for c in candidate_representations(p4m, (2, 16))] == ["invariant"] + [f"regular:{o}" for o in orders]
    assert "image" not in [c.spec for c in candidate_representations(p4m, (2, 3, 9, 8))]
    assert [c.spec for c in candidate_representations(parse_group("perm"), (2, 5, 5), 5)] == \
        ["invariant", "set", "graph"]


def test_unknown_types_are_usage_errors():
    with pytest.raises(UsageError):
        parse_representation("vector")
    with pytest.raises(UsageError):
        parse_representation("regular:sideways")


def test_interior_mask_skips_the_zero_filled_band_and_the_far_edge():
    mask = interior_mask((10, 10), margin=2, shift=(3, 0))
    rows = np.nonzero(mask.any(axis=1))[0]
    assert rows.min() == 5 and rows.max() == 7
    assert mask[5].all()


@pytest.mark.parametrize("group_spec", ["p4m", "p4m:groupy", "p4"])
@pytest.mark.parametrize("shape", [(2, 16, 5, 5), (2, 2, 8, 5, 5)])
def test_a_printed_regular_spec_parses_back_to_the_same_action_under_its_group(group_spec, shape):
    from eqcheck.actions.parse import group_convention

    group = parse_group(group_spec)
    regular = [c for c in candidate_representations(group, shape) if c.spec.startswith("regular")]
    assert len({c.spec for c in regular}) == len(regular)
    for candidate in regular:
        again = parse_representation(candidate.spec, shape, group_convention(group))
        assert (again.layout, again.convention, again.orientation) == \
            (candidate.layout, candidate.convention, candidate.orientation)
        assert again.spec == candidate.spec
    if group_spec == "p4m:groupy":  # escnn's order is the one that must be named there
        assert {c.spec for c in regular if c.convention == "escnn"} == {c.spec for c in regular if "escnn" in c.spec}


def test_a_five_dimensional_input_takes_the_groups_element_order():
    from eqcheck.input_actions import infer_input_actions

    for group_spec, convention in (("p4m", "escnn"), ("p4m:groupy", "groupy")):
        actions, _ = infer_input_actions(parse_group(group_spec), {"x": (2, 3, 8, 7, 7)}, {})
        assert actions["x"].layout == "5d" and actions["x"].convention == convention


@pytest.mark.parametrize("k", range(-1, 6))
def test_exact_rotation_is_numpys_rot90_view(k):
    from eqcheck.actions.spatial import rotate_exact

    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert np.array_equal(rotate_exact(x, k), np.rot90(x, k, axes=(-2, -1)))
    assert np.shares_memory(rotate_exact(x, k), x)  # a view: nothing copied


def test_turns_flip_first_then_rotate():
    from eqcheck.actions.spatial import turn

    group = parse_group("p4m")
    x = np.arange(3 * 5 * 5).reshape(3, 5, 5)
    for g in group.testing_elements(SamplingContext(rng=np.random.default_rng(0))):
        expected = np.rot90(np.flip(x, -1) if g.flip else x, g.quarter_turns, axes=(-2, -1))
        assert np.array_equal(turn(g, x), expected) and np.array_equal(apply_spatial(g, x), expected)
