"""Output types found from the data: escnn's steerable outputs pass unannotated and are named by their
irreps; declared field types agree; plain models never pass under a discovered type."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import eqcheck

DATA = Path(__file__).parent / "data" / "escnn"
REFERENCE = json.loads((DATA / "reference.json").read_text())["models"]
#: what each escnn output is named, under the group it is checked with: a type that declares the same action
#: (its fields in channel order, the geometric vector by its name), else its irreps "in another basis"
#: (C8 fields restricted to C4: the same irreps, their channels in another order than C4's own fields)
NAMES = {"c4_vector": "2*irrep(1)", "d4_mixed": "trivial+irrep(1,1)+regular", "d4_geometric_vector": "2*vector",
         "c8_quotient": "4*irrep(2)+4*trivial in another basis", "c8_regular": "6*regular in another basis",
         "d4_axis0_mixed": "vector+trivial"}
#: the outputs a named type explains: regular fields with escnn's up-down mirror (axis=0) have their own order
NAMED = {"d4_axis0_regular": "regular:field-major:axis0"}


@pytest.mark.parametrize("entry", REFERENCE, ids=[e["model"] for e in REFERENCE])
def test_escnn_steerable_outputs_pass_unannotated_and_are_named(entry) -> None:
    result = eqcheck.verify(str(DATA / entry["model"]), entry["group"])
    output = result.output
    assert result.passed, output.representation
    name = entry["model"][:-5]
    if name in NAMED:  # a named type explains it
        assert output.representation == NAMED[name] and output.representation_source == "auto"
    else:
        assert output.representation_source == "found"
        assert output.representation == NAMES[name]
    # escnn's own transform gives the same order of error at the exact elements
    assert output.max_rel_error < 1e-5 and entry["escnn_max_rel_error_exact"] < 1e-5
    assert result.first_failing_layer is None and all(layer.passed for layer in result.layers)


@pytest.mark.parametrize("entry", REFERENCE, ids=[e["model"] for e in REFERENCE])
def test_a_found_type_declared_back_checks_the_same_action(entry) -> None:
    """A found name without "in another basis" is a type that, declared, passes with the same errors."""
    found = eqcheck.verify(str(DATA / entry["model"]), entry["group"], per_layer=False).output
    if found.representation_source != "found" or " in another basis" in found.representation:
        pytest.skip(f"{found.representation} ({found.representation_source})")
    declared = eqcheck.verify(str(DATA / entry["model"]), entry["group"], output_type=found.representation,
                              per_layer=False).output
    assert declared.passed and declared.representation_source == "given"
    assert [e.rel_error for e in declared.elements if e.exact] == pytest.approx(
        [e.rel_error for e in found.elements if e.exact], rel=1e-3, abs=1e-7)


@pytest.mark.parametrize("model, group, declared", [
    ("c4_vector", "p4", "2*irrep(1)"), ("d4_geometric_vector", "p4m", "2*vector"),
    ("d4_mixed", "p4m", "trivial+irrep(1,1)+regular"), ("c8_quotient", "p4", "2*quotient(2)@c8"),
    ("c8_regular", "p4", "3*regular@c8"), ("d4_axis0_mixed", "p4m", "irrep(1,1)@d4:axis=0+trivial@d4:axis=0"),
])
def test_declared_escnn_types_pass_in_escnn_basis(model, group, declared) -> None:
    if declared.count("@") > 1:  # one group per sum
        declared = declared.replace("@d4:axis=0", "") + "@d4:axis=0"
    result = eqcheck.verify(str(DATA / f"{model}.onnx"), group, output_type=declared, per_layer=False)
    assert result.passed and result.output.representation_source == "given"
    assert result.output.max_rel_error < 1e-5


def test_a_declared_type_in_the_wrong_basis_fails() -> None:
    """escnn's irrep(1,1) of D4 is not the geometric vector (CONVENTIONS section 7): declared as vector, it fails."""
    result = eqcheck.verify(str(DATA / "d4_mixed.onnx"), "p4m", output_type="trivial+vector+regular", per_layer=False)
    assert not result.passed and result.output.max_rel_error > 0.1


def _plain_feature_map():
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1))
    model.example_input_shape = (2, 1, 17, 17)
    return model.eval()


