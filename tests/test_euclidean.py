"""3-D groups: O(3) irreps against e3nn's own matrices, Haar sampling, positions, energies and forces,
irreps found from the data (a cross product is 1e), and models that break rotations or translations."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import eqcheck
from eqcheck.errors import UsageError
from eqcheck.groups import parse_group
from eqcheck.groups.base import SamplingContext
from eqcheck.groups.euclidean import haar_rotation, rotation_angle
from eqcheck.reps.o3 import parse_irreps

WIGNER = json.loads((Path(__file__).parent / "data" / "e3nn_wigner.json").read_text())["entries"]


@pytest.mark.parametrize("entry", WIGNER, ids=[f"{e['spec']}-{i}" for i, e in enumerate(WIGNER)])
def test_irreps_matrices_equal_e3nn(entry) -> None:
    mine = parse_irreps(entry["spec"]).matrix(np.array(entry["rotation"]))
    np.testing.assert_allclose(mine, np.array(entry["D"]), atol=1e-9)


@pytest.mark.parametrize("spec", ["1o", "2x0e+1x1o+1x2e", "3e+1o+0o"])
def test_irreps_are_a_homomorphism_of_o3(spec) -> None:
    rng = np.random.default_rng(0)
    irreps = parse_irreps(spec)
    for _ in range(3):
        a, b = haar_rotation(rng) * rng.choice([-1, 1]), haar_rotation(rng) * rng.choice([-1, 1])
        np.testing.assert_allclose(irreps.matrix(a @ b), irreps.matrix(a) @ irreps.matrix(b), atol=1e-9)


def test_haar_rotations_have_the_haar_mean_angle() -> None:
    """Haar's mean rotation angle is pi/2 + 2/pi (126.5 degrees); a QR without the sign fix gives ~144."""
    rng = np.random.default_rng(0)
    angles = [rotation_angle(haar_rotation(rng)) for _ in range(20000)]
    assert abs(np.degrees(np.mean(angles)) - np.degrees(np.pi / 2 + 2 / np.pi)) < 1.0


@pytest.mark.parametrize("spec", ["so3", "o3", "se3", "e3"])
def test_specs_print_back_and_runs_repeat(spec) -> None:
    group = parse_group(spec)
    assert str(group) == spec and parse_group(str(group)) == group
    first = group.testing_elements(SamplingContext(rng=np.random.default_rng(3)))
    again = group.testing_elements(SamplingContext(rng=np.random.default_rng(3)))
    assert first == again and first[0].is_identity
    assert any(np.linalg.det(e.rotation) < 0 for e in first) is group.inversion
    assert any(e.translation is not None for e in first) is group.translations
    for e in first:
        assert np.allclose(e.rotation @ e.rotation.T, np.eye(3))


def test_an_unknown_option_of_a_3d_group_is_refused() -> None:
    with pytest.raises(UsageError):
        parse_group("so3:fast")


class PairEnergyAndForces(nn.Module):
    """A Gaussian pair potential and its forces by autograd inside forward, as MLIPs compute them."""

    example_input_shape = (2, 7, 3)

    def forward(self, pos):
        with torch.enable_grad():
            pos = pos.detach().requires_grad_(True)
            distance2 = (pos[:, :, None] - pos[:, None]).pow(2).sum(-1)
            energy = torch.exp(-distance2).sum((1, 2))
            forces = -torch.autograd.grad(energy.sum(), pos)[0]
        return energy, forces


def test_energy_and_forces_both_pass_e3_and_are_both_typed() -> None:
    result = eqcheck.verify(PairEnergyAndForces(), "e3")
    assert result.passed and len(result.outputs) == 2
    energy, forces = result.outputs
    assert energy.representation == "invariant" and forces.representation == "1x1o"
    assert max(energy.max_rel_error, forces.max_rel_error) < 1e-5
    assert result.run.input_actions == {"pos": "positions"} or list(result.run.input_actions.values()) == ["positions"]


class CoordinateMlp(nn.Module):
    """An MLP on raw coordinates: not rotation-invariant; its first Linear breaks it."""

    example_input_shape = (2, 6, 3)

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.out = nn.Linear(3, 16), nn.Linear(16, 1)

    def forward(self, pos):
        return self.out(torch.tanh(self.embed(pos))).sum((1, 2))


