"""Hostile and careless inputs, built by the tests themselves: ONNX graphs with hostile names and odd
signatures, factories that exit or hang, archives that carry pickle payloads."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eqcheck.cli import main


@pytest.fixture(autouse=True)
def _plain_terminal(plain_terminal) -> None:
    """Every test here reads the output as a CI log would (tests/conftest.py: plain_terminal)."""


#: a name that would act if shown raw: a workflow command after a line break, a terminal title escape,
#: a bell, rich markup that does not balance
HOSTILE_NAME = "conv\n::set-env name=PWN::1\x1b]0;TITLE\x07[/]oops[bold]x"
#: what a name must never bring to the output
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

FACTORIES = textwrap.dedent('''
    import sys, time
    import torch
    from torch import nn


    class Shaped(nn.Module):
        example_input_shape = (2, 1, 8, 8)


    class ExitsInForward(Shaped):
        def forward(self, x):
            raise SystemExit(0)


    class InterruptsInForward(Shaped):
        def forward(self, x):
            raise KeyboardInterrupt


    class Hangs(Shaped):
        def forward(self, x):
            while True:
                pass


    class Sleeps(Shaped):
        def forward(self, x):
            time.sleep(60)
            return x


    class Prints(Shaped):
        def forward(self, x):
            print("::set-env name=PWN::1")
            sys.stderr.write("\\x1b]0;TITLE\\x07\\n")
            return x.mean(dim=(2, 3))


    class Invariant(Shaped):
        def forward(self, x):
            return x.mean(dim=(2, 3))


    class ExitsHard(Shaped):
        def forward(self, x):
            import os
            os._exit(0)


    class IgnoresTheDeadline(Shaped):
        def forward(self, x):
            while True:
                try:
                    time.sleep(100)
                except BaseException:
                    pass


    def exits_hard():
        return ExitsHard()


    def ignores_the_deadline():
        return IgnoresTheDeadline()


    def exits_in_factory():
        sys.exit(0)


    def exits_in_forward():
        return ExitsInForward()


    def interrupts_in_forward():
        return InterruptsInForward()


    def hangs():
        return Hangs()


    def sleeps():
        return Sleeps()


    def prints():
        return Prints()


    def invariant():
        return Invariant()
''')


def save_onnx(graph, path: Path, opset: int = 17) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def hostile(tmp_path_factory) -> SimpleNamespace:
    """The files the hostile cases point eqcheck at, in one session folder."""
    import onnx  # noqa: F401  (the builders below need it)
    from onnx import TensorProto, helper, numpy_helper

    folder = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "w")
    image_in = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 1, 8, 8])
    named = save_onnx(helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name=HOSTILE_NAME, pads=[1, 1, 1, 1])], "g", [image_in],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 2, 8, 8])], [weight]), folder / "named.onnx")
    table = numpy_helper.from_array(rng.standard_normal((11, 4)).astype(np.float32), "table")
    tokens_in = helper.make_tensor_value_info("tok", TensorProto.INT64, ["B", 5])
    tokens = save_onnx(helper.make_graph(
        [helper.make_node("Gather", ["table", "tok"], ["e"]),
         helper.make_node("ReduceMean", ["e"], ["y"], axes=[1], keepdims=0)], "g", [tokens_in],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])], [table]), folder / "tokens.onnx")
    # y = sum_i i * tok_i: position-aware (not permutation invariant), but all zeros pass any check
    position = numpy_helper.from_array(np.arange(5, dtype=np.float32), "position")
    position_weighted = save_onnx(helper.make_graph(
        [helper.make_node("Cast", ["tok"], ["value"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["value", "position"], ["weighted"]),
         helper.make_node("ReduceSum", ["weighted"], ["y"], axes=[1], keepdims=1),
         helper.make_node("Gather", ["table", "tok"], ["embedded"]),
         helper.make_node("ReduceMean", ["embedded"], ["z"], axes=[1, 2], keepdims=0)], "g", [tokens_in],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 1]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B"])], [position, table]),
        folder / "position_weighted.onnx", opset=11)
    integers = save_onnx(helper.make_graph(
        [helper.make_node("Cast", ["tok"], ["y"], to=TensorProto.FLOAT)], "g", [tokens_in],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 5])]), folder / "integers.onnx")
    constant = numpy_helper.from_array(np.ones((2, 3), np.float32), "c")
    no_input = save_onnx(helper.make_graph(
        [helper.make_node("Identity", ["c"], ["y"])], "g", [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [constant]), folder / "no_input.onnx")
    scalar = save_onnx(helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], "g", [image_in],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])]), folder / "scalar.onnx", opset=11)
    invariant = save_onnx(helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=0)], "g", [image_in],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 1])]), folder / "invariant.onnx")
    (folder / "factories.py").write_text(FACTORIES)
    (folder / "exits_on_import.py").write_text("import sys\nsys.exit(0)\nmodel = None\n")
    return SimpleNamespace(folder=folder, named=named, tokens=tokens, position_weighted=position_weighted,
                           integers=integers, no_input=no_input, scalar=scalar, invariant=invariant,
                           factories=folder / "factories.py", exits_on_import=folder / "exits_on_import.py")


def write_config(folder: Path, *entries: tuple[str, str]) -> Path:
    """A pyproject.toml checking each (path, name) under p4."""
    text = '[tool.eqcheck]\ngroup = "p4"\n'
    for path, name in entries:
        text += f'\n[[tool.eqcheck.models]]\npath = "{path}"\nname = "{name}"\n'
    config = folder / "pyproject.toml"
    config.write_text(text)
    return config


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_process(*args, cwd: Path | None = None, timeout: float = 120, env: dict | None = None
                ) -> subprocess.CompletedProcess:
    """eqcheck as a user runs it: a fresh interpreter, its real stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "eqcheck", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def assert_one_error_line(err: str, code: int, expected: int) -> str:
    """Exactly one ``eqcheck: error:`` line, no traceback, no raw control character; the line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected, err
    assert len(lines) == 1, err
    assert lines[0].startswith("eqcheck: error: "), err
    assert "Traceback" not in err and not RAW_CONTROL.search(err), err
    return lines[0]


def assert_inert(text: str) -> None:
    """No raw control character, and no line a CI runner would take as a workflow command."""
    assert not RAW_CONTROL.search(text), repr(text)
    assert not any(line.startswith("::") for line in text.splitlines()), text