def _gradient_field():
    """The gradient of a blurred image: a vector field (x along columns, y up), exactly equivariant."""
    import torch

    class Gradient(torch.nn.Module):
        example_input_shape = (2, 1, 17, 17)

        def forward(self, x):
            blur = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=True)
            padded = torch.nn.functional.pad(blur, (1, 1, 1, 1))
            gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
            gy = (padded[..., :-2, 1:-1] - padded[..., 2:, 1:-1]) / 2  # y up: rows run down
            return torch.cat([gx, gy, blur], dim=1)

    return Gradient()


def test_a_hand_written_vector_field_is_found_and_declared() -> None:
    found = eqcheck.verify(_gradient_field(), "p4m")
    assert found.passed and found.output.representation == "vector+trivial"  # named as it is declared
    declared = eqcheck.verify(_gradient_field(), "p4m", output_type="vector+trivial", per_layer=False)
    assert declared.passed and declared.output.max_rel_error < 1e-6


@pytest.mark.parametrize("group", ["p4", "p4m"])
def test_a_plain_cnn_feature_map_is_never_explained_by_a_fitted_type(group) -> None:
    result = eqcheck.verify(_plain_feature_map(), group)
    assert not result.passed
    assert result.output.representation_source != "found"
    assert result.output.max_rel_error > 0.1
    assert result.first_failing_layer is not None


def test_one_plain_channel_among_equivariant_ones_is_not_explained() -> None:
    import torch

    gradient, plain = _gradient_field(), _plain_feature_map()

    class Mixed(torch.nn.Module):
        example_input_shape = (2, 1, 17, 17)

        def forward(self, x):
            return torch.cat([gradient(x), plain(x)[:, :1]], dim=1)

    result = eqcheck.verify(Mixed(), "p4")
    assert not result.passed and result.output.representation_source != "found"


def test_two_samples_of_a_vector_output_are_not_enough_and_more_inputs_decide_its_type() -> None:
    """A [2, 2] output has 4 numbers against a 2x2 matrix per element: no type is fitted from so little.
    More random inputs are drawn to find it; inputs given by the user are not added to."""
    import torch

    class PooledGradient(torch.nn.Module):
        example_input_shape = (2, 1, 17, 17)

        def forward(self, x):
            field = _gradient_field()(x)[:, :2]
            return (field * x).mean(dim=(2, 3))  # a vector: sum of x-weighted gradients

    result = eqcheck.verify(PooledGradient(), "p4", per_layer=False)
    assert result.passed and result.output.representation_source == "found"
    assert result.output.representation == "irrep(1)" and result.output.max_rel_error < 1e-5
    assert any(d.code == "more-inputs" for d in result.diagnoses)
    x = np.random.default_rng(0).standard_normal((2, 1, 17, 17)).astype(np.float32)
    given = eqcheck.verify(PooledGradient(), "p4", inputs={"x": x}, per_layer=False)
    assert given.output.representation_source != "found"
    assert any(d.code == "undetermined-type" and "--output-type output=vector" in d.message
               for d in given.diagnoses)
    declared = eqcheck.verify(PooledGradient(), "p4", output_type="irrep(1)", per_layer=False)
    assert declared.passed


def test_the_found_type_reads_back_from_json(tmp_path) -> None:
    from eqcheck.report.json_report import dumps
    from eqcheck.report.outputs import read_result

    result = eqcheck.verify(str(DATA / "c4_vector.onnx"), "p4", per_layer=False)
    path = tmp_path / "r.json"
    path.write_text(dumps(result))
    assert read_result(path).output.representation == "2*irrep(1)"


def test_interpolated_angles_of_an_so2_vector_field() -> None:
    result = eqcheck.verify(_gradient_field(), "so2", per_layer=False, samples=6)
    exact = [e for e in result.output.elements if e.exact]
    assert all(e.passed for e in exact)
    # named by SO(2)'s own irreps: the traces at the interpolated angles too decide the frequencies
    assert result.output.representation == "irrep(1)+trivial" and result.output.representation_source == "found"
    assert np.isfinite(result.output.max_rel_error)


