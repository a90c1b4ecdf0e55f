"""Run eqcheck over every entry of build/zoo/manifest.json and compare with the expected verdicts.

Run: python benchmarks/zoo/check_zoo.py   (after benchmarks/zoo/build_zoo.sh)
For each entry: eqcheck's verdict on generated inputs, and on the entry's input file its max rel
error beside the independent reference number of the manifest.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from eqcheck import verify  # noqa: E402
from eqcheck.errors import EqcheckError  # noqa: E402


def main() -> int:
    entries = json.loads((ROOT / "build/zoo/manifest.json").read_text())
    wrong = 0
    for entry in entries:
        model = entry["file"]
        group = entry["group"]
        # a model meant to run with dropout active: eqcheck runs PyTorch models in eval mode unless told
        options = {"input_shape": entry["input_shape"], "train_mode": bool(entry.get("nondeterministic"))}
        try:
            generated = verify(model, group, **options)
            on_file = verify(model, group, inputs=entry["input_npz"], train_mode=options["train_mode"]) \
                if entry.get("input_npz") else None
        except EqcheckError as error:
            print(f"ERROR {entry['name']:<32} {Path(model).name:<34} {group:<22} {error}")
            wrong += 1
            continue
        verdict = "pass" if generated.passed else "fail"
        ok = verdict == entry["expected"]
        wrong += not ok
        reference = entry.get("reference_max_rel_error")
        mine = on_file.output.max_rel_error if on_file else None
        agreement = ""
        if reference and mine is not None and reference > 1e-4:
            agreement = f" ratio {mine / reference:.3f}"
        print(f"{'ok   ' if ok else 'WRONG'} {entry['name']:<32} {Path(model).name:<34} {group:<22} "
              f"{verdict} (expected {entry['expected']}) rel {generated.output.max_rel_error:.2e} "
              f"as {generated.output.representation}; on file {mine if mine is None else f'{mine:.3e}'} "
              f"ref {reference if reference is None else f'{reference:.3e}'}{agreement}")
    print(f"{len(entries) - wrong} of {len(entries)} as expected")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
