"""``[tool.eqcheck]`` and ``eqcheck check``: parsing and its errors, the precedence of options, the gate as a
pure function, the summary, and the command on a project listing p4cnn.onnx and z2cnn.onnx under p4;
``eqcheck report`` re-rendering a saved result; ``--html`` / ``--junit`` on verify."""
from __future__ import annotations

import shutil
import sys
import textwrap
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from eqcheck.checks import ModelOutcome
from eqcheck.cli import main
from eqcheck.config import ConfigError, ModelEntry, load_config, parse_config, resolve_options
from eqcheck.errors import EXIT_EQUIVARIANT, EXIT_MODEL, EXIT_NOT_EQUIVARIANT, EXIT_USAGE
from eqcheck.gate import ERROR, FAILED, KNOWN_FAILURE, PASSED, UNEXPECTED_PASS, gate_checks
from eqcheck.report.summary import check_verdict_line

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"

TWO_MODELS = """
[project]
name = "demo"

[tool.eqcheck]
group = "p4"

[[tool.eqcheck.models]]
path = "models/p4cnn.onnx"

[[tool.eqcheck.models]]
path = "models/z2cnn.onnx"
"""


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("FORCE_COLOR", "NO_COLOR", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "EQCHECK_DEBUG"):
        monkeypatch.delenv(name, raising=False)