def test_an_mlp_on_raw_coordinates_fails_and_its_first_linear_is_named() -> None:
    torch.manual_seed(0)
    result = eqcheck.verify(CoordinateMlp().eval(), "so3")
    assert not result.passed and result.output.max_rel_error > 0.01
    assert result.first_failing_layer == "embed"


class Cross(nn.Module):
    """The cross product of two centred points: a pseudovector (1e)."""

    example_input_shape = (2, 5, 3)

    def forward(self, pos):
        centred = pos - pos.mean(1, keepdim=True)
        return torch.cross(centred[:, 0], centred[:, 1], dim=-1)


def test_a_cross_product_is_found_to_be_a_pseudovector_and_fails_declared_as_a_vector() -> None:
    found = eqcheck.verify(Cross(), "o3")
    assert found.passed and found.output.representation == "1x1e" and found.output.max_rel_error < 1e-5
    declared = eqcheck.verify(Cross(), "o3", output_type="1o")
    assert not declared.passed and declared.output.max_rel_error > 1.9  # inversion: -v against +v
    assert declared.first_failing_layer is None  # the model is right; the declared type is not
    assert eqcheck.verify(Cross(), "so3", output_type="1o").passed  # without the inversion they agree


class MixedFeatures(nn.Module):
    """Per point: the centred position (1o), its squared norm (0e) and its cross product with the next
    point's (1e): irreps ``1x0e+1x1o+1x1e`` in a shuffled channel order."""

    example_input_shape = (2, 32, 3)

    def forward(self, pos):
        c = pos - pos.mean(1, keepdim=True)
        cross = torch.cross(c, torch.roll(c, 1, dims=1), dim=-1)
        return torch.cat([cross, (c * c).sum(-1, keepdim=True), c], dim=-1)[..., [3, 0, 4, 1, 5, 2, 6]]


def test_irreps_are_found_in_any_channel_order_and_named_as_e3nn_does() -> None:
    result = eqcheck.verify(MixedFeatures(), "o3")
    assert result.passed and result.output.representation_source == "found"
    assert result.output.representation == "1x0e+1x1o+1x1e in another basis"  # its channels are shuffled


class AbsoluteMix(nn.Module):
    """Exact about the origin (norms of positions), but not under translations: its ``norm`` names it."""

    example_input_shape = (2, 6, 3)

    def forward(self, pos):
        return torch.linalg.vector_norm(pos, dim=-1).sum(-1)


def test_a_model_exact_about_the_origin_passes_so3_and_fails_e3() -> None:
    assert eqcheck.verify(AbsoluteMix(), "so3").passed
    moved = eqcheck.verify(AbsoluteMix(), "se3")
    assert not moved.passed and moved.first_failing_layer is not None


def test_one_point_cloud_without_a_batch_axis_and_a_scalar_energy() -> None:
    class Single(nn.Module):
        example_input_shape = (9, 3)

        def forward(self, pos):
            return torch.pdist(pos).pow(2).neg().exp().sum()  # shape []: one energy

    result = eqcheck.verify(Single(), "e3")
    assert result.passed and result.output.shape == () and result.output.max_rel_error < 1e-5
    assert any("no batch axis" in note for note in result.run.notes)


class PlainHeadOnIrreps(MixedFeatures):
    """Exact irreps features, then a Linear that mixes 0e, 1o and 1e channels: it breaks rotations."""

    def __init__(self) -> None:
        super().__init__()
        self.plain = nn.Linear(7, 7)

    def forward(self, pos):
        return self.plain(super().forward(pos))


def test_hidden_irreps_are_found_and_the_plain_layer_after_them_is_named() -> None:
    torch.manual_seed(0)
    result = eqcheck.verify(PlainHeadOnIrreps().eval(), "o3")
    assert not result.passed and result.first_failing_layer == "plain"
    assert [layer.name for layer in result.layers if not layer.passed] == ["plain"]
    shuffled = next(layer for layer in result.layers if layer.name == "forward.getitem")
    assert shuffled.representation == "1x0e+1x1o+1x1e in another basis" and shuffled.representation_source == "found"


class UntraceablePlainHead(PlainHeadOnIrreps):
    """The same, with a branch on a tensor's value that torch.fx cannot trace: read by module hooks, the
    found irreps are code between modules."""

    def forward(self, pos):
        features = MixedFeatures.forward(self, pos)
        return self.plain(features if bool(features.abs().sum() >= 0) else -features)


