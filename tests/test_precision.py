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


def test_an_onnx_graph_says_it_cannot_be_checked_in_float64(tmp_path) -> None:
    path = tmp_path / "far.onnx"
    torch.onnx.export(FarFromOrigin(), (torch.randn(2, 16, 3),), str(path), dynamo=False,
                      input_names=["pos"], dynamic_axes={"pos": {0: "batch"}})
    result = eqcheck.verify(str(path), "e3")
    (note,) = _precision(result)
    assert note.severity == "note" and "could not be checked in float64" in note.message
    assert "ONNX" in note.message
    assert np.isfinite(max(e.rel_error for e in result.outputs[0].elements))