def project(root: Path, config: str, *models: str) -> Path:
    """A project folder: ``models/NAME.onnx`` copied from sample_models, and a pyproject.toml."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    for name in models:
        shutil.copy(SAMPLES / f"{name}.onnx", root / "models" / f"{name}.onnx")
    (root / "pyproject.toml").write_text(textwrap.dedent(config))
    return root / "pyproject.toml"


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def parse(text: str, source: Path = Path("/proj/pyproject.toml")):
    import tomllib

    return parse_config(tomllib.loads(textwrap.dedent(text)), source)


# --- the config file --------------------------------------------------------------------------------------

def test_defaults_and_entries_are_parsed_with_paths_relative_to_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse("""
        [tool.eqcheck]
        group = "p4"
        tol = 1e-4
        seed = 3
        output-type = "invariant"

        [[tool.eqcheck.models]]
        path = "models/a.onnx"
        input-shape = "2,1,28,28"
        tolerance = 1e-6
        act = {input = "image"}

        [[tool.eqcheck.models]]
        name = "factory"
        path = "src/nets.py:build"
        group = "p4m"
        input = "data/x.npz"
        expect = "fail"

        [[tool.eqcheck.models]]
        path = "mypkg.nets:build"
    """, Path("/elsewhere/proj/pyproject.toml"))
    assert config.defaults == {"group": "p4", "tol": 1e-4, "seed": 3, "output_type": "invariant"}
    first, second, third = config.models
    assert first == ModelEntry("models/a.onnx", "/elsewhere/proj/models/a.onnx",
                               {"input_shape": "2,1,28,28", "tol": 1e-6, "act": ["input=image"]}, "pass")
    assert (second.name, second.model, second.expect) == ("factory", "/elsewhere/proj/src/nets.py:build", "fail")
    assert second.options == {"group": "p4m", "inputs": "/elsewhere/proj/data/x.npz"}
    assert third.model == "mypkg.nets:build"


def test_keys_may_be_written_with_underscores() -> None:
    config = parse("""
        [tool.eqcheck]
        output_type = "invariant"
        [[tool.eqcheck.models]]
        path = "a.onnx"
        group = "p4"
        input_shape = [2, 1, 28, 28]
        max_batch = 16
    """)
    assert config.defaults == {"output_type": "invariant"}
    assert config.models[0].options == {"group": "p4", "input_shape": [2, 1, 28, 28], "max_batch": 16}


def test_paths_inside_the_working_folder_are_written_relative_to_it(tmp_path, monkeypatch) -> None:
    config_path = project(tmp_path / "proj", TWO_MODELS)
    monkeypatch.chdir(tmp_path)
    assert [m.model for m in load_config(config_path).models] == ["proj/models/p4cnn.onnx", "proj/models/z2cnn.onnx"]


def test_precedence_flags_then_entry_then_defaults() -> None:
    entry = ModelEntry("m", "m.onnx", {"tol": 1e-6, "samples": 4})
    defaults = {"group": "p4", "tol": 1e-4, "seed": 3, "samples": 2}
    assert resolve_options(entry, defaults, {}) == {"group": "p4", "tol": 1e-6, "seed": 3, "samples": 4}
    flags = {"tol": 0.5, "group": None, "seed": None, "per_layer": False}
    assert resolve_options(entry, defaults, flags) == {"group": "p4", "tol": 0.5, "seed": 3, "samples": 4,
                                                       "per_layer": False}


@pytest.mark.parametrize("text, message", [
    ("[tool.eqcheck]\ngroup = 'p4'\ntols = 1\n[[tool.eqcheck.models]]\npath = 'a.onnx'",
     "[tool.eqcheck]: unknown key 'tols' (did you mean 'tol'?)"),
    ("[tool.eqcheck]\n[[tool.eqcheck.models]]\npath = 'a.onnx'\ngroup = 'p4'\nsample = 3",
     "[[tool.eqcheck.models]] #1 (a.onnx): unknown key 'sample' (did you mean 'samples'?)"),
    ("[tool.eqcheck]\ngroup = 'p4'\n[[tool.eqcheck.models]]\ngroup = 'p4'",
     "[[tool.eqcheck.models]] #1: missing path"),
    ("[tool.eqcheck]\n[[tool.eqcheck.models]]\npath = 'a.onnx'", "#1 (a.onnx): missing group"),
    ("[tool.eqcheck]\ngroup = 'p4'\nseed = 'zero'\n[[tool.eqcheck.models]]\npath = 'a.onnx'",
     "seed must be an integer, not 'zero'"),
    ("[tool.eqcheck]\ngroup = 'p4'\n[[tool.eqcheck.models]]\npath = 'a.onnx'\ntol = true",
     "tol must be a number, not True"),
    ("[tool.eqcheck]\ngroup = 'p4'\n[[tool.eqcheck.models]]\npath = 'a.onnx'\nexpect = 'maybe'",
     "expect must be \"pass\" or \"fail\", not 'maybe'"),
    ("[tool.eqcheck]\ngroup = 'p4'\n[[tool.eqcheck.models]]\npath = 'a.onnx'\ntol = 0.1\ntolerance = 0.2",
     "tol and tolerance are the same option"),
    ("[tool.eqcheck]\ngroup = 'p4'\n[[tool.eqcheck.models]]\npath = 'a.onnx'\ninput = 'a'\ninput_file = 'b'",
     "input and input_file are the same option"),
    ("[tool.eqcheck]\ngroup = 'p4'", "list the models to check as [[tool.eqcheck.models]]"),
    ("[tool.other]\nx = 1", "no [tool.eqcheck] table"),
    ("[tool.eqcheck]\ngroup = 'p4'\n[[tool.eqcheck.models]]\npath = 'a.onnx'\n[[tool.eqcheck.models]]\n"
     "path = 'a.onnx'", "model names must be unique (set name = ...): a.onnx"),
])
def test_bad_config_is_refused_with_the_key_named(text, message) -> None:
    with pytest.raises(ConfigError) as error:
        parse(text)
    assert message in error.value.message
    assert error.value.exit_code == EXIT_USAGE


def test_files_that_are_not_configs(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("[tool.eqcheck\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "broken.toml")


def test_nearest_pyproject_is_found_from_a_subfolder(tmp_path, monkeypatch) -> None:
    project(tmp_path, TWO_MODELS)
    (tmp_path / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src" / "deep")
    config = load_config()
    assert config.source == tmp_path / "pyproject.toml"
    assert [m.model for m in config.models] == [str(tmp_path / "models" / "p4cnn.onnx"),
                                                str(tmp_path / "models" / "z2cnn.onnx")]


# --- the gate ---------------------------------------------------------------------------------------------

class Passed:
    def __init__(self, passed: bool) -> None:
        self.passed = passed


def outcome(name: str, passed: bool | None, expect: str = "pass", code: int = EXIT_MODEL) -> ModelOutcome:
    result = None if passed is None else Passed(passed)
    return ModelOutcome(ModelEntry(name, name, expect=expect), "p4", result=result,
                        error="boom" if result is None else None, error_exit_code=code if result is None else 0)


@pytest.mark.parametrize("outcomes, code, statuses", [
    ([outcome("a", True), outcome("b", True)], EXIT_EQUIVARIANT, (PASSED, PASSED)),
    ([outcome("a", True), outcome("z", False)], EXIT_NOT_EQUIVARIANT, (PASSED, FAILED)),
    ([outcome("a", True), outcome("z", False, "fail")], EXIT_EQUIVARIANT, (PASSED, KNOWN_FAILURE)),
    ([outcome("a", True, "fail")], EXIT_NOT_EQUIVARIANT, (UNEXPECTED_PASS,)),
    ([outcome("z", False), outcome("x", None)], EXIT_MODEL, (FAILED, ERROR)),
    ([outcome("x", None), outcome("u", None, code=EXIT_USAGE)], EXIT_USAGE, (ERROR, ERROR)),
])
def test_gate_is_a_pure_function_of_results_and_expectations(outcomes, code, statuses) -> None:
    verdict = gate_checks(outcomes)
    assert (verdict.exit_code, verdict.statuses) == (code, statuses)
    assert gate_checks(outcomes) == verdict


def test_verdict_line_names_who_broke_the_gate() -> None:
    verdict = gate_checks([outcome("a", True), outcome("z2cnn", False), outcome("k", False, "fail")])
    assert verdict.failed == ("z2cnn",)
    assert check_verdict_line(verdict) == "FAIL  1 of 3 models not equivariant: z2cnn"
    assert check_verdict_line(gate_checks([outcome("a", True), outcome("k", False, "fail")])) == \
        "PASS  2 models checked: all as expected (1 known failure)"
    assert check_verdict_line(gate_checks([outcome("a", True, "fail"), outcome("x", None)])) == \
        'ERROR  passed but expected to fail (remove expect = "fail"): a; could not be checked: x'


# --- eqcheck check ----------------------------------------------------------------------------------------

def test_check_fails_and_names_z2cnn(capsys, tmp_path, monkeypatch) -> None:
    project(tmp_path, TWO_MODELS, "p4cnn", "z2cnn")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "check", "--junit", "report.xml")
    assert code == EXIT_NOT_EQUIVARIANT and err == ""
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("models/")}
    assert rows["models/p4cnn.onnx"].rstrip().endswith("PASS")
    assert rows["models/z2cnn.onnx"].rstrip().endswith("FAIL") and "/conv1/Conv" in rows["models/z2cnn.onnx"]
    assert out.splitlines()[-1] == "FAIL  1 of 2 models not equivariant: models/z2cnn.onnx"
    root = ET.parse(tmp_path / "report.xml").getroot()
    assert len(root.findall(".//testcase")) > 1 and int(root.get("failures")) >= 1
    failing = {s.get("name"): int(s.get("failures")) for s in root.findall("testsuite")}
    assert failing == {"eqcheck models/p4cnn.onnx [p4]": 0, "eqcheck models/z2cnn.onnx [p4]": failing[
        "eqcheck models/z2cnn.onnx [p4]"]} and failing["eqcheck models/z2cnn.onnx [p4]"] >= 3


def test_flags_override_the_entry_and_the_entry_overrides_the_defaults(capsys, tmp_path) -> None:
    # p4cnn's errors are about 1.7e-06: a tolerance of 1e-9 fails it, 1e-5 passes it
    text = ('[tool.eqcheck]\ngroup = "p4"\ntol = 1e-9\n\n[[tool.eqcheck.models]]\npath = "models/p4cnn.onnx"\n'
            'name = "a"\n\n[[tool.eqcheck.models]]\npath = "models/p4cnn.onnx"\nname = "b"\n')
    config = project(tmp_path, text, "p4cnn")
    code, out, _ = run(capsys, "check", "--config", config, "-q", "--no-per-layer")
    assert code == EXIT_NOT_EQUIVARIANT and out.startswith("FAIL  2 of 2 models")  # the defaults' tol
    config.write_text(config.read_text() + "tol = 1e-5\n")  # on entry b
    code, out, _ = run(capsys, "check", "--config", config, "-q", "--no-per-layer")
    assert code == EXIT_NOT_EQUIVARIANT and out.startswith("FAIL  1 of 2 models not equivariant: a")
    code, out, _ = run(capsys, "check", "--config", config, "-q", "--no-per-layer", "--tol", "1e-5")
    assert code == EXIT_EQUIVARIANT  # the flag beats the entry and the defaults


def test_known_failure_passes_the_gate(capsys, tmp_path) -> None:
    config = project(tmp_path, TWO_MODELS + 'expect = "fail"\n', "p4cnn", "z2cnn")
    code, out, _ = run(capsys, "check", "--config", config, "--no-per-layer", "--junit", tmp_path / "r.xml")
    assert code == EXIT_EQUIVARIANT and "known failure" in out
    root = ET.parse(tmp_path / "r.xml").getroot()
    assert root.get("failures") == "0" and int(root.get("skipped")) == 3


def test_model_that_cannot_load_gives_3_after_reporting_the_others(capsys, tmp_path) -> None:
    text = TWO_MODELS.replace('path = "models/p4cnn.onnx"', 'path = "models/missing.onnx"\n\n'
                              '[[tool.eqcheck.models]]\npath = "models/p4cnn.onnx"')
    config = project(tmp_path, text, "p4cnn", "z2cnn")
    code, out, err = run(capsys, "check", "--config", config, "--no-per-layer")
    assert code == EXIT_MODEL
    assert err.splitlines() == ["eqcheck: error: models/missing.onnx: model file not found: "
                                f"{tmp_path / 'models' / 'missing.onnx'}"]
    assert "models/p4cnn.onnx" in out and "models/z2cnn.onnx" in out
    assert out.splitlines()[-1] == ("ERROR  1 of 3 models not equivariant: models/z2cnn.onnx; "
                                    "could not be checked: models/missing.onnx")


def test_check_json_holds_the_verdict_and_every_models_result_or_error(capsys, tmp_path) -> None:
    import json

    from eqcheck.report.json_report import from_dict

    text = TWO_MODELS.replace('path = "models/p4cnn.onnx"', 'path = "models/missing.onnx"\n\n'
                              '[[tool.eqcheck.models]]\npath = "models/p4cnn.onnx"')
    config = project(tmp_path, text, "p4cnn", "z2cnn")
    code, out, err = run(capsys, "check", "--config", config, "--no-per-layer", "--json", tmp_path / "all.json")
    data = json.loads((tmp_path / "all.json").read_text())
    assert code == EXIT_MODEL and data["exit_code"] == code and data["passed"] is False and data["kind"] == "check"
    models = {m["name"]: m for m in data["models"]}
    assert [m["status"] for m in data["models"]] == [ERROR, PASSED, FAILED]
    assert models["models/missing.onnx"]["result"] is None and "not found" in models["models/missing.onnx"]["error"]
    z2 = models["models/z2cnn.onnx"]
    assert z2["error"] is None and z2["group"] == "p4" and z2["expect"] == "pass"
    assert from_dict(z2["result"]).output.max_rel_error > 1.0  # each result reads back like a verify --json
    code, out, err = run(capsys, "check", "--config", config, "--no-per-layer", "-q", "--json", "-")
    assert json.loads(out)["models"][1]["status"] == PASSED  # stdout holds the JSON alone
    assert "ERROR" in err


def test_check_html_is_one_page_with_every_models_report(capsys, tmp_path) -> None:
    from html.parser import HTMLParser

    class Ids(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.ids, self.links, self.loads = [], [], []

        def handle_starttag(self, tag, attrs) -> None:
            attrs = dict(attrs)
            self.ids += [attrs["id"]] if "id" in attrs else []
            self.links += [attrs["href"]] if tag == "a" and "href" in attrs else []
            self.loads += [attrs[k] for k in ("src", "href") if k in attrs and tag in ("script", "link", "img")]

    text = TWO_MODELS.replace('path = "models/p4cnn.onnx"', 'path = "models/missing.onnx"\n\n'
                              '[[tool.eqcheck.models]]\npath = "models/p4cnn.onnx"')
    config = project(tmp_path, text, "p4cnn", "z2cnn")
    code, _, _ = run(capsys, "check", "--config", config, "--html", tmp_path / "check.html")
    page = (tmp_path / "check.html").read_text()
    parser = Ids()
    parser.feed(page)
    assert code == EXIT_MODEL and "ERROR" in page and "could not be checked: model file not found" in page
    assert len(parser.ids) == len(set(parser.ids))  # three reports on one page, ids prefixed per model
    assert parser.links == ["#m0", "#m1", "#m2"] and {"m0", "m1", "m2"} <= set(parser.ids)
    assert "m2-layer-chart" in parser.ids and "/<wbr>conv1/<wbr>Conv" in page  # z2cnn's report, its first failing layer
    assert parser.loads == [] and "http://" not in page and "https://" not in page  # self-contained


@pytest.mark.parametrize("text, message", [
    ('[tool.eqcheck]\ngroup = "p4"\nunknown = 1\n[[tool.eqcheck.models]]\npath = "a.onnx"', "unknown key 'unknown'"),
    ('[tool.eqcheck]\n[[tool.eqcheck.models]]\npath = "a.onnx"', "missing group"),
    ('[tool.eqcheck]\ngroup = "p4"\n[[tool.eqcheck.models]]\nname = "a"', "missing path"),
])
def test_bad_config_exits_2_with_one_line(capsys, tmp_path, text, message) -> None:
    config = project(tmp_path, text)
    code, out, err = run(capsys, "check", "--config", config)
    assert code == EXIT_USAGE and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("eqcheck: error: ") and message in err


def test_a_model_whose_options_it_rejects_is_a_usage_error(capsys, tmp_path) -> None:
    config = project(tmp_path, TWO_MODELS + 'input-shape = "2,1,28,30"\n', "p4cnn", "z2cnn")
    code, out, err = run(capsys, "check", "--config", config, "--no-per-layer")
    assert code == EXIT_USAGE and "models/z2cnn.onnx" in err and "PASS" in out


def test_verbose_prints_every_report(capsys, tmp_path) -> None:
    config = project(tmp_path, TWO_MODELS, "p4cnn", "z2cnn")
    code, out, _ = run(capsys, "check", "--config", config, "--no-per-layer", "-v")
    assert code == EXIT_NOT_EQUIVARIANT
    assert out.count("rot270") == 2 and "is equivariant to p4" in out and "is not equivariant to p4" in out


# --- eqcheck report, --html, --junit on verify ------------------------------------------------------------

@pytest.fixture
def html_stand_in(monkeypatch):
    """A stand-in for eqcheck.report.html (another module's job): render(result) -> str."""
    module = types.ModuleType("eqcheck.report.html")
    module.render = lambda result: f"<html>{result.run.model} {result.output.max_rel_error!r} {result.passed}</html>\n"
    monkeypatch.setitem(sys.modules, "eqcheck.report.html", module)
    return module


def test_report_re_renders_a_saved_result_identically(capsys, tmp_path, sample, html_stand_in) -> None:
    first = {"json": tmp_path / "r.json", "html": tmp_path / "a.html", "junit": tmp_path / "a.xml"}
    code, out, _ = run(capsys, "verify", sample("z2cnn"), "--group", "p4", "--json", first["json"],
                       "--html", first["html"], "--junit", first["junit"])
    assert code == EXIT_NOT_EQUIVARIANT
    assert first["html"].read_text().startswith(f"<html>{sample('z2cnn')} ")
    code_again, out_again, _ = run(capsys, "report", first["json"], "--html", tmp_path / "b.html",
                                   "--junit", tmp_path / "b.xml")
    assert code_again == EXIT_NOT_EQUIVARIANT and out_again == out
    assert (tmp_path / "b.html").read_text() == first["html"].read_text()
    assert (tmp_path / "b.xml").read_text() == first["junit"].read_text()
    passed = tmp_path / "p.json"
    assert run(capsys, "verify", sample("p4cnn"), "--group", "p4", "--json", passed, "-q")[0] == EXIT_EQUIVARIANT
    code, out, _ = run(capsys, "report", passed, "-q")
    assert code == EXIT_EQUIVARIANT and out.startswith("PASS ")


@pytest.mark.parametrize("content, message", [(None, "does not exist"), ("{", "is not JSON"),
                                              ('{"format_version": 1}', "is not an eqcheck JSON result"),
                                              ('{"format_version": 99}', "unsupported result format_version")])
def test_report_on_a_file_that_is_not_a_result(capsys, tmp_path, content, message) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "report", path)
    assert code == EXIT_USAGE and out == "" and len(err.splitlines()) == 1 and message in err


