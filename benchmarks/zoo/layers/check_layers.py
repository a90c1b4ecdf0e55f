"""Run eqcheck's per-layer analysis on the models of models.py and judge the tables.

    .venv/bin/python benchmarks/zoo/layers/check_layers.py [CASE ...] [--selfcheck]

For every case it runs
    .venv/bin/eqcheck verify benchmarks/zoo/layers/models.py:CASE --group p4 --unsafe-load --json -
keeps the JSON in build/layers/CASE.json, and prints one row per case: expected and got verdict,
expected culprit, got first_failing_layer, the FAIL rows, the notes about a stopped analysis or a
constant output, and OK/WRONG with the reason.  The whole table also goes to build/layers/summary.txt
(and summary.json).  Exit 0 when every case is OK, 1 otherwise.

The judge:
- the verdict (JSON ``passed``) is the expected one (and the exit code agrees: 0 pass, 1 fail);
- a failing model's ``first_failing_layer`` is the fault, or a name inside it (``fault.``...);
- every FAIL row (``passed`` false) is the fault or inside it: no exact layer before or after it is
  blamed, and an exact leaf layer must have ``passed`` true (a null is reported too);
- a container (a row whose name is a component prefix of another row's name: ``blocks`` for
  ``blocks.4``) is not FAIL, unless it is the fault itself or inside it;
- a passing model has no FAIL rows and a null first_failing_layer;
- the analysis ran to the end (no "per-layer analysis stopped" note), for every case;
- zero_head: a note or diagnosis says the output is constant / does not depend on the input.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MODELS = "benchmarks/zoo/layers/models.py"
OUT = ROOT / "build" / "layers"
EQCHECK = ROOT / ".venv" / "bin" / "eqcheck"


def under(prefix):
    """A matcher: the row named ``prefix`` or any row inside it."""
    return lambda row: row["name"] == prefix or row["name"].startswith(prefix + ".")


def roll_row(row):
    """The row of the functional torch.roll: its name says roll (a merged glue op alone is not enough
    for the culprit; for the FAIL-row rule a row whose op holds the roll is the fault too)."""
    return "roll" in row["name"]


def roll_op(row):
    return "roll" in row["name"] or "roll" in str(row.get("op", ""))


# name: (expected verdict, expected culprit (text), culprit matcher, fault matchers for FAIL rows, extra)
CASES = {
    "nested_sequential_broken": ("FAIL", "blocks.4[.*]", under("blocks.4"), [under("blocks.4")], {}),
    "modulelist_loop_broken": ("FAIL", "stages.2[.*]", under("stages.2"), [under("stages.2")], {}),
    "moduledict_broken": ("FAIL", "stages.middle[.*]", under("stages.middle"), [under("stages.middle")], {}),
    "twice_called_then_fault": ("FAIL", "plain[.*]", under("plain"), [under("plain")], {"passing": ["g#1", "g#2"]}),
    "functional_roll": ("FAIL", "*roll*", roll_row, [roll_op], {}),
    "folded_group_axis_exact": ("PASS", None, None, [], {}),
    "small_vit": ("FAIL", "any (patch_embed|pos_embed)", lambda row: True,
                  [under("patch_embed"), lambda r: "pos_embed" in r["name"] or "pos_embed" in str(r.get("op", ""))],
                  {}),
    "zero_head": ("any", None, None, [], {"constant": True}),
    "exact_nested": ("PASS", None, None, [], {}),
    "resnet_block_exact": ("PASS", None, None, [], {}),
    "resnet_block_broken_skip": ("FAIL", "block.skip[.*]", under("block.skip"), [under("block.skip")], {}),
}

STOP_RE = re.compile(r"per-layer analysis stopped", re.I)
CONST_RE = re.compile(r"constant|does not depend on the input", re.I)


def run_case(name):
    cmd = [str(EQCHECK), "verify", f"{MODELS}:{name}", "--group", "p4", "--unsafe-load", "--json", "-"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    data = None
    start = proc.stdout.find("{")
    if start >= 0:  # the JSON object (anything printed after it is ignored)
        try:
            data, _ = json.JSONDecoder().raw_decode(proc.stdout[start:])
        except json.JSONDecodeError:
            data = None
    if data is not None:
        (OUT / f"{name}.json").write_text(json.dumps(data, indent=1))
    return proc.returncode, data, proc.stderr.strip()


def is_container(row, names):
    return any(other.startswith(row["name"] + ".") for other in names if other != row["name"])


def judge(name, rc, data, stderr):
    expected, exp_culprit, culprit_ok, faults, extra = CASES[name]
    res = {"case": name, "expected": expected, "exp_culprit": exp_culprit or "-", "rc": rc}
    if data is None:
        res.update(got="ERROR", culprit="-", fail_rows=[], notes=[], ok=False,
                   reasons=[f"no JSON (rc {rc}): {stderr.splitlines()[-1] if stderr else ''}"])
        return res
    rows = data.get("layers") or []
    names = [r["name"] for r in rows]
    got = "PASS" if data.get("passed") else "FAIL"
    culprit = data.get("first_failing_layer")
    fail_rows = [r["name"] for r in rows if r.get("passed") is False]
    null_rows = [r["name"] for r in rows if r.get("passed") is None]
    texts = list(data.get("run", {}).get("notes", [])) + [d.get("message", "") for d in data.get("diagnoses", [])]
    stop_notes = [t for t in texts if STOP_RE.search(t)]
    const_notes = [d.get("code") or d.get("message", "")[:40] for d in data.get("diagnoses", [])
                   if CONST_RE.search(d.get("message", "")) or d.get("code") == "constant-output"]
    const_notes += [t[:60] for t in data.get("run", {}).get("notes", []) if CONST_RE.search(t)]
    reasons = []
    if expected != "any" and got != expected:
        reasons.append(f"verdict {got}, expected {expected}")
    if rc != (0 if got == "PASS" else 1):
        reasons.append(f"exit code {rc} for {got}")
    by_name = {r["name"]: r for r in rows}
    in_fault = lambda r: any(m(r) for m in faults)  # noqa: E731
    if expected == "FAIL":
        if culprit is None:
            reasons.append("first_failing_layer is null")
        else:
            row = by_name.get(culprit, {"name": culprit, "op": ""})
            if not culprit_ok(row):
                op = f" (op {row.get('op')})" if row.get("op") else ""
                reasons.append(f"culprit {culprit}{op} is not {exp_culprit}")
            elif is_container(row, names) and not in_fault(row):
                reasons.append(f"culprit {culprit} is a container")
    elif expected == "PASS" and culprit is not None:
        reasons.append(f"first_failing_layer {culprit} on a passing model")
    wrong_fail, wrong_cont, wrong_null = [], [], []
    for r in rows:
        if in_fault(r):
            continue
        container = is_container(r, names)
        if r.get("passed") is False:
            (wrong_cont if container else wrong_fail).append(r["name"])
        elif r.get("passed") is None and not container and expected != "PASS":
            wrong_null.append(r["name"])
    if wrong_cont:
        reasons.append(f"container(s) FAIL: {', '.join(wrong_cont)}")
    if wrong_fail:
        where = "on a passing model" if got == "PASS" or expected == "PASS" else "outside the fault"
        reasons.append(f"exact layer(s) FAIL {where}: {', '.join(wrong_fail)}")
    if wrong_null:
        reasons.append(f"exact layer(s) with passed null: {', '.join(wrong_null)}")
    for must in extra.get("passing", []):
        if must not in by_name:
            reasons.append(f"no row {must}")
        elif by_name[must].get("passed") is not True:
            reasons.append(f"{must} not passing")
    if stop_notes:
        reasons.append("analysis stopped: " + stop_notes[0][:80])
    if extra.get("constant") and not const_notes:
        reasons.append("no note/diagnosis that the output is constant")
    if not rows:
        reasons.append("no per-layer rows")
    notes = [("stop: " + t[:60]) for t in stop_notes] + [("constant: " + c) for c in const_notes]
    res.update(got=got, culprit=culprit or "null", fail_rows=fail_rows, null_rows=null_rows, notes=notes,
               ok=not reasons, reasons=reasons)
    return res


def table(results):
    head = ("case", "exp", "got", "exp culprit", "got first_failing_layer", "judge")
    w = [max(len(head[0]), *(len(r["case"]) for r in results)), 4, 5,
         max(len(head[3]), *(len(r["exp_culprit"]) for r in results)),
         max(len(head[4]), *(len(str(r["culprit"])) for r in results)), 5]
    line = lambda cells: "  ".join(str(c).ljust(n) for c, n in zip(cells, w)).rstrip()  # noqa: E731
    out = [line(head), line(["-" * n for n in w])]
    for r in results:
        out.append(line((r["case"], r["expected"], r["got"], r["exp_culprit"], r["culprit"],
                         "OK" if r["ok"] else "WRONG")))
        out.append(f"    FAIL rows: {', '.join(r['fail_rows']) or '-'}")
        if r.get("null_rows"):
            out.append(f"    passed null: {', '.join(r['null_rows'])}")
        out.append(f"    notes: {'; '.join(r['notes']) or '-'}")
        if not r["ok"]:
            out.append(f"    why WRONG: {'; '.join(r['reasons'])}")
    n_ok = sum(r["ok"] for r in results)
    out.append(f"\n{n_ok} of {len(results)} cases OK")
    return "\n".join(out)


def main(argv):
    if "--selfcheck" in argv:
        sys.path.insert(0, str(Path(__file__).parent))
        import models
        models.self_check()
        argv = [a for a in argv if a != "--selfcheck"]
    names = argv or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    results = [judge(n, *run_case(n)) for n in names]
    text = table(results)
    print(text)
    (OUT / "summary.txt").write_text(text + "\n")
    (OUT / "summary.json").write_text(json.dumps(results, indent=1))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
