"""Tiny PyTorch models for checking eqcheck's per-layer analysis (p4).

The p4 layers here are written independently of eqcheck (no ``eqcheck.nn``): plain torch,
filters rotated with ``torch.rot90`` and the rotation axis shifted cyclically.  Group feature
maps are ``[B, C, 4, H, W]``; under the rotation r^k of the input a map transforms as
``rot90(y, k, dims=(-2, -1)).roll(+k, dims=2)`` (CONVENTIONS section 2; ``self_check()``
below checks every layer numerically, and that the -k roll is wrong).

Every factory takes no argument and returns an eval-mode module with ``example_input_shape``,
so ``eqcheck verify benchmarks/zoo/layers/models.py:NAME --group p4`` runs it.  Weights are
seeded inside ``torch.random.fork_rng`` (the caller's RNG is untouched).

Only torch is needed to import this file.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

C = 4          # channels of the group maps
SIZE = 15      # odd spatial size of the image inputs


def _seeded(seed, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build()
    return module.eval()


# --------------------------------------------------------------------------- p4 layers

class Lift(nn.Module):
    """Z2 -> P4 lifting conv: [B, Cin, H, W] -> [B, Cout, 4, H', W'];
    out[:, :, j] = conv2d(x, rot90(W, j))."""

    def __init__(self, cin, cout, k=3, padding=1):
        super().__init__()
        self.padding = padding
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k) / math.sqrt(cin * k * k))
        self.bias = nn.Parameter(0.1 * torch.randn(cout))

    def forward(self, x):
        w = torch.stack([torch.rot90(self.weight, j, dims=(-2, -1)) for j in range(4)], dim=1)
        cout, _, cin, k, _ = w.shape
        y = F.conv2d(x, w.reshape(cout * 4, cin, k, k), padding=self.padding)
        y = y.view(y.shape[0], cout, 4, *y.shape[-2:])
        return y + self.bias.view(1, -1, 1, 1, 1)


class GConv(nn.Module):
    """P4 -> P4 group conv: [B, Cin, 4, H, W] -> [B, Cout, 4, H', W'];
    the filter of output rotation j is rot90(W, j) with its input-rotation axis rolled by j:
    W_j[:, :, i] = rot90(W[:, :, (i - j) mod 4], j)."""

    def __init__(self, cin, cout, k=3, padding=1, bias=True):
        super().__init__()
        self.padding = padding
        self.weight = nn.Parameter(torch.randn(cout, cin, 4, k, k) / math.sqrt(cin * 4 * k * k))
        self.bias = nn.Parameter(0.1 * torch.randn(cout)) if bias else None

    def forward(self, x):
        filters = [torch.rot90(torch.roll(self.weight, j, dims=2), j, dims=(-2, -1)) for j in range(4)]
        w = torch.stack(filters, dim=1)                       # [Cout, 4(out j), Cin, 4(in i), k, k]
        cout, _, cin, _, k, _ = w.shape
        b, _, _, h, wd = x.shape
        y = F.conv2d(x.reshape(b, cin * 4, h, wd), w.reshape(cout * 4, cin * 4, k, k), padding=self.padding)
        y = y.view(b, cout, 4, *y.shape[-2:])
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1, 1)
        return y


class PlainOnGroup(nn.Module):
    """A plain nn.Conv2d on a group map ([B, C, 4, H, W] -> [B, C*4, H, W] -> conv -> back):
    its weights are not tied, so it breaks p4."""

    def __init__(self, cin, cout, k=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(cin * 4, cout * 4, k, padding=padding)

    def forward(self, x):
        b, c, g, h, w = x.shape
        y = self.conv(x.reshape(b, c * g, h, w))
        return y.view(b, -1, g, *y.shape[-2:])


class GroupPool(nn.Module):
    """Mean over rotations and space: [B, C, 4, H, W] -> [B, C] (invariant)."""

    def forward(self, x):
        return x.mean(dim=(2, 3, 4))


# --------------------------------------------------------------------------- models

class NestedSequential(nn.Module):
    def __init__(self, broken):
        super().__init__()
        middle = PlainOnGroup(C, C) if broken else GConv(C, C)
        self.blocks = nn.Sequential(Lift(1, C), nn.ReLU(), GConv(C, C), nn.ReLU(), middle, nn.ReLU(),
                                    GConv(C, C), nn.ReLU(), GConv(C, C), nn.ReLU())
        self.pool = GroupPool()
        self.head = nn.Linear(C, 3)
        self.example_input_shape = (2, 1, SIZE, SIZE)

    def forward(self, x):
        return self.head(self.pool(self.blocks(x)))


def nested_sequential_broken():
    """Sequential of p4 layers with a plain conv on the group map at blocks.4: FAIL at blocks.4."""
    return _seeded(1, lambda: NestedSequential(broken=True))


def exact_nested():
    """The same Sequential without the plain layer: exact."""
    return _seeded(1, lambda: NestedSequential(broken=False))


class ModuleListLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.lift = Lift(1, C)
        self.stages = nn.ModuleList([GConv(C, C), GConv(C, C), PlainOnGroup(C, C), GConv(C, C)])
        self.pool = GroupPool()
        self.example_input_shape = (2, 1, SIZE, SIZE)

    def forward(self, x):
        x = F.relu(self.lift(x))
        for stage in self.stages:
            x = F.relu(stage(x))
        return self.pool(x)


def modulelist_loop_broken():
    """ModuleList of GConvs iterated in forward; stages.2 is a plain conv: FAIL at stages.2."""
    return _seeded(2, ModuleListLoop)


class ModuleDictStages(nn.Module):
    def __init__(self):
        super().__init__()
        self.lift = Lift(1, C)
        self.stages = nn.ModuleDict({"early": GConv(C, C), "middle": PlainOnGroup(C, C),
                                     "late": GConv(C, C)})
        self.pool = GroupPool()
        self.example_input_shape = (2, 1, SIZE, SIZE)

    def forward(self, x):
        x = F.relu(self.lift(x))
        for key in ("early", "middle", "late"):
            x = torch.relu(self.stages[key](x))
        return self.pool(x)


def moduledict_broken():
    """ModuleDict of named stages called by key; stages.middle is plain: FAIL at stages.middle."""
    return _seeded(3, ModuleDictStages)


class TwiceCalled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lift = Lift(1, C)
        self.g = GConv(C, C)
        self.plain = PlainOnGroup(C, C)
        self.pool = GroupPool()
        self.example_input_shape = (2, 1, SIZE, SIZE)

    def forward(self, x):
        x = F.relu(self.lift(x))
        x = F.relu(self.g(x))
        x = F.relu(self.g(x))     # the same module (same weights) again
        x = F.relu(self.plain(x))
        return self.pool(x)


def twice_called_then_fault():
    """One exact GConv called twice (g#1, g#2: both exact), then a plain conv: FAIL at plain."""
    return _seeded(4, TwiceCalled)


class FunctionalRoll(nn.Module):
    def __init__(self):
        super().__init__()
        self.lift = Lift(1, C)
        self.g1 = GConv(C, C)
        self.g2 = GConv(C, C)
        self.pool = GroupPool()
        self.example_input_shape = (2, 1, SIZE, SIZE)

    def forward(self, x):
        x = F.relu(self.g1(F.relu(self.lift(x))))
        x = torch.roll(x, 1, dims=-1)          # a circular shift along W: breaks p4
        x = F.relu(self.g2(x))
        return self.pool(x)


def functional_roll():
    """p4 layers with a functional torch.roll along W in forward: FAIL at the roll."""
    return _seeded(5, FunctionalRoll)


class FoldedGroupAxis(nn.Module):
    def __init__(self):
        super().__init__()
        self.lift = Lift(1, C)
        self.pointwise = nn.Sequential(nn.Conv2d(C, C, 1), nn.ReLU())
        self.g = GConv(C, C)
        self.pool = GroupPool()
        self.example_input_shape = (2, 1, SIZE, SIZE)

    def forward(self, x):
        y = F.relu(self.lift(x))                               # [B, C, 4, H, W]
        b, c, g, h, w = y.shape
        z = y.transpose(1, 2).reshape(b * g, c, h, w)          # [B*4, C, H, W]
        z = self.pointwise(z)                                  # the same 1x1 block on every rotation
        y = z.reshape(b, g, -1, h, w).transpose(1, 2)          # back to [B, C, 4, H, W]
        y = F.relu(self.g(y))
        return self.pool(y)


def folded_group_axis_exact():
    """Group axis folded into the batch for a pointwise 1x1 conv + ReLU, then unfolded: exact."""
    return _seeded(6, FoldedGroupAxis)


class SmallViT(nn.Module):
    def __init__(self, d=32, patch=4, size=16, heads=4, classes=5):
        super().__init__()
        n = (size // patch) ** 2
        self.patch_embed = nn.Conv2d(3, d, patch, stride=patch)
        self.cls_token = nn.Parameter(0.5 * torch.randn(1, 1, d))
        self.pos_embed = nn.Parameter(0.5 * torch.randn(1, n + 1, d))
        layer = nn.TransformerEncoderLayer(d_model=d, nhead=heads, dim_feedforward=2 * d, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)
        self.example_input_shape = (2, 3, size, size)

    def forward(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)     # [B, 16, d]
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)
        t = t + self.pos_embed
        t = self.encoder(t)
        return self.head(t[:, 0])


def small_vit():
    """Patch-4 ViT on 16x16 (cls token, learned position embedding, 2 encoder layers): NOT p4."""
    return _seeded(7, SmallViT)


class ZeroHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.lift = Lift(1, C)
        self.g = GConv(C, C)
        self.pool = GroupPool()
        self.head = nn.Linear(C, 3)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.example_input_shape = (2, 1, SIZE, SIZE)

    def forward(self, x):
        return self.head(self.pool(F.relu(self.g(F.relu(self.lift(x))))))


def zero_head():
    """Exact p4 features, zero-initialised Linear head: the output is identically zero."""
    return _seeded(8, ZeroHead)


class ResBlock(nn.Module):
    def __init__(self, broken_skip):
        super().__init__()
        self.conv1 = GConv(C, C)
        self.conv2 = GConv(C, C)
        self.skip = PlainOnGroup(C, C, k=1, padding=0) if broken_skip else GConv(C, C, k=1, padding=0)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.skip(x))


