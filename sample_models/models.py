"""Sample models for eqcheck: exact p4/p4m G-CNNs, Deep Sets, a plain CNN and a deliberately broken P4CNN.

Each factory returns a module in eval() mode, deterministically initialised from a fixed seed,
with ``example_input_shape`` (batch 1) set on it. Imports only torch and eqcheck.nn, so the file
can be loaded by path (``sample_models/models.py:p4cnn``).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

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

SEED = 0
MNIST_SHAPE = (1, 1, 28, 28)
SET_SHAPE = (1, 10, 3)
BROKEN_LAYER = "conv4_broken_plain"


class PlainConvOnGroupFeatures(nn.Module):
    """THE FAULT of p4cnn_broken: a plain Conv2d on ``[B, C*4, H, W]`` where a P4ConvP4 belongs.

    It declares the action of the layer it replaces (p4 regular in and out), as a model author
    who believed it to be a group convolution would; it does not rotate or roll its filters.
    """

    eqcheck_group: ClassVar[str] = "p4"
    eqcheck_input_type: ClassVar[str] = "regular"
    eqcheck_output_type: ClassVar[str] = "regular"

    def __init__(self, in_fields: int, out_fields: int, kernel_size: int, orientations: int = 4) -> None:
        super().__init__()
        self.out_fields = out_fields
        self.orientations = orientations
        self.plain_conv2d = nn.Conv2d(in_fields * orientations, out_fields * orientations, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        out = self.plain_conv2d(x.flatten(1, 2))
        return out.unflatten(1, (self.out_fields, self.orientations))


def _finish(model: nn.Module, example_input_shape: tuple[int, ...]) -> nn.Module:
    """Calibrate batch-norm statistics on a fixed random batch, switch to eval, attach the input shape."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms:
        generator = torch.Generator().manual_seed(SEED + 1)
        batch = torch.randn((16,) + tuple(example_input_shape[1:]), generator=generator)
        for norm in norms:
            norm.momentum = None  # cumulative average: one pass gives the batch statistics
        model.train()
        with torch.no_grad():
            model(batch)
        for norm in norms:
            norm.momentum = 0.1
    model.eval()
    model.example_input_shape = tuple(example_input_shape)
    return model


