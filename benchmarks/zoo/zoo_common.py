"""Helpers shared by the zoo scripts (numpy, scipy and json only: no torch, no escnn).

The zoo is written under ``build/zoo/`` (git-ignored).  Several scripts contribute
entries to the same ``build/zoo/manifest.json``: each one owns the entries whose
``"source"`` is its own script name and replaces only those, so the scripts can be
re-run in any order and independently.
"""
from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "build" / "zoo"
MANIFEST = ZOO / "manifest.json"

# Keys every manifest entry has (the contract asked for by the eqcheck team);
# scripts may add more (escnn_rel_error, reference_max_rel_error, ...).
REQUIRED_KEYS = ("file", "format", "group", "input_shape", "expected", "output_type",
                 "note", "broken_layer")


def rel(path: Path) -> str:
    """Path relative to the repository root, with forward slashes."""
    return Path(os.path.relpath(path, REPO)).as_posix()


def load_manifest() -> list[dict]:
    if MANIFEST.exists():
        with open(MANIFEST) as fh:
            return json.load(fh)
    return []


def save_manifest(entries: list[dict]) -> None:
    for e in entries:
        missing = [k for k in REQUIRED_KEYS if k not in e]
        if missing:
            raise ValueError(f"manifest entry {e.get('file')} lacks {missing}")
    entries = sorted(entries, key=lambda e: (e.get("source", ""), e.get("name", ""),
                                              e["format"], e["file"], e["group"]))
    ZOO.mkdir(parents=True, exist_ok=True)
    tmp = MANIFEST.with_suffix(".json.tmp")
    with open(tmp, "w") as fh:
        json.dump(entries, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, MANIFEST)


def replace_source_entries(source: str, new_entries: list[dict]) -> list[dict]:
    """Drop the entries this source wrote before, add the new ones, save."""
    kept = [e for e in load_manifest() if e.get("source") != source]
    for e in new_entries:
        e["source"] = source
    entries = kept + new_entries
    save_manifest(entries)
    return entries


def input_seed(name: str) -> int:
    """Seed of a model's fixed input (the same in every script and every venv)."""
    return zlib.crc32(name.encode()) % (2 ** 31)


def make_input(shape, seed: int, smooth: bool) -> np.ndarray:
    """The zoo's test input: standard normal noise (numpy PCG64), or for groups that
    need interpolation (c8, so2) the same noise blurred by a Gaussian of sigma 2 px over
    the two spatial axes (periodic boundary) and rescaled to unit std. float32."""
    x = np.random.default_rng(seed).standard_normal(shape)
    if smooth:
        from scipy.ndimage import gaussian_filter
        x = gaussian_filter(x, sigma=(0,) * (len(shape) - 2) + (2.0, 2.0), mode="wrap")
        x = x / x.std()
    return x.astype(np.float32)


SMOOTH_GROUPS = ("c8", "so2")
