"""Run every model a config lists (the library side of ``eqcheck check``): one outcome per model, in config
order, whatever order the workers finish in; ``shard`` keeps a deterministic 1/N of the models (the CI
matrix way), ``jobs`` checks that many at once, each worker process with its share of the cores."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eqcheck.config import CheckConfig, ModelEntry, resolve_options
from eqcheck.errors import EXIT_MODEL, EqcheckError
from eqcheck.guard import DEFAULT_TIMEOUT_S
from eqcheck.result import VerificationResult

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ModelOutcome:
    """One listed model: its result, or the one-line error that stopped it (and that error's exit code)."""

    entry: ModelEntry
    group: str
    result: VerificationResult | None = None
    error: str | None = None
    error_exit_code: int = 0
    #: the entry's position in the whole config (0-based): shards' outcomes merge back in config order
    index: int = 0


def _stage(progress: Progress | None, label: str) -> Progress | None:
    if progress is None:
        return None
    return lambda stage, done, total: progress(f"{label}: {stage}", done, total)


def check_model(entry: ModelEntry, options: Mapping[str, Any], progress: Progress | None = None,
                command: str | None = None) -> ModelOutcome:
    """``eqcheck.verify`` on one entry; an error of this model becomes its outcome, not an exception."""
    from eqcheck.api import verify

    options = {"timeout": DEFAULT_TIMEOUT_S, **options}
    group = options.pop("group")
    try:
        result = verify(entry.model, group, progress=progress, command=command, **options)
    except EqcheckError as error:
        return ModelOutcome(entry, str(group), error=error.message, error_exit_code=error.exit_code)
    except KeyboardInterrupt:  # a real Ctrl-C (verify's guard turns the model's own into an error)
        raise
    except BaseException as error:  # one broken model must not hide the others' verdicts
        if os.environ.get("EQCHECK_DEBUG"):
            raise
        return ModelOutcome(entry, str(group), error=f"internal error: {type(error).__name__}: {error}",
                            error_exit_code=EXIT_MODEL)
    return ModelOutcome(entry, str(group), result=result)


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_jobs() -> int:
    """``$EQCHECK_JOBS`` where it is a count, else the cores."""
    text = os.environ.get("EQCHECK_JOBS", "").strip()
    return int(text) if text.isdigit() and int(text) >= 1 else available_cores()


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``K/N`` (1 <= K <= N) as (K, N); None for None."""
    from eqcheck.errors import UsageError

    if text is None:
        return None
    k, slash, n = text.strip().partition("/")
    if not (slash and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise UsageError(f"--shard {text!r}: give K/N with 1 <= K <= N (shard 2 of 3: --shard 2/3)")
    return int(k), int(n)


def shard_indices(count: int, shard: tuple[int, int] | None) -> list[int]:
    """The positions shard K of N checks: K-1, K-1+N, K-1+2N, ... (every model in exactly one shard, the
    shards within one model of each other in size)."""
    if shard is None:
        return list(range(count))
    k, n = shard
    return list(range(k - 1, count, n))


#: what a process's share of the cores is told by (eqcheck's onnxruntime sessions read EQCHECK_THREADS)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "EQCHECK_THREADS")


def _limit_threads(threads: int) -> None:
    """A process's share of the cores: for the thread pools that start after this (onnxruntime's sessions,
    torch's where it is not imported yet, or told here where it is)."""
    import sys

    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _preload(models) -> None:
    """Import what the checks of ``models`` will before the fork, so that the workers share it: the check
    path, and onnxruntime for ONNX files (neither starts a thread on import). Not torch: its import is most
    of a small config's time, and each process that checks a PyTorch model imports it on its own, at the
    same time as the others, instead of all waiting for one import before any check starts
    (benchmarks/bench_check_jobs.py)."""
    import importlib

    names = ["eqcheck.api", "eqcheck.layers.analysis"]
    if any(str(m).endswith(".onnx") for m in models):
        names += ["onnxruntime", "eqcheck.layers.capture_onnx"]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:  # not installed: the check that needs it says so
            pass


def _ready() -> bool:
    """A worker's first task: it returns once the worker has imported what a check needs."""
    import eqcheck.api  # noqa: F401

    return True


def _check_in_worker(entry: ModelEntry, options: Mapping[str, Any], command: str | None, index: int) -> ModelOutcome:
    from dataclasses import replace

    return replace(check_model(entry, options, None, command), index=index)


def run_checks(config: CheckConfig, overrides: Mapping[str, Any] | None = None,
               progress: Progress | None = None, command: str | None = None, *, jobs: int = 1,
               shard: tuple[int, int] | None = None) -> tuple[ModelOutcome, ...]:
    """Check the models of ``config`` (shard K of N of them where ``shard`` says) with their resolved
    options (see ``config.resolve_options``), ``jobs`` at a time; outcomes in config order."""
    from dataclasses import replace

    chosen = shard_indices(len(config.models), shard)
    work = [(index, config.models[index], resolve_options(config.models[index], config.defaults, overrides or {}))
            for index in chosen]
    jobs = max(1, min(jobs, len(work)))
    if jobs == 1:
        outcomes = []
        for position, (index, entry, options) in enumerate(work, start=1):
            label = f"[{position}/{len(work)}] {entry.name}"
            if progress is not None:
                progress(f"{label}: loading", 0, 0)
            outcomes.append(replace(check_model(entry, options, _stage(progress, label), command), index=index))
        return tuple(outcomes)
    return _run_parallel(work, jobs, progress, command)


def _run_parallel(work: list, jobs: int, progress: Progress | None, command: str | None) -> tuple[ModelOutcome, ...]:
    """``jobs`` checks at a time: this process is one of them and ``jobs - 1`` worker processes the others,
    each taking the next model when it is free, each with ``cores // jobs`` threads. The workers are forked
    (where the platform can) once this process has imported the check path (and torch, where a model
    needs it), before any model runs or any thread of it starts: they start at once, sharing those
    imports; elsewhere they are spawned and take models once their imports are done."""
    import multiprocessing
    import threading
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    _preload(entry.model for _, entry, _ in work)
    threads = max(1, available_cores() // jobs)
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    _limit_threads(threads)  # for this process's own checks too (its sessions read them when built)
    pending = deque(work)
    lock = threading.Lock()
    outcomes: dict[int, ModelOutcome] = {}
    futures = []

    def report(entry: ModelEntry) -> None:
        if progress is not None:
            with lock:
                done = len(outcomes)
            progress(f"[{done}/{len(work)}] {entry.name}: done", done, len(work))

    def take():
        with lock:
            return pending.popleft() if pending else None

    def finished(future, index: int, entry: ModelEntry, options) -> None:
        try:
            outcome = future.result()
        except BaseException as error:  # noqa: BLE001 (a worker that died: that model's error, not the run's)
            outcome = ModelOutcome(entry, str(options.get("group", "")), index=index, error_exit_code=EXIT_MODEL,
                                   error=f"its worker process stopped: {type(error).__name__}: {error}")
        outcomes[index] = outcome
        report(entry)
        submit()

    def submit() -> None:
        item = take()
        if item is not None:
            index, entry, options = item
            future = pool.submit(_check_in_worker, entry, options, command, index)
            futures.append(future)
            future.add_done_callback(lambda f: finished(f, index, entry, options))

    if progress is not None:
        progress(f"checking {len(work)} models, {jobs} at a time", 0, len(work))
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=jobs - 1, mp_context=multiprocessing.get_context(method),
                               initializer=_limit_threads, initargs=(threads,))
    try:
        for _ in range(jobs - 1):  # a worker takes its first model once it has started up
            pool.submit(_ready).add_done_callback(lambda f: f.exception() is None and submit())
        while (item := take()) is not None:  # this process's share, model by model
            index, entry, options = item
            outcomes[index] = _check_in_worker(entry, options, command, index)
            report(entry)
        while len(outcomes) < len(work):  # what the workers took
            threading.Event().wait(0.01)
    except BaseException:  # interrupted: the workers stop with this process
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        raise
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    pool.shutdown(wait=True, cancel_futures=True)  # idle workers exit (a spawned one once it has started)
    return tuple(outcomes[index] for index, _, _ in work)


def merge_shards(files: list) -> tuple[ModelOutcome, ...]:
    """The outcomes of saved checks (``json_report.CheckFile``), in config order: shards K of N merge only
    when every K from 1 to N is there once, all of the same config; whole checks merge as they are."""
    from eqcheck.errors import UsageError

    sharded = [f for f in files if f.shard is not None]
    if sharded:
        if len(sharded) < len(files):
            raise UsageError("merge shards with shards: one of the results checked the whole config")
        counts = {f.shard[1] for f in sharded}
        sizes = {f.config_models for f in sharded}
        if len(counts) > 1 or len(sizes) > 1:
            raise UsageError("these shards come from different splits (shard counts or configs differ)")
        count = counts.pop()
        seen = [f.shard[0] for f in sharded]
        repeated = sorted({k for k in seen if seen.count(k) > 1})
        if repeated:
            raise UsageError(f"shard {repeated[0]}/{count} is given twice")
        missing = sorted(set(range(1, count + 1)) - set(seen))
        if missing:
            raise UsageError(f"shard {missing[0]}/{count} is missing: its models would be left unchecked")
    outcomes = sorted((o for f in files for o in f.outcomes), key=lambda o: o.index)
    return tuple(outcomes)
