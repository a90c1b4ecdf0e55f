"""The one result tree a check returns: frozen dataclasses that reporters only render."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ElementResult:
    """The error of one group element on one tensor."""

    element: str
    rel_error: float
    max_abs_error: float
    passed: bool
    exact: bool = True
    #: ``||R(-t) R(t) x - x|| / ||x||`` for interpolated rotations: the error interpolation alone makes
    interpolation_floor: float | None = None
    #: rel_error / spread: how large the error is against the output's natural variation
    spread_ratio: float | None = None
    nonfinite: bool = False
    #: a 3-D element's matrix (rows) and translation, so that a failing one can be reproduced
    matrix: tuple[tuple[float, ...], ...] | None = None
    translation: tuple[float, ...] | None = None
    #: a permutation's order along the set axis (``new[i] = old[permutation[i]]``), likewise
    permutation: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Candidate:
    """An action that was tried on a tensor and the largest error it gave."""

    representation: str
    max_rel_error: float


@dataclass(frozen=True)
class TensorCheck:
    """Everything measured on one tensor: the model's output, or a layer's."""

    name: str
    shape: tuple[int, ...]
    representation: str
    elements: tuple[ElementResult, ...]
    max_rel_error: float
    spread: float
    passed: bool
    #: how the representation was chosen: "given", "declared", "auto" (smallest error), "auto-default"
    #: (nothing passed and the shape's default action was about as good as any), "found" (from the data),
    #: or "layers" (nothing passed: the type its last layer computes from exact inputs)
    representation_source: str = "given"
    candidates: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class Diagnosis:
    """A known cause of error (``severity='cause'``) or a fact worth knowing (``'note'``)."""

    code: str
    message: str
    severity: str = "cause"
    layer: str | None = None


@dataclass(frozen=True)
class LayerResult:
    """One layer's output: its action, the cumulative error (``h_i(g.x)`` against ``g.h_i(x)``: where the
    error becomes visible) and the local error (``f_i(g.h_{i-1})`` against ``g.f_i(h_{i-1})``, the layer
    on an exact input: which layer creates it).

    ``passed`` is the local verdict; it is True for an op whose output has no action of its own but whose
    error vanishes in the layers after it (representation "none": part of an equivariant block), and where
    no local error could be separated (``local_rel_error`` None).
    """

    name: str
    op: str
    shape: tuple[int, ...]
    representation: str
    max_rel_error: float
    local_rel_error: float | None
    passed: bool
    tensor: str | None = None
    #: how the action was chosen: "auto" (smallest error), "found" (channel permutation by linear
    #: assignment), "declared" (eqcheck.nn attributes), "given" (--layer-type), "kept" (a failing layer:
    #: its input's action), "block" (none: inside a block that is equivariant as a whole), "undetermined"
    #: (no action eqcheck knows explains it, and nothing says the layer made an error: not judged)
    representation_source: str = "auto"
    #: runner-up error / chosen error among the candidates: how clearly the action won (None: no contest)
    representation_margin: float | None = None
    #: the cumulative verdict: False once the error is visible here, wherever it was made
    cumulative_passed: bool = True
    #: the cumulative error per element the layers were checked on, in the order of the output's elements
    #: (only its exact ones when interpolated elements are checked on the output alone); () when not recorded
    element_errors: tuple[float, ...] = ()


@dataclass(frozen=True)
class RunInfo:
    """What was checked and how, enough to repeat the run."""

    model: str
    model_format: str
    group: str
    inputs: dict[str, tuple[int, ...]]
    input_actions: dict[str, str]
    input_source: str
    dtype: str
    seed: int
    device: str
    samples: int
    forward_passes: int
    eqcheck_version: str
    command: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerificationResult:
    """The verdict and every number behind it."""

    run: RunInfo
    tolerance: float
    approximate_tolerance: float
    #: every checked output of the model, in the model's order; the model passes only if all do
    outputs: tuple[TensorCheck, ...]
    passed: bool
    non_determinism: float
    diagnoses: tuple[Diagnosis, ...] = ()
    layers: tuple[LayerResult, ...] = ()
    first_failing_layer: str | None = None
    elapsed_s: float = 0.0

    @property
    def output(self) -> TensorCheck:
        """The headline output: the first that fails, else the first."""
        return next((o for o in self.outputs if not o.passed), self.outputs[0])

    @property
    def worst_elements(self) -> list[ElementResult]:
        return sorted(self.output.elements, key=lambda e: -e.rel_error)
