#!/usr/bin/env python
"""Run ``eqcheck verify ... --json -`` on every entry of build/heldout3d/manifest.json and judge it.

Run: .venv/bin/python benchmarks/zoo/heldout3d/check_heldout3d.py [--only SUBSTRING ...] [--jobs N]
     [--no-file-run] [--snapshot]
(after make_heldout3d.py). eqcheck runs as a subprocess (the CLI a user runs), twice per entry: once on its
own generated inputs (the verdict, as a grader runs it) and once with ``--input`` on the entry's input file
(its numbers beside independent references on the same input and the same elements). Entries whose args
already hold ``--input`` (exported graph models: eqcheck cannot know an edge index's range) run once.

An entry is OK when
  - the exit code is 0 (expected pass) or 1 (expected fail) and agrees with ``passed``; exit 2 only where
    the entry expects a usage error whose message contains ``accept_usage_error``;
  - every output is counted: eqcheck's outputs are exactly ``output_names``, in order;
  - pass: every exact element's rel error is below ``max_exact_error`` (1e-4 float32, 1e-9 float64) on both
    runs; no layer fails in the per-layer table; the output's type contains ``expect_representation``;
  - fail: the failing outputs are exactly ``expect_failing_outputs`` (by name); the first failing layer
    contains ``expect_culprit`` (a substring, or one of a list; for ONNX also any node of that module's
    ``name_scopes``: ``expect_culprit_nodes``; ``MODULE:input``, the glue code before a module in eqcheck's hooks
    mode, is not the module), or is null where ``expect_no_culprit`` (the model is right, the declared type is not);
  - numbers, on the input file (fail): for 3-D groups the reference is recomputed here on the very elements
    eqcheck tested (their matrices and translations are in its JSON), moving the output as eqcheck typed it
    (e3nn's ``D_from_matrix``; positions, cartesian by hand): eqcheck's max rel error of each failing output
    must be within 10% of it; on e3nn models also eqcheck's max abs error against e3nn's own
    ``equivariance_error`` made to draw those elements (where eqcheck typed the output as the model's irreps);
    for ``perm:axis=0`` (eqcheck's JSON does not carry its permutations) against the build-time reference
    over 8 seeded random permutations (the broken graphs have 48 nodes, so random permutations agree).
Writes build/heldout3d/results.json (results_only.json with --only) and prints the table and the wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ beside these files or ../heldout/
OUT = ROOT / "build/heldout3d"
MANIFEST = OUT / "manifest.json"
EQCHECK = ROOT / ".venv/bin/eqcheck"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "heldout"))
from heldout_common import snapshot_head  # noqa: E402
REF_LOCK = threading.Lock()  # references patch e3nn / torch globals (default dtype, rand_matrix)
SNAPSHOT: str | None = None


def command(e: dict, with_input: bool) -> list[str]:
    args = list(e["args"])
    if with_input and "--input" not in args:
        cleaned, skip = [], False  # an --input replaces --input-shape
        for a in args:
            if skip:
                skip = False
            elif a == "--input-shape":
                skip = True
            else:
                cleaned.append(a)
        args = cleaned + ["--input", e["input_npz"]]
    return [str(EQCHECK.relative_to(ROOT)), "verify", e["file"], "--group", e["group"], *args, "--json", "-"]


def run(e: dict, with_input: bool) -> dict:
    cmd = command(e, with_input)
    env = dict(os.environ)
    env.pop("GITHUB_ACTIONS", None)
    if SNAPSHOT:
        env["PYTHONPATH"] = SNAPSHOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    res = {"cmd": " ".join(shlex.quote(c) for c in cmd), "rc": p.returncode, "stderr": p.stderr.strip(),
           "seconds": time.perf_counter() - start}
    try:
        res["json"] = json.loads(p.stdout)
    except json.JSONDecodeError:
        res["json"] = None
        res["stdout"] = p.stdout[-2000:]
    return res


def worst(j: dict) -> float | None:
    if not j or not j.get("outputs"):
        return None
    return max(float(o["max_rel_error"]) for o in j["outputs"])


def exact_worst(j: dict) -> float | None:
    vals = [float(el["rel_error"]) for o in j["outputs"] for el in o["elements"] if el.get("exact")]
    return max(vals) if vals else None


def last_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("eqcheck: error")]
    return (lines[-1] if lines else stderr.strip().splitlines()[-1] if stderr.strip() else "")[:300]


# ------------------------------------------------------------------ references on eqcheck's elements
def reference_kind(representation: str, intended: str) -> str:
    """The kind the reference moves an output by: eqcheck's own type where it is one the reference knows
    (so the number is compared, not the choice of type), else the model's intended type."""
    r = representation or ""
    if r in ("invariant", "positions", "cartesian"):
        return r
    if " " in r or "(" in r or r.startswith(("set", "regular", "image")):
        return intended
    try:
        import heldout3d_refs as refs
        refs._irreps(r)
        return r
    except Exception:  # noqa: BLE001
        return intended


