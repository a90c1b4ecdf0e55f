"""The checker on models whose answer is known: exact ones pass with tiny errors, broken ones fail and say why."""
from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import eqcheck
from eqcheck.nn import GroupPool, P4ConvP4, P4ConvZ2, SpatialPool

EXACT = 1e-5


def seeded(build, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build().eval()


def diagnosis_codes(result) -> set[str]:
    return {d.code for d in result.diagnoses}


@pytest.mark.parametrize("name, group, representation", [
    ("p4cnn", "p4", "invariant"),
    ("p4mcnn", "p4m", "invariant"),
    ("p4_fcn", "p4", "regular:5d"),
    ("deepsets", "perm", "invariant"),
    ("deepsets_equivariant", "perm", "set"),
])
def test_exact_sample_models_pass(sample, name, group, representation) -> None:
    result = eqcheck.verify(sample(name), group)
    assert result.passed
    assert result.output.max_rel_error < EXACT
    assert result.output.representation == representation
    assert len(result.output.elements) == {"p4": 4, "p4m": 8, "perm": 9}[group]
    # the error is tiny against how much the output moves between unrelated inputs, too
    assert result.output.spread > 0.01
    assert max(e.spread_ratio for e in result.output.elements) < 1e-4


def test_p4m_elements_are_the_eight_of_d4(sample) -> None:
    result = eqcheck.verify(sample("p4mcnn"), "p4m")
    labels = [e.element for e in result.output.elements]
    assert labels[:4] == ["e", "rot90", "rot180", "rot270"] and len(set(labels)) == 8
    assert sum("flip" in label for label in labels) == 4


@pytest.mark.parametrize("name", ["z2cnn", "p4cnn_broken"])
def test_broken_sample_models_fail(sample, name) -> None:
    result = eqcheck.verify(sample(name), "p4")
    assert not result.passed
    errors = {e.element: e.rel_error for e in result.output.elements}
    assert errors["e"] == 0.0  # deterministic: the identity is exact
    assert min(errors[k] for k in ("rot90", "rot180", "rot270")) > 0.1
    assert result.non_determinism == 0.0 and "non-determinism" not in diagnosis_codes(result)


def test_regular_field_output_is_recognised(sample) -> None:
    result = eqcheck.verify(sample("p4_fcn"), "p4", output_type="auto")
    assert result.output.representation == "regular:5d"
    assert result.output.representation_source == "auto"
    assert result.output.shape == (2, 4, 4, 28, 28)
    by_spec = {c.representation: c.max_rel_error for c in result.output.candidates}
    assert by_spec["regular:5d"] < EXACT
    assert by_spec["image"] > 0.1 and by_spec["regular:5d:cw"] > 0.1  # the wrong actions are far off


def test_declared_output_type_is_used_as_given(sample) -> None:
    wrong = eqcheck.verify(sample("p4_fcn"), "p4", output_type="image")
    assert not wrong.passed and wrong.output.representation == "image" and wrong.output.max_rel_error > 0.1


def conv_net(padding_mode: str = "zeros", stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, padding_mode=padding_mode), nn.ReLU(),
                         nn.Conv2d(4, 3, 3, padding=1, padding_mode=padding_mode, stride=stride))


def test_circular_padding_is_translation_equivariant() -> None:
    result = eqcheck.verify(seeded(lambda: conv_net("circular")), "translation", input_shape=(2, 2, 16, 16))
    assert result.passed and result.output.max_rel_error < EXACT
    assert result.output.representation == "image"
    assert len(result.output.elements) == 9 and result.output.elements[0].element == "e"


def test_zero_padding_fails_circular_shifts_but_passes_the_interior() -> None:
    model = seeded(lambda: conv_net("zeros"))
    circular = eqcheck.verify(model, "translation", input_shape=(2, 2, 16, 16))
    assert not circular.passed and circular.output.max_rel_error > 0.1
    interior = eqcheck.verify(model, "translation:interior", input_shape=(2, 2, 16, 16))
    assert interior.passed and interior.output.max_rel_error < EXACT
    # the same shifts were tested both times (same seed)
    assert [e.element for e in interior.output.elements] == [e.element for e in circular.output.elements]