def test_html_without_a_renderer_fails_before_the_run(capsys, tmp_path, sample, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "eqcheck.report.html", None)
    code, out, err = run(capsys, "verify", sample("p4cnn"), "--group", "p4", "--html", tmp_path / "r.html")
    assert code == EXIT_USAGE and out == "" and "--html: this installation of eqcheck has no HTML report" in err
    code, _, err = run(capsys, "verify", sample("p4cnn"), "--group", "p4", "--junit", tmp_path / "no" / "r.xml")
    assert code == EXIT_USAGE and "does not exist" in err


# --- the documented examples ------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_readme_config_example_is_a_valid_config() -> None:
    import re
    import tomllib

    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"```toml\n(\[tool\.eqcheck\].*?)```", readme, re.S).group(1)
    config = parse_config(tomllib.loads(block), REPO_ROOT / "pyproject.toml")
    assert [m.expect for m in config.models] == ["pass", "pass", "pass", "fail"]
    assert config.models[2].options["group"] == "p4m" and config.models[2].name == "p4m head"


def test_pre_commit_hook_runs_eqcheck_check() -> None:
    lines = [line.strip() for line in (REPO_ROOT / ".pre-commit-hooks.yaml").read_text().splitlines()]
    for expected in ("- id: eqcheck", "entry: eqcheck check", "language: python", "pass_filenames: false"):
        assert expected in lines


def test_help_stays_light() -> None:
    import subprocess

    heavy = ("numpy", "torch", "onnx", "rich.progress")
    code = f"import sys, eqcheck.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_reports_are_ordinary_files_not_private_ones(tmp_path) -> None:
    import os
    import stat

    from eqcheck.report.targets import write_report as write_atomically

    mask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "r.json", "{}\n")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left beside it
