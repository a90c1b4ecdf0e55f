"""Output buffers for capture runs, used again once nothing reads them: a chunk of layers captures into
the memory the chunk before it let go, instead of fresh pages (a large tensor is a fresh ``mmap`` for
every run: page faults took half of a 256x256 capture's time)."""
from __future__ import annotations

import sys

import numpy as np


class BufferPool:
    """Arrays handed out for a run's outputs. One is free when no array reads it: numpy's views (slices,
    reshapes, moved axes) hold their owner, so its reference count is the pool's alone."""

    def __init__(self) -> None:
        self._buffers: list[np.ndarray] = []

    def take(self, wanted: list[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
        """An array of each ``(shape, dtype)``: a free buffer of that many bytes where there is one, else a
        new one. The free buffers no request took are let go first (so the pool never holds more than a
        run's outputs beyond what its caller holds, and a new buffer never adds to them)."""
        # a reference count of 2: the pool's list and getrefcount's argument, no view or holder beyond them
        unread = [sys.getrefcount(self._buffers[i]) <= 2 for i in range(len(self._buffers))]
        free = [buffer for buffer, ok in zip(self._buffers, unread) if ok]
        held = [buffer for buffer, ok in zip(self._buffers, unread) if not ok]
        sizes = [int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize for shape, dtype in wanted]
        chosen: list[np.ndarray | None] = []
        for size in sizes:
            match = next((i for i, buffer in enumerate(free) if buffer.nbytes == size), None)
            chosen.append(free.pop(match) if match is not None else None)
        del free  # the free ones left over go before any new one is made
        self._buffers = held + [buffer for buffer in chosen if buffer is not None]
        arrays = []
        for (shape, dtype), size, buffer in zip(wanted, sizes, chosen):
            if buffer is None:
                buffer = np.empty(size, dtype=np.uint8)
                self._buffers.append(buffer)
            arrays.append(buffer.view(dtype).reshape(shape))
        return arrays

    def clear(self) -> None:
        self._buffers = []