def test_strided_circular_cnn_passes_with_shifts_that_are_multiples_of_the_stride() -> None:
    result = eqcheck.verify(seeded(lambda: conv_net("circular", stride=2)), "translation",
                            input_shape=(2, 2, 16, 16))
    assert result.output.shape == (2, 3, 8, 8)
    assert result.passed and result.output.max_rel_error < EXACT
    shifts = [tuple(int(v) for v in e.element[len("shift("):-1].split(",")) for e in result.output.elements[1:]]
    assert shifts and all(dy % 2 == 0 and dx % 2 == 0 for dy, dx in shifts)
    assert any("stride 2" in d.message for d in result.diagnoses)


def test_interior_translations_on_a_circular_model() -> None:
    result = eqcheck.verify(seeded(lambda: conv_net("circular")), "translation:interior", input_shape=(2, 2, 16, 16))
    assert result.passed


class Encoder(nn.Module):
    """A transformer encoder on a set of 6 tokens, with an optional learned positional embedding."""

    def __init__(self, positional: bool = False) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.position = nn.Parameter(torch.randn(1, 6, 8)) if positional else None

    def forward(self, x):
        if self.position is not None:
            x = x + self.position
        return self.encoder(x)


def test_transformer_encoder_is_permutation_equivariant() -> None:
    result = eqcheck.verify(seeded(Encoder), "perm", input_shape=(2, 6, 8))
    assert result.passed and result.output.max_rel_error < EXACT
    assert result.output.representation == "set"


def test_positional_embedding_breaks_permutation_equivariance() -> None:
    result = eqcheck.verify(seeded(lambda: Encoder(positional=True)), "perm", input_shape=(2, 6, 8))
    assert not result.passed
    swap = next(e for e in result.output.elements if e.element == "perm1")  # the transposition of tokens 0, 1
    assert swap.rel_error > 0.1 and not swap.passed


class SequenceFirstEncoder(nn.Module):
    """torch's default layout ``[N, B, D]``: the set is axis 0 and the batch axis 1."""

    def __init__(self, positional: bool = False) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.position = nn.Parameter(torch.randn(6, 1, 8)) if positional else None

    def forward(self, x):
        return self.encoder(x if self.position is None else x + self.position)


def test_a_set_on_axis_0_is_never_stacked_into_a_longer_set() -> None:
    # stacking transformed inputs along axis 0 would make one set of 6 * k tokens attend across copies
    exact = eqcheck.verify(seeded(SequenceFirstEncoder), "perm:axis=0", input_shape=(6, 2, 8))
    assert exact.passed and exact.output.max_rel_error < EXACT
    assert exact.output.representation == "set:axis=0"
    broken = eqcheck.verify(seeded(lambda: SequenceFirstEncoder(positional=True)), "perm:axis=0",
                            input_shape=(6, 2, 8))
    assert not broken.passed and broken.output.max_rel_error > 0.1


class AlwaysDropout(nn.Module):
    """Dropout that eval() cannot switch off."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        return F.dropout(self.conv(x), 0.5, training=True)


def test_non_determinism_shows_on_the_identity() -> None:
    result = eqcheck.verify(seeded(AlwaysDropout), "p4", input_shape=(2, 1, 9, 9))
    identity = result.output.elements[0]
    assert identity.element == "e" and not identity.passed and identity.rel_error > 0.1
    assert result.non_determinism == identity.rel_error
    found = [d for d in result.diagnoses if d.code == "non-determinism"]
    assert found and found[0].severity == "cause"


class RoundingJitter(nn.Module):
    """A run-to-run difference of 1e-13, far below float64's tolerance: what kernels that sum in another
    order for another batch leave."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3)) * (1 + 1e-13 * torch.rand((), dtype=x.dtype))


def test_a_run_to_run_difference_at_rounding_is_a_note_not_a_cause() -> None:
    result = eqcheck.verify(seeded(RoundingJitter), "p4", input_shape=(2, 1, 9, 9), dtype="float64")
    assert result.passed and 0 < result.non_determinism < 1e-12
    found = [d for d in result.diagnoses if d.code == "non-determinism"]
    assert found and found[0].severity == "note" and "not a cause" in found[0].message
    assert "not deterministic" not in found[0].message


def test_dropout_module_is_switched_off_by_eval_mode() -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.Dropout(0.5))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    model.train()
    result = eqcheck.verify(model, "p4", input_shape=(2, 1, 9, 9))
    assert result.passed and result.non_determinism == 0.0 and result.output.max_rel_error < EXACT
    assert any(note.startswith("the model was put in eval mode") for note in result.run.notes)


class NaNModel(nn.Module):
    def forward(self, x):
        return x * float("nan")


