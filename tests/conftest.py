"""Shared fixtures: the sample models, and one session folder of tiny models exported in every format."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

@pytest.fixture(autouse=True)
def one_check_at_a_time(monkeypatch):
    """``eqcheck check`` in one process unless a test asks for ``--jobs`` (workers would not see what a
    test monkeypatches); tests/test_check_jobs.py runs it in parallel."""
    monkeypatch.setenv("EQCHECK_JOBS", "1")


REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "sample_models"

#: factories written into the session folder as ``factories.py`` (loaded as ``factories.py:NAME``)
FACTORIES_SOURCE = textwrap.dedent('''
    """Tiny models for the loading and command-line tests."""
    import torch
    from torch import nn

    from eqcheck.nn import GroupPool, P4ConvP4, P4ConvZ2, SpatialPool


    def tiny_p4():
        """Exact p4-invariant: 9x9 -> 7x7 -> 5x5 -> 2 logits."""
        torch.manual_seed(0)
        model = nn.Sequential(P4ConvZ2(1, 2, 3), nn.ReLU(), P4ConvP4(2, 2, 3), GroupPool("max"),
                              SpatialPool("mean"))
        model.example_input_shape = (2, 1, 9, 9)
        return model.eval()


    def symmetric_conv():
        """A 3x3 all-ones filter with padding 1: rot90-equivariant as an image map (until weights change it)."""
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            conv.weight.fill_(1.0)
        conv.example_input_shape = (2, 1, 9, 9)
        return conv


    class WidthNine(nn.Module):
        """Runs only on inputs 9 pixels wide: any other shape is rejected inside forward."""

        def forward(self, x):
            if x.shape[-1] != 9:
                raise ValueError(f"expected width 9, got {x.shape[-1]}")
            return x * 2.0


    def plain_conv():
        """No example shape: the caller must give --input-shape."""
        torch.manual_seed(0)
        return nn.Conv2d(1, 2, 3, padding=1)
''')


def tiny_p4():
    """The same exact p4-invariant model as ``factories.py:tiny_p4``, built in-process."""
    import torch
    from torch import nn

    from eqcheck.nn import GroupPool, P4ConvP4, P4ConvZ2, SpatialPool

    torch.manual_seed(0)
    model = nn.Sequential(P4ConvZ2(1, 2, 3), nn.ReLU(), P4ConvP4(2, 2, 3), GroupPool("max"), SpatialPool("mean"))
    return model.eval()


def export_onnx(model, path: Path, shape: tuple[int, ...], dynamic_batch: bool = True) -> Path:
    """Legacy exporter (as sample_models/build.py), input ``input``, output ``output``."""
    import torch

    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(model, (torch.randn(shape),), str(path), input_names=["input"], output_names=["output"],
                      dynamic_axes=axes, dynamo=False, opset_version=17)
    return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> SimpleNamespace:
    """One tiny exact p4 model (9x9 in, 2 logits out) saved in every format eqcheck reads, and broken files."""
    import warnings

    import onnx
    import torch

    folder = tmp_path_factory.mktemp("exported")
    model = tiny_p4()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dynamic = export_onnx(model, folder / "tiny_p4.onnx", (1, 1, 9, 9))
        static = export_onnx(model, folder / "tiny_p4_static.onnx", (1, 1, 9, 9), dynamic_batch=False)
        proto = onnx.load(str(dynamic))
        onnx.save(proto, str(folder / "tiny_p4_external.onnx"), save_as_external_data=True,
                  all_tensors_to_one_file=True, location="tiny_p4_external.onnx.data", size_threshold=0)
        program = torch.export.export(model, (torch.randn(2, 1, 9, 9),),
                                      dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(program, str(folder / "tiny_p4.pt2"))
        torch.jit.trace(model, torch.randn(1, 1, 9, 9)).save(str(folder / "tiny_p4_script.pt"))
    torch.save(model, str(folder / "tiny_p4_pickled.pt"))
    torch.save(model.state_dict(), str(folder / "tiny_p4_state_dict.pt"))
    onnx_bytes = dynamic.read_bytes()
    (folder / "truncated.onnx").write_bytes(onnx_bytes[: len(onnx_bytes) // 2])
    (folder / "empty.onnx").write_bytes(b"")
    (folder / "garbage.pt").write_bytes(b"this is not a model\n" * 20)
    (folder / "empty.pt").write_bytes(b"")
    pt2_bytes = (folder / "tiny_p4.pt2").read_bytes()
    (folder / "truncated.pt2").write_bytes(pt2_bytes[: len(pt2_bytes) // 2])
    (folder / "factories.py").write_text(FACTORIES_SOURCE)
    return SimpleNamespace(
        folder=folder,
        onnx=dynamic,
        onnx_static=static,
        onnx_external=folder / "tiny_p4_external.onnx",
        onnx_external_data=folder / "tiny_p4_external.onnx.data",
        pt2=folder / "tiny_p4.pt2",
        torchscript=folder / "tiny_p4_script.pt",
        pickled=folder / "tiny_p4_pickled.pt",
        state_dict=folder / "tiny_p4_state_dict.pt",
        truncated_onnx=folder / "truncated.onnx",
        empty_onnx=folder / "empty.onnx",
        garbage_pt=folder / "garbage.pt",
        empty_pt=folder / "empty.pt",
        truncated_pt2=folder / "truncated.pt2",
        factories=folder / "factories.py",
    )


@pytest.fixture
def plain_terminal(monkeypatch):
    """A wide, colourless, non-terminal console outside GitHub Actions (ask for it, or autouse it)."""
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "EQCHECK_DEBUG", "GITHUB_ACTIONS",
                 "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sample():
    """Path of a committed sample ONNX model by name."""
    def path(name: str) -> str:
        return str(SAMPLES / f"{name}.onnx")
    return path


@pytest.fixture
def eqcheck_script() -> str:
    """The installed ``eqcheck`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "eqcheck"
    assert script.exists(), f"eqcheck is not installed next to {sys.executable}: pip install -e ."
    return str(script)


@pytest.fixture
def helpers() -> SimpleNamespace:
    """Model builders the test files share (tests import fixtures, not the conftest module)."""
    return SimpleNamespace(tiny_p4=tiny_p4, export_onnx=export_onnx)
