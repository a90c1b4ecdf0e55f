"""What the engine needs from a model: its inputs, and a function from numpy arrays to numpy arrays."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """One model input; ``None`` in ``shape`` marks a dynamic (or unknown) axis. ``dtype_known`` is False
    where the model does not say (a Python module): generated data is then ``dtype``, given integer data
    keeps its own dtype (token indices stay integers)."""

    name: str
    shape: tuple[int | None, ...] | None
    dtype: str = "float32"
    dtype_known: bool = True


class ModelRunner(ABC):
    """A loaded model. ``run`` takes and returns numpy arrays, whatever the framework."""

    description: str = ""
    format: str = ""
    device: str = "cpu"
    inputs: list[InputSpec]
    output_names: list[str]
    #: False when the batch axis is fixed, so transformed inputs cannot be stacked along it
    batch_dynamic: bool = True
    notes: list[str]

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One forward pass; raises ModelRunError when the model rejects the inputs."""

    def close(self) -> None:
        """Release what the runner holds (sessions, GPU memory)."""

    @property
    def declared_types(self) -> dict:
        """Types the model itself declares for its inputs and outputs, by name (an escnn module's in_type and
        out_type); what the user declares comes first."""
        return {}

    def index_range(self, name: str) -> int | None:
        """For an integer input that indexes a table (an embedding), the table's length; None when the
        model does not say."""
        return None


def first_line(error: BaseException) -> str:
    """The line of an exception's text that says what went wrong, for one clear error line.

    Usually the first line; TorchScript puts a stack first and the cause (``XxxError: ...``) last.
    """
    try:
        text = str(error).strip() or type(error).__name__
    except Exception:  # an exception whose __str__ fails (a model's own class)
        return type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if "TorchScript interpreter" in lines[0]:
        causes = [line for line in lines if line.split(":", 1)[0].endswith(("Error", "Exception"))]
        if causes:
            return causes[-1]
    return lines[0]


def missing_file(path, what: str = "model file") -> str:
    """``model file not found: PATH`` and, where a file beside it has a close name, ``: did you mean ...``."""
    import difflib
    from pathlib import Path

    path = Path(path)
    try:
        names = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
    except OSError:
        names = []
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    hint = f": did you mean {str(path.parent / close[0])!r}?" if close else ""
    return f"{what} not found: {path}{hint}"
