"""Inputs for a check: shapes from the model or the user, seeded Gaussian or smooth data, or a file."""
from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import numpy as np

from eqcheck.actions.spatial import soft_disk_window
from eqcheck.errors import ShapeError, UsageError
from eqcheck.models.base import InputSpec, first_line
from eqcheck.validation import check_memory

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


def is_integer_dtype(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def generate(shape: tuple[int, ...], dtype: str, rng: np.random.Generator, smooth_spatial: bool,
             index_range: int | None = None) -> np.ndarray:
    """Seeded standard normal data (smooth when asked and the tensor has spatial axes); for integer inputs,
    uniform indices below ``index_range`` (the size of the table they index); random booleans."""
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if is_integer_dtype(dtype):
        if index_range is None or index_range < 1:
            raise UsageError(f"an integer input of shape {list(shape)} ({dtype}) whose range the model does not "
                             f"say: give real values with --input FILE.npz (or, on a PyTorch module, declare "
                             f"example_input_ranges = {{NAME: how many values}})")
        return rng.integers(0, index_range, shape).astype(dtype)
    data = rng.standard_normal(shape)
    if smooth_spatial and len(shape) >= 3:
        data = smooth(data)
    return data.astype(np.float32 if dtype == "bfloat16" else dtype)


def input_bytes(shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str]) -> int:
    """Bytes of one copy of every input (bfloat16 is fed as float32)."""
    total = 0
    for name, shape in shapes.items():
        dtype = "float32" if dtypes[name] == "bfloat16" else dtypes[name]
        total += math.prod(shape) * np.dtype(dtype).itemsize
    return total


def check_values(name: str, array: np.ndarray, source: str) -> None:
    """Given inputs must be real, finite numbers with a non-empty batch: anything else is an input
    problem, never the model's error."""
    where = f"input {name!r} from {source}"
    kind = array.dtype.kind
    if kind == "c":
        raise UsageError(f"{where} holds complex values: model inputs are real (give the real and imaginary "
                         f"parts as channels)")
    if kind not in "biuf":
        raise UsageError(f"{where} holds {array.dtype} values, not numbers")
    if array.ndim == 0:
        raise UsageError(f"{where} is a single number: an input needs its axes (a batch first)")
    if 0 in array.shape:
        raise UsageError(f"{where} is empty (shape {list(array.shape)})")
    if kind == "f" and not np.isfinite(array).all():
        nan, inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        raise UsageError(f"{where} holds {nan} NaN and {inf} infinite values: inputs must be finite (the model "
                         f"would be blamed for them)")


def cast_input(name: str, array: np.ndarray, spec: InputSpec, source: str) -> np.ndarray:
    """``array`` in the dtype the model takes (integers kept as they are where the model does not say its
    dtype); values that the cast would change beyond rounding are refused: fractions for integers, values
    out of the target's range (which would wrap or become infinite)."""
    check_values(name, array, source)
    if not spec.dtype_known and array.dtype.kind in "biu":
        return array
    target = np.dtype("float32" if spec.dtype == "bfloat16" else spec.dtype)
    where = f"input {name!r} from {source}"
    if target.kind in "iu" and array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        raise UsageError(f"{where} holds fractions, the model takes {spec.dtype}")
    if target.kind in "iu" and array.dtype.kind in "iuf":
        info = np.iinfo(target)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise UsageError(f"{where} holds values from {low} to {high}, beyond {spec.dtype}'s range "
                             f"({info.min} to {info.max})")
    if target.kind == "b" and not np.isin(array, (0, 1)).all():
        raise UsageError(f"{where} holds values other than 0 and 1, the model takes booleans")
    try:
        converted = array.astype(target, copy=False)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{where}: cannot be fed as {spec.dtype} ({error})") from None
    if target.kind == "f" and not np.isfinite(converted).all():
        raise UsageError(f"{where} holds values beyond {spec.dtype}'s range (largest "
                         f"{float(np.abs(array).max()):.3g}, {spec.dtype} reaches {float(np.finfo(target).max):.3g})")
    return converted


