"""Run many inputs in as few forward passes as possible: stack along the batch axis, in bounded chunks."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from eqcheck.errors import ModelRunError
from eqcheck.models.base import ModelRunner

#: stacking pays while batches are small (per-call overhead); past this many samples a pass is no
#: cheaper per sample, and each new batch shape costs a fresh session extra (onnxruntime plans memory per
#: shape): 32 was 5-15% faster than 64 on the sample models at batch 8 and 32 (benchmarks/bench_verify.py)
MAX_CHUNK_SAMPLES = 32
#: and never more than this many bytes of inputs in one pass
MAX_CHUNK_BYTES = 64 * 2**20
#: a first pass that takes longer than this is not per-call overhead: the rest run one by one (a
#: 1,000-atom dense potential ran 1.7x slower stacked, its [B, N, N, F] activations out of the cache:
#: benchmarks/bench_point_cloud.py)
STACK_BELOW_SECONDS = 0.02


def run_many(
    runner: ModelRunner,
    batches: list[dict[str, np.ndarray]],
    *,
    max_batch: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[list[np.ndarray]], int]:
    """Outputs of every feed dict, in order, and the number of forward passes it took.

    Feeds are concatenated along axis 0 when the model's batch axis is dynamic and its first pass, run
    alone, is quick (stacking saves per-call overhead, nothing else); a model that rejects a stacked
    batch is run one feed at a time.
    """
    sizes = [next(iter(b.values())).shape[0] for b in batches]
    per_feed_bytes = max(sum(a.nbytes for a in batches[0].values()) // max(sizes[0], 1), 1)
    limit = max_batch or max(min(MAX_CHUNK_BYTES // per_feed_bytes, MAX_CHUNK_SAMPLES), sizes[0])
    if runner.batch_dynamic and len(batches) > 2:
        done: list[list[np.ndarray]] = []
        for feeds in batches[:2]:  # the second decides where the first paid for a fresh session
            start = time.perf_counter()
            done.append(list(runner.run(feeds)))
            if time.perf_counter() - start < STACK_BELOW_SECONDS:
                break
        else:
            return _one_by_one(runner, batches, progress, done)
        try:
            rest, passes = _run_stacked(runner, batches[len(done):], sizes[len(done):], limit, progress)
            return done + rest, passes + len(done)
        except _NoBatchAxis:
            runner.notes.append("an output has no batch axis (its first axis does not follow the input's batch): "
                                "each input was run on its own")
        except ModelRunError:
            runner.notes.append("the model rejected a stacked batch; each input was run on its own")
        return _one_by_one(runner, batches, progress, done)
    return _one_by_one(runner, batches, progress)


def _one_by_one(runner, batches, progress, done=None) -> tuple[list[list[np.ndarray]], int]:
    """Each feed in its own pass (``done``: the outputs of the first feeds, already run)."""
    results = list(done or [])
    for index in range(len(results), len(batches)):
        results.append(runner.run(batches[index]))
        if progress:
            progress(index + 1, len(batches))
    return results, len(batches)


def chunk_indices(sizes: list[int], limit: int) -> list[list[int]]:
    """Consecutive feeds grouped so that each group holds at most ``limit`` samples (one feed at least)."""
    chunks, current, filled = [], [], 0
    for index, size in enumerate(sizes):
        if current and filled + size > limit:
            chunks.append(current)
            current, filled = [], 0
        current.append(index)
        filled += size
    if current:
        chunks.append(current)
    return chunks


class _NoBatchAxis(ModelRunError):
    """A stacked pass gave an output whose first axis is not the stacked batch: it cannot be split."""


def _run_stacked(runner, batches, sizes, limit, progress):
    results: list[list[np.ndarray]] = []
    chunks = chunk_indices(sizes, limit)
    for done, chunk in enumerate(chunks):
        feeds = {name: np.concatenate([batches[i][name] for i in chunk], axis=0) for name in batches[0]}
        outputs = runner.run(feeds)
        bounds = np.cumsum([0] + [sizes[i] for i in chunk])
        if len(chunk) == 1:  # nothing to split
            results.append(list(outputs))
        elif any(o.ndim == 0 or o.shape[0] != bounds[-1] for o in outputs):
            raise _NoBatchAxis("an output has no batch axis")
        else:
            results += [[o[start:stop] for o in outputs] for start, stop in zip(bounds[:-1], bounds[1:])]
        if progress:
            progress(done + 1, len(chunks))
    return results, len(chunks)