class ResNetish(nn.Module):
    def __init__(self, broken_skip):
        super().__init__()
        self.lift = Lift(1, C)
        self.block = ResBlock(broken_skip)
        self.pool = GroupPool()
        self.head = nn.Linear(C, 3)
        self.example_input_shape = (2, 1, SIZE + 2, SIZE + 2)

    def forward(self, x):
        return self.head(self.pool(self.block(F.relu(self.lift(x)))))


def resnet_block_exact():
    """Residual block of p4 convs with a 1x1 p4 conv on the skip path: exact."""
    return _seeded(9, lambda: ResNetish(broken_skip=False))


def resnet_block_broken_skip():
    """The same block with a plain 1x1 conv on the skip path: FAIL at block.skip."""
    return _seeded(9, lambda: ResNetish(broken_skip=True))


FACTORIES = ["nested_sequential_broken", "modulelist_loop_broken", "moduledict_broken",
             "twice_called_then_fault", "functional_roll", "folded_group_axis_exact", "small_vit",
             "zero_head", "exact_nested", "resnet_block_exact", "resnet_block_broken_skip"]


# --------------------------------------------------------------------------- self check

def act_group(y, k, sign=+1):
    """r^k on a group map [B, C, 4, H, W]: rotate space, roll the rotation axis by sign*k."""
    return torch.roll(torch.rot90(y, k, dims=(-2, -1)), sign * k, dims=2)


