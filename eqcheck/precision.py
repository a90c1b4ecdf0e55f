"""A float32 model that fails by a little: float32 rounding, or a broken symmetry? The same check (seed,
inputs, group elements) runs again with the model in float64, and the two worst errors say which: where
the error falls by orders of magnitude, rounding made it (an exact model on coordinates far from the
origin, a deep stack of layers); where it stays, the model breaks the symmetry (CONVENTIONS section 8:
the field tells the two apart the same way, e3nn and nequip test float64 at 1e-9 to 1e-10).

Only models that can be cast are re-run (PyTorch: a copy of the module, never the caller's own); an
ONNX graph runs in the dtype it was exported in, and is told so."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from eqcheck.errors import EqcheckError
from eqcheck.result import Diagnosis, VerificationResult
from eqcheck.tolerance import EXACT_TOLERANCE

#: a float32 model failing with a worst exact error below this is checked again in float64 (above it,
#: rounding is not a plausible cause)
RERUN_BELOW = 1e-2
#: rounding is named where the float64 error falls this many times below the float32 one (rounding alone
#: predicts 2^29, about 5e8) or below float64's own tolerance
FALLS_BY = 1e4


def worst_failing_error(result: VerificationResult) -> float:
    """The largest error of a failing exact element (NaN where there is none: interpolated angles fail
    by interpolation, not rounding)."""
    errors = [e.rel_error for o in result.outputs if not o.passed for e in o.elements if e.exact and not e.passed]
    return max(errors) if errors else math.nan


def should_rerun(result: VerificationResult) -> bool:
    worst = worst_failing_error(result)
    return not result.passed and result.run.dtype == "float32" and 0 < worst < RERUN_BELOW


def precision_diagnosis(result: VerificationResult,
                        rerun: Callable[[], VerificationResult]) -> Diagnosis | None:
    """What the float64 re-run (``rerun``: the same check, the model in float64) says about a float32
    failure, or None where no re-run is called for (``should_rerun``)."""
    if not should_rerun(result):
        return None
    worst = worst_failing_error(result)
    try:
        again = rerun()
    except EqcheckError as error:
        return Diagnosis("precision", f"the error (rel {worst:.1e}) could be float32 rounding; the model could not "
                                      f"be checked in float64 to tell ({error.message})", severity="note")
    failing = {o.name for o in result.outputs if not o.passed}
    errors64 = [e.rel_error for o in again.outputs if o.name in failing for e in o.elements if e.exact]
    worst64 = max(errors64) if errors64 else math.nan
    if worst64 * FALLS_BY <= worst or worst64 <= EXACT_TOLERANCE["float64"]:
        return Diagnosis("precision", f"float32 rounding, not a broken symmetry: in float64 the same check gives rel "
                                      f"{worst64:.1e} (float32: {worst:.1e}); check in float64 (--dtype float64) "
                                      f"or allow float32's error (--tol {_above(worst)})", severity="cause")
    if worst64 * 10 <= worst:
        return Diagnosis("precision", f"partly float32 rounding: in float64 the same check gives rel {worst64:.1e} "
                                      f"(float32: {worst:.1e}), more than rounding alone leaves", severity="note")
    return Diagnosis("precision", f"not float32 rounding: in float64 the same check still gives rel {worst64:.1e} "
                                  f"(float32: {worst:.1e})", severity="note")


def with_checked_weights(again, checked):
    """The float64 runner ``again`` with the weights of the float32 model that was ``checked``: a factory
    called again (under float64, seed 0) draws other random weights than the float32 call did, and the
    re-run must check the same network. Every parameter or buffer that differs from the checked one by
    more than float32's rounding is replaced by the checked one's value; what agrees to that rounding
    (constants the model computes as it is built, e3nn's Wigner 3j matrices) keeps its float64 value."""
    import torch

    source = getattr(checked, "module", None)
    target = getattr(again, "module", None)
    if not (hasattr(source, "state_dict") and hasattr(target, "state_dict")):
        return again
    theirs = source.state_dict()
    with torch.no_grad():
        for name, value in target.state_dict().items():
            old = theirs.get(name)
            if old is None or old.shape != value.shape:
                continue
            old = old.to(device=value.device, dtype=value.dtype)
            if old.is_floating_point():
                scale = float(old.abs().max()) if old.numel() else 0.0
                same = torch.allclose(value, old, rtol=1e-5, atol=1e-6 * scale)
            else:
                same = torch.equal(value, old)
            if not same:
                value.copy_(old)
    return again


def with_precision(result: VerificationResult, diagnosis: Diagnosis | None) -> VerificationResult:
    """``result`` with the re-run's diagnosis: where rounding made the error, it is the one cause, and what
    was blamed from the float32 errors (a first failing layer, absolute coordinates) is dropped: the
    float64 check shows it was rounding (the layer table keeps what was measured)."""
    if diagnosis is None:
        return result
    if diagnosis.severity != "cause":
        return replace(result, diagnoses=(*result.diagnoses, diagnosis))
    notes = tuple(d for d in result.diagnoses if d.severity != "cause")
    return replace(result, diagnoses=(diagnosis, *notes), first_failing_layer=None)


def _above(error: float) -> str:
    """A round tolerance above ``error`` (``3e-04`` -> ``1e-03``)."""
    return f"{10 ** math.ceil(math.log10(error) + 1e-9):.0e}"
