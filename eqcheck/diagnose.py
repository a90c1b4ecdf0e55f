"""Known causes of error, each said in one line (CONVENTIONS section 5)."""
from __future__ import annotations

import numpy as np

from eqcheck.engine import RIGHT_ANGLES_ONLY, Measurement
from eqcheck.groups.base import Group
from eqcheck.result import Diagnosis
from eqcheck.structure import WindowOp
from eqcheck.tolerance import Tolerance


def structural_diagnoses(group: Group, ops: list[WindowOp], failed: bool) -> list[Diagnosis]:
    """Strided ops that move the grid centre break rotations and mirrors about the centre."""
    if not group.rotates:
        return []
    found = []
    for op in ops:
        for reason in op.misalignment():
            found.append(Diagnosis(
                code="asymmetric-padding" if reason.startswith("asymmetric") else "stride-alignment",
                message=f"{op.name} ({op.op}): {reason}; the sampling grid is no longer centred, "
                        f"so rotations about the centre are not exact",
                severity="cause" if failed else "note",
                layer=op.name,
            ))
    return found


def measured_diagnoses(group: Group, measurement: Measurement, tolerance: Tolerance,
                       device: str) -> list[Diagnosis]:
    found = []
    several = len(measurement.outputs) > 1
    for output in measurement.outputs:
        found += _output_diagnoses(output, f"output {output.name!r}: " if several else "", tolerance,
                                   measurement.geometry.order, group)
        found += _undetermined_type(group, output)
        found += _declared_against_fitting(output, tolerance, f"output {output.name!r}" if several else "the output")
        found += _subgroup_only(group, measurement.elements, output, f"output {output.name!r}: " if several else "")
    if measurement.non_determinism > 0:
        if measurement.non_determinism > tolerance.exact:
            found.append(Diagnosis(
                "non-determinism",
                f"the same input run twice differs by rel {measurement.non_determinism:.2e}: the model is not "
                f"deterministic (dropout or sampling in train mode, or non-deterministic kernels)",
                severity="cause"))
        else:  # the identity rides in another batch than the reference: kernels may sum in another order
            found.append(Diagnosis(
                "non-determinism",
                f"the same input run twice (in another batch) differs by rel {measurement.non_determinism:.2e}, "
                f"within the tolerance: rounding of kernels that sum in another order for another batch, "
                f"not a cause", severity="note"))
    if device.startswith("cuda"):
        found.append(Diagnosis("precision", "run on a GPU with TF32 off (strict float32); TF32 convolutions "
                                            "would raise an exact model's error to about 1e-3", severity="note"))
    for note in measurement.notes:
        found.append(Diagnosis("geometry", note, severity="note"))
    for note in measurement.drawn_notes:
        found.append(Diagnosis("more-inputs", note, severity="note"))
    return found


def _declared_against_fitting(output, tolerance: Tolerance, what: str) -> list[Diagnosis]:
    """A declared type that fails where a named one fits: say which, and how to declare it."""
    if output.passed or output.representation_source != "given":
        return []
    fitting = [c for c in output.candidates if c.representation != output.representation
               and c.max_rel_error <= tolerance.exact]
    if not fitting:
        return []
    best = min(fitting, key=lambda c: c.max_rel_error)
    if " in another basis" in best.representation:  # found from the data: no spec declares a basis
        return [Diagnosis("declared-type", f"{what} fails as the declared {output.representation}, but its "
                                           f"channels transform as {best.representation} (found from the data, "
                                           f"max rel error {best.max_rel_error:.2e}): the model computes these "
                                           f"irreps in its own order or basis, not in the one the type names")]
    return [Diagnosis("declared-type", f"{what} fails as the declared {output.representation}, but fits "
                                       f"{best.representation} (max rel error {best.max_rel_error:.2e}): if that is "
                                       f"its type, declare --output-type {output.name}={best.representation}")]


def _subgroup_only(group: Group, elements, output, prefix: str) -> list[Diagnosis]:
    """Every element of a subgroup passes and every other fails: the model is equivariant to that subgroup
    only (a p4 model under p4m: rotations pass, mirrors fail)."""
    results = list(zip(elements, output.elements))
    if output.passed or len(results) < 2 or not hasattr(group, "mirrors"):
        return []
    if not group.mirrors or not any(g.flip for g, _ in results):
        return []
    rotations = [r for g, r in results if not g.flip]
    mirrors = [r for g, r in results if g.flip]
    if all(r.passed for r in rotations) and not any(r.passed for r in mirrors):
        subgroup = f"c{group.n}" if group.name not in ("p4m",) else "p4"
        return [Diagnosis("subgroup-only", f"{prefix}every rotation passes and every mirror fails: equivariant to "
                                           f"the rotations only (--group {subgroup} passes), not to the mirrors")]
    return []


def _undetermined_type(group: Group, output) -> list[Diagnosis]:
    """A failing ``[B, C]`` output whose channels may carry a representation that too few samples cannot
    reveal (discovery.py fits none): say so, and how to declare it."""
    from eqcheck.discovery import MIN_SAMPLES_PER_CHANNEL

    if group.point_cloud:
        return _undetermined_irreps(output)
    batch, channels = (output.shape + (0, 0))[:2]
    if (output.passed or group.field_group is None or len(output.shape) != 2 or channels < 2
            or output.representation_source == "given" or batch >= 2 * MIN_SAMPLES_PER_CHANNEL * channels):
        return []
    needed = 2 * MIN_SAMPLES_PER_CHANNEL * channels
    return [Diagnosis("undetermined-type", f"output {output.name!r} {list(output.shape)} was checked as "
                                           f"{output.representation}: if its channels carry a representation (a "
                                           f"vector, irreps), {batch} samples cannot reveal it; declare it "
                                           f"(--output-type {output.name}=vector, irrep(1), 2*regular, ...) or check a "
                                           f"batch of {needed} (--batch-size {needed}, or --input-shape with that "
                                           f"batch)", severity="note")]