def test_nan_outputs_fail_as_nonfinite() -> None:
    result = eqcheck.verify(NaNModel(), "p4", input_shape=(2, 1, 9, 9))
    assert not result.passed
    assert all(e.nonfinite and not e.passed for e in result.output.elements)
    assert "nonfinite" in diagnosis_codes(result)


def p4_stride2() -> nn.Module:
    return nn.Sequential(P4ConvZ2(1, 2, 3, stride=2), nn.ReLU(), P4ConvP4(2, 2, 3), GroupPool("max"),
                         SpatialPool("mean"))


def test_stride_two_is_exact_on_an_odd_size_only() -> None:
    odd = eqcheck.verify(seeded(p4_stride2), "p4", input_shape=(2, 1, 15, 15))  # (15 - 3) % 2 == 0
    assert odd.passed and odd.output.max_rel_error < EXACT
    even = eqcheck.verify(seeded(p4_stride2), "p4", input_shape=(2, 1, 16, 16))  # (16 - 3) % 2 == 1
    assert not even.passed and even.output.max_rel_error > 0.01


def test_stride_misalignment_is_diagnosed_on_onnx(tmp_path, helpers) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = helpers.export_onnx(seeded(p4_stride2), tmp_path / "p4_stride2.onnx", (1, 1, 16, 16))
    result = eqcheck.verify(str(path), "p4")
    assert not result.passed
    found = [d for d in result.diagnoses if d.code == "stride-alignment"]
    assert len(found) == 1 and found[0].severity == "cause"
    assert found[0].layer == "/0/Conv" and "size 16" in found[0].message