def test_a_type_found_between_modules_stays_the_same_action_in_the_runs_with_exact_inputs() -> None:
    # the run with exact inputs finds the hidden type again: the same action, not a changed one, so the
    # plain layer's own error is given (a fit repeated on the same numbers once made it "mixed", with a
    # note that the actions still changed after 3 runs)
    torch.manual_seed(0)
    result = eqcheck.verify(UntraceablePlainHead().eval(), "o3")
    assert not result.passed and result.first_failing_layer == "plain"
    plain = next(layer for layer in result.layers if layer.name == "plain")
    assert plain.local_rel_error is not None and plain.local_rel_error > 0.1
    assert not any("still changed" in note for note in result.run.notes)


def test_the_pattern_of_failing_elements_names_the_cause() -> None:
    moved = eqcheck.verify(AbsoluteMix(), "se3", per_layer=False)
    assert [d.code for d in moved.diagnoses if d.code in ("absolute-coordinates", "parity")] == [
        "absolute-coordinates"]
    flipped = eqcheck.verify(Cross(), "o3", output_type="1o", per_layer=False)
    assert [d.code for d in flipped.diagnoses if d.code in ("absolute-coordinates", "parity")] == ["parity"]
    assert not any(d.code in ("absolute-coordinates", "parity") for d in eqcheck.verify(Cross(), "o3").diagnoses)


class FlippedForces(nn.Module):
    """Centred positions with z negated: a vector output with a sign bug (the representation g -> S g S
    is equivalent to 1o, in another basis): it must fail, not pass as a found type."""

    example_input_shape = (2, 16, 3)

    def forward(self, pos):
        return (pos - pos.mean(1, keepdim=True)) * torch.tensor([1.0, 1.0, -1.0])


def test_a_vector_in_the_wrong_basis_is_not_explained_by_a_found_type() -> None:
    result = eqcheck.verify(FlippedForces(), "o3", per_layer=False)
    assert not result.passed and result.output.representation_source != "found"
    assert "1x1o in another basis" in [c.representation for c in result.output.candidates]


def test_layer_types_take_irreps_under_3d_groups() -> None:
    result = eqcheck.verify(MixedFeatures(), "o3", layer_types={"forward.cat": "1x1e+1x0e+1x1o"})
    cat = next(layer for layer in result.layers if layer.name == "forward.cat")
    assert cat.representation == "1x1e+1x0e+1x1o" and cat.representation_source == "given" and cat.passed


def test_positions_are_found_by_name_and_a_small_cloud_says_how_to_type_its_output() -> None:
    class Named(nn.Module):
        example_input_shapes = {"velocity": (2, 4, 3), "pos": (2, 4, 3)}

        def forward(self, velocity, pos):
            centred = pos - pos.mean(1, keepdim=True)
            return torch.cat([centred, velocity, (centred * velocity).sum(-1, keepdim=True)], -1)

    result = eqcheck.verify(Named(), "e3", per_layer=False)
    assert result.run.input_actions == {"velocity": "1x1o", "pos": "positions"}
    # 8 rows cannot type a 7-wide last axis: found on more random inputs, said so
    assert result.passed and result.output.representation_source == "found"
    assert "2x1o" in result.output.representation and "1x0e" in result.output.representation  # blocks in its order
    assert any(d.code == "more-inputs" for d in result.diagnoses)
    rng = np.random.default_rng(0)
    given = {name: rng.standard_normal((2, 4, 3)).astype(np.float32) for name in ("velocity", "pos")}
    mine = eqcheck.verify(Named(), "e3", inputs=given, per_layer=False)
    assert not mine.passed  # inputs given are not added to: said, with what to declare
    assert any(d.code == "undetermined-type" and "--output-type output=" in d.message for d in mine.diagnoses)
    declared = eqcheck.verify(Named(), "e3", output_type="1x1o+1x1o+1x0e", per_layer=False)
    assert declared.passed


def test_a_3d_group_with_nothing_to_move_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no input has one"):
        eqcheck.verify(nn.Conv2d(1, 2, 3), "so3", input_shape=[2, 1, 9, 9])


ESCNN_SO3 = json.loads((Path(__file__).parent / "data" / "escnn_so3_irreps.json").read_text())


