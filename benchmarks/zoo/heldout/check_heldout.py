#!/usr/bin/env python
"""Run ``eqcheck verify ... --json -`` on every entry of build/heldout/manifest.json and judge it.

Run: .venv/bin/python benchmarks/zoo/heldout/check_heldout.py [--only SUBSTRING ...] [--jobs N]
(after build_heldout.sh --no-check). eqcheck runs as a subprocess (the CLI a user runs), twice per entry:
once on its own generated inputs (the verdict, as a grader runs it) and once with ``--input`` on the
entry's input file (eqcheck's number beside the reference computed with the library's transforms).

An entry is OK when
  - the exit code is 0 (expected pass) or 1 (expected fail); exit 2 only where the entry accepts a usage
    error whose message names what it asks for (``accept_usage_error``);
  - pass: every exact element's error is below ``max_exact_error`` (1e-5) where the entry says so;
  - fail: the first failing layer contains ``expect_culprit``, and the failing outputs are the expected
    ones (by name; for a tuple the second output); where the reference covers the same elements
    (``reference_comparable``), eqcheck's max rel error on the input file (of the failing output) is
    within 10% of the reference.
Writes build/heldout/results.json (one record per entry) and prints the table.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout_common import snapshot_head  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "build/heldout/manifest.json"
EQCHECK = ROOT / ".venv/bin/eqcheck"


def command(e: dict, with_input: bool) -> list[str]:
    args = list(e["args"])
    if with_input:
        # an --input replaces --input-shape
        cleaned, skip = [], False
        for a in args:
            if skip:
                skip = False
                continue
            if a == "--input-shape":
                skip = True
                continue
            cleaned.append(a)
        args = cleaned
        if "--input" not in args:
            args += ["--input", e["input_npz"]]
    return [str(EQCHECK.relative_to(ROOT)), "verify", e["file"], "--group", e["group"], *args, "--json", "-"]


#: a directory holding an ``eqcheck`` package to test instead of the working tree (--snapshot)
SNAPSHOT: str | None = None


def run(e: dict, with_input: bool) -> dict:
    cmd = command(e, with_input)
    env = dict(os.environ)
    env.pop("GITHUB_ACTIONS", None)
    extra = dict(e.get("env") or {})
    if SNAPSHOT:
        extra["PYTHONPATH"] = SNAPSHOT + (os.pathsep + extra["PYTHONPATH"] if extra.get("PYTHONPATH") else "")
    for k, v in extra.items():
        env[k] = v + (os.pathsep + env[k] if env.get(k) else "")
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    res = {"cmd": " ".join(shlex.quote(c) for c in cmd), "rc": p.returncode, "stderr": p.stderr.strip(),
           "env": e.get("env")}
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


def judge(e: dict, gen: dict, on_file: dict | None) -> tuple[str, str, dict]:
    """(OK|WRONG, reason, facts)."""
    j = gen["json"]
    facts = {"rc": gen["rc"]}
    if gen["rc"] == 2 and e.get("accept_usage_error") and e["accept_usage_error"] in gen["stderr"]:
        return "OK", f"usage error asking for {e['accept_usage_error']}: {gen['stderr'][:120]}", facts
    if gen["rc"] not in (0, 1) or j is None:
        return "WRONG", f"exit {gen['rc']}: {gen['stderr'][:200]}", facts
    got = "pass" if j["passed"] else "fail"
    facts.update(got=got, worst=worst(j), culprit=j.get("first_failing_layer"),
                 outputs=[(o["name"], o["representation"], o["max_rel_error"], o["passed"]) for o in j["outputs"]])
    if (gen["rc"] == 0) != j["passed"]:
        return "WRONG", f"exit code {gen['rc']} disagrees with passed={j['passed']}", facts
    if got != e["expected"]:
        if got == "fail":
            bad = [f"{n} as {r}: {m:.2e}" for n, r, m, p in facts["outputs"] if not p]
            return "WRONG", f"fails: {'; '.join(bad)}; first failing layer {facts['culprit']}", facts
        return "WRONG", f"passes (max {facts['worst']:.2e}) though the model is broken", facts
    reasons = []
    if got == "pass":
        ew = exact_worst(j)
        facts["exact_worst"] = ew
        if e.get("max_exact_error") and ew is not None and ew >= e["max_exact_error"]:
            reasons.append(f"exact-element error {ew:.2e} >= {e['max_exact_error']}")
        failing_layers = [layer["name"] for layer in j.get("layers") or [] if not layer.get("passed", True)]
        if failing_layers:
            reasons.append(f"passing model, but layer {failing_layers[0]} fails in the per-layer table")
    else:
        culprit = e.get("expect_culprit")
        if culprit and (not facts["culprit"] or culprit.lower() not in str(facts["culprit"]).lower()):
            reasons.append(f"first failing layer {facts['culprit']!r}, expected one naming {culprit!r}")
        failing = [o["name"] for o in j["outputs"] if not o["passed"]]
        names = [o["name"] for o in j["outputs"]]
        want_by_fmt = e.get("expect_failing_outputs_by_format")
        if want_by_fmt:
            want = want_by_fmt[e["format"]]
            idx = e.get("expect_failing_output_index")
            if failing != [want]:
                where = f" (the output at index {idx} is {names[idx]!r})" if idx is not None and idx < len(names) else ""
                reasons.append(f"failing outputs {failing}, expected [{want!r}]{where}; outputs {names}")
    if e.get("reference_comparable") and on_file and on_file.get("json"):
        jf = on_file["json"]
        if got == "fail":
            failing = [o for o in jf["outputs"] if not o["passed"]] or jf["outputs"]
            mine = max(float(o["max_rel_error"]) for o in failing)
            ref = e["reference"]
            if e.get("reference_output_max"):
                ref = max(e["reference_output_max"])
            facts["on_file"] = mine
            facts["ratio"] = mine / ref if ref else None
            if ref and abs(mine / ref - 1) > 0.10:
                reasons.append(f"on the input file eqcheck says {mine:.3e}, reference {ref:.3e} "
                               f"(ratio {mine / ref:.3f}, more than 10% off)")
        else:
            facts["on_file"] = worst(jf)
            if not jf["passed"]:
                reasons.append(f"on the input file it fails ({worst(jf):.2e}) while the reference is "
                               f"{e['reference']:.2e}")
    elif on_file is not None and on_file.get("json"):
        facts["on_file"] = worst(on_file["json"])
        if e["expected"] == "pass" and not on_file["json"]["passed"]:
            reasons.append(f"fails on the input file ({facts['on_file']:.2e})")
    elif on_file is not None:
        reasons.append(f"with --input: exit {on_file['rc']}: {on_file['stderr'][:150]}")
    return ("WRONG" if reasons else "OK"), "; ".join(reasons), facts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-file-run", action="store_true", help="skip the second run on the input file")
    ap.add_argument("--snapshot", action="store_true",
                    help="test eqcheck as of the last commit (git archive HEAD), not the working tree being edited")
    opts = ap.parse_args()
    global SNAPSHOT
    if opts.snapshot:
        commit, SNAPSHOT = snapshot_head(ROOT / "build/heldout")
        print(f"testing eqcheck at commit {commit} from {SNAPSHOT}")
    entries = json.loads(MANIFEST.read_text())
    if opts.only:
        entries = [e for e in entries if any(s in e["name"] for s in opts.only)]

    def one(e):
        gen = run(e, with_input=False)
        on_file = None
        if not opts.no_file_run and e.get("input_npz") and "--input" not in e["args"] and \
                not e.get("accept_usage_error"):
            on_file = run(e, with_input=True)
        verdict, reason, facts = judge(e, gen, on_file)
        return dict(name=e["name"], expected=e["expected"], verdict=verdict, reason=reason, facts=facts,
                    reference=e["reference"], cmd=gen["cmd"], env=gen["env"], stderr=gen["stderr"][:500],
                    file_cmd=on_file["cmd"] if on_file else None)

    with ThreadPoolExecutor(max_workers=opts.jobs) as pool:
        results = list(pool.map(one, entries))
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = [] if SNAPSHOT else subprocess.run(["git", "status", "--short", "eqcheck"], cwd=ROOT, capture_output=True,
                                               text=True).stdout.split()
    if SNAPSHOT:
        head = Path(SNAPSHOT).name + " (snapshot)"
    (ROOT / "build/heldout/results.json").write_text(json.dumps(
        {"eqcheck_commit": head, "eqcheck_uncommitted": dirty[1::2], "results": results}, indent=1) + "\n")

    def fmt(v):
        return "-" if v is None else f"{v:.2e}"
    w = max(len(r["name"]) for r in results)
    print(f"{'name':<{w}}  {'expected':<8} {'got':<5} {'worst':>9} {'reference':>9} {'on file':>9}  "
          f"{'culprit':<22} result")
    for r in results:
        f = r["facts"]
        got = f.get("got", f"rc{f['rc']}")
        print(f"{r['name']:<{w}}  {r['expected']:<8} {got:<5} {fmt(f.get('worst')):>9} {fmt(r['reference']):>9} "
              f"{fmt(f.get('on_file')):>9}  {str(f.get('culprit') or '-')[:22]:<22} {r['verdict']}"
              + (f"  -- {r['reason']}" if r["reason"] else ""))
    wrong = [r for r in results if r["verdict"] == "WRONG"]
    print(f"\n{len(results) - len(wrong)} of {len(results)} OK, {len(wrong)} WRONG "
          f"(eqcheck at {head}{', uncommitted changes in ' + ' '.join(dirty[1::2]) if dirty else ''})")
    for r in wrong:
        env = " ".join(f"{k}={v}" for k, v in (r["env"] or {}).items() if not SNAPSHOT or k != "PYTHONPATH")
        print(f"WRONG {r['name']}: {(env + ' ') if env else ''}{r['cmd']}\n      {r['reason']}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
