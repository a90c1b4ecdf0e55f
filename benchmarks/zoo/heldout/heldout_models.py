"""Plain-torch, GrouPy and egnn-pytorch models of the held-out set, as factories eqcheck can load
(``build/heldout/heldout_models.py:<factory>``, a copy of this file). Each factory seeds torch itself, so
the pyspec, the ONNX file and the .pt2 built from it hold the same weights. GrouPy factories need the
patched GrouPy copy on PYTHONPATH (build/heldout/third_party/groupy), egnn ones egnn-pytorch.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _seeded(seed):
    torch.manual_seed(seed)


# ---------------------------------------------------------------- GrouPy G-CNNs
class GroupyNet(nn.Module):
    """P4ConvZ2 -> P4ConvP4 ... (or P4M), ReLU between; output the group feature map, 5-D
    ``[B, C, |H|, H, W]`` (GrouPy's own) or flattened ``[B, C*|H|, H, W]``. ``broken``: a plain Conv2d
    on the flattened map after the first layer (module ``plain``)."""

    def __init__(self, group="p4", flat=False, broken=False, cin=2, hidden=4, cout=3):
        super().__init__()
        from groupy.gconv.pytorch_gconv import P4ConvP4, P4ConvZ2, P4MConvP4M, P4MConvZ2
        z2, gg = (P4ConvZ2, P4ConvP4) if group == "p4" else (P4MConvZ2, P4MConvP4M)
        self.n = 4 if group == "p4" else 8
        self.flat = flat
        self.gconv1 = z2(cin, hidden, 3, padding=1)
        self.plain = nn.Conv2d(hidden * self.n, hidden * self.n, 3, padding=1) if broken else None
        self.gconv2 = gg(hidden, hidden, 3, padding=1)
        self.gconv3 = gg(hidden, cout, 3, padding=1)

    def forward(self, x):
        h = torch.relu(self.gconv1(x))
        if self.plain is not None:
            b, c, g, hh, ww = h.shape
            h = self.plain(h.reshape(b, c * g, hh, ww)).reshape(b, c, g, hh, ww)
        h = torch.relu(self.gconv2(h))
        y = self.gconv3(h)
        if self.flat:
            y = y.reshape(y.shape[0], -1, y.shape[-2], y.shape[-1])
        return y


def groupy_p4_5d():
    _seeded(101); return GroupyNet("p4").eval()


def groupy_p4_flat():
    _seeded(101); return GroupyNet("p4", flat=True).eval()


def groupy_p4m_5d():
    _seeded(102); return GroupyNet("p4m", hidden=3, cout=2).eval()


def groupy_p4m_flat():
    _seeded(102); return GroupyNet("p4m", flat=True, hidden=3, cout=2).eval()


def groupy_p4_broken():
    _seeded(103); return GroupyNet("p4", broken=True).eval()


def groupy_p4_broken_flat():
    _seeded(103); return GroupyNet("p4", flat=True, broken=True).eval()


def groupy_p4m_broken_5d():
    _seeded(104); return GroupyNet("p4m", broken=True, hidden=3, cout=2).eval()


def groupy_p4m_broken_flat():
    _seeded(104); return GroupyNet("p4m", flat=True, broken=True, hidden=3, cout=2).eval()


# ---------------------------------------------------------------- dense GNN
class PosEmb(nn.Module):
    def __init__(self, n, f):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, n, f))

    def forward(self, x):
        return x + self.pos


class DenseGNN(nn.Module):
    """Two message-passing layers ``h' = act(adj @ h W + h U)`` on x [B, N, F], adj [B, N, N]:
    node outputs [B, N, 4]. ``posemb``: a learned per-node embedding added to x first (module ``posemb``)."""

    def __init__(self, n=7, f=5, hidden=8, fout=4, posemb=False):
        super().__init__()
        self.posemb = PosEmb(n, f) if posemb else None
        self.msg1 = nn.Linear(f, hidden, bias=False)
        self.self1 = nn.Linear(f, hidden)
        self.msg2 = nn.Linear(hidden, fout, bias=False)
        self.self2 = nn.Linear(hidden, fout)

    def forward(self, x, adj):
        if self.posemb is not None:
            x = self.posemb(x)
        h = torch.relu(adj @ self.msg1(x) + self.self1(x))
        return adj @ self.msg2(h) + self.self2(h)


def gnn_dense():
    _seeded(201); return DenseGNN().eval()


def gnn_dense_posemb():
    _seeded(202); return DenseGNN(posemb=True).eval()


# ---------------------------------------------------------------- integer tokens
class TokenMean(nn.Module):
    """nn.Embedding(50, 8) -> MLP per token -> mean over tokens -> Linear: [B, L] int64 -> [B, 4]
    (invariant to permutations of the tokens)."""

    def __init__(self, vocab=50, d=8, out=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.mlp = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, d))
        self.head = nn.Linear(d, out)

    def forward(self, tokens):
        h = self.mlp(self.embed(tokens))
        return self.head(h.mean(dim=1))


class TokenSet(nn.Module):
    """nn.Embedding(50, 8) + the mean over tokens (DeepSets-style context) -> per-token Linear:
    [B, L] int64 -> [B, L, 6] (equivariant to permutations of the tokens)."""

    def __init__(self, vocab=50, d=8, out=6):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.local = nn.Linear(d, 16)
        self.ctx = nn.Linear(d, 16, bias=False)
        self.out = nn.Linear(16, out)

    def forward(self, tokens):
        e = self.embed(tokens)
        h = torch.relu(self.local(e) + self.ctx(e.mean(dim=1, keepdim=True)))
        return self.out(h)


def tokens_mean():
    _seeded(301); return TokenMean().eval()


def tokens_set():
    _seeded(302); return TokenSet().eval()


# ---------------------------------------------------------------- two outputs under p4
class SymConv(nn.Module):
    """Conv2d whose kernel is averaged over the 4 rotations: a p4-equivariant map of images."""

    def __init__(self, cin, cout, k):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k) / (cin * k * k) ** 0.5)
        self.bias = nn.Parameter(0.1 * torch.randn(cout))

    def forward(self, x):
        w, acc = self.weight, self.weight
        for _ in range(3):  # rot90 counter-clockwise = transpose then flip rows (ONNX has no rot90)
            w = w.transpose(-2, -1).flip(-2)
            acc = acc + w
        w = acc / 4
        return F.conv2d(x, w, self.bias, padding=self.weight.shape[-1] // 2)


class TwoHeads(nn.Module):
    """Shared SymConv trunk; output ``seg`` [B, 3, H, W] (SymConv, image) and a second output: ``logits``
    [B, 5] (pooled, invariant) or, when ``broken``, ``edges`` [B, 3, H, W] from a plain Conv2d
    (module ``edge_head``). ``mode``: "dict" | "tuple" (the order is seg, second)."""

    def __init__(self, broken=False, mode="dict"):
        super().__init__()
        self.trunk = SymConv(2, 6, 3)
        self.seg_head = SymConv(6, 3, 3)
        self.broken = broken
        self.mode = mode
        if broken:
            self.edge_head = nn.Conv2d(6, 3, 3, padding=1)
        else:
            self.cls_head = nn.Linear(6, 5)

    def forward(self, x):
        h = torch.relu(self.trunk(x))
        seg = self.seg_head(h)
        if self.broken:
            name, second = "edges", self.edge_head(h)
        else:
            name, second = "logits", self.cls_head(h.mean(dim=(-2, -1)))
        if self.mode == "dict":
            return {"seg": seg, name: second}
        return seg, second


def two_heads_dict():
    _seeded(401); return TwoHeads(mode="dict").eval()


def two_heads_tuple():
    _seeded(401); return TwoHeads(mode="tuple").eval()


def two_heads_broken_dict():
    _seeded(402); return TwoHeads(broken=True, mode="dict").eval()


def two_heads_broken_tuple():
    _seeded(402); return TwoHeads(broken=True, mode="tuple").eval()


# ---------------------------------------------------------------- EGNN (egnn-pytorch)
class EGNNNet(nn.Module):
    """Two egnn_pytorch.EGNN layers: (feats [B, N, 6], coors [B, N, 3]) -> (feats, coors)."""

    def __init__(self):
        super().__init__()
        from egnn_pytorch import EGNN
        self.layer1 = EGNN(dim=6, m_dim=8)
        self.layer2 = EGNN(dim=6, m_dim=8)

    def forward(self, feats, coors):
        feats, coors = self.layer1(feats, coors)
        return self.layer2(feats, coors)


def egnn_two_layers():
    _seeded(501); return EGNNNet().eval()


# ---------------------------------------------------------------- translations (1-D, 3-D)
class Conv1dNet(nn.Module):
    def __init__(self, mode="circular"):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 4, 5, padding=2, padding_mode=mode)
        self.conv2 = nn.Conv1d(4, 2, 3, padding=1, padding_mode=mode)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


class Conv3dNet(nn.Module):
    def __init__(self, mode="circular"):
        super().__init__()
        self.conv1 = nn.Conv3d(2, 3, 3, padding=1, padding_mode=mode)
        self.conv2 = nn.Conv3d(3, 2, 3, padding=1, padding_mode=mode)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


def conv1d_circular():
    _seeded(601); return Conv1dNet("circular").eval()


def conv1d_zeropad():
    _seeded(601); return Conv1dNet("zeros").eval()


def conv3d_circular():
    _seeded(602); return Conv3dNet("circular").eval()


def conv3d_zeropad():
    _seeded(602); return Conv3dNet("zeros").eval()
