"""The second round of hostile cases, from a fresh-eyed adversarial review: payloads named by a .pt2's
config, report paths through missing folders and links, the sources a package imports, exits from exit
handlers and raw descriptors, casts that would change the data, and values that used to be internal
errors."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import textwrap
import zipfile

import numpy as np
import pytest

from eqcheck.errors import EXIT_MODEL, EXIT_NOT_EQUIVARIANT, EXIT_USAGE

from .conftest import RAW_CONTROL, assert_one_error_line, run, run_process, save_onnx


class Payload:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pt2_config_naming_an_opaque_object_is_refused(capsys, tmp_path) -> None:
    import torch

    class WithConstant(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("c", torch.ones(1), persistent=False)

        def forward(self, x):
            return x.mean(dim=(2, 3)) * self.c

    clean = tmp_path / "clean.pt2"
    torch.export.save(torch.export.export(WithConstant(), (torch.randn(2, 1, 8, 8),)), str(clean))
    payload = pickle.dumps(Payload(tmp_path / "PWNED"), protocol=2)
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(clean) as source, zipfile.ZipFile(evil, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("model_constants_config.json"):
                config = json.loads(data)
                entry = next(iter(config["config"].values()))
                entry["path_name"] = "opaque_obj_0/x"
                data = json.dumps(config).encode()
            out.writestr(item, data)
        out.writestr("clean/data/constants/opaque_obj_0/x", payload)
    code, _, err = run(capsys, "verify", evil, "--group", "p4")
    assert "plain pickle" in assert_one_error_line(err, code, EXIT_MODEL)
    assert not (tmp_path / "PWNED").exists()


def test_dotdot_through_a_missing_folder_cannot_reach_the_model(capsys, tmp_path, sample, monkeypatch) -> None:
    model = tmp_path / "m.onnx"
    shutil.copy(sample("p4cnn"), model)
    before = model.read_bytes()
    monkeypatch.chdir(tmp_path)
    for path in ("missing/../m.onnx", "m.onnx/../m.onnx"):
        code, _, err = run(capsys, "verify", "m.onnx", "--group", "p4", "--json", path)
        assert_one_error_line(err, code, EXIT_USAGE)
    code, _, err = run(capsys, "verify", "m.onnx", "--group", "p4", "--json", "a.json", "--html", "x/../a.json")
    assert "name the same file" in assert_one_error_line(err, code, EXIT_USAGE)
    assert model.read_bytes() == before


def external_model(folder, name: str, location: str):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32) / 9, "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 2, 8, 8])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / name), save_as_external_data=True, location=location, size_threshold=0)
    return folder / name


def test_external_data_is_protected_in_check_without_suffix_and_through_links(capsys, tmp_path) -> None:
    external_model(tmp_path, "model.onnx", "model.data")
    (tmp_path / "pyproject.toml").write_text('[tool.eqcheck]\ngroup = "p4"\n[[tool.eqcheck.models]]\n'
                                             'path = "model.onnx"\n')
    before = (tmp_path / "model.data").read_bytes()
    code, _, err = run(capsys, "check", "--config", tmp_path / "pyproject.toml", "--json", tmp_path / "model.data")
    assert "external data" in assert_one_error_line(err, code, EXIT_USAGE)
    external_model(tmp_path, "bare", "bare.bin")
    code, _, err = run(capsys, "verify", tmp_path / "bare", "--group", "p4", "--json", tmp_path / "bare.bin")
    assert "external data" in assert_one_error_line(err, code, EXIT_USAGE)
    external_model(tmp_path, "linked.onnx", "link.bin")
    (tmp_path / "link.bin").rename(tmp_path / "real.bin")
    (tmp_path / "link.bin").symlink_to(tmp_path / "real.bin")
    code, _, err = run(capsys, "verify", tmp_path / "linked.onnx", "--group", "p4", "--json", tmp_path / "real.bin")
    assert "external data" in assert_one_error_line(err, code, EXIT_USAGE)
    assert (tmp_path / "model.data").read_bytes() == before


def test_the_sources_a_package_spec_imports_are_protected(capsys, tmp_path, monkeypatch) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("# init\n")
    (package / "layers.py").write_text("from torch import nn\nHead = nn.Identity\n")
    (package / "mod.py").write_text(textwrap.dedent("""
        from torch import nn
        from pkg.layers import Head
        class M(nn.Module):
            example_input_shape = (2, 1, 8, 8)
            def forward(self, x):
                return Head()(x.mean(dim=(2, 3)))
        m = M()
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for target in ("pkg/__init__.py", "pkg/layers.py"):
        before = (tmp_path / target).read_text()
        code, _, err = run(capsys, "verify", "pkg.mod:m", "--group", "p4", "--junit", target)
        assert "source file" in assert_one_error_line(err, code, EXIT_USAGE)
        assert (tmp_path / target).read_text() == before


