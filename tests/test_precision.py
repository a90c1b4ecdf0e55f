"""A float32 model that fails by a little is checked again in float64: rounding (the error falls to
float64's level) is named the cause and nothing else is blamed; a real break (the error stays) is not
excused; an ONNX graph, which cannot be cast, says so; the caller's module is never cast."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eqcheck  # noqa: E402
from eqcheck.precision import RERUN_BELOW  # noqa: E402


class FarFromOrigin(torch.nn.Module):
    """Exact under E(3) in exact arithmetic (squared distances of centred points), but the points are
    moved 3000 away first, where float32 rounds them to 2.4e-4."""

    def forward(self, pos):
        far = pos + 3000.0
        centred = far - far.mean(dim=1, keepdim=True)
        return (centred ** 2).sum(-1)


class SlightlyBroken(torch.nn.Module):
    """Centred squared distances plus 1e-3 of the absolute x coordinate: broken by about 1e-3."""

    def forward(self, pos):
        centred = pos - pos.mean(dim=1, keepdim=True)
        return (centred ** 2).sum(-1) + 1e-3 * pos[..., 0]


def _precision(result):
    return [d for d in result.diagnoses if d.code == "precision"]


def test_float32_rounding_is_told_from_a_broken_symmetry_by_a_float64_run() -> None:
    module = FarFromOrigin()
    result = eqcheck.verify(module, "e3", input_shape=(2, 16, 3))
    assert not result.passed  # the gate still fails: the tolerance is float32's
    worst = max(e.rel_error for e in result.outputs[0].elements)
    assert 1e-5 < worst < RERUN_BELOW
    (rounding,) = _precision(result)
    assert rounding.severity == "cause" and "float32 rounding" in rounding.message
    assert [d for d in result.diagnoses if d.severity == "cause"] == [rounding]  # nothing else is blamed
    assert result.first_failing_layer is None
    assert module(torch.zeros(1, 2, 3)).dtype == torch.float32  # the caller's module was not cast

    broken = eqcheck.verify(SlightlyBroken(), "e3", input_shape=(2, 16, 3))
    (stays,) = _precision(broken)
    assert stays.severity == "note" and stays.message.startswith("not float32 rounding")
    assert any(d.code == "absolute-coordinates" and d.severity == "cause" for d in broken.diagnoses)


def test_an_exact_or_a_badly_broken_model_is_not_run_again(monkeypatch) -> None:
    import eqcheck.api as api

    loads = []
    original = api.load_model
    monkeypatch.setattr(api, "load_model", lambda *a, **k: loads.append(k.get("dtype")) or original(*a, **k))

    class Centred(torch.nn.Module):
        def forward(self, pos):
            return ((pos - pos.mean(dim=1, keepdim=True)) ** 2).sum(-1)

    class Absolute(torch.nn.Module):
        def forward(self, pos):
            return (pos ** 2).sum(-1)

    assert eqcheck.verify(Centred(), "e3", input_shape=(2, 16, 3)).passed
    assert not eqcheck.verify(Absolute(), "e3", input_shape=(2, 16, 3)).passed  # error ~1: not rounding
    assert "float64" not in loads


def test_a_model_that_fails_only_at_interpolated_angles_is_not_run_again(monkeypatch) -> None:
    """Exact at the right angles, off at the others (a C4 model under so2): interpolation, not rounding;
    no float64 re-run and no precision note."""
    import eqcheck.api as api
    from eqcheck.nn import GroupPool, P4ConvP4, P4ConvZ2

    loads = []
    original = api.load_model
    monkeypatch.setattr(api, "load_model", lambda *a, **k: loads.append(k.get("dtype")) or original(*a, **k))
    torch.manual_seed(0)
    model = torch.nn.Sequential(P4ConvZ2(1, 4, 3, padding=1), torch.nn.ReLU(), P4ConvP4(4, 4, 3, padding=1),
                                GroupPool())
    result = eqcheck.verify(model, "so2", input_shape=(2, 1, 21, 21), output_type="image", per_layer=False)
    elements = result.outputs[0].elements
    assert not result.passed and all(e.passed for e in elements if e.exact)
    assert any(not e.passed for e in elements if not e.exact)
    assert "float64" not in loads and not _precision(result)


def test_an_onnx_graph_says_it_cannot_be_checked_in_float64(tmp_path) -> None:
    path = tmp_path / "far.onnx"
    torch.onnx.export(FarFromOrigin(), (torch.randn(2, 16, 3),), str(path), dynamo=False,
                      input_names=["pos"], dynamic_axes={"pos": {0: "batch"}})
    result = eqcheck.verify(str(path), "e3")
    (note,) = _precision(result)
    assert note.severity == "note" and "could not be checked in float64" in note.message
    assert "ONNX" in note.message
    assert np.isfinite(max(e.rel_error for e in result.outputs[0].elements))


BUILT_CONSTANT = '''
import math
import torch


class ChangeOfBasis(torch.nn.Module):
    """Exact under SO(3): vectors turned into another orthonormal basis and back, by a matrix the model
    computes as it is built (as e3nn builds its Wigner 3j and change-of-basis matrices), in torch's
    default dtype; its rounding is what a cast after the fact keeps."""

    def __init__(self):
        super().__init__()
        a, b = torch.tensor(0.3), torch.tensor(1.1)
        rz = torch.stack([torch.stack([a.cos(), -a.sin(), a * 0]), torch.stack([a.sin(), a.cos(), a * 0]),
                          torch.tensor([0.0, 0.0, 1.0])])
        rx = torch.stack([torch.tensor([1.0, 0.0, 0.0]), torch.stack([b * 0, b.cos(), -b.sin()]),
                          torch.stack([b * 0, b.sin(), b.cos()])])
        self.register_buffer("basis", rz @ rx)
        self.noise_scale = torch.randn(()).item()  # a random init: the seed makes runs repeat

    def forward(self, pos):
        return (pos @ self.basis) @ self.basis.T + 0.0 * self.noise_scale


def make():
    return ChangeOfBasis()
'''


def test_a_factory_checked_in_float64_builds_its_constants_in_float64(tmp_path) -> None:
    """A float32 constant cast to float64 leaves an error of 1e-8, which fails float64's tolerance; built
    under float64 the model is exact. The fixed seed makes two loads of a random factory alike."""
    source = tmp_path / "basis_model.py"
    source.write_text(BUILT_CONSTANT)
    spec = f"{source}:make"
    result = eqcheck.verify(spec, "so3", input_shape=(2, 16, 3), dtype="float64", output_type="1o")
    assert result.passed and result.outputs[0].max_rel_error < 1e-13
    assert torch.get_default_dtype() == torch.float32  # put back after loading and running
    from eqcheck.models.loader import load_model

    float32_build = load_model(spec).module
    cast = eqcheck.verify(float32_build, "so3", input_shape=(2, 16, 3), dtype="float64", output_type="1o")
    assert not cast.passed and 1e-9 < cast.outputs[0].max_rel_error < 1e-6  # the float32 constant's rounding
    assert load_model(spec).module.noise_scale == float32_build.noise_scale  # the same seed each load


class ScattersIntoZeros(torch.nn.Module):
    """Makes its own buffer as it runs (``torch.zeros`` in the default dtype) and scatters into it, as
    message-passing code does: in float64 the buffer must be float64 too (index_add_ refuses a mix)."""

    def forward(self, pos):
        centred = pos - pos.mean(dim=1, keepdim=True)
        sums = torch.zeros(pos.shape[0], 2)
        return sums.index_add_(1, torch.arange(pos.shape[1]) % 2, centred.norm(dim=-1))


def test_a_model_checked_in_float64_makes_its_own_tensors_in_float64() -> None:
    result = eqcheck.verify(ScattersIntoZeros(), "e3", input_shape=(2, 16, 3), dtype="float64")
    assert result.passed and result.outputs[0].max_rel_error < 1e-13
    assert torch.get_default_dtype() == torch.float32


LEAKY_FACTORY = '''
import torch


class Leaky(torch.nn.Module):
    """Random weights on centred points, plus a leak of 1e-4 of the absolute z: broken by about 1e-4."""

    def __init__(self):
        super().__init__()
        self.mix = torch.nn.Linear(1, 8)

    def forward(self, pos):
        centred = pos - pos.mean(dim=1, keepdim=True)
        return self.mix((centred ** 2).sum(-1, keepdim=True)).sum(1) + 1e-4 * pos[..., 2].sum(1, keepdim=True)


def make():
    return Leaky()
'''


def test_the_float64_re_run_of_a_factory_checks_the_same_weights(tmp_path) -> None:
    """The factory is called again under float64, which draws other random weights from the same seed;
    the re-run takes the checked model's, so its error is that network's, not another's."""
    source = tmp_path / "leaky.py"
    source.write_text(LEAKY_FACTORY)
    result = eqcheck.verify(f"{source}:make", "so3", input_shape=(2, 16, 3), per_layer=False)
    worst = max(e.rel_error for e in result.outputs[0].elements)
    (note,) = _precision(result)
    assert note.message.startswith("not float32 rounding")
    in_float64 = float(note.message.split("gives rel ")[1].split(" ")[0])
    assert abs(in_float64 - worst) <= 0.1 * worst  # the same break, measured again
