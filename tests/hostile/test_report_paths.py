"""Reports never destroy data: a report path that is a file the run reads is refused before anything runs,
special files are written in place (or refused), never replaced; links write their targets."""
from __future__ import annotations

import os
import shutil
import stat
import textwrap
import threading

import pytest

from eqcheck.errors import EXIT_EQUIVARIANT, EXIT_USAGE

from .conftest import assert_one_error_line, run


@pytest.fixture
def model(tmp_path, sample):
    path = tmp_path / "m.onnx"
    shutil.copy(sample("p4cnn"), path)
    return path


@pytest.mark.parametrize("option", ["--json", "--html", "--junit"])
def test_a_report_over_the_model_is_refused_and_the_model_kept(capsys, model, option) -> None:
    before = model.read_bytes()
    code, out, err = run(capsys, "verify", model, "--group", "p4", option, model)
    line = assert_one_error_line(err, code, EXIT_USAGE)
    assert "is the model this run reads" in line
    assert model.read_bytes() == before and out == ""


def test_a_report_over_a_link_to_the_model_or_through_dotdot_is_refused(capsys, model, tmp_path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(model)
    (tmp_path / "sub").mkdir()
    for path in (link, tmp_path / "sub" / ".." / "m.onnx"):
        code, _, err = run(capsys, "verify", model, "--group", "p4", "--json", path)
        assert_one_error_line(err, code, EXIT_USAGE)
    assert link.is_symlink()


def test_a_report_over_the_external_data_of_an_onnx_model_is_refused(capsys, exported) -> None:
    before = exported.onnx_external_data.read_bytes()
    code, _, err = run(capsys, "verify", exported.onnx_external, "--group", "p4", "--html", exported.onnx_external_data)
    assert "external data" in assert_one_error_line(err, code, EXIT_USAGE)
    assert exported.onnx_external_data.read_bytes() == before


def test_reports_over_inputs_weights_and_a_factory_source_are_refused(capsys, tmp_path, exported, hostile) -> None:
    import numpy as np

    inputs = tmp_path / "x.npy"
    np.save(inputs, np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    cases = [
        (["verify", hostile.invariant, "--group", "p4", "--input", inputs, "--json", inputs], "the input file"),
        (["verify", f"{exported.factories}:tiny_p4", "--group", "p4", "--weights", exported.state_dict,
          "--junit", exported.state_dict], "the weights file"),
        (["verify", f"{exported.factories}:tiny_p4", "--group", "p4", "--html", exported.factories],
         "a source file of the model"),
    ]
    for args, what in cases:
        target = args[-1]
        before = target.read_bytes()
        code, _, err = run(capsys, *args)
        assert what in assert_one_error_line(err, code, EXIT_USAGE)
        assert target.read_bytes() == before


def test_check_refuses_a_report_over_its_config_or_a_listed_model(capsys, tmp_path, model) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text(textwrap.dedent("""
        [tool.eqcheck]
        group = "p4"

        [[tool.eqcheck.models]]
        path = "m.onnx"
    """))
    before = config.read_text()
    for target, what in ((config, "the config"), (model, "the model")):
        code, _, err = run(capsys, "check", "--config", config, "--json", target)
        assert what in assert_one_error_line(err, code, EXIT_USAGE)
    assert config.read_text() == before


def test_report_refuses_to_overwrite_the_result_it_renders(capsys, tmp_path, model) -> None:
    result = tmp_path / "r.json"
    assert run(capsys, "verify", model, "--group", "p4", "--json", result, "-q")[0] == EXIT_EQUIVARIANT
    before = result.read_text()
    for option in ("--html", "--junit"):
        code, _, err = run(capsys, "report", result, option, result)
        assert "the result this run reads" in assert_one_error_line(err, code, EXIT_USAGE)
    assert result.read_text() == before


def test_two_reports_in_one_file_and_html_to_stdout_are_usage_errors(capsys, tmp_path, model) -> None:
    same = tmp_path / "r.out"
    code, _, err = run(capsys, "verify", model, "--group", "p4", "--json", same, "--html", same)
    assert "name the same file" in assert_one_error_line(err, code, EXIT_USAGE)
    for option in ("--html", "--junit"):
        code, _, err = run(capsys, "verify", model, "--group", "p4", option, "-")
        assert "standard output" in assert_one_error_line(err, code, EXIT_USAGE)
    assert not same.exists() and not (tmp_path / "-").exists()


def test_a_symlinked_report_path_writes_its_target_and_stays_a_link(capsys, tmp_path, model) -> None:
    target = tmp_path / "real.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    code, _, _ = run(capsys, "verify", model, "--group", "p4", "--json", link, "-q")
    assert code == EXIT_EQUIVARIANT
    assert link.is_symlink() and target.read_text().startswith("{")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_fifo_is_written_in_place_and_stays_a_fifo(capsys, tmp_path, model) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    code, _, err = run(capsys, "verify", model, "--group", "p4", "--json", fifo, "-q")
    reader.join(30)
    assert code == EXIT_EQUIVARIANT, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received and received[0].startswith("{")


def test_a_fifo_without_a_reader_is_refused_not_waited_on(capsys, tmp_path, model) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "verify", model, "--group", "p4", "--junit", fifo, "-q")
    assert "no reader" in assert_one_error_line(err, code, EXIT_USAGE)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_socket_is_refused(capsys, tmp_path, model) -> None:
    import socket

    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        code, _, err = run(capsys, "verify", model, "--group", "p4", "--json", path)
        assert "socket" in assert_one_error_line(err, code, EXIT_USAGE)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        server.close()
