"""eqcheck's numbers beside e3nn's own on e3nn models: the same inputs, the same rotations.

    pip install e3nn && python benchmarks/bench_e3nn_agreement.py

For each model (an exact e3nn network, and the same one with a plain Linear on its irreps output) and
group, eqcheck checks it on a fixed input; then, for each element eqcheck tested (its matrix and
translation are in the result), the error is computed as e3nn computes it: ``max |f(g.x) - D(g) f(x)|``
with e3nn's ``Irreps.D_from_matrix``. The two max abs errors are printed side by side with their ratio,
and e3nn's own ``equivariance_error`` (its own random rotations) for scale. e3nn is not a dependency of
eqcheck: this script is the only place it is needed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from e3nn import o3
from e3nn.util.test import equivariance_error

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import eqcheck  # noqa: E402

IRREPS_OUT = "2x0e+1x1o+1x1e"


class Network(torch.nn.Module):
    """Spherical harmonics of centred positions, a linear layer, a tensor product: irreps out per point."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.lin = o3.Linear("1x0e+1x1o+1x2e", "4x0e+2x1o+1x1e+1x2e")
        self.tp = o3.FullyConnectedTensorProduct("4x0e+2x1o+1x1e+1x2e", "1x0e+1x1o+1x2e", IRREPS_OUT)
        self.plain = torch.nn.Linear(8, 8) if broken else None

    def forward(self, pos):
        centred = pos - pos.mean(-2, keepdim=True)
        sh = o3.spherical_harmonics([0, 1, 2], centred, normalize=False)
        out = self.tp(self.lin(sh), sh)
        return self.plain(out) if self.plain is not None else out


def e3nn_style(model, pos: np.ndarray, matrix, translation) -> float:
    """``max |f(x R^T + t) - f(x) D(g)^T|`` as e3nn measures it, for one element eqcheck tested."""
    r = torch.tensor(matrix, dtype=torch.float64)
    t = torch.zeros(3, dtype=torch.float64) if translation is None else torch.tensor(translation)
    x = torch.from_numpy(pos).double()
    d = o3.Irreps(IRREPS_OUT).D_from_matrix(r)
    with torch.no_grad():
        moved = model(((x @ r.T) + t).float()).double()
        expected = model(x.float()).double() @ d.T
    return float((moved - expected).abs().max())


def main() -> None:
    rng = np.random.default_rng(0)
    pos = rng.standard_normal((2, 40, 3)).astype(np.float32)
    print(f"{'model':<8} {'group':<5} {'eqcheck max abs':>16} {'e3nn-style, same g':>19} {'ratio':>6} "
          f"{'e3nn equivariance_error':>24}")
    for broken in (False, True):
        torch.manual_seed(0)
        model = Network(broken).eval()
        for group in ("so3", "o3", "e3"):
            result = eqcheck.verify(model, group, inputs={"pos": pos}, output_type=IRREPS_OUT, per_layer=False)
            ours = max(e.max_abs_error for e in result.output.elements)
            theirs = max(e3nn_style(model, pos, e.matrix, e.translation) for e in result.output.elements)
            with torch.no_grad():
                own = equivariance_error(model, [torch.from_numpy(pos)], irreps_in=["cartesian_points"],
                                         irreps_out=[IRREPS_OUT], ntrials=8, do_parity=group != "so3",
                                         do_translation=group == "e3")
            print(f"{'broken' if broken else 'exact':<8} {group:<5} {ours:16.3e} {theirs:19.3e} "
                  f"{ours / theirs if theirs else float('nan'):6.3f} {max(float(v.max()) for v in own.values()):24.3e}")


if __name__ == "__main__":
    main()