def test_a_factory_that_changes_folder_moves_no_report(capsys, tmp_path, monkeypatch) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "f.py").write_text(textwrap.dedent("""
        import os
        from torch import nn
        os.chdir(os.path.dirname(os.path.abspath(__file__)))
        class M(nn.Module):
            example_input_shape = (2, 1, 8, 8)
            def forward(self, x):
                return x.mean(dim=(2, 3))
    """))
    work = tmp_path / "run"
    work.mkdir()
    monkeypatch.chdir(work)
    before = (models / "f.py").read_text()
    code, _, _ = run(capsys, "verify", "../models/f.py:M", "--group", "p4", "--json", "f.py", "-q")
    assert code == 0 and (work / "f.py").read_text().startswith("{")
    assert (models / "f.py").read_text() == before and os.getcwd() == str(work)


FACTORY = textwrap.dedent('''
    import atexit, os, sys
    import torch
    from torch import nn


    class Plain(nn.Module):
        example_input_shape = (2, 1, 8, 8)

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x)


    def atexit_exit():
        atexit.register(lambda: os._exit(0))
        return Plain()


    class PosixExit(Plain):
        def forward(self, x):
            import posix
            posix._exit(0)


    class RawWrites(Plain):
        def forward(self, x):
            os.write(1, b"::error::forged\\n\\x1b]0;TITLE\\x07\\n")
            sys.__stderr__.write("::warning::also forged\\x1b[2J\\n")
            sys.__stderr__.flush()
            return super().forward(x)
''')


@pytest.fixture
def factory(tmp_path):
    path = tmp_path / "f.py"
    path.write_text(FACTORY)
    return path


def test_an_exit_handler_cannot_change_the_exit_code(factory) -> None:
    done = run_process("verify", f"{factory}:atexit_exit", "--group", "p4", "-q")
    assert done.returncode == EXIT_NOT_EQUIVARIANT, done.stderr
    assert done.stderr == ""


def test_posix_exit_from_forward_is_a_model_error(factory) -> None:
    done = run_process("verify", f"{factory}:PosixExit", "--group", "p4")
    assert "SystemExit(0)" in assert_one_error_line(done.stderr, done.returncode, EXIT_MODEL)


def test_raw_descriptor_writes_of_model_code_never_reach_the_log(factory, tmp_path) -> None:
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}
    done = run_process("verify", f"{factory}:RawWrites", "--group", "p4", env=env)
    assert done.returncode == EXIT_NOT_EQUIVARIANT
    assert not RAW_CONTROL.search(done.stdout + done.stderr)
    assert all(line.startswith("::error title=eqcheck") for line in (done.stdout + done.stderr).splitlines()
               if line.startswith("::"))
    assert "printed" in done.stdout  # the note that says it did


