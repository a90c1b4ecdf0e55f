"""Plain-PyTorch models of the eqcheck validation zoo ("pyspec" format).

make_torch_zoo.py copies this file to build/zoo/torch_models.py; the manifest refers
to a factory as "build/zoo/torch_models.py:<factory>".  Every factory takes no
argument and returns a torch.nn.Module with deterministic weights (its own seed,
drawn inside torch.random.fork_rng so the caller's RNG state is untouched), already
in the mode it is meant to be checked in (eval, except dropout_train).

Only torch is needed to import this file.
"""
import torch
from torch import nn

D_MODEL = 16
SET_SIZE = 10


def _seeded(seed, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _encoder():
    layer = nn.TransformerEncoderLayer(d_model=D_MODEL, nhead=4, dim_feedforward=32,
                                       dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)


def transformer_set():
    """TransformerEncoder (d_model 16, 4 heads, 2 layers, dropout 0, batch_first), no
    positional information: permutation-EQUIVARIANT on the set axis (dim 1).
    Input [B, N, 16] -> output [B, N, 16]."""
    return _seeded(11, _encoder).eval()


class PosEmbTransformer(nn.Module):
    """The same encoder with a learned positional embedding added to the input: breaks
    permutation equivariance (the embedding 'pos' is the broken layer)."""

    def __init__(self, n=SET_SIZE):
        super().__init__()
        self.pos = nn.Parameter(0.5 * torch.randn(1, n, D_MODEL))
        self.encoder = _encoder()

    def forward(self, x):
        return self.encoder(x + self.pos)


def transformer_posemb():
    """TransformerEncoder with a learned positional embedding [1, 10, 16] added to the
    input (fixed N = 10). NOT permutation equivariant."""
    return _seeded(12, PosEmbTransformer).eval()


def _cnn(padding_mode, stride2=False, dropout=None):
    layers = [nn.Conv2d(3, 8, 3, padding=1, padding_mode=padding_mode), nn.ReLU()]
    if dropout is not None:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Conv2d(8, 8, 3, padding=1, padding_mode=padding_mode,
                         stride=2 if stride2 else 1), nn.ReLU(),
               nn.Conv2d(8, 4, 3, padding=1, padding_mode=padding_mode)]
    return nn.Sequential(*layers)


def cnn_circular():
    """3 x Conv2d(3x3, padding 1, padding_mode='circular') + ReLU, no stride:
    exactly equivariant to circular shifts (torch.roll). [B,3,32,32] -> [B,4,32,32]."""
    return _seeded(21, lambda: _cnn("circular")).eval()


def cnn_zeropad():
    """Same as cnn_circular with zero padding: NOT equivariant to circular shifts (the
    border), exactly equivariant to zero-fill shifts away from the border (receptive
    field radius 3). [B,3,32,32] -> [B,4,32,32]."""
    return _seeded(22, lambda: _cnn("zeros")).eval()


def cnn_circular_stride2():
    """Circular-padded CNN whose second conv has stride 2: [B,3,32,32] -> [B,4,16,16].
    A shift t of the input (t multiple of 2) shifts the output by t/2 exactly; odd
    shifts have no exact counterpart on the output grid."""
    return _seeded(23, lambda: _cnn("circular", stride2=True)).eval()


def cnn_dropout_train():
    """cnn_circular with nn.Dropout(0.3) after the first ReLU, left in TRAIN mode:
    non-deterministic, so even the identity element shows an error."""
    return _seeded(24, lambda: _cnn("circular", dropout=0.3)).train()


class ManualDropout(nn.Module):
    """Dropout written by hand (rand_like mask): exports to ONNX as RandomUniformLike +
    Less/Greater + Mul, which onnxruntime does NOT optimise away (unlike a Dropout node)."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)
        return x * keep / (1.0 - self.p)


def cnn_manual_dropout():
    """cnn_circular with a hand-written random mask (p=0.3) after the first ReLU, active
    in every mode: non-deterministic in torch AND in onnxruntime."""
    def build():
        m = _cnn("circular")
        return nn.Sequential(m[0], m[1], ManualDropout(0.3), *list(m)[2:])
    return _seeded(25, build).eval()


FACTORIES = {
    "transformer_set": transformer_set,
    "transformer_posemb": transformer_posemb,
    "cnn_circular": cnn_circular,
    "cnn_zeropad": cnn_zeropad,
    "cnn_circular_stride2": cnn_circular_stride2,
    "cnn_dropout_train": cnn_dropout_train,
    "cnn_manual_dropout": cnn_manual_dropout,
}