def same_element_references(e: dict, jf: dict) -> dict:
    """Recompute the references on the elements eqcheck tested on the input file."""
    import heldout3d_refs as refs
    elements = refs.json_elements(jf["outputs"][0])
    if not elements:
        return {}
    feeds = dict(np.load(ROOT / e["input_npz"]))
    feeds = {k: feeds[k] for k in e["input_kinds"]}
    kinds = [reference_kind(o["representation"], e["output_kinds"][i]) if i < len(e["output_kinds"]) else "invariant"
             for i, o in enumerate(jf["outputs"])]
    with REF_LOCK:
        model = refs.load_factory(str(ROOT / e["pyspec"]))
        if any(np.asarray(v).dtype == np.float64 for v in feeds.values()):
            model = model.double()
        per = refs.errors3d(model, feeds, e["input_kinds"], kinds, elements)
        out = {"kinds": kinds, "rel": refs.worst(per, 0), "abs": refs.worst(per, 1)}
        intended = list(e["output_kinds"])[:len(kinds)]
        if intended != kinds:  # for the record: the same elements, the output moved as the model means it
            out["intended_kinds"] = intended
            out["rel_intended"] = refs.worst(refs.errors3d(model, feeds, e["input_kinds"], intended, elements), 0)
        if e.get("e3nn") and "cartesian" not in kinds:
            own = refs.e3nn_on_elements(model, feeds, e["input_kinds"], kinds, elements)
            out["e3nn"] = [max(d.values()) for d in own]
    return out


# ------------------------------------------------------------------ judging
def culprit_ok(e: dict, culprit) -> bool:
    want = e.get("expect_culprit")
    wants = [want] if isinstance(want, str) else list(want or [])
    if not culprit:
        return False
    if str(culprit).endswith(":input"):
        # eqcheck's hooks mode names the code *before* a module 'MODULE:input': that is not the module
        return False
    if any(w.lower() in str(culprit).lower() for w in wants):
        return True
    return culprit in (e.get("expect_culprit_nodes") or [])