def test_casts_that_would_change_the_data_are_refused(capsys, tmp_path) -> None:
    from onnx import TensorProto, helper

    half = save_onnx(helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["B", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])]), tmp_path / "half.onnx")
    big = tmp_path / "big.npy"
    np.save(big, np.full((2, 4), 1e5, np.float32))
    code, _, err = run(capsys, "verify", half, "--group", "perm", "--input", big)
    assert "float16's range" in assert_one_error_line(err, code, EXIT_USAGE)
    narrow = save_onnx(helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], "g",
        [helper.make_tensor_value_info("x", TensorProto.INT32, ["B", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])]), tmp_path / "narrow.onnx")
    wide = tmp_path / "wide.npy"
    np.save(wide, np.arange(8, dtype=np.int64).reshape(2, 4) * 2**32)
    code, _, err = run(capsys, "verify", narrow, "--group", "perm", "--input", wide)
    assert "int32's range" in assert_one_error_line(err, code, EXIT_USAGE)


def _odd_input_model(tmp_path, dtype, shape):
    from onnx import helper

    return save_onnx(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", dtype, shape)],
        [helper.make_tensor_value_info("y", dtype, shape)]), tmp_path / f"odd_{dtype}_{len(shape or [])}.onnx")


def test_odd_onnx_inputs_get_one_clear_line(capsys, tmp_path) -> None:
    from onnx import TensorProto

    code, _, err = run(capsys, "verify", _odd_input_model(tmp_path, TensorProto.STRING, ["B", 3]), "--group", "perm")
    assert "tensor(string)" in assert_one_error_line(err, code, EXIT_USAGE)
    code, _, err = run(capsys, "verify", _odd_input_model(tmp_path, TensorProto.FLOAT, None), "--group", "perm")
    assert "--input-shape" in assert_one_error_line(err, code, EXIT_USAGE)
    code, _, err = run(capsys, "verify", _odd_input_model(tmp_path, TensorProto.UINT64, ["B", 3]), "--group", "perm")
    assert "--input" in assert_one_error_line(err, code, EXIT_USAGE)


@pytest.mark.parametrize("options, named", [(["--timeout", "1e20"], "--timeout"), (["--timeout", "1e-9"], "--timeout"),
                                            (["--group", "so2:4:order=3:order=1"], "given twice"),
                                            (["--group", "perm:axis=1:axis=2"], "given twice")])
def test_more_bad_values_are_usage_errors(capsys, hostile, options, named) -> None:
    group = [] if "--group" in options else ["--group", "p4"]
    code, _, err = run(capsys, "verify", hostile.invariant, *group, *options)
    assert named in assert_one_error_line(err, code, EXIT_USAGE)


def test_a_config_shape_with_negative_or_no_dims_is_refused(capsys, tmp_path, hostile) -> None:
    for shape in ("[2, -1, 8, 8]", "{x = []}"):
        config = tmp_path / "pyproject.toml"
        config.write_text(f'[tool.eqcheck]\ngroup = "p4"\ninput-shape = {shape}\n'
                          f'[[tool.eqcheck.models]]\npath = "{hostile.invariant}"\n')
        code, _, err = run(capsys, "check", "--config", config)
        assert "input-shape" in assert_one_error_line(err, code, EXIT_USAGE)