def _rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def self_check(verbose=True):
    """Check each p4 layer (and each model's invariance / failure) independently of eqcheck.
    Returns {name: max rel error over k = 1..3}."""
    torch.manual_seed(0)
    report = {}
    x = torch.randn(2, 1, SIZE, SIZE)
    h = torch.randn(2, C, 4, SIZE, SIZE)
    lift, gconv, gconv1 = Lift(1, C), GConv(C, C), GConv(C, C, k=1, padding=0)
    plain = PlainOnGroup(C, C)
    with torch.no_grad():
        for sign in (+1, -1):
            tag = "+k" if sign > 0 else "-k"
            report[f"Lift roll {tag}"] = max(_rel(lift(torch.rot90(x, k, dims=(-2, -1))),
                                                  act_group(lift(x), k, sign)) for k in (1, 2, 3))
            report[f"GConv roll {tag}"] = max(_rel(gconv(act_group(h, k, sign)),
                                                   act_group(gconv(h), k, sign)) for k in (1, 2, 3))
        report["GConv 1x1 roll +k"] = max(_rel(gconv1(act_group(h, k)), act_group(gconv1(h), k)) for k in (1, 2, 3))
        report["PlainOnGroup roll +k"] = max(_rel(plain(act_group(h, k)), act_group(plain(h), k)) for k in (1, 2, 3))
        for name in FACTORIES:
            model = globals()[name]()
            inp = torch.randn(*model.example_input_shape)
            out = model(inp)
            errs = [(model(torch.rot90(inp, k, dims=(-2, -1))) - out).double().norm().item()
                    / max(out.double().norm().item(), 1e-30) for k in (1, 2, 3)]
            report[f"model {name} (invariant out)"] = max(errs)
    if verbose:
        for key, val in report.items():
            print(f"{key:48s} {val:.3e}")
    return report


if __name__ == "__main__":
    self_check()