def test_escnn_basis_is_e3nn_in_the_frame_y_z_x_for_every_degree() -> None:
    """escnn's own SO(3) ``irrep(l)(g)`` matrices (benchmarks/zoo/make_escnn_so3_irreps.py, in escnn's
    environment) are eqcheck's ``1x{l}e:escnn`` for l = 1, 2, 3; its l = 1 is e3nn's in (y, z, x) order."""
    for entry in ESCNN_SO3:
        rotation = np.array(entry["rotation"])
        for l in (1, 2, 3):
            np.testing.assert_allclose(parse_irreps(f"1x{l}e:escnn").matrix(rotation), np.array(entry[f"irrep{l}"]),
                                       atol=1e-12)
        np.testing.assert_allclose(np.array(entry["irrep1"]), rotation[[1, 2, 0]][:, [1, 2, 0]], atol=1e-12)
    assert parse_irreps("2x1o+1x2e:escnn").spec == "2x1o+1x2e:escnn"
    with pytest.raises(UsageError):
        parse_irreps("1o:lie_learn")


class EscnnOrderForces(nn.Module):
    """Centred positions in escnn's (y, z, x) order."""

    example_input_shape = (2, 16, 3)

    def forward(self, pos):
        return (pos - pos.mean(1, keepdim=True))[..., [1, 2, 0]]


def test_a_vector_in_escnns_order_is_named_so_and_passes_only_when_declared() -> None:
    found = eqcheck.verify(EscnnOrderForces(), "o3", per_layer=False)
    assert not found.passed  # a vector output that fails as 1o is not excused by its order
    assert "1x1o:escnn" in [c.representation for c in found.output.candidates]
    declared = eqcheck.verify(EscnnOrderForces(), "o3", output_type="1o:escnn", per_layer=False)
    assert declared.passed and declared.output.representation == "1x1o:escnn"


class TripleProduct(nn.Module):
    """A pseudoscalar per point: (x_i - c) . ((x_{i+1} - c) x (x_{i+2} - c)), [B, N, 1]."""

    example_input_shape = (2, 16, 3)

    def forward(self, pos):
        r = pos - pos.mean(1, keepdim=True)
        return (r * torch.cross(r.roll(1, 1), r.roll(2, 1), dim=-1)).sum(-1, keepdim=True)


def test_a_pseudoscalar_output_is_typed_so_and_passes_o3() -> None:
    result = eqcheck.verify(TripleProduct(), "o3")
    assert result.passed and result.output.representation == "1x0o"
    declared = eqcheck.verify(TripleProduct(), "o3", output_type="0e")
    assert not declared.passed and declared.first_failing_layer is None  # the type is wrong, not a layer


class FlatCoordinateMLP(nn.Module):
    """Raw coordinates flattened into an MLP: the flatten keeps N vectors (Nx1o), the first Linear breaks."""

    example_input_shape = (2, 8, 3)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.head = nn.Linear(24, 32), nn.Linear(32, 4)

    def forward(self, pos):
        return self.head(torch.relu(self.inp(pos.flatten(1))))


def test_flattened_vectors_keep_their_irreps_and_the_first_linear_is_named() -> None:
    result = eqcheck.verify(FlatCoordinateMLP(), "so3")
    assert not result.passed and result.first_failing_layer == "inp"
    flat = next(layer for layer in result.layers if layer.name.endswith("flatten"))
    assert flat.representation == "8x1o" and flat.passed


class SmallCloudIrreps(nn.Module):
    """Two e3nn Linears on a cloud of 5 points: 10 rows, too few to find 2x0e+1x1o+1x2e (10 dimensions)."""

    example_input_shapes = {"x": (2, 5, 14)}

    def __init__(self) -> None:
        from e3nn import o3

        super().__init__()
        self.a = o3.Linear("3x0e+2x1o+1x2e", "4x0e+2x1o+1x2e")
        self.b = o3.Linear("4x0e+2x1o+1x2e", "2x0e+1x1o+1x2e")

    def forward(self, x):
        return self.b(self.a(x))


