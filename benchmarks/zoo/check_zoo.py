"""Run eqcheck over every entry of build/zoo/manifest.json and compare with the expected verdicts.

Run: python benchmarks/zoo/check_zoo.py   (after benchmarks/zoo/build_zoo.sh)
For each entry: eqcheck's verdict on generated inputs, and on the entry's input file its max rel
error beside the independent reference number of the manifest; then the per-layer table: every
layer of a model expected to pass must pass (and the actions its 4-D and 5-D feature maps were
given are listed), and a model expected to fail must name a first failing layer (where the format
allows a per-layer table: TorchScript has none).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from eqcheck import verify  # noqa: E402
from eqcheck.errors import EqcheckError  # noqa: E402


def per_layer(result, expected: str) -> tuple[bool, str]:
    """Whether the per-layer table agrees with the expected verdict, and what it says in a few words."""
    if not result.layers:
        return True, "no per-layer table"
    if expected == "pass":
        failing = [layer.name for layer in result.layers if not layer.passed]
        maps = Counter(layer.representation for layer in result.layers if len(layer.shape) >= 4)
        kinds = ", ".join(f"{spec} x{count}" for spec, count in maps.most_common())
        if failing:
            return False, f"LAYER FAILS: {failing[0]}"
        return True, f"all {len(result.layers)} layers pass (maps: {kinds or 'none'})"
    if result.first_failing_layer is None:
        return False, "NO FAILING LAYER NAMED"
    return True, f"first failing layer {result.first_failing_layer}"


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
        layers_ok, layers_note = per_layer(generated, entry["expected"])
        ok = verdict == entry["expected"] and layers_ok
        wrong += not ok
        reference = entry.get("reference_max_rel_error")
        mine = on_file.output.max_rel_error if on_file else None
        agreement = ""
        if reference and mine is not None and reference > 1e-4:
            agreement = f" ratio {mine / reference:.3f}"
        print(f"{'ok   ' if ok else 'WRONG'} {entry['name']:<32} {Path(model).name:<34} {group:<22} "
              f"{verdict} (expected {entry['expected']}) rel {generated.output.max_rel_error:.2e} "
              f"as {generated.output.representation}; on file {mine if mine is None else f'{mine:.3e}'} "
              f"ref {reference if reference is None else f'{reference:.3e}'}{agreement}; {layers_note}")
    print(f"{len(entries) - wrong} of {len(entries)} as expected")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
