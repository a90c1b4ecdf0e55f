"""``eqcheck check --jobs N`` (models checked at once, outcomes in config order, the same verdict as one at
a time), ``--shard K/N`` (a deterministic split: every model in exactly one shard) and ``eqcheck report``
merging the shards' JSON into one verdict (refusing a missing or repeated shard)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eqcheck.checks import parse_shard, shard_indices
from eqcheck.cli import main
from eqcheck.errors import EXIT_NOT_EQUIVARIANT, EXIT_USAGE, UsageError

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
MODELS = [("p4cnn", "pass"), ("z2cnn", "pass"), ("p4cnn_broken", "fail"), ("p4_fcn", "pass"), ("deepsets", "pass")]


@pytest.fixture
def five(tmp_path, monkeypatch):
    """A project of five ONNX models: z2cnn is listed as passing but is not (the one failure)."""
    (tmp_path / "models").mkdir()
    lines = ['[tool.eqcheck]\ngroup = "p4"\n']
    for name, expect in MODELS:
        shutil.copy(SAMPLES / f"{name}.onnx", tmp_path / "models" / f"{name}.onnx")
        group = "perm" if name == "deepsets" else "p4"
        lines.append(f'[[tool.eqcheck.models]]\npath = "models/{name}.onnx"\ngroup = "{group}"\nexpect = "{expect}"\n')
    (tmp_path / "pyproject.toml").write_text("\n".join(lines))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _models(path: Path) -> list[tuple[str, str]]:
    data = json.loads(path.read_text())
    return [(m["name"], m["status"]) for m in data["models"]]


def test_parallel_checks_give_the_verdict_and_order_of_one_at_a_time(five, capsys) -> None:
    assert main(["check", "--jobs", "1", "--json", "one.json", "-q"]) == EXIT_NOT_EQUIVARIANT
    assert main(["check", "--jobs", "3", "--json", "three.json", "-q"]) == EXIT_NOT_EQUIVARIANT
    one, three = _models(five / "one.json"), _models(five / "three.json")
    assert one == three
    assert [name for name, _ in one] == [f"models/{name}.onnx" for name, _ in MODELS]
    assert dict(one)["models/z2cnn.onnx"] == "fail" and dict(one)["models/p4cnn_broken.onnx"] == "known-failure"
    numbers = [json.loads((five / f).read_text())["models"][0]["result"]["outputs"][0]["max_rel_error"]
               for f in ("one.json", "three.json")]
    assert numbers[0] == numbers[1]  # the same seed and inputs: the same numbers


def test_shards_split_every_model_once_and_merge_into_one_verdict(five, capsys) -> None:
    codes = [main(["check", "--shard", f"{k}/2", "--json", f"shard{k}.json", "-q"]) for k in (1, 2)]
    assert codes == [0, EXIT_NOT_EQUIVARIANT]  # z2cnn (position 2) is in shard 2
    first, second = _models(five / "shard1.json"), _models(five / "shard2.json")
    assert [n for n, _ in first] == ["models/p4cnn.onnx", "models/p4cnn_broken.onnx", "models/deepsets.onnx"]
    assert [n for n, _ in second] == ["models/z2cnn.onnx", "models/p4_fcn.onnx"]
    capsys.readouterr()
    code = main(["report", "shard2.json", "shard1.json", "--json", "merged.json", "--junit", "merged.xml"])
    out = capsys.readouterr().out
    assert code == EXIT_NOT_EQUIVARIANT and "1 of 5 models not equivariant" in " ".join(out.split())
    main(["check", "--json", "whole.json", "-q"])
    assert _models(five / "merged.json") == _models(five / "whole.json")
    assert (five / "merged.xml").read_text().count("<testsuite ") == 5  # one suite per model


def test_a_missing_or_repeated_shard_is_refused(five, capsys) -> None:
    for k in (1, 2, 3):
        main(["check", "--shard", f"{k}/3", "--json", f"s{k}.json", "-q"])
    capsys.readouterr()
    assert main(["report", "s1.json", "s3.json"]) == EXIT_USAGE
    assert "shard 2/3 is missing" in capsys.readouterr().err
    assert main(["report", "s1.json", "s2.json", "s2.json", "s3.json"]) == EXIT_USAGE
    assert "shard 2/3 is given twice" in capsys.readouterr().err
    assert main(["report", "s1.json", "s2.json", "s3.json", "-q"]) == EXIT_NOT_EQUIVARIANT


def test_shard_specs_and_their_split() -> None:
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) is None
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "-1/2"):
        with pytest.raises(UsageError):
            parse_shard(bad)
    parts = [shard_indices(10, (k, 3)) for k in (1, 2, 3)]
    assert sorted(i for p in parts for i in p) == list(range(10)) and [len(p) for p in parts] == [4, 3, 3]


def test_bad_jobs_and_shards_are_usage_errors(five, capsys) -> None:
    assert main(["check", "--jobs", "0"]) == EXIT_USAGE
    assert main(["check", "--shard", "3/2"]) == EXIT_USAGE
    assert "--shard" in capsys.readouterr().err