class SymmetricStem(nn.Module):
    """A stride-2 Conv2d with rotation-symmetric filters, then pointwise layers and a mean: p4-invariant on odd sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, stride=2)
        with torch.no_grad():
            w = self.stem.weight
            w.copy_(sum(torch.rot90(w, k, dims=(2, 3)) for k in range(4)) / 4)
        self.head = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return torch.relu(self.head(torch.relu(self.stem(x)))).mean(dim=(2, 3))


def test_stride_misalignment_is_diagnosed_on_a_torch_module() -> None:
    odd = eqcheck.verify(seeded(SymmetricStem), "p4", input_shape=(2, 1, 15, 15))
    assert odd.passed and odd.output.max_rel_error < EXACT
    assert "stride-alignment" not in diagnosis_codes(odd)
    even = eqcheck.verify(seeded(SymmetricStem), "p4", input_shape=(2, 1, 16, 16))
    assert not even.passed and even.output.max_rel_error > 0.01
    found = [d for d in even.diagnoses if d.code == "stride-alignment"]
    assert [d.layer for d in found] == ["stem"]


def test_stride_misalignment_is_diagnosed_on_eqcheck_layers() -> None:
    even = eqcheck.verify(seeded(p4_stride2), "p4", input_shape=(2, 1, 16, 16))
    assert "stride-alignment" in diagnosis_codes(even)


def test_float64_is_exact_to_rounding(sample) -> None:
    from pathlib import Path

    spec = f"{Path(sample('p4cnn')).with_name('models.py')}:p4cnn"
    result = eqcheck.verify(spec, "p4", dtype="float64")
    assert result.run.dtype == "float64" and result.tolerance == 1e-10
    assert result.passed and result.output.max_rel_error < 1e-12
    single = eqcheck.verify(spec, "p4")
    assert single.output.max_rel_error > 100 * result.output.max_rel_error  # float32 rounding is far larger


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_input_file_error_matches_an_independent_computation_invariant(sample, tmp_path) -> None:
    x = np.random.default_rng(7).standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.savez(tmp_path / "data.npz", input=x)
    result = eqcheck.verify(sample("z2cnn"), "p4", inputs=str(tmp_path / "data.npz"))
    assert result.run.input_source == "file" and result.run.inputs == {"input": (3, 1, 28, 28)}
    session = onnxruntime.InferenceSession(sample("z2cnn"), providers=["CPUExecutionProvider"])
    f = lambda v: session.run(None, {"input": np.ascontiguousarray(v)})[0]  # noqa: E731
    reference = f(x)
    expected = {f"rot{90 * k}": rel(f(np.rot90(x, k, axes=(-2, -1))), reference) for k in (1, 2, 3)}
    measured = {e.element: e.rel_error for e in result.output.elements}
    for label, value in expected.items():
        assert measured[label] == pytest.approx(value, rel=0.01)
    assert result.output.max_rel_error == pytest.approx(max(expected.values()), rel=0.01)


def test_input_file_error_matches_an_independent_computation_image(tmp_path) -> None:
    model = seeded(lambda: nn.Conv2d(1, 2, 3, padding=1))
    x = np.random.default_rng(8).standard_normal((2, 1, 11, 11)).astype(np.float32)
    np.save(tmp_path / "data.npy", x)
    result = eqcheck.verify(model, "p4", inputs=str(tmp_path / "data.npy"), output_type="image")
    with torch.no_grad():
        f = lambda v: model(torch.from_numpy(np.ascontiguousarray(v))).numpy()  # noqa: E731
        reference = f(x)
        expected = max(rel(f(np.rot90(x, k, axes=(-2, -1))), np.rot90(reference, k, axes=(-2, -1)))
                       for k in (1, 2, 3))
    assert expected > 0.1
    assert result.output.max_rel_error == pytest.approx(expected, rel=0.01)


def test_assert_equivariant_names_the_worst_element(sample) -> None:
    result = eqcheck.verify(sample("p4cnn_broken"), "p4")
    worst = result.worst_elements[0]
    with pytest.raises(AssertionError) as failed:
        eqcheck.assert_equivariant(sample("p4cnn_broken"), "p4")
    message = str(failed.value)
    assert message.startswith("FAIL")
    first_row = next(line for line in message.splitlines() if line.startswith("  "))
    assert first_row.split()[0] == worst.element and "FAIL" in first_row
    assert f"{worst.rel_error:.2e}" in first_row


def test_assert_equivariant_returns_the_result_when_exact(sample) -> None:
    result = eqcheck.assert_equivariant(sample("p4cnn"), "p4")
    assert isinstance(result, eqcheck.VerificationResult)
    assert result.passed and result.output.max_rel_error < EXACT


def element_errors(result) -> list[tuple[str, float, float]]:
    return [(e.element, e.rel_error, e.max_abs_error) for e in result.output.elements]


def test_same_seed_same_numbers_other_seed_other_numbers(sample) -> None:
    first = eqcheck.verify(sample("z2cnn"), "p4", seed=5)
    again = eqcheck.verify(sample("z2cnn"), "p4", seed=5)
    other = eqcheck.verify(sample("z2cnn"), "p4", seed=6)
    assert element_errors(first) == element_errors(again)
    assert first.output.spread == again.output.spread
    assert [e[1] for e in element_errors(first)][1:] != [e[1] for e in element_errors(other)][1:]
    assert first.run.seed == 5 and other.run.seed == 6


def test_seed_also_chooses_the_sampled_permutations(sample) -> None:
    a = eqcheck.verify(sample("deepsets_equivariant"), "perm", seed=1)
    b = eqcheck.verify(sample("deepsets_equivariant"), "perm", seed=1)
    c = eqcheck.verify(sample("deepsets_equivariant"), "perm", seed=2)
    assert element_errors(a) == element_errors(b)
    assert element_errors(a) != element_errors(c)


def test_so2_on_a_c4_model_passes_the_right_angles_only(sample) -> None:
    result = eqcheck.verify(sample("p4cnn"), "so2")
    by_label = {e.element: e for e in result.output.elements}
    for label in ("e", "rot90", "rot180", "rot270"):
        assert by_label[label].exact and by_label[label].passed and by_label[label].rel_error < EXACT
    interpolated = [e for e in result.output.elements if not e.exact]
    assert interpolated and all(e.interpolation_floor is not None for e in interpolated)
    assert not result.passed and max(e.rel_error for e in interpolated) > 0.05
    assert "interpolated-only" in diagnosis_codes(result) and "not-c4" not in diagnosis_codes(result)


def test_so2_on_a_plain_cnn_fails_at_the_right_angles(sample) -> None:
    result = eqcheck.verify(sample("z2cnn"), "so2")
    by_label = {e.element: e for e in result.output.elements}
    assert not by_label["rot90"].passed and by_label["rot90"].rel_error > 0.1
    assert "not-c4" in diagnosis_codes(result)


def test_a_check_of_the_identity_alone_does_not_pass(sample) -> None:
    from eqcheck.errors import UsageError

    try:
        result = eqcheck.verify(sample("p4cnn"), "perm")
    except UsageError:
        return
    assert not result.passed
