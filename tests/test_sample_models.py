"""The sample models: exact where they should be, broken where they should be, and rebuildable."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_models"
C4 = [(0, k) for k in range(4)]
D4 = [(f, k) for f in (0, 1) for k in range(4)]
# CONVENTIONS section 2 (escnn order), new[i] = old[PERM[g][i]]
D4_PERMUTATIONS = {
    (0, 0): [0, 1, 2, 3, 4, 5, 6, 7], (0, 1): [3, 0, 1, 2, 7, 4, 5, 6],
    (0, 2): [2, 3, 0, 1, 6, 7, 4, 5], (0, 3): [1, 2, 3, 0, 5, 6, 7, 4],
    (1, 0): [4, 7, 6, 5, 0, 3, 2, 1], (1, 1): [5, 4, 7, 6, 1, 0, 3, 2],
    (1, 2): [6, 5, 4, 7, 2, 1, 0, 3], (1, 3): [7, 6, 5, 4, 3, 2, 1, 0],
}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sample_{name}", SAMPLE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build() -> ModuleType:
    return _load("build")


@pytest.fixture(scope="module")
def models(build) -> ModuleType:
    return build.load_models_module()


def act(x: torch.Tensor, flip: int, rot: int) -> torch.Tensor:
    """The action a tensor of this rank carries: 2-D invariant, 4-D image, 5-D regular (C4 or D4)."""
    if x.dim() == 2:
        return x
    if flip:
        x = torch.flip(x, dims=(-1,))
    x = torch.rot90(x, rot, dims=(-2, -1))
    if x.dim() == 5:
        permutation = D4_PERMUTATIONS[(flip, rot)] if x.shape[2] == 8 else [(i - rot) % 4 for i in range(4)]
        x = x[:, :, permutation]
    return x


def rel(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().double(), expected.detach().double()
    return float(torch.linalg.vector_norm(actual - expected) / torch.linalg.vector_norm(expected))


def max_error(model: torch.nn.Module, x: torch.Tensor, elements) -> float:
    with torch.no_grad():
        out = model(x)
        return max(rel(model(act(x, f, k)), act(out, f, k)) for f, k in elements)


def test_factories_are_deterministic_eval_modules(models) -> None:
    for name, factory in models.MODEL_FACTORIES.items():
        first, second = factory(), factory()
        assert not any(module.training for module in first.modules()), name
        assert isinstance(first.example_input_shape, tuple) and first.example_input_shape[0] == 1
        for key, value in first.state_dict().items():
            assert torch.equal(value, second.state_dict()[key]), (name, key)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("name, elements", [("p4cnn", C4), ("p4mcnn", D4), ("p4_fcn", C4)])
def test_group_models_are_exact(models, name, elements, dtype, tolerance) -> None:
    model = getattr(models, name)().to(dtype)
    x = torch.randn((2,) + model.example_input_shape[1:], dtype=dtype, generator=torch.Generator().manual_seed(1))
    assert max_error(model, x, elements) < tolerance


def test_output_shapes(models) -> None:
    expected = {"p4cnn": (1, 10), "p4cnn_broken": (1, 10), "p4mcnn": (1, 10), "p4_fcn": (1, 4, 4, 28, 28),
                "deepsets": (1, 5), "deepsets_equivariant": (1, 10, 4), "z2cnn": (1, 10)}
    for name, shape in expected.items():
        model = getattr(models, name)()
        assert tuple(model(torch.randn(model.example_input_shape)).shape) == shape, name


@pytest.mark.parametrize("name", ["z2cnn", "p4cnn_broken"])
def test_broken_models_are_not_invariant(models, name) -> None:
    model = models.__dict__[name]().double()
    x = torch.randn((2, 1, 28, 28), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert max_error(model, x, C4) > 1e-3
    with torch.no_grad():
        assert rel(model(act(x, 0, 0)), model(x)) == 0.0  # the identity stays exact: deterministic


def test_broken_layer_is_the_only_layer_with_a_local_error(models) -> None:
    """Local error of each layer of p4cnn_broken: f_i(g h) against g f_i(h), on its real input h."""
    model = models.p4cnn_broken().double()
    h = torch.randn((2, 1, 28, 28), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    local = {}
    with torch.no_grad():
        for name, layer in model.named_children():
            out = layer(h)
            local[name] = max(rel(layer(act(h, 0, k)), act(out, 0, k)) for k in range(4))
            h = out
    assert local.pop(models.BROKEN_LAYER) > 0.1
    assert max(local.values()) < 1e-12


def test_strided_ops_keep_the_grid_centred(models) -> None:
    """CONVENTIONS section 5: (N + 2p - k) mod s == 0 for every strided op of the exact models."""
    for name in ("p4cnn", "p4mcnn"):
        model, checked = getattr(models, name)(), []
        def check(module, inputs, output, checked=checked):
            size = inputs[0].shape[-1]
            checked.append((size + 2 * module.padding - module.kernel_size) % module.stride)
        handles = [m.register_forward_hook(check) for m in model.modules() if hasattr(m, "stride") and m is not model]
        model(torch.randn(model.example_input_shape))
        for handle in handles:
            handle.remove()
        assert checked and set(checked) == {0}, name


def test_set_models_respect_permutations(models) -> None:
    x = torch.randn((2, 10, 3), generator=torch.Generator().manual_seed(1))
    invariant, equivariant = models.deepsets(), models.deepsets_equivariant()
    with torch.no_grad():
        for seed in range(10):
            permutation = torch.randperm(10, generator=torch.Generator().manual_seed(seed))
            assert rel(invariant(x[:, permutation]), invariant(x)) < 1e-6
            assert rel(equivariant(x[:, permutation]), equivariant(x)[:, permutation]) < 1e-6


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_committed_onnx_files_match_the_modules(models) -> None:
    for name, factory in models.MODEL_FACTORIES.items():
        path = SAMPLE_DIR / f"{name}.onnx"
        assert path.stat().st_size < 2_000_000, name
        proto = onnx.load(str(path))
        assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["output"]
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        model = factory()
        x = torch.randn((3,) + model.example_input_shape[1:], generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            assert np.abs(_run(path, x.numpy()) - model(x).numpy()).max() < 1e-5, name


def test_broken_layer_names_in_onnx(models) -> None:
    names = [node.name for node in onnx.load(str(SAMPLE_DIR / "p4cnn_broken.onnx")).graph.node]
    assert f"/{models.BROKEN_LAYER}/plain_conv2d/Conv" in names
    assert all("broken" not in name for name in names if not name.startswith(f"/{models.BROKEN_LAYER}/"))
    assert not any("broken" in node.name for node in onnx.load(str(SAMPLE_DIR / "p4cnn.onnx")).graph.node)


def test_rebuild_reproduces_the_committed_files(build, tmp_path) -> None:
    written = build.build_all(tmp_path)
    assert set(written) == {p.stem for p in SAMPLE_DIR.glob("*.onnx")}
    for name, path in written.items():
        shape = onnx.load(str(path)).graph.input[0].type.tensor_type.shape
        x = np.random.default_rng(3).standard_normal((2,) + tuple(d.dim_value for d in shape.dim[1:]))
        x = x.astype(np.float32)
        assert np.abs(_run(path, x) - _run(SAMPLE_DIR / f"{name}.onnx", x)).max() < 1e-5, name
