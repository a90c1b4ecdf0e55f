"""``eqcheck check`` over the sample models with ``--jobs 1`` and ``--jobs N`` (default: the cores), each a
fresh process, interleaved: wall time, and how many cores were busy on average (CPU time of the command
and its worker processes / wall time; needs psutil).

    python benchmarks/bench_check_jobs.py [--repeats 5] [--jobs N]

The project is made in a temporary folder: every ONNX file of sample_models/ and the PyTorch factories of
sample_models/models.py, each under its group (the broken ones expected to fail).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = [("p4cnn.onnx", "p4", "pass"), ("z2cnn.onnx", "p4", "fail"), ("p4cnn_broken.onnx", "p4", "fail"),
          ("p4mcnn.onnx", "p4m", "pass"), ("p4_fcn.onnx", "p4", "pass"), ("deepsets.onnx", "perm", "pass"),
          ("deepsets_equivariant.onnx", "perm", "pass"), ("models.py:p4cnn", "p4", "pass"),
          ("models.py:p4cnn_broken", "p4", "fail"), ("models.py:p4mcnn", "p4m", "pass")]


def project(folder: Path) -> None:
    (folder / "models").mkdir()
    for name in {m.split(":")[0] for m, _, _ in MODELS}:
        shutil.copy(ROOT / "sample_models" / name, folder / "models" / name)
    entries = "".join(f'\n[[tool.eqcheck.models]]\npath = "models/{m}"\ngroup = "{g}"\nexpect = "{e}"\n'
                      for m, g, e in MODELS)
    (folder / "pyproject.toml").write_text("[tool.eqcheck]\n" + entries)


def timed(folder: Path, jobs: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every worker process it starts): the process tree is
    polled every 20 ms with psutil, each process's last CPU times kept."""
    import psutil

    start = time.perf_counter()
    process = psutil.Popen([sys.executable, "-m", "eqcheck", "check", "--jobs", str(jobs), "-q"], cwd=folder,
                           stdout=subprocess.DEVNULL)
    cpu: dict[int, float] = {}
    while process.poll() is None:
        try:
            for p in [process, *process.children(recursive=True)]:
                times = p.cpu_times()
                cpu[p.pid] = times.user + times.system
        except psutil.Error:  # a worker that just ended
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"eqcheck check --jobs {jobs} exited with {process.returncode}")
    return wall, sum(cpu.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        project(folder)
        timed(folder, 1)  # warm-up: the page cache
        runs: dict[int, list[tuple[float, float]]] = {1: [], args.jobs: []}
        for _ in range(args.repeats):
            for jobs in runs:
                runs[jobs].append(timed(folder, jobs))
    print(f"{len(MODELS)} models, {len(os.sched_getaffinity(0))} cores, {args.repeats} interleaved runs each")
    for jobs, values in runs.items():
        walls = [w for w, _ in values]
        busy = [c / w for w, c in values]
        print(f"--jobs {jobs}: wall median {statistics.median(walls):.2f} s (min {min(walls):.2f}, max "
              f"{max(walls):.2f}); cores busy median {statistics.median(busy):.2f}")
    ratio = statistics.median(w for w, _ in runs[args.jobs]) / statistics.median(w for w, _ in runs[1])
    print(f"wall --jobs {args.jobs} / --jobs 1: {ratio:.2f}")


if __name__ == "__main__":
    main()