def _npy(path: Path) -> np.ndarray:
    """A ``.npy`` file: its header read first (memory-mapped), so that a huge array is refused, not loaded."""
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:  # object arrays, bad headers, truncated data
        raise UsageError(f"input file {path} cannot be read without pickle ({first_line(error)})") from None
    check_memory(mapped.nbytes, 1, f"input file {path}")
    return np.array(mapped)


def _member_bytes(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> int:
    """The bytes an ``.npy`` member's header declares (what loading it would allocate)."""
    with archive.open(member) as handle:
        major, _ = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(handle)
    return math.prod(shape) * dtype.itemsize


def _npz(path: Path) -> dict[str, np.ndarray]:
    """A ``.npz`` file: every member a ``.npy`` (a zip of anything else is not one), its declared size
    checked before it is read, read without pickle."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        others = [m.filename for m in members if not m.filename.endswith(".npy")]
        if others:
            raise UsageError(f"input file {path} is a zip archive but not a .npz: it holds {others[0]!r} (a PyTorch "
                             f"file? eqcheck reads arrays saved with numpy.save or numpy.savez)")
        try:
            declared = sum(_member_bytes(archive, m) for m in members)
        except Exception as error:  # a member that is no .npy: numpy's header reader says why
            raise UsageError(f"input file {path}: a member is not a readable .npy ({first_line(error)})") from None
    check_memory(declared, 1, f"input file {path}")
    arrays = {}
    with np.load(path, allow_pickle=False) as loaded:
        for key in loaded.keys():
            try:
                arrays[key] = loaded[key]
            except Exception as error:  # object arrays (pickle), truncated data
                raise UsageError(f"input file {path}: array {key!r} cannot be read without pickle "
                                 f"({first_line(error)})") from None
    return arrays


def load_input_file(path: str | Path, specs: list[InputSpec]) -> dict[str, np.ndarray]:
    """Arrays from ``.npy`` (a model of one input) or ``.npz`` (by input name: _by_input_name),
    read without pickle, checked (``check_values``) and cast to the dtypes the model takes."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"input file not found: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(6)
        if magic.startswith(b"\x93NUMPY"):
            if len(specs) > 1:
                raise UsageError(f"input file {path} is one array (.npy), the model takes "
                                 f"{', '.join(s.name for s in specs)}: give a .npz with an array per input")
            arrays = {specs[0].name: _npy(path)}
        elif magic.startswith(b"PK\x03\x04"):
            loaded = _npz(path)
            arrays = _by_input_name(loaded, specs, path)
        else:
            raise UsageError(f"input file {path} is neither .npy nor .npz (numpy.save and numpy.savez write them)")
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise UsageError(f"could not read input file {path}: {first_line(error)}") from None
    for spec in specs:
        array = cast_input(spec.name, arrays[spec.name], spec, str(path))  # its values checked first
        if spec.shape is not None and len(spec.shape) != array.ndim:
            raise ShapeError(f"input {spec.name!r} has rank {len(spec.shape)} ({_show(spec.shape)}), "
                             f"the array in {path} has shape {list(array.shape)}")
        arrays[spec.name] = array
    return arrays


def _by_input_name(loaded: dict[str, np.ndarray], specs: list[InputSpec], path: Path) -> dict[str, np.ndarray]:
    """Each input's array by its name; a model of one input also takes the key ``input`` or a file of one
    array; ``np.savez(path, a, b)``'s ``arr_0``, ``arr_1`` ... are the inputs in order. Anything else is an
    error: an array is never fed to an input it was not named for."""
    keys = list(loaded)
    if not keys:
        raise UsageError(f"input file {path} holds no array")
    positional = [f"arr_{i}" for i in range(len(specs))]
    if sorted(keys) == sorted(positional) and not any(spec.name in keys for spec in specs):
        return {spec.name: loaded[key] for spec, key in zip(specs, positional)}
    arrays = {}
    for spec in specs:
        if spec.name in keys:
            arrays[spec.name] = loaded[spec.name]
        elif len(specs) == 1 and ("input" in keys or len(keys) == 1):
            arrays[spec.name] = loaded["input" if "input" in keys else keys[0]]
        else:
            names = ", ".join(s.name for s in specs)
            raise UsageError(f"input file {path} has no array named {spec.name!r} (has: {', '.join(keys)}; the "
                             f"model takes {names}: name each array after its input, np.savez(path, {specs[0].name}=...))")
    return arrays