def judge(e: dict, gen: dict, on_file: dict | None) -> tuple[str, str, dict]:
    """(OK|WRONG, reason, facts)."""
    j = gen["json"]
    facts = {"rc": gen["rc"], "seconds": round(gen["seconds"] + (on_file["seconds"] if on_file else 0.0), 1)}
    if e.get("accept_usage_error"):
        if gen["rc"] == 2 and e["accept_usage_error"] in gen["stderr"]:
            facts["got"] = "usage"
            return "OK", f"usage error as expected: {last_error_line(gen['stderr'])[:140]}", facts
        return "WRONG", f"expected a usage error naming {e['accept_usage_error']!r}; exit {gen['rc']}", facts
    if gen["rc"] not in (0, 1) or j is None:
        return "WRONG", f"exit {gen['rc']}: {last_error_line(gen['stderr'])}", facts
    got = "pass" if j["passed"] else "fail"
    outputs = [(o["name"], o["representation"], float(o["max_rel_error"]), o["passed"]) for o in j["outputs"]]
    facts.update(got=got, worst=worst(j), culprit=j.get("first_failing_layer"), outputs=outputs,
                 exact_worst=exact_worst(j))
    reasons = []
    if (gen["rc"] == 0) != j["passed"]:
        return "WRONG", f"exit code {gen['rc']} disagrees with passed={j['passed']}", facts
    names = [o[0] for o in outputs]
    if names != e["output_names"]:
        reasons.append(f"outputs {names}, expected {e['output_names']} (every output counted)")
    if got != e["expected"]:
        if got == "fail":
            bad = [f"{n} as {r}: {m:.2e}" for n, r, m, p in outputs if not p]
            notes = [d["message"][:160] for d in j.get("diagnoses") or [] if d.get("severity") != "info"][:2]
            return "WRONG", (f"fails: {'; '.join(bad)}; first failing layer {facts['culprit']}"
                             + (f"; eqcheck says: {' | '.join(notes)}" if notes else "")), facts
        return "WRONG", f"passes (max {facts['worst']:.2e}) though the model is broken", facts
    tol = e.get("max_exact_error", 1e-4)
    if got == "pass":
        ew = facts["exact_worst"]
        if ew is not None and ew >= tol:
            reasons.append(f"exact-element error {ew:.2e} >= {tol}")
        failing_layers = [layer["name"] for layer in j.get("layers") or [] if not layer.get("passed", True)]
        if failing_layers:
            reasons.append(f"passing model, but layer {failing_layers[0]} fails in the per-layer table")
        for name, want in (e.get("expect_representation") or {}).items():
            rep = next((r for n, r, _, _ in outputs if n == name), None)
            if rep is None or want not in rep:
                reasons.append(f"output {name} typed {rep!r}, expected {want!r}")
    else:
        if e.get("expect_no_culprit"):
            if facts["culprit"] is not None:
                reasons.append(f"first failing layer {facts['culprit']!r}: the model is right, the declared type "
                               f"is not, so no layer should be blamed")
        elif e.get("expect_culprit") and not culprit_ok(e, facts["culprit"]):
            reasons.append(f"first failing layer {facts['culprit']!r}, expected one naming {e['expect_culprit']!r}")
        failing = [n for n, _, _, p in outputs if not p]
        if e.get("expect_failing_outputs") is not None and failing != e["expect_failing_outputs"]:
            reasons.append(f"failing outputs {failing}, expected {e['expect_failing_outputs']}")
    # ---- the run on the input file
    if on_file is not None:
        jf = on_file["json"]
        if jf is None or on_file["rc"] not in (0, 1):
            reasons.append(f"with --input: exit {on_file['rc']}: {last_error_line(on_file['stderr'])[:150]}")
        else:
            facts["on_file"] = worst(jf)
            facts["on_file_exact_worst"] = exact_worst(jf)
            if e["expected"] == "pass" and not jf["passed"]:
                reasons.append(f"fails on the input file ({facts['on_file']:.2e})")
            if e["expected"] == "pass" and facts["on_file_exact_worst"] is not None and \
                    facts["on_file_exact_worst"] >= tol:
                reasons.append(f"exact-element error on the input file {facts['on_file_exact_worst']:.2e} >= {tol}")
            try:
                ref = same_element_references(e, jf)
            except Exception as exc:  # noqa: BLE001
                ref = {}
                reasons.append(f"reference failed: {type(exc).__name__}: {exc}"[:200])
            facts["same_element_reference"] = ref or None
            fail_idx = [i for i, o in enumerate(jf["outputs"]) if not o["passed"]]
            if e["expected"] == "fail":
                cmp_idx = fail_idx or list(range(len(jf["outputs"])))
                mine = max(float(jf["outputs"][i]["max_rel_error"]) for i in cmp_idx)
                if ref:
                    theirs = max(ref["rel"][i] for i in cmp_idx)
                    facts["reference_used"] = theirs
                    facts["ratio"] = mine / theirs if theirs else None
                    if not theirs or abs(mine / theirs - 1) > 0.10:
                        reasons.append(f"on the input file eqcheck says {mine:.3e}, reference on its elements "
                                       f"{theirs:.3e} (ratio {mine / theirs if theirs else float('nan'):.3f})")
                    if "e3nn" in ref:
                        comparable = [i for i in cmp_idx if ref["kinds"][i] == e["output_kinds"][i]]
                        if comparable:
                            mine_abs = max(float(el["max_abs_error"]) for i in comparable
                                           for el in jf["outputs"][i]["elements"])
                            e3 = max(ref["e3nn"][i] for i in comparable)
                            facts["e3nn_same"] = e3
                            facts["e3nn_ratio"] = mine_abs / e3 if e3 else None
                            if not e3 or abs(mine_abs / e3 - 1) > 0.10:
                                reasons.append(f"max abs {mine_abs:.3e} vs e3nn's equivariance_error on the same "
                                               f"elements {e3:.3e}")
                        else:
                            facts["e3nn_note"] = (f"eqcheck typed the failing output as "
                                                  f"{[jf['outputs'][i]['representation'] for i in cmp_idx]}, not the "
                                                  f"model's irreps: no e3nn comparison")
                elif e["group"].startswith("perm"):
                    theirs = e["reference"]
                    facts["reference_used"] = theirs
                    facts["ratio"] = mine / theirs if theirs else None
                    if not theirs or abs(mine / theirs - 1) > 0.10:
                        reasons.append(f"on the input file eqcheck says {mine:.3e}, reference (8 random perms) "
                                       f"{theirs:.3e} (ratio {mine / theirs if theirs else float('nan'):.3f})")
            elif ref:
                facts["reference_used"] = max(ref["rel"])
    return ("WRONG" if reasons else "OK"), "; ".join(reasons), facts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-file-run", action="store_true", help="skip the second run on the input file")
    ap.add_argument("--all-file-runs", action="store_true",
                    help="run passing ONNX / .pt2 / TorchScript entries on the input file too")
    ap.add_argument("--snapshot", action="store_true",
                    help="test eqcheck as of the last commit (git archive HEAD), not the working tree being edited")
    opts = ap.parse_args()
    global SNAPSHOT
    if opts.snapshot:
        commit, SNAPSHOT = snapshot_head(OUT)
        print(f"testing eqcheck at commit {commit} from {SNAPSHOT}")
    start = time.perf_counter()
    entries = json.loads(MANIFEST.read_text())
    if opts.only:
        entries = [e for e in entries if any(s in e["name"] for s in opts.only)]
    import heldout3d_refs  # noqa: F401  (import torch / e3nn once, before the threads)
    import e3nn.util.test  # noqa: F401

    def one(e):
        gen = run(e, with_input=False)
        on_file = None
        # the run on the input file: every failing entry (its numbers), passing ones as pyspecs (the same
        # models in the other formats give the same numbers; this keeps the check under 10 minutes)
        if not opts.no_file_run and e.get("input_npz") and "--input" not in e["args"] and \
                not e.get("accept_usage_error") and (e["expected"] == "fail" or e["format"] == "pyspec" or opts.all_file_runs):
            on_file = run(e, with_input=True)
        elif "--input" in e["args"]:
            on_file = gen  # the run was on the input file already
        verdict, reason, facts = judge(e, gen, on_file)
        return dict(name=e["name"], expected=e["expected"], verdict=verdict, reason=reason, facts=facts,
                    reference=e["reference"], reference_e3nn_own=e.get("reference_e3nn_own"), cmd=gen["cmd"],
                    file_cmd=on_file["cmd"] if on_file else None, stderr=gen["stderr"][-600:],
                    note_check=e.get("note_check"))

    with ThreadPoolExecutor(max_workers=opts.jobs) as pool:
        results = list(pool.map(one, entries))
    elapsed = time.perf_counter() - start
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = [] if SNAPSHOT else subprocess.run(["git", "status", "--short", "eqcheck"], cwd=ROOT, capture_output=True,
                                               text=True).stdout.split()
    if SNAPSHOT:
        head = Path(SNAPSHOT).name + " (snapshot)"
    # a partial run (--only) does not overwrite the full results
    (OUT / ("results_only.json" if opts.only else "results.json")).write_text(json.dumps(
        {"eqcheck_commit": head, "eqcheck_uncommitted": dirty[1::2], "elapsed_s": elapsed, "results": results},
        indent=1, default=float) + "\n")

    def fmt(v):
        return "-" if v is None else f"{v:.2e}"

    def ratio(v):
        return "-" if v is None else f"{v:.3f}"
    w = max(len(r["name"]) for r in results)
    print(f"{'name':<{w}}  {'expected':<8} {'got':<5} {'worst':>9} {'exact':>9} {'on file':>9} {'ref same g':>10} "
          f"{'ratio':>6} {'e3nn':>6}  {'culprit':<24} result")
    for r in results:
        f = r["facts"]
        got = f.get("got", f"rc{f['rc']}")
        print(f"{r['name']:<{w}}  {r['expected']:<8} {got:<5} {fmt(f.get('worst')):>9} {fmt(f.get('exact_worst')):>9} "
              f"{fmt(f.get('on_file')):>9} {fmt(f.get('reference_used')):>10} {ratio(f.get('ratio')):>6} "
              f"{ratio(f.get('e3nn_ratio')):>6}  {str(f.get('culprit') or '-')[:24]:<24} {r['verdict']}"
              + (f"  -- {r['reason']}" if r["reason"] else ""))
    wrong = [r for r in results if r["verdict"] == "WRONG"]
    print(f"\n{len(results) - len(wrong)} of {len(results)} OK, {len(wrong)} WRONG in {elapsed:.0f} s "
          f"(eqcheck at {head}{', uncommitted changes in ' + ' '.join(dirty[1::2]) if dirty else ''})")
    for r in wrong:
        print(f"WRONG {r['name']}: {r['cmd']}\n      {r['reason']}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
