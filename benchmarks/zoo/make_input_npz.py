#!/usr/bin/env python
"""Fixed inputs and independent reference numbers for the zoo.

Run with the project's virtualenv, after make_escnn_zoo.py and make_torch_zoo.py:

    /work/main/.venv/bin/python benchmarks/zoo/make_input_npz.py

For every model in build/zoo/manifest.json it writes build/zoo/<name>_input.npz (key
"input", float32, the entry's input_shape) and, for every manifest entry of that
model (every file format and group), computes with plain numpy group actions
(CONVENTIONS.md sections 1-4) and onnxruntime (ONNX files, default SessionOptions)
or torch (TorchScript / .pt2 / pyspec files) the equivariance error

    rel(g) = ||f(g.x) - g.f(x)||_2 / ||g.f(x)||_2      (float64, whole batch)

for each test element g listed in the entry ("reference_elements"), and stores
"reference_max_rel_error" = max_g rel(g), the per-element values, and the spread
||f(x) - f(x')|| / ||f(x)|| for an unrelated input x' (same distribution, seed+1).

Nothing here uses eqcheck or escnn: the group actions are np.rot90 / np.flip / np.roll
/ fancy indexing, and the D4 channel permutations are derived from the group law.
"""
from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo_common import (REPO, SMOOTH_GROUPS, ZOO, input_seed, load_manifest,  # noqa: E402
                        make_input, save_manifest)

# --------------------------------------------------------------------------------------
# group actions (numpy only)
# --------------------------------------------------------------------------------------
R = np.array([[0, -1], [1, 0]])        # rotation by +90 deg (counter-clockwise), on (X, Y)
F = np.array([[-1, 0], [0, 1]])        # escnn mirror: X -> -X (left-right flip)


def d4_matrix(f, k):
    """escnn D4 element (f, k) = r^k f^f: flip first, then rotate."""
    return np.linalg.matrix_power(R, k) @ np.linalg.matrix_power(F, f)


D4_ELEMENTS = [(f, k) for f in (0, 1) for k in range(4)]     # index 4*f + k


def d4_index(M):
    for i, (f, k) in enumerate(D4_ELEMENTS):
        if np.array_equal(d4_matrix(f, k), M):
            return i
    raise ValueError(M)


def d4_perm(g):
    """Regular representation: new[i] = old[index(g^-1 h_i)]."""
    Mg_inv = np.linalg.inv(d4_matrix(*g)).round().astype(int)
    return [d4_index(Mg_inv @ d4_matrix(*h)) for h in D4_ELEMENTS]


# test vectors from CONVENTIONS.md section 2
_TABLE = {(0, 0): [0, 1, 2, 3, 4, 5, 6, 7], (0, 1): [3, 0, 1, 2, 7, 4, 5, 6],
          (0, 2): [2, 3, 0, 1, 6, 7, 4, 5], (0, 3): [1, 2, 3, 0, 5, 6, 7, 4],
          (1, 0): [4, 7, 6, 5, 0, 3, 2, 1], (1, 1): [5, 4, 7, 6, 1, 0, 3, 2],
          (1, 2): [6, 5, 4, 7, 2, 1, 0, 3], (1, 3): [7, 6, 5, 4, 3, 2, 1, 0]}
for _g, _p in _TABLE.items():
    assert d4_perm(_g) == _p, (_g, d4_perm(_g), _p)
# and the C4 roll: new[j] = old[(j - k) mod 4]
for _k in range(4):
    assert d4_perm((0, _k))[:4] == [(_j - _k) % 4 for _j in range(4)]


def spatial_d4(x, f, k):
    if f:
        x = np.flip(x, axis=-1)
    return np.rot90(x, k, axes=(-2, -1))


