"""The check: transform inputs, run the model as few times as possible, measure, and return one result."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from eqcheck.actions.parse import candidate_representations, default_representation, parse_type
from eqcheck.actions.representations import Representation, apply_representation
from eqcheck.actions.spatial import apply_spatial, central_disk
from eqcheck.batching import run_many
from eqcheck.compare import Geometry, element_errors
from eqcheck.discovery import MIN_SAMPLES_PER_CHANNEL, FoundAction, discover, too_few_samples
from eqcheck.discovery_o3 import discover_irreps
from eqcheck.errors import UsageError
from eqcheck.groups.base import Group, SamplingContext
from eqcheck.groups.element import Element
from eqcheck.metrics import relative_error, spread, worst
from eqcheck.models.base import ModelRunner
from eqcheck.result import Candidate, TensorCheck
from eqcheck.structure import scan, total_stride
from eqcheck.tolerance import Tolerance
from eqcheck.validation import check_memory

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Measurement:
    """What the engine measured, before diagnosis: the output check and the facts behind it."""

    outputs: tuple[TensorCheck, ...]
    elements: list[Element]
    non_determinism: float
    forward_passes: int
    geometry: Geometry
    notes: list[str] = field(default_factory=list)
    #: outputs whose type was found on more random inputs than the checked ones (draws_needed), one line each
    drawn_notes: list[str] = field(default_factory=list)
    #: the action each checked output was checked under (declared, chosen or found), by name
    actions: dict[str, Representation] = field(default_factory=dict)
    #: for a failing output whose type nothing settled: its check under each named candidate, by spec
    #: (typed_by_layers picks the one its last layer computes), by output name
    alternatives: dict[str, dict[str, tuple[TensorCheck, Representation]]] = field(default_factory=dict)


def select_outputs(names: list[str], name: str | None) -> list[int]:
    """The outputs to check: every one, or the one named (``--output``)."""
    if name is None:
        return list(range(len(names)))
    if name not in names:
        raise UsageError(f"the model has no output {name!r} (outputs: {', '.join(names)})")
    return [names.index(name)]


def output_types(declared, names: list[str]) -> dict[str, str]:
    """``--output-type`` values: ``TYPE`` (the first output; every output of a model with one) or
    ``NAME=TYPE``; a mapping of names to types is taken as it is. Outputs not named are ``auto``."""
    from eqcheck.input_actions import split_declaration

    if declared is None or declared == "auto":
        return {}
    if isinstance(declared, Mapping):
        unknown = [n for n in declared if n not in names]
        if unknown:
            raise UsageError(f"--output-type names no output of the model: {unknown[0]!r} (outputs: {', '.join(names)})")
        return dict(declared)
    types = {}
    for value in [declared] if isinstance(declared, str) else list(declared):
        name, spec = split_declaration("--output-type", value, names)
        types[name or names[0]] = spec
    return {name: spec for name, spec in types.items() if spec != "auto"}


def transform_feeds(group: Group, element: Element, feeds: dict[str, np.ndarray],
                    actions: dict[str, Representation], order: int, zero_fill: bool) -> dict[str, np.ndarray]:
    return {name: apply_representation(actions[name], group, element, x, zero_fill=zero_fill, order=order)
            for name, x in feeds.items()}


def interpolation_floors(group: Group, elements: list[Element], x: np.ndarray, order: int) -> dict[str, float]:
    """``||R(-t) R(t) x - x|| / ||x||`` on the central disk, for every interpolated element."""
    if x.ndim < 3:
        return {}
    mask = central_disk(*x.shape[-2:])
    floors = {}
    for element in elements:
        if not element.exact:
            there = apply_spatial(element, x.astype(np.float64), order=order)
            back = apply_spatial(group.inverse(element), there, order=order)
            floors[element.label] = relative_error(back, x, mask)[0]
    return floors


def probe_geometry(runner: ModelRunner, group: Group, feeds: dict[str, np.ndarray],
                   first: str) -> list[tuple[int, int | None]]:
    """Per output, the total stride (input size / output size) and, for interior translations, the
    margin to skip: one pair of runs serves every output.

    The margin is found by adding an impulse at a corner of the input: the farthest output pixel it
    reaches (its receptive radius R) is the last one whose inputs can include the padding, so
    pixels R or more from an edge see only the image.
    """
    x = feeds[first]
    rank = group.spatial_rank(x.ndim)
    impulse = x.copy()
    impulse[(..., *(0,) * rank)] += 10.0 * (float(np.abs(x).max()) or 1.0)
    outputs, _ = run_many(runner, [feeds, {**feeds, first: impulse}])
    return [_output_geometry(runner, group, feeds, x, rank, base, moved)
            for base, moved in zip(outputs[0], outputs[1])]


def _output_geometry(runner, group, feeds, x, rank, base, moved) -> tuple[int, int | None]:
    if x.ndim < 3:
        return 1, None
    if base.ndim < 2 + rank:  # an invariant output: the stride can only be read from the model's layers
        ops = scan(runner, feeds, {name: v.shape for name, v in feeds.items()})
        return total_stride(ops, x.shape[-1]), None
    stride = max(x.shape[-1] // max(base.shape[-1], 1), 1) if x.shape[-1] % max(base.shape[-1], 1) == 0 else 1
    sizes = base.shape[-rank:]
    change = np.abs(moved.astype(np.float64) - base).reshape(-1, *sizes).max(axis=0)
    if group.margin is not None:
        return stride, group.margin
    if change.max() == 0:
        return stride, 0
    reached = np.nonzero(change > 1e-6 * change.max())
    # distance from the impulse's corner, counted round the far edges too (circular padding wraps)
    reach = max(np.minimum(index, size - index).max() for index, size in zip(reached, sizes))
    return stride, int(reach)


#: when no candidate passes, the shape's default action is kept if its error is within this factor of the best
#: (a broken GrouPy p4m network's group map: 1.44 under its own regular action, 1.11 as "invariant", so
#: 1.31x; a best candidate better than this is taken to be the type with a small error on top)
AMBIGUITY_FACTOR = 1.5


def choose_representation(group: Group, shape: tuple[int, ...], scored: list, source: str):
    """The candidate with the smallest error; but when none passes and the shape's default action is
    nearly as good, the default: a failing model's output fits no action, and the smallest error
    would then only measure which action happens to fit noise best."""
    best = min(scored, key=lambda item: item[0])
    if source != "auto" or all(r.passed for r in best[2]):
        return best, source
    if best[1].spec == "invariant" and not group.point_cloud and len(shape) >= 4 and math.prod(shape[-2:]) > 1:
        # a map that does not move at all fits a broken map best where the model's output barely moves;
        # no model means its map to stay put under rotations or shifts (a constant map moves like an image)
        scored = [item for item in scored if item[1].spec != "invariant"] or scored
        best = min(scored, key=lambda item: item[0])
    default = default_representation(group, shape, [rep for _, rep, _ in scored])
    chosen = next(item for item in scored if item[1] is default)
    if chosen is not best and chosen[0] <= AMBIGUITY_FACTOR * best[0]:
        return chosen, "auto-default"
    return best, source


def measure(
    runner: ModelRunner,
    group: Group,
    feeds: dict[str, np.ndarray],
    other_feeds: dict[str, np.ndarray],
    input_actions: dict[str, Representation],
    *,
    set_size: int | None,
    tolerance: Tolerance,
    rng: np.random.Generator,
    samples: int = 8,
    output_type: str = "auto",
    output_name: str | None = None,
    max_batch: int | None = None,
    progress: Progress | None = None,
    draw: Callable[[], dict[str, np.ndarray]] | None = None,
) -> Measurement:
    """Run every transformed input and compare, for every candidate action on the output (``draw``: fresh
    random inputs like ``feeds``, drawn where an output's type is to be found from more samples than the
    checked batch holds)."""
    first = next(iter(feeds))
    x = feeds[first]
    zero_fill = group.zero_fill
    order = group.interpolation_order
    probed = probe_geometry(runner, group, feeds, first) if group.translates else None
    # shifts that every checked output can follow: multiples of each one's stride
    stride = math.lcm(*(probed[i][0] for i in select_outputs(list(runner.output_names), output_name))) \
        if probed else 1
    spatial_size = tuple(x.shape[-group.spatial_rank(x.ndim):]) if x.ndim >= 3 else None
    ctx = SamplingContext(rng=rng, samples=samples, set_size=set_size, spatial_size=spatial_size, stride=stride)
    elements = group.testing_elements(ctx)
    if all(g.is_identity for g in elements):
        raise UsageError(f"{group.spec} has no element but the identity to test on inputs of shape {list(x.shape)}: "
                         f"the check would pass whatever the model does")
    check_memory(sum(a.nbytes for a in feeds.values()), len(elements) + 2, "the inputs")

    batches = [feeds, other_feeds] + [
        transform_feeds(group, g, feeds, input_actions, order, zero_fill) for g in elements
    ]
    report = (lambda done, total: progress("forward passes", done, total)) if progress else None
    outputs, passes = run_many(runner, batches, max_batch=max_batch, progress=report)
    names = list(runner.output_names)
    declared = {**{n: t for n, t in runner.declared_types.items() if n in names}, **output_types(output_type, names)}
    floors = interpolation_floors(group, elements, x, order)
    geometries = [Geometry(stride=s, zero_fill=zero_fill, margin=m, order=order) for s, m in probed] if probed \
        else [Geometry(zero_fill=zero_fill, order=order)] * len(names)
    checks, identity_errors, actions, alternatives = [], [], {}, {}
    checked = select_outputs(names, output_name)
    for index in checked:
        check, actions[names[index]], alternatives[names[index]] = check_output(
            group, names[index], [o[index] for o in outputs], elements, geometries[index], tolerance, floors,
            set_size, declared.get(names[index]))
        checks.append(check)
        identity_errors += [r.rel_error for g, r in zip(elements, check.elements) if g.is_identity]
    notes = [f"total stride {stride}: shifts are multiples of {stride}"] if stride > 1 else []
    # an output no named type explains, with too few samples for its type to be found: found on more inputs
    drawn: list[str] = []
    short = {index: count for index, check in zip(checked, checks)
             if (count := draws_needed(group, check, outputs[0][index])) and draw is not None}
    if short:
        count = max(short.values())
        fresh = [draw() for _ in range(count)]
        extra, more = run_many(runner, [batch for d in fresh for batch in
                                        [d] + [transform_feeds(group, g, d, input_actions, order, zero_fill)
                                               for g in elements]], max_batch=max_batch)
        passes += more
        step = len(elements) + 1
        for position, index in enumerate(checked):
            if index not in short:
                continue
            values = [o[index] for o in outputs]
            pooled = [_rows(values[0], [extra[d * step][index] for d in range(count)])] + [
                _rows(values[2 + j], [extra[d * step + 1 + j][index] for d in range(count)])
                for j in range(len(elements))]
            check, action, _ = check_output(group, names[index], values, elements, geometries[index], tolerance,
                                            floors, set_size, declared.get(names[index]), discovery_values=pooled)
            if check.representation_source == "found":
                checks[position], actions[names[index]] = check, action
                alternatives.pop(names[index], None)
                drawn.append(f"output {names[index]!r}: its type was found on {count} more random inputs as well "
                             f"(the checked ones hold too few samples to reveal it)")
    margins = {geometries[i].margin for i in checked} - {None}
    if margins and zero_fill:
        notes.append(f"interior comparison: the model reaches {max(margins)} pixel(s) in from the border; "
                     f"those pixels and the zero-filled band are left out")
    return Measurement(outputs=tuple(checks), elements=elements,
                       non_determinism=max((e for e in identity_errors if e == e), default=0.0),
                       forward_passes=passes, geometry=geometries[checked[0]], notes=notes, actions=actions,
                       drawn_notes=drawn, alternatives=alternatives)


#: fresh inputs drawn at most to find one output's type (each costs a pass per element and one more)
MAX_EXTRA_DRAWS = 24


def draws_needed(group: Group, check: TensorCheck, reference: np.ndarray) -> int:
    """How many more inputs like the checked ones would hold enough samples to find the type of an output
    that no named type explains (twice what discovery asks at least); 0 where it needs none, cannot use
    them, or would need over ``MAX_EXTRA_DRAWS``."""
    if (check.passed or not check.representation_source.startswith("auto") or reference.dtype.kind != "f"
            or reference.ndim == 0):
        return 0
    if group.point_cloud:
        dim, have = reference.shape[-1], reference.size // max(reference.shape[-1], 1)
    elif group.field_group is not None and reference.ndim == 2:
        dim, have = reference.shape[1], reference.shape[0]
    else:
        return 0
    if dim < 2 or not too_few_samples(reference if reference.ndim > 1 else reference[None], group.point_cloud):
        return 0
    count = -(-4 * MIN_SAMPLES_PER_CHANNEL * dim // max(have, 1)) - 1
    return count if count <= MAX_EXTRA_DRAWS else 0


def _rows(value: np.ndarray, more: list[np.ndarray]) -> np.ndarray:
    """``value`` and ``more`` outputs of the same shape as one, along the first axis (samples: batch items,
    or points where there is no batch axis; a single vector as one row)."""
    return np.concatenate([v if v.ndim > 1 else v[None] for v in [value, *more]])


def check_output(group: Group, name: str, values: list[np.ndarray], elements: list[Element], geometry: Geometry,
                 tolerance: Tolerance, floors: dict[str, float], set_size: int | None,
                 declared: str | Representation | None,
                 discovery_values: list[np.ndarray] | None = None) -> tuple[TensorCheck, Representation, dict]:
    """One output: its values for the reference, the unrelated input and each transformed input, checked
    under its declared type or every candidate (and the type found from the data, discovery.py); and the
    action it was checked under, and where it fails with no type settled, its check under each named
    candidate (typed_by_layers) (``discovery_values``: the reference and transformed outputs that
    discovery fits on, where more samples than ``values`` hold were drawn)."""
    reference, transformed = values[0], values[2:]
    if reference.ndim == 0 and not group.point_cloud:  # a point cloud's energy is one number per cloud
        raise UsageError(f"output {name!r} is a single number (shape []): eqcheck compares outputs sample by "
                         f"sample; return one value per sample (shape [B] or [B, 1])")
    output_spread = spread(reference, values[1])
    if declared is None:
        candidates = candidate_representations(group, reference.shape, set_size,
                                                1 if group.set_axis is None else group.set_axis)
        source = "auto"
    else:  # a spec, or the model's own type (an escnn module's out_type)
        rep = declared if isinstance(declared, Representation) else parse_type(declared, group, reference.shape)
        reason = rep.fits(group, reference.shape, set_size)
        if reason:
            raise UsageError(f"--output-type {name}={rep.spec}: {reason}")
        candidates, source = [rep], "declared" if isinstance(declared, Representation) else "given"
    scored = []

    def scored_as(rep: Representation) -> tuple:
        results = element_errors(group, rep, elements, reference, transformed, geometry, tolerance,
                                 output_spread, floors)
        scored.append((worst(r.rel_error for r in results), rep, results))
        return scored[-1]

    for rep in candidates:
        scored_as(rep)
    (best_error, best_rep, best_results), source = choose_representation(group, reference.shape, scored, source)
    failed = not all(r.passed for r in best_results)
    if source == "given" and failed:
        # a declared type that fails: what the named types say of the output, for the hint (diagnose.py)
        for rep in candidate_representations(group, reference.shape, set_size,
                                             1 if group.set_axis is None else group.set_axis):
            if rep.spec != best_rep.spec:
                scored_as(rep)
    if failed and reference.dtype.kind == "f":
        # the channel representation found from the data (discovery.py): beside a declared type, listed
        # only (its irreps in another basis, say); else kept where it explains every exact element and
        # beats every named type: what fails then (interpolated angles) is the model's error under that type
        find = discover_irreps if group.point_cloud else discover
        pooled = discovery_values or [reference, *transformed]
        found = find(group, elements, pooled[0], pooled[1:], tolerance.exact)
        if found is not None:
            named = {rep.spec for _, rep, _ in scored}  # a vector that failed as 1x1o is not one elsewhere
            error, _, results = scored_as(found)
            if (source != "given" and all(r.passed for r in results if r.exact) and error < best_error
                    and found.equivalent not in named):
                (best_error, best_rep, best_results), source = scored[-1], "found"
        elif not group.point_cloud and any(not g.exact for g in elements):
            # no type every angle confirms (fits at interpolated angles too loose to name): the type the
            # right angles alone show, listed for the hint (diagnose.py), never chosen
            exact = [i for i, g in enumerate(elements) if g.exact]
            quarter = discover(group, [elements[i] for i in exact], pooled[0], [pooled[1 + i] for i in exact],
                               tolerance.exact)
            if quarter is not None:
                results = element_errors(group, quarter, [elements[i] for i in exact], reference,
                                         [transformed[i] for i in exact], geometry, tolerance, output_spread, floors)
                marked = dataclasses.replace(quarter, spec=quarter.spec + RIGHT_ANGLES_ONLY)
                scored.append((worst(r.rel_error for r in results), marked, results))
    candidates = tuple(Candidate(rep.spec, err) for err, rep, _ in sorted(scored, key=lambda s: s[0]))

    def checked_as(error, rep, results, how) -> TensorCheck:
        return TensorCheck(name=name, shape=tuple(int(d) for d in reference.shape), representation=rep.spec,
                           elements=results, max_rel_error=error, spread=output_spread,
                           passed=all(r.passed for r in results), representation_source=how, candidates=candidates)

    # a failing output whose type nothing settled: each named type's check, for the layers to choose from
    alternatives = {rep.spec: (checked_as(error, rep, results, "layers"), rep) for error, rep, results in scored
                    if not isinstance(rep, FoundAction)} if failed and source in ("auto", "auto-default") else {}
    return checked_as(best_error, best_rep, best_results, source), best_rep, alternatives


#: the mark of a candidate found on the right angles alone (its matrices hold for them, not the others)
RIGHT_ANGLES_ONLY = " (right angles only)"


def typed_by_layers(measurement: Measurement, layers) -> Measurement:
    """A failing output whose type nothing settled (the best-fitting candidate, or the shape's default)
    takes the type its last layer computes from exact inputs (the per-layer analysis), where that layer is
    exact (or states its type: e3nn's irreps_out) and the type is one of the output's candidates: a GrouPy
    network broken in its middle ends in a group convolution, whose output is a regular field though a map
    that barely moves fits it best."""
    outputs, actions = list(measurement.outputs), dict(measurement.actions)
    for index, check in enumerate(outputs):
        alternatives = measurement.alternatives.get(check.name)
        last = next((layer for layer in reversed(layers) if layer.tensor == check.name), None)
        if last is None and len(outputs) == 1 and layers and layers[-1].tensor is None \
                and tuple(layers[-1].shape) == tuple(check.shape):  # a torch graph's rows name no tensor
            last = layers[-1]
        measured = last is not None and last.passed and last.local_rel_error is not None
        if (not alternatives or last is None or last.representation == check.representation
                or not (last.representation_source == "declared"
                        or (measured and last.representation_source in ("auto", "found")))):
            continue
        if last.representation in alternatives:
            outputs[index], actions[check.name] = alternatives[last.representation]
    return dataclasses.replace(measurement, outputs=tuple(outputs), actions=actions)
