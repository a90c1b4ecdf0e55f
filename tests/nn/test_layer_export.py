"""Every layer exports (legacy ONNX, dynamo ONNX, torch.export) and the export equals the module."""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from eqcheck.nn import (
    DeepSetsLayer,
    GroupBatchNorm,
    GroupPool,
    GroupSpatialMaxPool,
    P4ConvP4,
    P4ConvZ2,
    P4MConvP4M,
    P4MConvZ2,
    SetPool,
    SpatialPool,
)

EXPORT_BATCH, RUN_BATCH = 2, 3


def _p4_model() -> nn.Module:
    return nn.Sequential(
        P4ConvZ2(1, 4, 3), GroupBatchNorm(4), nn.ReLU(), GroupSpatialMaxPool(2),
        P4ConvP4(4, 3, 3, padding=1), GroupPool("max"), SpatialPool("mean"),
    )


def _p4m_model() -> nn.Module:
    return nn.Sequential(P4MConvZ2(1, 3, 3), nn.ReLU(), P4MConvP4M(3, 2, 3, stride=2), GroupPool("mean"))


def _set_model() -> nn.Module:
    return nn.Sequential(DeepSetsLayer(3, 8, "max"), nn.ReLU(), DeepSetsLayer(8, 4, "mean"), SetPool("sum"))


MODELS = {
    "p4": (_p4_model, (1, 10, 10)),
    "p4m": (_p4m_model, (1, 11, 11)),
    "deepsets": (_set_model, (6, 3)),
}


def _model_and_inputs(name: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    factory, shape = MODELS[name]
    torch.manual_seed(0)
    model = factory()
    for module in model.modules():
        if isinstance(module, GroupBatchNorm):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    model.eval()
    return model, torch.randn((EXPORT_BATCH,) + shape), torch.randn((RUN_BATCH,) + shape)


def _run_onnx(model_bytes: bytes, x: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def _max_abs_diff(actual: np.ndarray | torch.Tensor, expected: torch.Tensor) -> float:
    if isinstance(actual, torch.Tensor):
        actual = actual.detach().numpy()
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected.detach().double().numpy()).max())


@pytest.mark.parametrize("name", list(MODELS))
def test_legacy_onnx_export_matches(name: str) -> None:
    model, example, x = _model_and_inputs(name)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), buffer, dynamo=False, opset_version=17,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    assert _max_abs_diff(_run_onnx(buffer.getvalue(), x), model(x)) < 1e-5


@pytest.mark.parametrize("name", list(MODELS))
def test_dynamo_onnx_export_matches(name: str) -> None:
    model, example, x = _model_and_inputs(name)
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
    assert _max_abs_diff(_run_onnx(program.model_proto.SerializeToString(), x), model(x)) < 1e-5


@pytest.mark.parametrize("name", list(MODELS))
def test_torch_export_matches(name: str) -> None:
    model, example, x = _model_and_inputs(name)
    exported = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    assert _max_abs_diff(exported.module()(x), model(x)) < 1e-5
