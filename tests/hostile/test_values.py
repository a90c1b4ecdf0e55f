"""Every value is validated before work starts: one line, exit 2, no hang, no false pass; integer inputs are
never silently zeros; bad input data is the input's problem, not the model's."""
from __future__ import annotations

import time

import numpy as np
import pytest

from eqcheck.errors import EXIT_MODEL, EXIT_NOT_EQUIVARIANT, EXIT_USAGE

from .conftest import assert_one_error_line, run, run_process


@pytest.mark.parametrize("options, named", [
    (["--samples", "0"], "--samples 0"),
    (["--samples", "100000000"], "--samples 100000000"),
    (["--tol", "inf"], "--tol inf"),
    (["--tol", "nan"], "--tol nan"),
    (["--tol", "-1"], "--tol -1"),
    (["--tol", "0"], "--tol 0"),
    (["--tol", "1.5"], "--tol 1.5"),
    (["--approx-tol", "inf"], "--approx-tol inf"),
    (["--batch-size", "0"], "--batch-size 0"),
    (["--max-batch", "-1"], "--max-batch -1"),
    (["--seed", "-1"], "--seed -1"),
    (["--timeout", "-3"], "--timeout -3"),
    (["--group", "so2:0"], "so2:0"),
    (["--group", "so2:100000000"], "so2:100000000"),
    (["--group", "translation:interior:margin=-5"], "margin"),
    (["--group", "perm:axis=-1"], "axis"),
    (["--group", "c1"], "no element but the identity"),
    (["--input-shape", "1,1,100000,100000"], "GiB"),
])
def test_bad_values_are_usage_errors_before_work_starts(capsys, hostile, options, named) -> None:
    group = [] if "--group" in options else ["--group", "p4"]
    start = time.perf_counter()
    code, out, err = run(capsys, "verify", hostile.invariant, *group, *options)
    assert named in assert_one_error_line(err, code, EXIT_USAGE)
    assert out == "" and time.perf_counter() - start < 20


def test_a_tolerance_of_inf_in_the_config_is_refused(capsys, tmp_path, hostile) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text(f'[tool.eqcheck]\ngroup = "p4"\ntol = inf\n\n[[tool.eqcheck.models]]\npath = "{hostile.named}"\n')
    code, _, err = run(capsys, "check", "--config", config)
    assert "tol inf" in assert_one_error_line(err, code, EXIT_USAGE)


def test_integer_inputs_get_valid_indices_not_zeros(capsys, hostile) -> None:
    code, out, err = run(capsys, "verify", hostile.tokens, "--group", "perm", "-q")
    assert code == 0, err  # the mean of embeddings is permutation invariant
    # position-weighted tokens pass on all-zero inputs; on real indices they fail
    code, out, err = run(capsys, "verify", hostile.position_weighted, "--group", "perm", "--output", "y", "-q")
    assert code == EXIT_NOT_EQUIVARIANT, err


def test_integer_inputs_of_unknown_range_ask_for_real_inputs(capsys, hostile) -> None:
    code, _, err = run(capsys, "verify", hostile.integers, "--group", "perm")
    assert "--input" in assert_one_error_line(err, code, EXIT_USAGE)


def test_a_model_without_inputs_or_with_a_scalar_output_is_a_usage_error(capsys, hostile) -> None:
    code, _, err = run(capsys, "verify", hostile.no_input, "--group", "p4")
    assert "takes no input" in assert_one_error_line(err, code, EXIT_USAGE)
    code, _, err = run(capsys, "verify", hostile.scalar, "--group", "p4")
    assert "single number" in assert_one_error_line(err, code, EXIT_USAGE)


def _array(kind: str) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    if kind == "nan":
        x[0, 0, 1, 1] = np.nan
    elif kind == "inf":
        x[1, 0, 2, 2] = -np.inf
    elif kind == "complex":
        return x.astype(np.complex64)
    elif kind == "empty":
        return x[:0]
    elif kind == "strings":
        return np.array(["a", "b"])
    return x


@pytest.mark.parametrize("kind, named", [("nan", "NaN"), ("inf", "infinite"), ("complex", "complex"),
                                         ("empty", "empty"), ("strings", "not numbers")])
def test_bad_input_data_is_the_input_problem(tmp_path, hostile, kind, named) -> None:
    """As a user runs it: one line, exit 2, and no Python warning on stderr."""
    path = tmp_path / "x.npz"
    np.savez(path, x=_array(kind))
    done = run_process("verify", hostile.invariant, "--group", "p4", "--input", path)
    assert named in assert_one_error_line(done.stderr, done.returncode, EXIT_USAGE)
    assert "Warning" not in done.stderr


def test_fractional_values_for_an_integer_input_are_refused(capsys, tmp_path, hostile) -> None:
    path = tmp_path / "t.npy"
    np.save(path, np.random.default_rng(0).standard_normal((2, 5)))
    code, _, err = run(capsys, "verify", hostile.tokens, "--group", "perm", "--input", path)
    assert "fractions" in assert_one_error_line(err, code, EXIT_USAGE)


def test_given_out_of_range_indices_are_a_model_error_not_a_traceback(capsys, tmp_path, hostile) -> None:
    path = tmp_path / "t.npy"
    np.save(path, np.full((2, 5), 99, dtype=np.int64))
    code, _, err = run(capsys, "verify", hostile.tokens, "--group", "perm", "--input", path)
    assert_one_error_line(err, code, EXIT_MODEL)
