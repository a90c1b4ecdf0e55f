"""Loading never executes untrusted data: pickles inside a .pt2, a pickled module, weights and input files
with payloads are refused with one line, and the payload never runs."""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eqcheck.errors import EXIT_MODEL, EXIT_USAGE

from .conftest import assert_one_error_line, run, run_process


class Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def replace_member(source: Path, target: Path, suffix: str, data: bytes) -> Path:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as out:
        for item in original.infolist():
            out.writestr(item, data if item.filename.endswith(suffix) else original.read(item.filename))
    return target


@pytest.mark.parametrize("form", ["torch.save", "pickle protocol 2", "pickle protocol 0"])
def test_pt2_whose_sample_inputs_carry_a_payload_is_refused_and_runs_nothing(capsys, tmp_path, exported, form):
    import torch

    marker = tmp_path / "PWNED"
    if form == "torch.save":
        buffer = io.BytesIO()
        torch.save(Payload(marker), buffer)
        data = buffer.getvalue()
    else:
        data = pickle.dumps(Payload(marker), protocol=int(form[-1]))
    evil = replace_member(exported.pt2, tmp_path / "evil.pt2", "sample_inputs/model.pt", data)
    code, out, err = run(capsys, "verify", evil, "--group", "p4")
    line = assert_one_error_line(err, code, EXIT_MODEL)
    assert "pickle" in line and "would import and run code" in line
    if form != "pickle protocol 0":  # protocol 0 cannot be read statically: refused without a name
        assert "posix.system" in line or "os.system" in line
    assert not marker.exists()
    assert out == ""


def test_a_clean_pt2_still_loads(capsys, exported) -> None:
    code, out, err = run(capsys, "verify", exported.pt2, "--group", "p4", "-q")
    assert code == 0 and err == "" and out.startswith("PASS")


def test_pt2_load_prints_no_torch_log_or_traceback(tmp_path, exported) -> None:
    """A damaged archive: one line from eqcheck, nothing from torch's logging (checked as a user sees it)."""
    damaged = tmp_path / "damaged.pt2"
    damaged.write_bytes(exported.pt2.read_bytes()[:3000])
    done = run_process("verify", damaged, "--group", "p4")
    assert_one_error_line(done.stderr, done.returncode, EXIT_MODEL)
    evil = replace_member(exported.pt2, tmp_path / "evil.pt2", "sample_inputs/model.pt",
                          pickle.dumps(Payload(tmp_path / "PWNED"), protocol=2))
    done = run_process("verify", evil, "--group", "p4")
    assert_one_error_line(done.stderr, done.returncode, EXIT_MODEL)
    assert not (tmp_path / "PWNED").exists()


def test_weights_with_a_payload_are_refused(capsys, tmp_path, exported) -> None:
    import torch

    marker = tmp_path / "PWNED"
    weights = tmp_path / "weights.pt"
    torch.save({"w": Payload(marker)}, weights)
    code, _, err = run(capsys, "verify", f"{exported.factories}:tiny_p4", "--group", "p4", "--weights", weights)
    assert_one_error_line(err, code, EXIT_MODEL)
    assert not marker.exists()


def test_pickled_module_is_refused_naming_what_it_would_import(capsys, exported) -> None:
    code, _, err = run(capsys, "verify", exported.pickled, "--group", "p4")
    line = assert_one_error_line(err, code, EXIT_MODEL)
    assert "--unsafe-load" in line and "P4ConvZ2" in line


@pytest.mark.parametrize("writer", ["npy", "npz"])
def test_input_files_with_object_arrays_are_not_unpickled(capsys, tmp_path, hostile, writer) -> None:
    marker = tmp_path / "PWNED"
    payload = np.array([Payload(marker)], dtype=object)
    path = tmp_path / f"x.{writer}"
    if writer == "npy":
        np.save(path, payload, allow_pickle=True)
    else:
        np.savez(path, x=payload)
    code, _, err = run(capsys, "verify", hostile.invariant, "--group", "p4", "--input", path)
    assert "pickle" in assert_one_error_line(err, code, EXIT_USAGE)
    assert not marker.exists()


def test_a_pytorch_file_given_as_input_is_named_as_such(capsys, tmp_path, hostile) -> None:
    import torch

    path = tmp_path / "x.pt"
    torch.save({"x": torch.randn(2, 1, 8, 8)}, path)
    code, _, err = run(capsys, "verify", hostile.invariant, "--group", "p4", "--input", path)
    assert "not a .npz" in assert_one_error_line(err, code, EXIT_USAGE)


def test_importing_a_factory_leaves_no_bytecode_behind(capsys, hostile) -> None:
    before = sorted(p.name for p in hostile.folder.iterdir())
    code, _, _ = run(capsys, "verify", f"{hostile.factories}:invariant", "--group", "p4", "-q")
    assert code == 0
    assert sorted(p.name for p in hostile.folder.iterdir()) == before  # no __pycache__


def test_help_says_that_a_python_spec_runs_its_code(capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "runs its code" in " ".join(out.split())
    code, out, _ = run(capsys, "verify", "--help")
    assert "runs that code" in " ".join(out.split())