def test_the_up_down_mirror_is_part_of_the_group_spec() -> None:
    from eqcheck.groups import parse_group

    assert parse_group("p4m:axis=0").spec == "p4m:axis=0" and parse_group("d4:axis=1").spec == "d4"
    regular = eqcheck.verify(str(DATA / "d4_axis0_regular.onnx"), "p4m:axis=0", per_layer=False)
    assert regular.passed and regular.output.representation == "regular:field-major"
    mixed = eqcheck.verify(str(DATA / "d4_axis0_mixed.onnx"), "p4m:axis=0", output_type="irrep(1,1)+trivial",
                           per_layer=False)
    assert mixed.passed
    # the same declaration under the default mirror axis means another basis: it fails
    assert not eqcheck.verify(str(DATA / "d4_axis0_mixed.onnx"), "p4m", output_type="irrep(1,1)+trivial",
                              per_layer=False).passed


def test_a_pooled_vector_is_found_from_enough_samples_and_a_plain_head_still_fails() -> None:
    import torch

    class PooledGradient(torch.nn.Module):
        example_input_shape = (2, 1, 17, 17)

        def forward(self, x):
            return (_gradient_field()(x)[:, :2] * x).mean(dim=(2, 3))

    found = eqcheck.verify(PooledGradient(), "p4", per_layer=False, input_shape=(16, 1, 17, 17))
    assert found.passed and found.output.representation == "irrep(1)"
    assert found.output.representation_source == "found"
    plain = eqcheck.verify(str(Path(__file__).parents[1] / "sample_models" / "z2cnn.onnx"), "p4", per_layer=False,
                           input_shape=(64, 1, 28, 28))
    assert not plain.passed and plain.output.representation_source != "found"


def _fields_in_a_basis(spec: str, group_spec: str, basis: np.ndarray | None, channels_shape=(2, 16, 24, 24)):
    """A map carrying ``spec`` in the channel basis ``basis`` (rho'(g) = Q rho(g) Q^T), and its exactly
    transformed copies."""
    from eqcheck.actions.parse import field_type
    from eqcheck.groups import parse_group
    from eqcheck.groups.base import SamplingContext

    group = parse_group(group_spec)
    elements = group.testing_elements(SamplingContext(rng=np.random.default_rng(0)))
    action = field_type(spec, group.field_group)
    z = np.random.default_rng(1).standard_normal(channels_shape).astype(np.float32)
    to_basis = (lambda t: t) if basis is None else (lambda t: np.einsum("ij,bj...->bi...", basis, t).astype(np.float32))
    return group, elements, to_basis(z), [to_basis(action.apply(g, z)) for g in elements]


@pytest.mark.parametrize("spec, group_spec, name", [("8*irrep(1)", "p4", "8*irrep(1)"),
                                                    ("2*regular", "p4m", "2*regular"),
                                                    ("4*irrep(1,1)+8*trivial", "p4m", "4*irrep(1,1)+8*trivial")])
def test_a_type_in_any_orthogonal_basis_is_found_and_named(spec, group_spec, name) -> None:
    """escnn's bases give signed permutations (found by assignment); any other orthogonal basis needs the
    Procrustes fit: both are found, named by their characters (the other basis said so), and reproduce
    the copies exactly."""
    from eqcheck.discovery import discover

    basis, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((16, 16)))
    for q in (None, basis):
        group, elements, reference, transformed = _fields_in_a_basis(spec, group_spec, q)
        found = discover(group, elements, reference, transformed, 1e-5)
        assert found is not None and found.spec == (name if q is None else f"{name} in another basis")
        for g, y in zip(elements, transformed):
            assert np.abs(found.apply(g, reference) - y).max() < 1e-5 * np.abs(y).max()


def test_channels_are_mixed_by_gathering_exactly_where_rho_is_a_signed_permutation() -> None:
    from eqcheck.actions.fields import mix_channels
    from eqcheck.reps import parse_field_group, parse_sum
    from eqcheck.reps.signed import SignedPermutation

    x = np.random.default_rng(0).standard_normal((2, 12, 5, 5)).astype(np.float32)
    d4 = parse_field_group("d4")
    rep = parse_sum("regular+irrep(1,1)+2*trivial", d4)
    for label in d4.elements():
        matrix = rep.matrix(label)
        permutation = SignedPermutation.of(matrix)
        assert permutation is not None  # escnn's basis: every element of D4 is a signed permutation
        np.testing.assert_array_equal(permutation.matrix, matrix)
        assert permutation.trace == np.trace(matrix)
        gathered = mix_channels(matrix, x)
        assert gathered.dtype == np.float32
        np.testing.assert_array_equal(gathered, np.einsum("ij,bj...->bi...", matrix, x.astype(np.float64)))
    c8 = parse_field_group("c8")
    turn_45 = parse_sum("irrep(1)", c8).matrix(c8.elements()[1])
    assert SignedPermutation.of(turn_45) is None
    y = x[:, :2]
    np.testing.assert_allclose(mix_channels(turn_45, y), np.einsum("ij,bj...->bi...", turn_45, y), atol=1e-6)


