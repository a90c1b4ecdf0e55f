"""Untrusted text is inert everywhere it is shown: node names, paths, config entry names reach the terminal,
the GitHub log and summary, HTML and JUnit escaped, and never as rich markup."""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

from eqcheck.errors import EXIT_NOT_EQUIVARIANT, EXIT_USAGE
from eqcheck.report.inert import markdown_code, markdown_text, printable

from .conftest import (
    HOSTILE_NAME, RAW_CONTROL, assert_inert, assert_one_error_line, run, run_process, write_config,
)


def test_printable_escapes_every_control_character() -> None:
    assert printable("a\nb\r\t\x1b[31m\x07\x9b\u202e") == "a\\nb\\r\\t\\x1b[31m\\x07\\x9b\\u202e"
    assert printable("plain/name:0") == "plain/name:0"


def test_markdown_escapes_structure_and_html() -> None:
    assert markdown_code("a`b|c<d>&\n") == "<code>a`b&#124;c&lt;d&gt;&amp;\\n</code>"
    assert markdown_text("*x* [l](u) <b>") == "\\*x\\* \\[l\\](u) &lt;b&gt;"


def test_hostile_node_name_is_shown_escaped_in_the_terminal(capsys, hostile) -> None:
    code, out, err = run(capsys, "verify", hostile.named, "--group", "p4")
    assert code == EXIT_NOT_EQUIVARIANT, err
    assert_inert(out + err)
    assert printable(HOSTILE_NAME) in out  # shown, escaped, markup and all
    assert "[/]oops[bold]x" in out


def test_hostile_names_reach_github_only_as_escaped_workflow_data(tmp_path, hostile) -> None:
    summary = tmp_path / "summary.md"
    env = {**__import__("os").environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
           "COLUMNS": "250"}
    done = run_process("verify", hostile.named, "--group", "p4", env=env)
    assert done.returncode == EXIT_NOT_EQUIVARIANT, done.stderr
    commands = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert commands and all(line.startswith("::error title=eqcheck%3A ") for line in commands)
    assert not RAW_CONTROL.search(done.stdout + done.stderr)
    text = summary.read_text()
    assert not RAW_CONTROL.search(text)
    assert "::set-env" not in [line[:9] for line in text.splitlines()]
    assert "<bold>" not in text and "\n::" not in text


def test_rich_markup_in_a_path_is_shown_as_written(capsys, tmp_path, sample) -> None:
    folder = tmp_path / "runs[old]"
    folder.mkdir()
    model = folder / "[bold]m.onnx"
    shutil.copy(sample("p4cnn"), model)
    code, out, err = run(capsys, "verify", model, "--group", "p4", "--no-per-layer")
    assert code == 0, err
    assert f"{model} (onnx)" in out


def test_html_and_junit_of_a_hostile_model_are_escaped_and_valid(capsys, tmp_path, hostile) -> None:
    html, xml = tmp_path / "r.html", tmp_path / "r.xml"
    code, _, _ = run(capsys, "verify", hostile.named, "--group", "p4", "--html", html, "--junit", xml)
    assert code == EXIT_NOT_EQUIVARIANT
    page = html.read_text()
    assert not RAW_CONTROL.search(page) and "[/]oops[bold]x" in page and "<bold>" not in page
    root = ET.parse(xml).getroot()  # valid XML
    texts = [root.itertext(), *(e.attrib.values() for e in root.iter())]
    assert not any(RAW_CONTROL.search(t) for group in texts for t in group)


def test_config_entry_names_are_escaped_in_every_line(capsys, tmp_path, hostile) -> None:
    config = write_config(tmp_path, (f"{hostile.factories}:exits_in_forward",
                                     "bad\\n::set-env name=X::1 [/]oops \\u001b]0;T\\u0007"),
                          (hostile.invariant, "fine"))
    code, out, err = run(capsys, "check", "--config", config)
    assert code == 3
    assert_inert(out + err)
    assert "[/]oops" in out


def test_an_error_quoting_a_hostile_path_stays_one_line(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "verify", tmp_path / "m\n::set-env name=X::1\x1b[2J.onnx", "--group", "p4")
    assert_one_error_line(err, code, 3)
    code, _, err = run(capsys, "verify", tmp_path / "x.onnx", "--group", "p4\n::warning::x")
    assert_one_error_line(err, code, EXIT_USAGE)