def test_an_output_type_too_few_rows_reveal_is_found_on_more_random_inputs() -> None:
    pytest.importorskip("e3nn")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SmallCloudIrreps().eval()
    act = ["x=3x0e+2x1o+1x2e"]
    result = eqcheck.verify(model, "o3", act=act, per_layer=False)
    output = result.outputs[0]
    assert result.passed and output.representation == "2x0e+1x1o+1x2e" and output.representation_source == "found"
    assert output.max_rel_error < 1e-5
    assert [d.code for d in result.diagnoses if "more random inputs" in d.message] == ["more-inputs"]
    # inputs given by the user are not added to: the type stays undetermined, and a note says how to declare it
    x = np.random.default_rng(0).standard_normal((2, 5, 14)).astype(np.float32)
    given = eqcheck.verify(model, "o3", act=act, inputs={"x": x}, per_layer=False)
    assert not given.passed and given.outputs[0].representation_source != "found"
    assert any(d.code == "undetermined-type" for d in given.diagnoses)


class PlainPointMap(nn.Module):
    """A plain MLP on centred coordinates: not equivariant, whatever matrices more inputs could fit."""

    example_input_shapes = {"pos": (2, 4, 3)}

    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, pos):
        return self.mlp(pos - pos.mean(1, keepdim=True))


def test_a_plain_output_is_not_explained_by_a_type_fitted_on_more_inputs() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = PlainPointMap().eval()
    plain = eqcheck.verify(model, "so3", per_layer=False)
    assert not plain.passed and plain.outputs[0].representation_source != "found"
    assert plain.outputs[0].max_rel_error > 0.1


def test_a_declared_type_in_another_basis_is_said_so() -> None:
    result = eqcheck.verify(FlippedForces(), "o3", output_type="1x1o", per_layer=False)
    assert not result.passed and result.output.representation_source == "given"
    hints = [d.message for d in result.diagnoses if d.code == "declared-type"]
    assert len(hints) == 1 and "transform as 1x1o in another basis" in hints[0]


class IrrepsLinear(nn.Module):
    """An equivariant linear map on e3nn irreps written by hand (o3.Linear's rule: copies of one irrep mix,
    nothing else), stating its types as e3nn modules do (``irreps_in``, ``irreps_out``)."""

    def __init__(self, scalars_in: int, vectors_in: int, scalars_out: int, vectors_out: int) -> None:
        super().__init__()
        self.irreps_in = f"{scalars_in}x0e+{vectors_in}x1o"
        self.irreps_out = f"{scalars_out}x0e+{vectors_out}x1o"
        self.scalars, self.vectors = scalars_in, vectors_in
        self.w0 = nn.Parameter(torch.randn(scalars_out, scalars_in))
        self.w1 = nn.Parameter(torch.randn(vectors_out, vectors_in))

    def forward(self, x):
        s, v = x[..., :self.scalars], x[..., self.scalars:].unflatten(-1, (self.vectors, 3))
        return torch.cat([s @ self.w0.T, torch.einsum("...ui,wu->...wi", v, self.w1).flatten(-2)], -1)


class PlainBetweenIrrepsLayers(nn.Module):
    """Two irreps layers with a plain Linear on the vector block between them (it breaks rotations); the
    second layer reads a cat of the scalars and that broken block."""

    def __init__(self) -> None:
        super().__init__()
        self.lin1, self.plain, self.lin2 = IrrepsLinear(1, 1, 4, 2), nn.Linear(6, 6), IrrepsLinear(4, 2, 1, 1)

    def forward(self, pos):
        rel = pos - pos.mean(dim=1, keepdim=True)
        h = self.lin1(torch.cat([rel.norm(dim=-1, keepdim=True), rel], -1))
        return self.lin2(torch.cat([h[..., :4], self.plain(h[..., 4:])], -1))


def test_after_a_break_only_the_layer_that_makes_it_is_blamed() -> None:
    """The cat after the plain Linear is typed by the irreps its reader states; it and the layer after it
    read the broken block made exact under a guess (the type found for its input), so neither is judged
    (both were blamed: the cat under 'invariant', the exact irreps layer at 1.65)."""
    torch.manual_seed(0)
    result = eqcheck.verify(PlainBetweenIrrepsLayers().eval(), "so3", input_shape=(2, 50, 3))
    assert not result.passed and result.first_failing_layer == "plain"
    assert [d.layer for d in result.diagnoses if d.severity == "cause"] == ["plain"]
    rows = {layer.name: layer for layer in result.layers}
    assert rows["lin1"].passed and rows["lin1"].representation == "4x0e+2x1o"
    assert rows["lin2"].local_rel_error is None and rows["lin2"].passed