def test_so2_frequencies_are_read_from_the_characters_at_every_angle() -> None:
    """irrep(1) and irrep(3) agree on the right angles (C4 cannot tell them apart); the other angles can."""
    from eqcheck.discovery import name_representation, so2_name
    from eqcheck.groups import parse_group
    from eqcheck.groups.base import SamplingContext
    from eqcheck.reps import make_rep, parse_field_group, parse_sum

    group = parse_group("so2")
    elements = group.testing_elements(SamplingContext(rng=np.random.default_rng(0), samples=6))
    so2 = parse_field_group("so2")
    for spec, name in (("irrep(1)", "irrep(1)"), ("irrep(3)", "irrep(3)"), ("2*irrep(2)+irrep(0)", "2*irrep(2)+trivial")):
        rep = parse_sum(spec, so2)
        matrices = {g.label: rep.matrix(so2.label(g)) for g in elements}
        assert so2_name(group, elements, matrices) == name
    exact_only = [g for g in elements if g.exact]
    turn3 = make_rep("irrep", (3,), so2)
    quarter_turns = {g.label: turn3.matrix(so2.label(g)) for g in exact_only}
    assert so2_name(group, exact_only, quarter_turns) is None  # irrep(1) and irrep(3) agree on them
    assert name_representation(group, exact_only, quarter_turns) == "irrep(1) of C4"


def test_c8_fields_under_c8_are_found_in_the_output_and_in_hidden_layers() -> None:
    """C8's generator (45 degrees) needs interpolation: hidden layers are typed from the quarter turns (C4),
    the output from every angle; nothing exact is blamed."""
    result = eqcheck.verify(str(DATA / "c8_quotient.onnx"), "c8")
    assert result.passed and result.first_failing_layer is None
    # two quotient fields C8/C2 and two trivial ones: their irreps, in the quotient's permutation basis
    assert result.output.representation == "2*irrep(2)+2*irrep(4)+2*trivial in another basis"
    assert all(layer.passed for layer in result.layers)
    assert any(layer.representation.endswith("of C4") and layer.representation_source == "found"
               for layer in result.layers)


def test_data_that_is_not_finite_is_never_given_a_found_type() -> None:
    from eqcheck.discovery import discover
    from eqcheck.discovery_o3 import discover_irreps
    from eqcheck.groups import parse_group
    from eqcheck.groups.base import SamplingContext

    for spec, shape, find in (("p4m", (2, 8, 16, 16), discover), ("o3", (2, 40, 5), discover_irreps)):
        group = parse_group(spec)
        elements = group.testing_elements(SamplingContext(rng=np.random.default_rng(0)))
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        x[0, 0, ...] = np.nan
        assert find(group, elements, x, [x.copy() for _ in elements], 1e-5) is None


def test_signed_permutations_compose_trace_and_apply_as_their_matrices() -> None:
    from eqcheck.reps.signed import SignedPermutation

    rng = np.random.default_rng(3)
    a = SignedPermutation(rng.permutation(6), rng.choice([-1.0, 1.0], 6))
    b = SignedPermutation(rng.permutation(6), rng.choice([-1.0, 1.0], 6))
    np.testing.assert_array_equal(a.after(b).matrix, a.matrix @ b.matrix)
    assert a.after(b).trace == np.trace(a.matrix @ b.matrix)
    assert SignedPermutation.of(a.matrix).same(a) and not a.same(b)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(a.apply(x, axis=1), np.einsum("ij,bjk->bik", a.matrix, x), atol=1e-6)
    assert SignedPermutation.of(0.5 * a.matrix) is None and SignedPermutation.of(np.ones((2, 2))) is None