def _seeded(build: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(SEED)
    return build()


def _p4cnn_layers(fields: int, broken_layer: int | None = None) -> OrderedDict[str, nn.Module]:
    """Cohen & Welling's P4CNN: 28 -> 26 -> 24 -> pool 12 -> 10 -> 8 -> 6 -> 4 -> (4x4) 1."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["conv1"] = P4ConvZ2(1, fields, 3)
    for index in range(1, 7):
        if index > 1:
            name = f"conv{index}"
            if index == broken_layer:
                layers[BROKEN_LAYER] = PlainConvOnGroupFeatures(fields, fields, 3)
            else:
                layers[name] = P4ConvP4(fields, fields, 3)
        layers[f"bn{index}"] = GroupBatchNorm(fields)
        layers[f"relu{index}"] = nn.ReLU()
        if index == 2:
            layers["pool2"] = GroupSpatialMaxPool(2)  # (24 - 2) % 2 == 0: the grid stays centred
    layers["conv7"] = P4ConvP4(fields, 10, 4)
    layers["group_pool"] = GroupPool("max")
    layers["spatial_pool"] = SpatialPool("mean")
    return layers


def p4cnn() -> nn.Module:
    """P4CNN for rotated MNIST: 1x28x28 -> 10 logits, exactly p4-invariant (~25k parameters)."""
    return _finish(_seeded(lambda: nn.Sequential(_p4cnn_layers(fields=10))), MNIST_SHAPE)


def p4cnn_broken() -> nn.Module:
    """P4CNN whose layer 4 is a plain Conv2d (module ``conv4_broken_plain``): not p4-invariant."""
    return _finish(_seeded(lambda: nn.Sequential(_p4cnn_layers(fields=10, broken_layer=4))), MNIST_SHAPE)


def p4mcnn() -> nn.Module:
    """A small p4m network: 1x28x28 -> 10 logits, exactly p4m-invariant."""

    def build() -> nn.Module:
        return nn.Sequential(OrderedDict([
            ("conv1", P4MConvZ2(1, 8, 3)),           # 28 -> 26
            ("relu1", nn.ReLU()),
            ("conv2", P4MConvP4M(8, 8, 3)),          # 26 -> 24
            ("bn2", GroupBatchNorm(8)),
            ("relu2", nn.ReLU()),
            ("pool2", GroupSpatialMaxPool(2)),       # 24 -> 12
            ("conv3", P4MConvP4M(8, 8, 3)),          # 12 -> 10
            ("relu3", nn.ReLU()),
            ("conv4", P4MConvP4M(8, 10, 3)),         # 10 -> 8
            ("group_pool", GroupPool("max")),
            ("spatial_pool", SpatialPool("mean")),
        ]))

    return _finish(_seeded(build), MNIST_SHAPE)


def p4_fcn() -> nn.Module:
    """A fully convolutional p4 network: 1x28x28 -> regular feature map [B, 4, 4, 28, 28] (equivariant)."""

    def build() -> nn.Module:
        return nn.Sequential(OrderedDict([
            ("conv1", P4ConvZ2(1, 8, 3, padding=1)),
            ("relu1", nn.ReLU()),
            ("conv2", P4ConvP4(8, 8, 3, padding=1)),
            ("bn2", GroupBatchNorm(8)),
            ("relu2", nn.ReLU()),
            ("conv3", P4ConvP4(8, 4, 3, padding=1)),
        ]))

    return _finish(_seeded(build), MNIST_SHAPE)


def deepsets() -> nn.Module:
    """Permutation-invariant Deep Sets classifier: [B, 10, 3] -> [B, 5]."""

    def build() -> nn.Module:
        return nn.Sequential(OrderedDict([
            ("set1", DeepSetsLayer(3, 32, pool="sum")),
            ("relu1", nn.ReLU()),
            ("set2", DeepSetsLayer(32, 32, pool="mean")),
            ("relu2", nn.ReLU()),
            ("set_pool", SetPool("sum")),
            ("classifier", nn.Linear(32, 5)),
        ]))

    return _finish(_seeded(build), SET_SHAPE)


def deepsets_equivariant() -> nn.Module:
    """Permutation-equivariant Deep Sets model: [B, 10, 3] -> [B, 10, 4]."""

    def build() -> nn.Module:
        return nn.Sequential(OrderedDict([
            ("set1", DeepSetsLayer(3, 32, pool="sum")),
            ("relu1", nn.ReLU()),
            ("set2", DeepSetsLayer(32, 32, pool="max")),
            ("relu2", nn.ReLU()),
            ("set3", DeepSetsLayer(32, 4, pool="mean")),
        ]))

    return _finish(_seeded(build), SET_SHAPE)


def z2cnn() -> nn.Module:
    """Cohen & Welling's Z2CNN baseline: plain 3x3 convs with 20 channels, 1x28x28 -> 10 logits (not invariant)."""

    def build() -> nn.Module:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 20
        for index in range(1, 7):
            layers[f"conv{index}"] = nn.Conv2d(1 if index == 1 else channels, channels, 3)
            layers[f"bn{index}"] = nn.BatchNorm2d(channels)
            layers[f"relu{index}"] = nn.ReLU()
            if index == 2:
                layers["pool2"] = nn.MaxPool2d(2)
        layers["conv7"] = nn.Conv2d(channels, 10, 4)
        layers["flatten"] = nn.Flatten(1)
        return nn.Sequential(layers)

    return _finish(_seeded(build), MNIST_SHAPE)


MODEL_FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "p4cnn": p4cnn,
    "p4cnn_broken": p4cnn_broken,
    "p4mcnn": p4mcnn,
    "p4_fcn": p4_fcn,
    "deepsets": deepsets,
    "deepsets_equivariant": deepsets_equivariant,
    "z2cnn": z2cnn,
}
