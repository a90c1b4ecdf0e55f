"""Inputs for a check: shapes from the model or the user, seeded Gaussian or smooth data, or a file."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from eqcheck.actions.spatial import soft_disk_window
from eqcheck.errors import ShapeError, UsageError
from eqcheck.models.base import InputSpec

DEFAULT_BATCH = 2


def parse_shape(text: str) -> tuple[int, ...]:
    """``1,3,28,28`` or ``1x3x28x28`` -> (1, 3, 28, 28); positive integers only."""
    body = re.sub(r"\s+", "", text).strip("[]()")
    if not re.fullmatch(r"\d+([,x]\d+)*", body) or any(int(p) == 0 for p in re.split(r"[,x]", body)):
        raise ShapeError(f"malformed shape {text!r}: expected positive integers like 1,3,28,28")
    return tuple(int(p) for p in re.split(r"[,x]", body))


def parse_named_shapes(values: list[str] | None) -> dict[str | None, tuple[int, ...]]:
    """``--input-shape`` values: ``B,C,H,W`` (the first input) or ``NAME=B,C,H,W``."""
    shapes: dict[str | None, tuple[int, ...]] = {}
    for value in values or []:
        name, sep, shape = value.rpartition("=")
        shapes[name if sep else None] = parse_shape(shape)
    return shapes


def resolve_shapes(specs: list[InputSpec], given: dict[str | None, tuple[int, ...]],
                   batch: int | None = None) -> dict[str, tuple[int, ...]]:
    """A concrete shape for every input: given, else the model's static dims (dynamic batch -> ``batch``)."""
    unknown = set(given) - {None} - {s.name for s in specs}
    if unknown:
        raise ShapeError(f"--input-shape names no input of the model: {sorted(unknown)[0]!r} "
                         f"(inputs: {', '.join(s.name for s in specs)})")
    shapes = {}
    for index, spec in enumerate(specs):
        shape = given.get(spec.name) or (given.get(None) if index == 0 else None)
        if shape is not None:
            if spec.shape is not None and len(spec.shape) != len(shape):
                raise ShapeError(f"input {spec.name!r} has rank {len(spec.shape)} "
                                 f"({_show(spec.shape)}), the shape given has rank {len(shape)}")
        elif spec.shape is None:
            raise ShapeError(f"the shape of input {spec.name!r} is not known: give --input-shape, e.g. 2,1,28,28")
        elif any(d is None for d in spec.shape[1:]):
            raise ShapeError(f"input {spec.name!r} has dynamic axes {_show(spec.shape)}: give --input-shape")
        else:
            shape = ((spec.shape[0] or batch or DEFAULT_BATCH),) + tuple(spec.shape[1:])
        shapes[spec.name] = shape
    return shapes


def _show(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def smooth(x: np.ndarray, rng_cutoff: float = 0.25) -> np.ndarray:
    """Band-limit the last two axes (Gaussian low-pass at ``rng_cutoff`` of Nyquist), window to a disk.

    White noise makes even a perfect model look 20-30% wrong under interpolated rotations; smooth,
    windowed inputs rotate almost losslessly (CONVENTIONS section 4).
    """
    h, w = x.shape[-2:]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    sigma = rng_cutoff * 0.5
    lowpass = np.exp(-(fy**2 + fx**2) / (2 * sigma**2))
    filtered = np.real(np.fft.ifft2(np.fft.fft2(x.astype(np.float64)) * lowpass))
    filtered *= soft_disk_window(h, w)
    scale = filtered.std() or 1.0
    return filtered / scale


def generate(shape: tuple[int, ...], dtype: str, rng: np.random.Generator, smooth_spatial: bool) -> np.ndarray:
    """Seeded standard normal data (smooth when asked and the tensor has spatial axes); zeros for integers."""
    if not dtype.startswith("float") and dtype != "bfloat16":
        return np.zeros(shape, dtype=dtype)
    data = rng.standard_normal(shape)
    if smooth_spatial and len(shape) >= 3:
        data = smooth(data)
    return data.astype(np.float32 if dtype == "bfloat16" else dtype)


def load_input_file(path: str | Path, specs: list[InputSpec]) -> dict[str, np.ndarray]:
    """Arrays from ``.npy`` (the first input) or ``.npz`` (by input name, else key ``input``, else the first)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"input file not found: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as error:
        with path.open("rb") as handle:
            magic = handle.read(6)
        if not magic.startswith((b"\x93NUMPY", b"PK\x03\x04")):  # neither .npy nor .npz (a zip)
            raise UsageError(f"input file {path} is neither .npy nor .npz (numpy.save and numpy.savez write them)") from None
        raise UsageError(f"could not read input file {path}: {str(error).splitlines()[0] if str(error) else error!r}") from None
    if isinstance(loaded, np.ndarray):
        arrays = {specs[0].name: loaded}
    else:
        with loaded:
            keys = list(loaded.keys())
            if not keys:
                raise UsageError(f"input file {path} holds no array")
            arrays = {}
            for index, spec in enumerate(specs):
                key = spec.name if spec.name in keys else ("input" if "input" in keys and index == 0 else None)
                if key is None and index == 0:
                    key = keys[0]
                if key is None:
                    raise UsageError(f"input file {path} has no array named {spec.name!r} (has: {', '.join(keys)})")
                arrays[spec.name] = loaded[key]
    for spec in specs:
        array = arrays[spec.name]
        if spec.shape is not None and len(spec.shape) != array.ndim:
            raise ShapeError(f"input {spec.name!r} has rank {len(spec.shape)} ({_show(spec.shape)}), "
                             f"the array in {path} has shape {list(array.shape)}")
        arrays[spec.name] = array.astype(spec.dtype if spec.dtype != "bfloat16" else "float32", copy=False)
    return arrays