@pytest.mark.parametrize("n, mirrors", [(4, False), (4, True), (8, False), (6, True)])
def test_every_element_of_a_point_group_is_reached_once_and_every_other_product_is_checked(n, mirrors) -> None:
    from eqcheck.groups.point import PointGroup

    group = PointGroup(n, mirrors)
    words = group.words
    assert sorted(words.elements) == sorted(group.elements) and words.elements[0] == group.identity
    assert len(words.built) == group.order - 1
    assert len(words.built) + len(words.checked) == group.order * len(group.generators())
    for b, s, a in [*words.built, *words.checked.tolist()]:
        assert words.elements[b] == group.compose(group.generators()[s], words.elements[a])


def test_generators_that_break_a_relation_generate_no_representation() -> None:
    """rot90 -> a 3-cycle on three channels does not satisfy r^4 = e: no representation of C4 (either as
    index arrays or as dense matrices); the escnn regular field's generators do."""
    from eqcheck.discovery import generate_representation
    from eqcheck.groups import parse_group
    from eqcheck.groups.base import SamplingContext
    from eqcheck.reps import parse_sum
    from eqcheck.reps.signed import SignedPermutation

    group = parse_group("p4")
    rot90 = group.generator_elements()[0]
    cycle = SignedPermutation(np.array([1, 2, 0]), np.ones(3))
    assert generate_representation(group, {rot90.label: cycle}) is None
    assert generate_representation(group, {rot90.label: cycle.matrix}) is None
    regular = parse_sum("regular", group.field_group)
    rho = SignedPermutation.of(regular.matrix(group.field_group.label(rot90)))
    table = generate_representation(group, {rot90.label: rho})
    for g in group.testing_elements(SamplingContext(rng=np.random.default_rng(0))):
        np.testing.assert_array_equal(table[g.label].matrix, regular.matrix(group.field_group.label(g)))
    dense = generate_representation(group, {rot90.label: rho.matrix})
    assert all(np.abs(dense[k] - table[k].matrix).max() < 1e-12 for k in table)


def test_signed_permutation_fits_are_held_to_data_they_were_not_chosen_on() -> None:
    """Two stacked fits at once: one map whose held-out half another permutation explains (it is
    refused), one that a signed permutation explains everywhere (it is kept, with its error)."""
    from eqcheck.discovery import fit_signed_permutations

    rng = np.random.default_rng(4)
    source = rng.standard_normal((2, 2, 8, 64)).astype(np.float32)  # [fit/held, G, C, samples]
    order, signs = rng.permutation(8), rng.choice([-1.0, 1.0], 8)
    target = (signs[:, None] * source[:, :, order]).astype(np.float32)
    target[1, 0] = target[1, 0, ::-1]  # the first map's held-out half follows another channel order
    refused, kept = fit_signed_permutations(tuple(source), tuple(target), 1e-5)
    assert refused is None
    rho, error, _ = kept
    np.testing.assert_array_equal(rho.order, order)
    np.testing.assert_array_equal(rho.signs, signs)
    assert error == 0.0


def test_a_type_only_the_right_angles_show_is_said_so_not_called_a_failure_at_90_degrees() -> None:
    """A C4 field (regular + trivial: 5 channels, no type of C8) under c8: no type every angle confirms, so
    the output is checked as an image and fails at the right angles too; the hint names what the right
    angles alone show (found, never chosen) instead of 'not even equivariant to rotations by 90 degrees'."""
    import torch
    from torch import nn

    from eqcheck.nn import GroupPool, P4ConvZ2

    class RegularAndTrivial(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.pool = P4ConvZ2(1, 1, 3, padding=1), GroupPool()

        def forward(self, x):
            h = self.conv(x)
            return torch.cat([h.flatten(1, 2), self.pool(h)], 1)

    torch.manual_seed(0)
    result = eqcheck.verify(RegularAndTrivial().eval(), "c8", input_shape=(2, 1, 21, 21), per_layer=False)
    assert not result.passed and result.output.representation == "image"
    hint = next(d for d in result.diagnoses if d.code == "undetermined-type")
    assert "regular+trivial of C4" in hint.message and hint.severity == "cause"
    assert not any(d.code == "not-c4" for d in result.diagnoses)
    quarter = next(c for c in result.output.candidates if c.representation.endswith("(right angles only)"))
    assert quarter.max_rel_error < 1e-5
    plain = eqcheck.verify(_plain_feature_map(), "c8", per_layer=False)  # nothing to find at the right angles
    assert not plain.passed and not any(c.representation.endswith("(right angles only)")
                                        for c in plain.output.candidates)
