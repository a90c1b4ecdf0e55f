#!/usr/bin/env python
"""Held-out plain-torch, GrouPy and egnn-pytorch models (run in .venv, GrouPy on PYTHONPATH):

    PYTHONPATH=build/heldout/third_party/groupy .venv/bin/python benchmarks/zoo/heldout/make_heldout.py

(``build_heldout.sh`` extracts and patches GrouPy first.) For each model of ``heldout_models.py`` it
writes ``build/heldout/torch/<m>.onnx`` (legacy exporter, dynamo=False, opset 17, dynamic batch),
``<m>.pt2`` (torch.export, static batch 2), the pyspec ``build/heldout/heldout_models.py:<factory>``, the
input ``<m>_input.npz`` and the reference errors:

- GrouPy: the input moved by GrouPy's own ``Z2FuncArray`` left translation, the output by
  ``P4FuncArray`` / ``P4MFuncArray`` (i.e. GrouPy's filter-transform convention; on GrouPy's own layers
  this is exact, see ``groupy_self_check``);
- the others by hand: ``torch.rot90`` (p4), ``x[:, p]`` / ``P A P^T`` (perm), ``torch.roll`` (translation).
"""
from __future__ import annotations

import shutil
import sys
import traceback
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import heldout_models as hm  # noqa: E402
from heldout_common import OUT, entry, gaussian, rel, rel_err, replace_source_entries, save_npz  # noqa: E402

DIR = OUT / "torch"
SOURCE = "make_heldout.py"
PYSPEC = OUT / "heldout_models.py"
GROUPY_PATH = OUT / "third_party" / "groupy"
LOG: list[str] = []


def log(msg):
    print(msg)
    LOG.append(msg)


# ------------------------------------------------------------------------------ references
def groupy_transforms(group):
    """[(eqcheck-style label, input fn, output fn(y, flat))] using GrouPy's GFuncArray left translations."""
    import groupy.garray.C4_array as c4a
    import groupy.garray.D4_array as d4a
    from groupy.gfunc.p4func_array import P4FuncArray
    from groupy.gfunc.p4mfunc_array import P4MFuncArray
    from groupy.gfunc.z2func_array import Z2FuncArray

    els = c4a.C4.flatten() if group == "p4" else d4a.D4.flatten()
    func = P4FuncArray if group == "p4" else P4MFuncArray
    n = 4 if group == "p4" else 8
    out = []
    for g in els:
        def fin(x, g=g):
            return np.ascontiguousarray((g * Z2FuncArray(v=x)).v)

        def fout(y, flat, g=g):
            y5 = y.reshape(y.shape[0], -1, n, *y.shape[-2:]) if flat else y
            t = np.ascontiguousarray((g * func(v=y5)).v)
            return t.reshape(y.shape)
        out.append((str(g.data.tolist()), fin, fout))
    return out


def groupy_reference(model, x, group, flat):
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
        per = {}
        for label, fin, fout in groupy_transforms(group):
            a = model(torch.from_numpy(fin(x))).numpy()
            per[label] = rel_err(a, fout(y, flat))
    return per


def groupy_self_check():
    """GrouPy's own layers against GrouPy's own transforms (which direction the channels roll)."""
    from groupy.gconv.pytorch_gconv import P4ConvZ2, P4MConvZ2
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((1, 1, 9, 9)).astype(np.float32)
    res = {}
    for group, layer in (("p4", P4ConvZ2(1, 2, 3, padding=1)), ("p4m", P4MConvZ2(1, 2, 3, padding=1))):
        res[group] = max(groupy_reference(layer, x, group, False).values())
    # which torch op GrouPy's r and m are on a displayed image
    import groupy.garray.D4_array as d4a
    from groupy.gfunc.z2func_array import Z2FuncArray
    img = np.arange(25.0).reshape(1, 5, 5)
    r = (d4a.r * Z2FuncArray(v=img)).v
    m = (d4a.m * Z2FuncArray(v=img)).v
    res["r_is_rot90_ccw"] = bool(np.array_equal(r, np.rot90(img, 1, axes=(-2, -1))))
    res["m_is_flip_updown"] = bool(np.array_equal(m, np.flip(img, -2)))
    # the channel roll of a p4 map under r: GrouPy's P4FuncArray vs rot90 + roll(+1)
    from groupy.gfunc.p4func_array import P4FuncArray
    import groupy.garray.C4_array as c4a
    fm = np.random.default_rng(1).standard_normal((1, 4, 5, 5))
    t = (c4a.r * P4FuncArray(v=fm)).v
    res["p4_map_r_is_rot90_roll_plus1"] = bool(np.allclose(t, np.roll(np.rot90(fm, 1, axes=(-2, -1)), 1, axis=-3)))
    return res