def regular_permute(y, field_size, perm):
    b, c = y.shape[:2]
    y = y.reshape(b, c // field_size, field_size, *y.shape[2:])
    y = y[:, :, perm]
    return y.reshape(b, c, *y.shape[3:])


def shift_zero(x, dy, dx):
    """Zero-fill shift: out[..., i, j] = x[..., i - dy, j - dx] (0 outside)."""
    out = np.zeros_like(x)
    H, W = x.shape[-2:]
    sy_o, sy_i = slice(max(dy, 0), H + min(dy, 0)), slice(max(-dy, 0), H - max(dy, 0))
    sx_o, sx_i = slice(max(dx, 0), W + min(dx, 0)), slice(max(-dx, 0), W - max(dx, 0))
    out[..., sy_o, sx_o] = x[..., sy_i, sx_i]
    return out


def interior_mask(H, W, dy, dx, margin):
    """Pixels p with p and p - t both at least `margin` from every edge."""
    rows = np.arange(H)
    cols = np.arange(W)
    r = (rows >= margin) & (rows < H - margin) & (rows - dy >= margin) & (rows - dy < H - margin)
    c = (cols >= margin) & (cols < W - margin) & (cols - dx >= margin) & (cols - dx < W - margin)
    return r[:, None] & c[None, :]


def elements_for(entry):
    """List of (label, act_in, act_out, mask_or_None) for the entry's group."""
    group, otype = entry["group"], entry["output_type"]
    els = []
    if group in ("p4", "p4m", "c8", "so2"):
        fs = entry.get("regular_field_size")
        pairs = D4_ELEMENTS if group == "p4m" else [(0, k) for k in range(4)]
        for f, k in pairs:
            def act_in(x, f=f, k=k):
                return spatial_d4(x, f, k)

            def act_out(y, f=f, k=k):
                if otype == "invariant":
                    return y
                y = spatial_d4(y, f, k)
                if otype == "regular":
                    if group == "p4":
                        assert fs == 4
                        y = regular_permute(y, 4, [(j - k) % 4 for j in range(4)])
                    elif group == "p4m":
                        assert fs == 8
                        y = regular_permute(y, 8, d4_perm((f, k)))
                    else:
                        raise NotImplementedError(group)
                return y
            label = (f"rot90^{k}" if group != "p4m" else f"(f={f},k={k})")
            els.append((label, act_in, act_out, None))
    elif group in ("translation", "translation:interior"):
        m = entry.get("exact_shift_multiple", 1)
        base = [(0, 0), (1, 0), (0, 1), (1, 1), (3, -5), (-7, 2)]
        if group == "translation":
            base.append((16, 16))
        shifts = [(m * dy, m * dx) for dy, dx in base]
        for dy, dx in shifts:
            if group == "translation":
                s = entry.get("total_stride", 1)
                els.append((f"shift({dy},{dx})",
                            lambda x, dy=dy, dx=dx: np.roll(x, (dy, dx), axis=(-2, -1)),
                            lambda y, dy=dy, dx=dx, s=s: np.roll(y, (dy // s, dx // s), axis=(-2, -1)),
                            None))
            else:
                els.append((f"shift({dy},{dx})",
                            lambda x, dy=dy, dx=dx: shift_zero(x, dy, dx),
                            lambda y, dy=dy, dx=dx: shift_zero(y, dy, dx),
                            ("interior", dy, dx, entry["margin"])))
    elif group == "perm":
        n = entry["input_shape"][1]
        rng = np.random.default_rng(2024)
        perms = [np.arange(n), np.r_[1, 0, np.arange(2, n)], np.roll(np.arange(n), 1),
                 np.arange(n)[::-1], rng.permutation(n), rng.permutation(n)]
        for p in perms:
            p = np.asarray(p)
            els.append((f"perm{p.tolist()}", lambda x, p=p: x[:, p], lambda y, p=p: y[:, p], None))
    else:
        raise NotImplementedError(group)
    return els


# --------------------------------------------------------------------------------------
# running the files
# --------------------------------------------------------------------------------------
_CACHE = {}


def runner(entry, optimise=True):
    key = (entry["file"], optimise)
    if key in _CACHE:
        return _CACHE[key]
    fmt = entry["format"]
    if fmt == "onnx":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        if not optimise:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(str(REPO / entry["file"]), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name

        def run(x):
            return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
    else:
        import torch
        torch.set_num_threads(2)
        if fmt == "torchscript":
            m = torch.jit.load(str(REPO / entry["file"]))
        elif fmt == "pt2":
            m = torch.export.load(str(REPO / entry["file"])).module()
        elif fmt == "pyspec":
            path, fn = entry["file"].rsplit(":", 1)
            spec = importlib.util.spec_from_file_location("zoo_pyspec", REPO / path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            m = getattr(mod, fn)()
        else:
            raise NotImplementedError(fmt)

        def run(x):
            with torch.no_grad():
                return m(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    _CACHE[key] = run
    return run


def rel_err(a, b, mask=None):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if mask is not None:
        a, b = a[..., mask], b[..., mask]
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


INTERP_ANGLES = {"c8": [45.0, 135.0, 225.0, 315.0],
                 "so2": [10.0, 30.0, 45.0, 60.0, 100.0, 200.0, 330.0]}


def rotate_interp(x, deg):
    """Counter-clockwise rotation about the centre, cubic spline, zero fill."""
    from scipy.ndimage import rotate
    return rotate(x, deg, axes=(-2, -1), reshape=False, order=3, mode="constant", cval=0.0)


def interp_reference(e, x, run, y):
    """Secondary numbers for C8 / SO(2) at angles that need interpolation (NOT part of
    reference_max_rel_error): input rotated with scipy.ndimage.rotate (order 3, zero
    fill), invariant output compared as is; 'floor' = ||R(-t) R(t) x - x|| / ||x|| on the
    central disk of radius (H-1)/2."""
    assert e["output_type"] == "invariant"
    H = x.shape[-1]
    c = (H - 1) / 2
    yy, xx = np.mgrid[0:H, 0:H]
    disk = (yy - c) ** 2 + (xx - c) ** 2 <= c ** 2
    per, floor = {}, {}
    for deg in INTERP_ANGLES[e["group"]]:
        xr = rotate_interp(x, deg).astype(np.float32)
        per[f"{deg:g}deg"] = rel_err(run(xr), y)
        back = rotate_interp(xr.astype(np.float64), -deg)
        floor[f"{deg:g}deg"] = rel_err(back, x, disk)
    e["reference_interp_method"] = (
        "NOT in reference_max_rel_error: input (Gaussian-smoothed noise) rotated counter-"
        "clockwise with scipy.ndimage.rotate(x, deg, axes=(-2,-1), reshape=False, order=3, "
        "mode='constant'); invariant output compared directly; floor = ||R(-t)R(t)x - x|| / "
        "||x|| on the central disk")
    e["reference_interp_rel_error_per_angle"] = per
    e["reference_interp_max_rel_error"] = max(per.values())
    e["reference_interp_floor"] = floor


# scipy's rotation has the CONVENTIONS sign: at 90 deg it equals np.rot90(k=1)
_z = np.random.default_rng(0).standard_normal((1, 1, 9, 9))
assert np.allclose(rotate_interp(_z, 90.0), np.rot90(_z, 1, axes=(-2, -1)), atol=1e-6)


def main():
    import onnxruntime
    import torch
    onnxruntime.set_seed(0)      # only the non-deterministic models draw random numbers
    torch.manual_seed(0)
    entries = load_manifest()
    if not entries:
        sys.exit("build/zoo/manifest.json is empty: run make_escnn_zoo.py and make_torch_zoo.py first")
    inputs = {}
    for e in entries:
        name = e["name"]
        if name not in inputs:
            seed = input_seed(name)
            smooth = e["group"] in SMOOTH_GROUPS
            x = make_input(e["input_shape"], seed, smooth)
            x2 = make_input(e["input_shape"], seed + 1, smooth)
            path = ZOO / f"{name}_input.npz"
            np.savez(path, input=x)
            inputs[name] = (x, x2, path, seed)
        x, x2, path, seed = inputs[name]
        run = runner(e)
        y = run(x)
        per = {}
        for label, act_in, act_out, mask in elements_for(e):
            a = run(act_in(x))
            b = act_out(y)
            m = None
            if mask is not None:
                _, dy, dx, margin = mask
                m = interior_mask(*b.shape[-2:], dy, dx, margin)
            per[label] = rel_err(a, b, m)
        e["input_npz"] = path.relative_to(REPO).as_posix()
        e["input_seed"] = seed
        e["reference_elements"] = list(per)
        e["reference_rel_error_per_element"] = per
        e["reference_max_rel_error"] = max(per.values())
        e["reference_spread"] = rel_err(run(x2), y)
        e["reference_method"] = _method(e)
        if e.get("nondeterministic") and e["format"] == "onnx":
            # onnxruntime's default optimisations may delete a Dropout node: redo without
            per0 = {}
            run0 = runner(e, optimise=False)
            y0 = run0(x)
            for label, act_in, act_out, mask in elements_for(e):
                per0[label] = rel_err(run0(act_in(x)), act_out(y0))
            e["reference_max_rel_error_ort_disable_all"] = max(per0.values())
            e["reference_rel_error_per_element_ort_disable_all"] = per0
        if e["group"] in ("c8", "so2"):
            interp_reference(e, x, run, y)
        print(f"{e['file']:<58} {e['group']:<21} {e['expected']:<4} "
              f"ref max rel {e['reference_max_rel_error']:.3e}  spread {e['reference_spread']:.3e}",
              flush=True)
    save_manifest(entries)
    print(f"updated {len(entries)} entries; wrote {len(inputs)} input files")


def _method(e):
    g = e["group"]
    runner_name = ("onnxruntime (default SessionOptions, CPU)" if e["format"] == "onnx"
                   else f"torch ({e['format']})")
    s = (f"x = input_npz['input']; a = f(g.x), b = g.f(x) with numpy actions; "
         f"rel = ||a-b||_2/||b||_2 in float64 over the whole batch; model run with {runner_name}. ")
    if g == "p4":
        s += "g = np.rot90(., k, axes=(-2,-1)), k=0..3; regular output: group axis rolled by +k."
    elif g == "p4m":
        s += ("g = (f,k): np.rot90(np.flip(., -1) if f else ., k); regular output: channels "
              "of each 8-field permuted new[i] = old[PERM[g][i]] (escnn order, from the group law).")
    elif g in ("c8", "so2"):
        s += ("ONLY the multiples of 90 deg (np.rot90, k=0..3; invariant output); the input is "
              "Gaussian-smoothed noise (sigma 2 px). Non-90-deg angles are not in the reference.")
    elif g == "translation":
        s += "g = np.roll(., (dy,dx), axis=(-2,-1)) on input; output rolled by (dy,dx)/total_stride."
    elif g == "translation:interior":
        s += ("g = zero-fill shift by (dy,dx) on input and output; compared only on output pixels "
              "p with p and p-(dy,dx) both at least `margin` from every edge.")
    elif g == "perm":
        s += "g = x[:, p] on the set axis 1 for input and output."
    if e.get("nondeterministic"):
        s += " NON-DETERMINISTIC model: the numbers change from run to run."
    return s


if __name__ == "__main__":
    main()