def _undetermined_irreps(output) -> list[Diagnosis]:
    """A failing 3-D output with too few rows (points x batch) for its irreps to be found (discovery_o3)."""
    from eqcheck.discovery import MIN_SAMPLES_PER_CHANNEL

    dim = output.shape[-1] if output.shape else 0
    rows = int(np.prod(output.shape[:-1])) if output.shape else 0
    needed = 2 * MIN_SAMPLES_PER_CHANNEL * dim
    # one axis ([B]: an energy per cloud) is one value per sample, with no axis of irreps
    if output.passed or dim < 2 or len(output.shape) < 2 or output.representation_source == "given" or rows >= needed:
        return []
    return [Diagnosis("undetermined-type", f"output {output.name!r} {list(output.shape)} was checked as "
                                           f"{output.representation}: if its last axis carries irreps, {rows} rows "
                                           f"(points x batch) cannot reveal them (it takes {needed}); declare it "
                                           f"(--output-type {output.name}=1x0e+1x1o, ...) or check more points",
                      severity="note")]


def _output_diagnoses(output, prefix: str, tolerance: Tolerance, order: int, group: Group) -> list[Diagnosis]:
    found = []
    if any(e.nonfinite for e in output.elements):
        found.append(Diagnosis("nonfinite", f"{prefix}the model produced NaN or Inf outputs"))
    if output.spread == 0.0:
        found.append(Diagnosis(
            "constant-output",
            f"{prefix}the output does not depend on the input (the same for unrelated inputs: spread 0), so "
            f"every check passes it; a zero-initialised or disconnected head?",
            severity="note",
        ))
    elif output.spread < 100 * tolerance.exact and output.spread == output.spread:
        found.append(Diagnosis(
            "insensitive-output",
            f"{prefix}the output hardly depends on the input (spread {output.spread:.2e}): a small error says "
            f"little; read rel/spread",
            severity="note",
        ))
    exact = [e for e in output.elements if e.exact]
    approximate = [e for e in output.elements if not e.exact]
    if approximate:
        floor = max((e.interpolation_floor or 0.0) for e in approximate)
        found.append(Diagnosis(
            "interpolation",
            f"{prefix}{len(approximate)} angle(s) off the right angles need interpolation (spline order "
            f"{order}): smooth inputs, central disk, interpolation floor up to {floor:.1e}",
            severity="note",
        ))
        if all(e.passed for e in exact) and not all(e.passed for e in approximate):
            found.append(Diagnosis("interpolated-only",
                                   f"{prefix}exact at every right angle; only interpolated angles fail"))
    quarter = next((c for c in output.candidates if c.representation.endswith(RIGHT_ANGLES_ONLY)
                    and c.max_rel_error <= tolerance.exact), None)
    if exact and not all(e.passed for e in exact) and approximate and quarter is not None:
        name = quarter.representation[:-len(RIGHT_ANGLES_ONLY)]
        found.append(Diagnosis("undetermined-type", f"{prefix}at every right angle the output's channels transform as "
                                                    f"{name} (found from the data, max rel error "
                                                    f"{quarter.max_rel_error:.2e}), but the interpolated angles "
                                                    f"confirm no type of {group.spec}: declare its type "
                                                    f"(--output-type {output.name}=...), or check the right angles "
                                                    f"alone under p4 or c4"))
    elif exact and not all(e.passed for e in exact) and approximate:
        shape = output.shape
        group_channels = len(shape) == 5 or (len(shape) == 4 and shape[1] % 4 == 0)
        if group_channels and output.representation_source != "given":
            found.append(Diagnosis("not-c4", f"{prefix}the output fails at the right angles under every action this "
                                             f"group has for it ({output.representation}); if its channels are a "
                                             f"group axis (a G-CNN's regular field of C4), {group.spec} cannot act on them: "
                                             f"check it under p4 or c4"))
        else:
            found.append(Diagnosis("not-c4", f"{prefix}the model is not even equivariant to rotations by 90 "
                                             f"degrees"))
    return found + _space_diagnoses(output, prefix)


def _space_diagnoses(output, prefix: str) -> list[Diagnosis]:
    """What the pattern of failing 3-D elements says: a translation alone fails (absolute coordinates),
    or every rotation passes and only elements with the inversion fail (parity)."""
    spatial = [e for e in output.elements if e.matrix is not None]
    if not spatial or all(e.passed for e in spatial):
        return []

    def improper(e) -> bool:
        return bool(np.linalg.det(np.asarray(e.matrix)) < 0)

    shifts = [e for e in spatial if e.translation is not None and any(e.translation)
              and np.allclose(e.matrix, np.eye(3))]
    if shifts and not all(e.passed for e in shifts):
        return [Diagnosis("absolute-coordinates", f"{prefix}a translation alone changes the output: the model "
                                                  f"reads absolute positions (use differences of positions, or "
                                                  f"centre them first)")]
    flipped = [e for e in spatial if improper(e)]
    if flipped and all(e.passed for e in spatial if not improper(e)) and not all(e.passed for e in flipped):
        return [Diagnosis("parity", f"{prefix}every rotation passes and only elements with the inversion fail: "
                                    f"equivariant to SO(3), not O(3); a layer blind to parity, or the output's "
                                    f"parity declared wrong (a cross product is 1e, not 1o)")]
    return []