def p4_image_reference(model, x, out_kinds):
    """By hand: rot90 k on the input, each output rot90 (image) or unchanged (invariant). Per output."""
    xt = torch.from_numpy(x)
    with torch.no_grad():
        ys = as_list(model(xt))
        per = [dict() for _ in ys]
        for k in range(4):
            a = as_list(model(torch.rot90(xt, k, dims=(-2, -1))))
            for i, (yi, ai) in enumerate(zip(ys, a)):
                b = torch.rot90(yi, k, dims=(-2, -1)) if out_kinds[i] == "image" else yi
                per[i][f"rot{90 * k}"] = rel_err(ai.numpy(), b.numpy())
    return per


def perm_reference(model, feeds, acts, out_kinds, n, seed=0, count=8):
    rng = np.random.default_rng(seed)
    perms = [np.arange(n)]
    swap = np.arange(n); swap[[0, 1]] = [1, 0]
    perms.append(swap)
    perms += [rng.permutation(n) for _ in range(count - 1)]
    names = list(feeds)

    def moved(p):
        out = []
        for name in names:
            v = feeds[name]
            if acts[name] == "graph":
                v = v[:, p][:, :, p]
            else:
                v = v[:, p]
            out.append(torch.from_numpy(np.ascontiguousarray(v)))
        return out
    with torch.no_grad():
        ys = as_list(model(*[torch.from_numpy(feeds[nm]) for nm in names]))
        per = [dict() for _ in ys]
        for j, p in enumerate(perms):
            a = as_list(model(*moved(p)))
            for i, (yi, ai) in enumerate(zip(ys, a)):
                b = yi if out_kinds[i] == "invariant" else yi[:, p]
                per[i][f"perm{j}:{p.tolist()}"] = rel_err(ai.numpy(), b.numpy())
    return per


