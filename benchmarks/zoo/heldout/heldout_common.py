"""Helpers shared by the held-out scripts (numpy and json only: importable from .venv and .venv-escnn).

Everything is written under ``build/heldout/`` (git-ignored). Several scripts add entries to
``build/heldout/manifest.json``; each owns the entries whose ``"source"`` is its own name and replaces
only those, so each script can be re-run alone.

A manifest entry is one eqcheck check (a model file may appear in several entries):

    name            unique id of the check
    model           the model it checks (shared by its formats and checks)
    file            model path relative to the repository root (pyspec: ``path.py:factory``)
    format          onnx | pt2 | pyspec
    group           group spec given to --group
    args            extra CLI arguments (list of strings)
    expected        "pass" | "fail"
    reference       max rel error computed with the library's own transforms (escnn / e2cnn
                    GeometricTensor.transform, GrouPy's GFuncArray left translation, or by hand),
                    on ``input_npz``, over ``reference_elements``
    reference_elements   which elements the reference covers
    reference_comparable true when eqcheck's elements are the same set (p4/p4m/right angles): then
                    eqcheck's number on ``input_npz`` must agree with ``reference`` (10% on failing models)
    input_npz       the input behind the reference (keys: input names)
    expect_culprit  (fail) substring the first failing layer must contain, or null
    expect_failing_outputs (fail) output names that must fail (and only they)
    env             extra environment (PYTHONPATH for GrouPy pyspecs)
    note            what the model is
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
OUT = REPO / "build" / "heldout"
MANIFEST = OUT / "manifest.json"
REQUIRED = ("name", "model", "file", "format", "group", "args", "expected", "reference", "note")


def rel(path) -> str:
    return Path(os.path.relpath(path, REPO)).as_posix()


def load_manifest() -> list[dict]:
    if MANIFEST.exists():
        return json.loads(MANIFEST.read_text())
    return []


def replace_source_entries(source: str, new_entries: list[dict]) -> None:
    for e in new_entries:
        missing = [k for k in REQUIRED if k not in e]
        if missing:
            raise ValueError(f"entry {e.get('name')} lacks {missing}")
        e["source"] = source
    kept = [e for e in load_manifest() if e.get("source") != source]
    entries = kept + new_entries
    names = [e["name"] for e in entries]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate check names {sorted(dup)}")
    entries.sort(key=lambda e: (e["source"], e["name"]))
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = MANIFEST.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n")
    os.replace(tmp, MANIFEST)


def rel_err(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def gaussian(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def smooth(shape, seed: int, sigma: float = 2.0) -> np.ndarray:
    """Band-limited input for interpolated rotations: Gaussian noise blurred over the two spatial
    axes, unit std, windowed to a disk of radius 0.45 * size (the models also mask it)."""
    from scipy.ndimage import gaussian_filter
    x = np.random.default_rng(seed).standard_normal(shape)
    x = gaussian_filter(x, sigma=(0,) * (len(shape) - 2) + (sigma, sigma), mode="wrap")
    x = x / x.std()
    h, w = shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    x = x * (r <= 0.45 * min(h, w))
    return x.astype(np.float32)


def save_npz(path: Path, **arrays) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return rel(path)


def entry(name, model, file, fmt, group, expected, reference, note, args=(), **extra) -> dict:
    e = dict(name=name, model=model, file=file, format=fmt, group=group, args=list(args),
             expected=expected, reference=reference, note=note)
    e.update(extra)
    return e


def snapshot_head(out: Path, rev: str = "HEAD") -> tuple[str, str]:
    """``git archive REV eqcheck`` into ``out``/eqcheck_snapshot/<commit>: by default the last commit, whatever
    is being edited in the working tree (the held-out checks' ``--snapshot``). Returns (commit, directory)."""
    head = subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    target = out / "eqcheck_snapshot" / head
    if not (target / "eqcheck").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", head, "eqcheck"], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return head, str(target)
