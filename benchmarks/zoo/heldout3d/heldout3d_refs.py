"""Independent reference errors for the 3-D held-out set (torch + e3nn; nothing from eqcheck).

- 3-D actions (CONVENTIONS section 8, e3nn's conventions): positions ``x R^T + t``; an irreps tensor
  (``1o``, ``1e``, ``0o``, ``2x0e+1x1o+1x2e``, ...) ``f D(R)^T`` with ``D = e3nn.o3.Irreps(...).D_from_matrix(R)``
  (det R = -1 for the inversion and its compositions); ``cartesian`` ``R P R^T``; ``invariant`` unchanged.
- permutations (CONVENTIONS section 9): set inputs ``x[p]``; ``edge_index`` ``p_inv[edge_index]``; a
  ``batch`` vector ``batch[p]``; node outputs ``y[p]``; graph outputs unchanged.
- the error of one element, as eqcheck defines it: ``||f(g.x) - g.f(x)|| / ||g.f(x)||`` over the whole output
  (float64 norms), and the max abs error; per output.
- e3nn's own ``e3nn.util.test.equivariance_error`` (max abs per output), either with its own random
  rotations or made to use given elements (``o3.rand_matrix`` and the translation draw patched to return
  them: e3nn's own transform and comparison code runs unchanged).
"""
from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

import numpy as np
import torch

ALIASES = {"vector": "1o", "pseudovector": "1e", "1o": "1x1o", "1e": "1x1e", "0e": "1x0e", "0o": "1x0o"}


def _irreps(kind):
    from e3nn import o3
    return o3.Irreps(ALIASES.get(kind, kind))


def load_factory(spec: str):
    """``path.py:factory`` -> the module the factory returns (imported without writing __pycache__)."""
    path, attr = spec.rsplit(":", 1)
    import sys
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        name = "heldout3d_ref_" + Path(path).stem
        if name in sys.modules:
            mod = sys.modules[name]
        else:
            s = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(s)
            sys.modules[name] = mod
            s.loader.exec_module(mod)
    finally:
        sys.dont_write_bytecode = old
    return getattr(mod, attr)()


def as_list(y):
    if isinstance(y, dict):
        return list(y.values())
    if isinstance(y, (tuple, list)):
        return list(y)
    return [y]


