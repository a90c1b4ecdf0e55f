"""Loading models in every format eqcheck reads, and refusing the files it must not or cannot read."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest
import torch

import eqcheck
from eqcheck.errors import EXIT_MODEL, ModelLoadError, UsageError
from eqcheck.models.loader import load_model

EXACT = 1e-5


def check(model, **options):
    return eqcheck.verify(model, "p4", **options)


def test_onnx_with_a_dynamic_batch_runs_the_first_input_alone_and_the_rest_stacked(exported) -> None:
    result = check(str(exported.onnx))
    assert result.passed and result.output.max_rel_error < EXACT
    assert result.run.model_format == "onnx"
    assert result.run.inputs == {"input": (2, 1, 9, 9)}  # the default batch for a dynamic axis
    assert result.run.forward_passes == 2  # a quick first pass: the others are stacked into one (batching.py)
    assert [e.element for e in result.output.elements] == ["e", "rot90", "rot180", "rot270"]


def test_onnx_with_a_static_batch_of_one_is_run_once_per_input(exported) -> None:
    runner = load_model(str(exported.onnx_static))
    assert not runner.batch_dynamic
    result = check(str(exported.onnx_static))
    assert result.passed and result.output.max_rel_error < EXACT
    assert result.run.inputs == {"input": (1, 1, 9, 9)}
    assert result.run.forward_passes == 2 + 4  # f(x), f(x') and one pass per element


def test_onnx_with_external_weights_beside_it(exported) -> None:
    stored = onnx.load(str(exported.onnx_external), load_external_data=False).graph.initializer
    assert stored and all(t.data_location == onnx.TensorProto.EXTERNAL for t in stored)
    assert exported.onnx_external_data.stat().st_size > 0
    result = check(str(exported.onnx_external))
    assert result.passed and result.output.max_rel_error < EXACT
    reference = check(str(exported.onnx))
    assert [e.rel_error for e in result.output.elements] == [e.rel_error for e in reference.output.elements]


def test_onnx_external_weights_missing_is_a_load_error(exported, tmp_path) -> None:
    proto = onnx.load(str(exported.onnx))
    onnx.save(proto, str(tmp_path / "m.onnx"), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    (tmp_path / "m.onnx.data").unlink()
    with pytest.raises(ModelLoadError, match="m.onnx"):
        check(str(tmp_path / "m.onnx"))


def test_in_memory_model_proto(exported) -> None:
    proto = onnx.load(str(exported.onnx))
    result = eqcheck.verify(proto, "p4")
    assert result.passed and result.output.max_rel_error < EXACT
    assert result.run.model == "<onnx.ModelProto>" and result.run.model_format == "onnx"


def test_exported_program_pt2(exported) -> None:
    result = check(str(exported.pt2))
    assert result.run.model_format == "pt2"
    assert result.passed and result.output.max_rel_error < EXACT
    assert result.run.inputs == {"input": (2, 1, 9, 9)}


def test_torchscript_needs_an_input_shape(exported) -> None:
    with pytest.raises(UsageError, match="--input-shape"):
        check(str(exported.torchscript))
    result = check(str(exported.torchscript), input_shape="2,1,9,9")
    assert result.run.model_format == "torchscript"
    assert result.passed and result.output.max_rel_error < EXACT


def test_python_file_factory(exported) -> None:
    result = check(f"{exported.factories}:tiny_p4")
    assert result.run.model_format == "pytorch"
    assert result.run.inputs == {"input": (2, 1, 9, 9)}  # from the module's example_input_shape
    assert result.passed and result.output.max_rel_error < EXACT


def test_relative_file_spec_from_the_repository_root(monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    result = eqcheck.verify("sample_models/models.py:p4cnn", "p4")
    assert result.run.inputs == {"input": (1, 1, 28, 28)}
    assert result.passed and result.output.max_rel_error < EXACT


def test_package_module_attribute(tmp_path, monkeypatch) -> None:
    package = tmp_path / "tinypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        torch.manual_seed(0)
        model = nn.Conv2d(1, 2, 3, padding=1)   # a module attribute: the model itself
        model.example_input_shape = (2, 1, 9, 9)

        def shifted():                          # a factory
            net = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
            net.example_input_shape = (2, 1, 8, 8)
            return net
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    as_module = eqcheck.verify("tinypkg.nets:model", "p4")
    assert as_module.run.model == "tinypkg.nets:model"
    assert not as_module.passed and as_module.output.max_rel_error > 0.1  # random 3x3 filters: not p4
    from_factory = eqcheck.verify("tinypkg.nets:shifted", "translation")
    assert from_factory.run.inputs == {"input": (2, 1, 8, 8)}
    assert from_factory.passed and from_factory.output.max_rel_error < EXACT


def test_missing_module_or_attribute_is_a_load_error(exported) -> None:
    with pytest.raises(ModelLoadError, match="no_such_pkg"):
        check("no_such_pkg.nets:model")
    with pytest.raises(ModelLoadError, match="no_such_factory"):
        check(f"{exported.factories}:no_such_factory")
    with pytest.raises(ModelLoadError, match="not found"):
        check(f"{exported.folder}/missing.py:model")


def test_weights_are_loaded_into_the_factory_model(exported, tmp_path) -> None:
    spec = f"{exported.factories}:symmetric_conv"
    assert check(spec).passed  # the all-ones filter is rotation-symmetric
    torch.manual_seed(3)
    weights = tmp_path / "random.pt"
    torch.save({"weight": torch.randn(1, 1, 3, 3)}, weights)
    result = check(spec, weights=str(weights))
    assert not result.passed and result.output.max_rel_error > 0.1


def test_weights_that_do_not_fit_are_a_load_error(exported, tmp_path) -> None:
    weights = tmp_path / "wrong.pt"
    torch.save({"weight": torch.randn(4, 1, 5, 5)}, weights)
    with pytest.raises(ModelLoadError, match="could not load weights"):
        check(f"{exported.factories}:symmetric_conv", weights=str(weights))
    with pytest.raises(ModelLoadError, match="weights file not found"):
        check(f"{exported.factories}:symmetric_conv", weights=str(tmp_path / "none.pt"))


def test_weights_for_a_model_file_are_refused_not_ignored(exported) -> None:
    with pytest.raises(UsageError, match="--weights"):
        check(str(exported.onnx), weights=str(exported.state_dict))
    with pytest.raises(UsageError, match="--weights"):
        check(str(exported.pt2), weights=str(exported.state_dict))
    with pytest.raises(UsageError, match="--weights"):
        eqcheck.verify(onnx.load(str(exported.onnx)), "p4", weights=str(exported.state_dict))


def test_onnx_dtype_is_checked_not_ignored(exported) -> None:
    with pytest.raises(UsageError, match="float64.*float32"):
        check(str(exported.onnx), dtype="float64")
    assert check(str(exported.onnx), dtype="float32").run.dtype == "float32"


def test_pickled_module_is_refused_naming_its_classes(exported) -> None:
    with pytest.raises(ModelLoadError) as refused:
        check(str(exported.pickled), input_shape="2,1,9,9")
    message = str(refused.value)
    assert "--unsafe-load" in message
    for name in ("eqcheck.nn.gconv.P4ConvZ2", "eqcheck.nn.gconv.P4ConvP4", "torch.nn.modules.container.Sequential"):
        assert name in message
    assert refused.value.exit_code == EXIT_MODEL


def test_pickled_module_is_accepted_with_unsafe_load(exported) -> None:
    result = check(str(exported.pickled), input_shape="2,1,9,9", unsafe_load=True)
    assert result.passed and result.output.max_rel_error < EXACT


def test_state_dict_given_as_the_model_says_what_to_do(exported) -> None:
    with pytest.raises(ModelLoadError, match="holds weights .*--weights"):
        check(str(exported.state_dict), input_shape="2,1,9,9")


@pytest.mark.parametrize("name, message", [
    ("truncated_onnx", "could not load ONNX model"),
    ("empty_onnx", "empty"),
    ("garbage_pt", "not a PyTorch archive"),
    ("empty_pt", "not a PyTorch archive"),
    ("truncated_pt2", "not a PyTorch archive"),
])
def test_broken_files_are_load_errors(exported, name, message) -> None:
    path = getattr(exported, name)
    with pytest.raises(ModelLoadError, match=message) as error:
        check(str(path), input_shape="2,1,9,9")
    assert error.value.exit_code == EXIT_MODEL
    assert "\n" not in error.value.message


def test_missing_file_and_folder_are_load_errors(exported) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        check(str(exported.folder / "absent.onnx"))
    with pytest.raises(ModelLoadError, match="folder"):
        check(str(exported.folder))


def test_onnx_file_without_the_suffix_is_recognised(exported, tmp_path) -> None:
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(exported.onnx.read_bytes())
    result = check(str(renamed))
    assert result.run.model_format == "onnx" and result.passed


def test_something_that_is_not_a_model_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="cannot check a list"):
        check([1, 2, 3])


def test_the_onnx_path_never_imports_torch() -> None:
    code = textwrap.dedent("""
        import sys
        from eqcheck.cli import main
        code = main(["verify", "sample_models/p4cnn.onnx", "--group", "p4", "-q"])
        assert code == 0, code
        loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        assert not loaded, loaded[:5]
        print("no torch")
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no torch" in done.stdout and "PASS" in done.stdout