def test_npz_members_that_lie_are_refused(capsys, tmp_path, hostile) -> None:
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("input.npy", b"not an array at all")
    code, _, err = run(capsys, "verify", hostile.invariant, "--group", "p4", "--input", bad)
    assert_one_error_line(err, code, EXIT_USAGE)
    huge = tmp_path / "huge.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((2, 1, 8, 8), np.float32))
    header["shape"] = (2, 1, 1_000_000, 1_000_000)
    with zipfile.ZipFile(huge, "w") as archive, archive.open("input.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
        member.write(b"\0" * 64)
    code, _, err = run(capsys, "verify", hostile.invariant, "--group", "p4", "--input", huge)
    assert "GiB" in assert_one_error_line(err, code, EXIT_USAGE)


def test_results_with_odd_numbers_are_usage_errors(capsys, tmp_path, sample) -> None:
    saved = tmp_path / "r.json"
    assert run(capsys, "verify", sample("p4cnn"), "--group", "p4", "--json", saved, "-q")[0] == 0
    data = json.loads(saved.read_text())
    for change, named in ((lambda d: d.__setitem__("tolerance", "nan"), "tolerance"),
                          (lambda d: d.__setitem__("tolerance", 0), "tolerance"),
                          (lambda d: d["run"].__setitem__("seed", None), "run.seed")):
        copy = json.loads(json.dumps(data))
        change(copy)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(copy))
        code, _, err = run(capsys, "report", path, "--html", tmp_path / "r.html")
        assert named in assert_one_error_line(err, code, EXIT_USAGE)
    path = tmp_path / "digits.json"
    path.write_text(saved.read_text().replace('"seed": 0', '"seed": ' + "9" * 5000))
    code, _, err = run(capsys, "report", path)
    assert_one_error_line(err, code, EXIT_USAGE)
    path.write_text(saved.read_text().replace('"group": "p4"', '"group": "p4\\ud800"'))
    code, out, err = run(capsys, "report", path)
    assert code == 0 and "\\ud800" in out


def test_odd_factories_are_model_errors(capsys, tmp_path) -> None:
    (tmp_path / "odd.py").write_text(textwrap.dedent("""
        from torch import nn
        class Strings(nn.Identity):
            example_input_shape = ("a", 1, 8, 8)
        class Unprintable(Exception):
            def __str__(self):
                raise RuntimeError("no")
        class Raises(nn.Module):
            example_input_shape = (2, 1, 8, 8)
            def forward(self, x):
                raise Unprintable()
    """))
    for attr in ("Strings", "Raises"):
        code, _, err = run(capsys, "verify", f"{tmp_path / 'odd.py'}:{attr}", "--group", "p4")
        assert_one_error_line(err, code, EXIT_MODEL)


def test_invisible_format_characters_are_shown_escaped() -> None:
    from eqcheck.report.inert import printable

    assert printable("a\u200bb\u200fc\ufeffd\u00ade\u061cf") == "a\\u200bb\\u200fc\\ufeffd\\xade\\u061cf"


def test_a_pooled_output_under_interpolated_rotations_fails_cleanly(capsys, sample) -> None:
    """Enough samples to fit a [B, C] output's type, and angles that interpolate: a clean FAIL, not a crash."""
    code, out, err = run(capsys, "verify", sample("z2cnn"), "--group", "c8", "--batch-size", "100", "-q")
    assert code == EXIT_NOT_EQUIVARIANT and err == "" and out.startswith("FAIL")


def test_outputs_of_different_strides_each_keep_their_own(capsys, tmp_path) -> None:
    (tmp_path / "two.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn
        class Two(nn.Module):
            example_input_shape = (2, 1, 16, 16)
            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.full = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
                self.coarse = nn.Conv2d(1, 2, 2, stride=2)
            def forward(self, x):
                return self.full(x), self.coarse(x)
    """))
    code, out, err = run(capsys, "verify", f"{tmp_path / 'two.py'}:Two", "--group", "translation", "-q",
                         "--no-per-layer")
    assert code == 0, out + err


def test_a_child_the_model_forks_exits_for_real(capsys, tmp_path) -> None:
    (tmp_path / "forks.py").write_text(textwrap.dedent("""
        import os
        from torch import nn
        class Forks(nn.Module):
            example_input_shape = (2, 1, 8, 8)
            def forward(self, x):
                pid = os.fork()
                if pid == 0:
                    os._exit(0)  # a worker's end: must end the child, not raise in it
                os.waitpid(pid, 0)
                return x.mean(dim=(2, 3))
    """))
    report = tmp_path / "r.json"
    code, out, _ = run(capsys, "verify", f"{tmp_path / 'forks.py'}:Forks", "--group", "p4", "-q", "--json", report)
    assert code == 0 and out.count("PASS") == 1
    assert json.loads(report.read_text())["passed"] is True