def act3d(kind, a: torch.Tensor, r: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
    """The action of (R, t) on a float64 tensor of type ``kind``."""
    if kind == "invariant":
        return a
    if kind == "positions":
        return a @ r.T + (t if t is not None else 0.0)
    if kind == "cartesian":
        return torch.einsum("ij,...jk,lk->...il", r, a, r)
    return a @ d_matrix(kind, r).T


@contextlib.contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _f64(feeds) -> bool:
    return any(np.asarray(v).dtype == np.float64 for v in feeds.values())


def d_matrix(kind, r: torch.Tensor) -> torch.Tensor:
    """e3nn's ``Irreps(kind).D_from_matrix(r)`` in float64 (e3nn builds its generators in the default
    dtype: under float32 the matrix would carry float32 rounding, 1e-7, into float64 references)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return _irreps(kind).D_from_matrix(r.to(torch.float64))
    finally:
        torch.set_default_dtype(old)


def run(model, feeds: dict[str, np.ndarray], dtype=None):
    args = [torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()]
    with torch.no_grad():
        return [y.detach() for y in as_list(model(*args))]


def errors3d(model, feeds: dict[str, np.ndarray], in_kinds: dict[str, str], out_kinds: list[str],
             elements: list[tuple[str, np.ndarray, np.ndarray | None]]) -> list[dict[str, tuple[float, float]]]:
    """Per output: {label: (rel error, max abs error)} for each element (label, R, t)."""
    base = run(model, feeds)
    per = [dict() for _ in base]
    for label, r_np, t_np in elements:
        r = torch.tensor(np.asarray(r_np), dtype=torch.float64)
        t = None if t_np is None else torch.tensor(np.asarray(t_np), dtype=torch.float64)
        moved = {}
        for name, v in feeds.items():
            kind = in_kinds[name]
            if kind == "invariant" or not np.issubdtype(v.dtype, np.floating):
                moved[name] = v
            else:
                moved[name] = act3d(kind, torch.from_numpy(v).double(), r, t).numpy().astype(v.dtype)
        got = run(model, moved)
        for i, (y, a) in enumerate(zip(base, got)):
            b = act3d(out_kinds[i], y.double(), r, t)
            diff = (a.double() - b)
            per[i][label] = (float(diff.norm() / b.norm()), float(diff.abs().max()))
    return per


def haar_elements(group: str, count: int = 16, seed: int = 0):
    """Identity, ``count`` Haar rotations (scipy), for o3/e3 the inversion and every other rotation
    composed with it, for e3/se3 a random translation (N(0, 1)) on each and one pure translation."""
    from scipy.spatial.transform import Rotation
    rng = np.random.default_rng(seed)
    rots = Rotation.random(count, random_state=seed).as_matrix()
    els = [("e", np.eye(3), None)]
    for k, r in enumerate(rots):
        els.append((f"haar{k}", r, None))
    if group in ("o3", "e3"):
        els.append(("inv", -np.eye(3), None))
        els += [(f"haar{k}*inv", -r, None) for k, r in enumerate(rots) if k % 2 == 0]
    if group in ("e3", "se3"):
        els = [(lab + ("+t" if lab != "e" else ""), r, rng.standard_normal(3) if lab != "e" else None)
               for lab, r, _ in els]
        els.append(("t", np.eye(3), rng.standard_normal(3)))
    return els


def json_elements(output_json: dict) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """The elements eqcheck tested, from its JSON result (each 3-D element carries its matrix and translation)."""
    out = []
    for el in output_json["elements"]:
        if el.get("matrix") is None:
            return []
        t = el.get("translation")
        out.append((el["element"], np.array(el["matrix"], dtype=np.float64),
                    None if t is None else np.array(t, dtype=np.float64)))
    return out


# ------------------------------------------------------------------ e3nn's own equivariance_error
def _e3nn_io(in_kinds, out_kinds):
    def one(k):
        if k == "positions":
            return "cartesian_points"
        if k == "invariant":
            return None
        if k == "cartesian":
            raise ValueError("e3nn's equivariance_error has no rank-2 Cartesian type")
        return _irreps(k)
    return [one(k) for k in in_kinds.values()], [one(k) for k in out_kinds]


def e3nn_own(model, feeds, in_kinds, out_kinds, group: str, ntrials: int = 8, seed: int = 0) -> list[float]:
    """e3nn's ``equivariance_error`` with its own random rotations (``o3.rand_matrix``, parity for
    o3/e3, translations ``10 * randn`` for e3): max abs per output."""
    from e3nn.util.test import equivariance_error
    irreps_in, irreps_out = _e3nn_io(in_kinds, out_kinds)
    args = [torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()]
    torch.manual_seed(seed)
    with torch.no_grad(), default_dtype(torch.float64 if _f64(feeds) else torch.get_default_dtype()):
        res = equivariance_error(model, args, irreps_in=irreps_in, irreps_out=irreps_out, ntrials=ntrials,
                                 do_parity=group in ("o3", "e3"), do_translation=group in ("e3", "se3"))
    stacked = torch.stack([v for v in res.values()])
    return [float(v) for v in stacked.max(0).values]


@contextlib.contextmanager
def _patched(r: torch.Tensor, t: torch.Tensor | None):
    """Make e3nn.util.test draw exactly (R, t): its ``o3.rand_matrix`` returns R, and its translation
    ``10 * torch.randn(1, 3)`` returns t."""
    from e3nn import o3
    import e3nn.util.test as et
    rand_matrix, randn = o3.rand_matrix, torch.randn

    def fake_randn(*shape, **kw):
        if tuple(shape) == (1, 3) and t is not None:
            return (t / 10.0).reshape(1, 3).to(kw.get("dtype") or torch.float64)
        return randn(*shape, **kw)
    o3.rand_matrix = lambda *a, **k: r.clone()
    et.torch.randn = fake_randn
    try:
        yield
    finally:
        o3.rand_matrix = rand_matrix
        et.torch.randn = randn


def e3nn_on_elements(model, feeds, in_kinds, out_kinds, elements) -> list[dict[str, float]]:
    """e3nn's own ``equivariance_error`` (ntrials=1, no parity flip of its own) on each element eqcheck
    tested: {label: max abs} per output."""
    from e3nn.util.test import equivariance_error
    irreps_in, irreps_out = _e3nn_io(in_kinds, out_kinds)
    args = [torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()]
    per = [dict() for _ in out_kinds]
    for label, r_np, t_np in elements:
        r = torch.tensor(r_np, dtype=torch.float64)
        t = None if t_np is None else torch.tensor(t_np, dtype=torch.float64)
        with _patched(r, t), torch.no_grad(), \
                default_dtype(torch.float64 if _f64(feeds) else torch.get_default_dtype()):
            res = equivariance_error(model, args, irreps_in=irreps_in, irreps_out=irreps_out, ntrials=1,
                                     do_parity=False, do_translation=t is not None)
        vals = res[(0, t is not None)]
        for i in range(len(out_kinds)):
            per[i][label] = float(vals[i])
    return per


# ------------------------------------------------------------------ permutations
def perm_elements(n: int, count: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    swap = np.arange(n)
    swap[[0, 1]] = [1, 0]
    return [("e", np.arange(n)), ("swap01", swap)] + [(f"perm{k}", rng.permutation(n)) for k in range(count)]


def errors_perm(model, feeds, in_kinds, out_kinds, perms) -> list[dict[str, tuple[float, float]]]:
    """Node permutation p (new[i] = old[p[i]]): set inputs x[p], edge_index p_inv[edge_index], batch[p];
    node outputs y[p], graph outputs unchanged."""
    base = run(model, feeds)
    per = [dict() for _ in base]
    for label, p in perms:
        inv = np.argsort(p)
        moved = {}
        for name, v in feeds.items():
            kind = in_kinds[name]
            if kind == "edge_index":
                moved[name] = inv[v]
            elif kind in ("set", "batch"):
                moved[name] = v[p]
            else:
                moved[name] = v
        got = run(model, moved)
        for i, (y, a) in enumerate(zip(base, got)):
            b = y.double()[torch.from_numpy(p)] if out_kinds[i] == "set" else y.double()
            diff = a.double() - b
            per[i][label] = (float(diff.norm() / b.norm()), float(diff.abs().max()))
    return per


def worst(per_output: list[dict[str, tuple[float, float]]], which: int = 0) -> list[float]:
    return [max(v[which] for v in d.values()) for d in per_output]