def translation_reference(model, x, ndim, seed=0, count=8):
    rng = np.random.default_rng(seed)
    sizes = x.shape[-ndim:]
    reach = max(min(sizes) // 4, 1)
    shifts = []
    if ndim == 1:
        shifts = [(s,) for s in range(-reach, reach + 1) if s]
    else:
        while len(shifts) < count:
            s = tuple(int(v) for v in rng.integers(-reach, reach + 1, ndim))
            if any(s) and s not in shifts:
                shifts.append(s)
    dims = tuple(range(-ndim, 0))
    xt = torch.from_numpy(x)
    with torch.no_grad():
        y = model(xt)
        per = {}
        for s in shifts:
            a = model(torch.roll(xt, s, dims=dims))
            per[f"shift{s}"] = rel_err(a.numpy(), torch.roll(y, s, dims=dims).numpy())
    return per


def as_list(y):
    if isinstance(y, dict):
        return list(y.values())
    if isinstance(y, (tuple, list)):
        return list(y)
    return [y]


# ------------------------------------------------------------------------------ export
def export(name, model, feeds, output_names, onnx_ok=True, pt2_ok=True, dynamic_batch=True):
    """Legacy ONNX (opset 17, dynamic batch) and .pt2; returns {fmt: (file, max|diff|)} and failures."""
    import onnxruntime as ort
    DIR.mkdir(parents=True, exist_ok=True)
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    with torch.no_grad():
        ref = [t.numpy() for t in as_list(model(*args))]
    files, failures = {}, {}
    if onnx_ok:
        p = DIR / f"{name}.onnx"
        try:
            dyn = {k: {0: "batch"} for k in list(feeds) + output_names} if dynamic_batch else None
            torch.onnx.export(model, args, str(p), dynamo=False, opset_version=17, input_names=list(feeds),
                              output_names=output_names, dynamic_axes=dyn)
            sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
            got = sess.run(None, dict(feeds))
            files["onnx"] = (rel(p), max(float(np.abs(g - r).max()) for g, r in zip(got, ref)))
        except Exception as exc:  # noqa: BLE001
            failures["onnx"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    if pt2_ok:
        p = DIR / f"{name}.pt2"
        try:
            ep = torch.export.export(model, args)
            torch.export.save(ep, str(p))
            with torch.no_grad():
                got = [t.numpy() for t in as_list(torch.export.load(str(p)).module()(*args))]
            files["pt2"] = (rel(p), max(float(np.abs(g - r).max()) for g, r in zip(got, ref)))
        except Exception as exc:  # noqa: BLE001
            failures["pt2"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    for fmt, msg in failures.items():
        log(f"  {name}: {fmt} export FAILED: {msg}")
    return files, failures


def shape_args(feeds):
    """--input-shape for a pyspec (which has no static shapes)."""
    args = []
    if len(feeds) == 1:
        return ["--input-shape", ",".join(map(str, next(iter(feeds.values())).shape))]
    for k, v in feeds.items():
        args += ["--input-shape", f"{k}=" + ",".join(map(str, v.shape))]
    return args


# ------------------------------------------------------------------------------ the set
def main():
    entries: list[dict] = []
    shutil.copy(HERE / "heldout_models.py", PYSPEC)
    groupy_env = {"PYTHONPATH": rel(GROUPY_PATH)}

    def add(name, model_name, fmt, file, group, expected, ref, note, args=(), **kw):
        entries.append(entry(f"{model_name}.{fmt}.{name}", model_name, file, fmt, group, expected, ref, note,
                             args, **kw))

    def add_all_formats(model_name, factory, files, checks, feeds, note, pyspec_args=None, env=None, **common):
        """checks: [(suffix, group, args, expected, extra)] for every format (onnx, pt2, pyspec)."""
        formats = dict(files)
        formats["pyspec"] = (f"{rel(PYSPEC)}:{factory}", 0.0)
        for fmt, (file, diff) in formats.items():
            for suffix, group, args, expected, extra in checks:
                a = list(args)
                if fmt == "pyspec":
                    a = (pyspec_args if pyspec_args is not None else shape_args(feeds)) + a
                kw = dict(common)
                kw.update(extra)
                if fmt == "pyspec" and env:
                    kw["env"] = env
                add(suffix, model_name, fmt, file, group, expected, kw.pop("reference"), note, a,
                    export_max_abs_diff=diff, **kw)

    # ---------------------------------------------------------------- 3. GrouPy
    try:
        check = groupy_self_check()
        log(f"GrouPy self-check (its layers vs its own transforms): {check}")
        H = 17
        x = gaussian((2, 2, H, H), 1)
        for model_name, group, flat, broken in [
                ("groupy_p4_5d", "p4", False, False), ("groupy_p4_flat", "p4", True, False),
                ("groupy_p4m_5d", "p4m", False, False), ("groupy_p4m_flat", "p4m", True, False),
                ("groupy_p4_broken", "p4", False, True), ("groupy_p4_broken_flat", "p4", True, True),
                ("groupy_p4m_broken_5d", "p4m", False, True), ("groupy_p4m_broken_flat", "p4m", True, True)]:
            model = getattr(hm, model_name)()
            feeds = {"input": x}
            files, failed = export(model_name, model, feeds, ["output"])
            per = groupy_reference(model, x, group, flat)
            ref = max(per.values())
            npz = save_npz(DIR / f"{model_name}_input.npz", input=x)
            log(f"{model_name}: out {list(model(torch.from_numpy(x)).shape)}; GrouPy-transform ref {ref:.3e}")
            layout = "field-major" if flat else "5d"
            common = dict(reference=ref, reference_per_element=per, reference_comparable=True, input_npz=npz,
                          reference_elements="GrouPy left translations (Z2FuncArray in, P4/P4MFuncArray out)",
                          export_failures=failed, library="GrouPy (adambielski, pytorch port)")
            exp = "fail" if broken else "pass"
            fail_kw = dict(expect_culprit="plain") if broken else {}
            if group == "p4":
                checks = [("p4_auto", "p4", [], exp, fail_kw),
                          (f"p4_regular_{layout}", "p4", ["--output-type", f"regular:{layout}"], exp, fail_kw)]
            else:
                checks = [("p4m_groupy_auto", "p4m:groupy", [], exp, fail_kw),
                          ("p4m_auto", "p4m", [], exp, fail_kw),
                          ("p4m_groupy_regular", "p4m:groupy", ["--output-type", "regular"], exp, fail_kw)]
                if not broken:
                    checks.append((f"p4m_regular_{layout}_groupy", "p4m",
                                   ["--output-type", f"regular:{layout}:groupy"], exp, {}))
            add_all_formats(model_name, model_name, files, checks, feeds,
                            f"GrouPy {'P4ConvZ2->P4ConvP4' if group == 'p4' else 'P4MConvZ2->P4MConvP4M'} x2, "
                            f"output {'[B, C*|H|, H, W]' if flat else '[B, C, |H|, H, W]'}"
                            + ("; a plain Conv2d ('plain') after the first layer" if broken else ""),
                            env=groupy_env, **common)
    except Exception:  # noqa: BLE001
        log("GrouPy models FAILED:\n" + traceback.format_exc())

    # ---------------------------------------------------------------- 4. dense GNN
    N, Fdim = 7, 5
    rng = np.random.default_rng(2)
    xg = gaussian((2, N, Fdim), 2)
    adj = (rng.random((2, N, N)) < 0.4).astype(np.float32)
    adj = np.maximum(adj, adj.transpose(0, 2, 1))
    feeds = {"x": xg, "adj": adj}
    acts = {"x": "set", "adj": "graph"}
    for model_name, broken in [("gnn_dense", False), ("gnn_dense_posemb", True)]:
        model = getattr(hm, model_name)()
        files, failed = export(model_name, model, feeds, ["output"])
        per = perm_reference(model, feeds, acts, ["set"], N)[0]
        ref = max(per.values())
        npz = save_npz(DIR / f"{model_name}_input.npz", **feeds)
        log(f"{model_name}: perm ref {ref:.3e}")
        exp = "fail" if broken else "pass"
        fk = dict(expect_culprit="posemb") if broken else {}
        checks = [("perm_act", "perm", ["--act", "x=set:axis=1", "--act", "adj=graph"], exp, fk),
                  ("perm_auto", "perm", [], exp, fk)]
        add_all_formats(model_name, model_name, files, checks, feeds,
                        "dense GNN: x [B,7,5], adj [B,7,7]; 2 x act(adj @ h W + h U) -> [B,7,4]"
                        + ("; plus a learned per-node embedding added to x (module 'posemb')" if broken else ""),
                        reference=ref, reference_per_element=per, reference_comparable=False, input_npz=npz,
                        reference_elements="identity, transposition (0 1), 7 seeded random perms (numpy)",
                        export_failures=failed)

    # ---------------------------------------------------------------- 5. integer tokens
    L = 9
    tok = np.random.default_rng(3).integers(0, 50, (2, L)).astype(np.int64)
    feeds = {"tokens": tok}
    for model_name, kind in [("tokens_mean", "invariant"), ("tokens_set", "set")]:
        model = getattr(hm, model_name)()
        files, failed = export(model_name, model, feeds, ["output"])
        per = perm_reference(model, feeds, {"tokens": "set"}, [kind], L)[0]
        ref = max(per.values())
        npz = save_npz(DIR / f"{model_name}_input.npz", **feeds)
        log(f"{model_name}: perm ref {ref:.3e}")
        common = dict(reference=ref, reference_per_element=per, reference_comparable=False, input_npz=npz,
                      reference_elements="identity, transposition, 7 random perms", export_failures=failed,
                      integer_input="tokens")
        note = (f"nn.Embedding(50, 8) on int64 tokens [B, {L}] -> "
                + ("per-token MLP -> mean over tokens -> Linear [B, 4] (invariant)" if kind == "invariant"
                   else "embedding + mean-pooled context -> per-token Linear [B, 9, 6] (equivariant set)"))
        checks = [("perm", "perm", [], "pass", {})]
        if kind == "invariant":
            checks.append(("perm_invariant", "perm", ["--output-type", "invariant"], "pass", {}))
        add_all_formats(model_name, model_name, files, checks, feeds, note,
                        pyspec_args=["--input", npz], **common)
        # the pyspec with only a shape: eqcheck cannot know the vocabulary unless it reads nn.Embedding
        shape_only = {k: v for k, v in common.items() if k != "reference"}
        add("perm_shape_only", model_name, "pyspec", f"{rel(PYSPEC)}:{model_name}", "perm", "pass", ref,
            note + " (pyspec given --input-shape only: eqcheck must find the index range from nn.Embedding "
                   "or ask for --input)",
            ["--input-shape", f"2,{L}"], accept_usage_error="--input", **shape_only)

    # ---------------------------------------------------------------- 6. two outputs
    H = 15
    x2 = gaussian((2, 2, H, H), 4)
    feeds = {"input": x2}
    for model_name, broken in [("two_heads", False), ("two_heads_broken", True)]:
        second = "edges" if broken else "logits"
        kinds = ["image", "image" if broken else "invariant"]
        for mode in ("dict", "tuple"):
            fac = f"{model_name}_{mode}"
            model = getattr(hm, fac)()
            per = p4_image_reference(model, x2, kinds)
            npz = save_npz(DIR / f"{fac}_input.npz", **feeds)
            refs = [max(p.values()) for p in per]
            log(f"{fac}: per-output p4 ref {['%.3e' % r for r in refs]}")
            # ONNX gets real output names; the dict model is exported once (names seg + second)
            files, failed = export(fac, model, feeds, ["seg", second]) if mode == "dict" else \
                export(fac, model, feeds, ["seg", second], onnx_ok=False)
            exp = "fail" if broken else "pass"
            fk = {}
            if broken:
                # a dict output is named by its key; a tuple's second output has no name: eqcheck's "output1"
                want = {fmt: (second if mode == "dict" or fmt == "onnx" else "output1") for fmt in ("onnx", "pt2", "pyspec")}
                fk = dict(expect_culprit="edge_head", expect_failing_outputs_by_format=want,
                          expect_failing_output_index=1)
            checks = [("p4_auto", "p4", [], exp, fk)]
            if not broken:
                checks.append(("p4_declared", "p4", ["--output-type", "image", "--output-type", "output1=invariant"]
                               if mode == "tuple" else ["--output-type", "seg=image",
                                                        "--output-type", f"{second}=invariant"], exp, {}))
            add_all_formats(fac, fac, files, checks, feeds,
                            "SymConv (rotation-averaged kernel) trunk; outputs seg [B,3,15,15] (image) and "
                            + (f"{second} [B,3,15,15] from a plain Conv2d ('edge_head')" if broken
                               else f"{second} [B,5] (pooled, invariant)") + f"; PyTorch returns a {mode}",
                            reference=max(refs), reference_per_output={"seg": per[0], second: per[1]},
                            reference_output_max=refs, reference_comparable=True, input_npz=npz,
                            reference_elements="rot90 k=0..3 by hand", export_failures=failed)

    # EGNN
    try:
        model = hm.egnn_two_layers()
        Nn = 6
        feeds = {"feats": gaussian((2, Nn, 6), 5), "coors": gaussian((2, Nn, 3), 6)}
        per = perm_reference(model, feeds, {"feats": "set", "coors": "set"}, ["set", "set"], Nn)
        refs = [max(p.values()) for p in per]
        npz = save_npz(DIR / "egnn_two_layers_input.npz", **feeds)
        files, failed = export("egnn_two_layers", model, feeds, ["feats_out", "coors_out"])
        import egnn_pytorch
        log(f"egnn_two_layers (egnn-pytorch {getattr(egnn_pytorch, '__version__', '?')}): perm ref {refs}")
        checks = [("perm_act", "perm", ["--act", "feats=set", "--act", "coors=set"], "pass", {}),
                  ("perm_auto", "perm", [], "pass", {})]
        add_all_formats("egnn_two_layers", "egnn_two_layers", files, checks, feeds,
                        "egnn_pytorch.EGNN(dim=6, m_dim=8) x2: (feats [B,6,6], coors [B,6,3]) -> (feats, coors)",
                        reference=max(refs), reference_output_max=refs, reference_comparable=False,
                        input_npz=npz, reference_elements="identity, transposition, 7 random perms",
                        export_failures=failed)
    except Exception:  # noqa: BLE001
        log("EGNN FAILED:\n" + traceback.format_exc())

    # ---------------------------------------------------------------- 7. 1-D and 3-D translations
    for model_name, shape, ndim, exp in [("conv1d_circular", (2, 3, 32), 1, "pass"),
                                         ("conv1d_zeropad", (2, 3, 32), 1, "fail"),
                                         ("conv3d_circular", (2, 2, 8, 8, 8), 3, "pass"),
                                         ("conv3d_zeropad", (2, 2, 8, 8, 8), 3, "fail")]:
        model = getattr(hm, model_name)()
        xt = gaussian(shape, 7)
        feeds = {"input": xt}
        files, failed = export(model_name, model, feeds, ["output"])
        per = translation_reference(model, xt, ndim)
        ref = max(per.values())
        npz = save_npz(DIR / f"{model_name}_input.npz", **feeds)
        log(f"{model_name}: translation ref {ref:.3e}")
        fk = dict(expect_culprit="conv1") if exp == "fail" else {}
        add_all_formats(model_name, model_name, files, [("translation", "translation", [], exp, fk)], feeds,
                        f"Conv{ndim}d x2 ({'circular' if 'circular' in model_name else 'zero'} padding) on "
                        f"{list(shape)}",
                        reference=ref, reference_per_element=per, reference_comparable=False, input_npz=npz,
                        reference_elements="circular shifts (torch.roll): "
                                           + ("every shift up to L/4" if ndim == 1 else "8 seeded shifts up to 2"),
                        export_failures=failed)

    replace_source_entries(SOURCE, entries)
    (OUT / "make_heldout.log").write_text("\n".join(LOG) + "\n")
    print(f"{len(entries)} entries from {SOURCE}")


if __name__ == "__main__":
    main()
