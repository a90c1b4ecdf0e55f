"""The library entry points: ``verify`` measures and returns a result; ``assert_equivariant`` (from
``eqcheck.testing``) raises."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from eqcheck import __version__
from eqcheck.diagnose import measured_diagnoses, structural_diagnoses
from eqcheck.engine import measure, typed_by_layers
from eqcheck.errors import ModelRunError, UsageError
from eqcheck.groups import Group, parse_group
from eqcheck.guard import guarded
from eqcheck.actions.representations import EdgeIndexAction
from eqcheck.input_actions import infer_input_actions, parse_declarations
from eqcheck.inputs import cast_input, generate, input_bytes, load_input_file, parse_named_shapes, resolve_shapes
from eqcheck.layers import analyze_layers, recording_runner
from eqcheck.models.base import first_line
from eqcheck.models.loader import load_model
from eqcheck.precision import precision_diagnosis, with_checked_weights, with_precision
from eqcheck.result import RunInfo, VerificationResult
from eqcheck.structure import scan
from eqcheck.tolerance import Tolerance
from eqcheck.validation import check_memory, check_run_options

ShapeArg = str | Sequence[int] | Sequence[str] | Mapping[str, Sequence[int]] | None


def _named_shapes(input_shape: ShapeArg) -> dict[str | None, tuple[int, ...]]:
    if input_shape is None:
        return {}
    if isinstance(input_shape, str):
        return parse_named_shapes([input_shape])
    if isinstance(input_shape, Mapping):
        return {name: tuple(int(d) for d in shape) for name, shape in input_shape.items()}
    items = list(input_shape)
    if items and all(isinstance(i, str) for i in items):
        return parse_named_shapes(items)
    return {None: tuple(int(d) for d in items)}


def _given_inputs(inputs, runner) -> dict[str, np.ndarray] | None:
    if inputs is None:
        return None
    if isinstance(inputs, (str, Path)):
        return load_input_file(inputs, runner.inputs)
    if isinstance(inputs, np.ndarray):
        inputs = {runner.inputs[0].name: inputs}
    missing = [spec.name for spec in runner.inputs if spec.name not in inputs]
    if missing:
        raise UsageError(f"inputs: no array for input {missing[0]!r}")
    return {spec.name: cast_input(spec.name, np.asarray(inputs[spec.name]), spec, "the arrays given")
            for spec in runner.inputs}


def _other_inputs(given: dict[str, np.ndarray], rng, smooth_names: set[str],
                  batch_axis: int = 0) -> dict[str, np.ndarray]:
    """Unrelated inputs for the spread: the batch rolled by one, or fresh data of the same scale."""
    other = {}
    for name, x in given.items():
        if x.ndim > batch_axis and x.shape[batch_axis] > 1:
            other[name] = np.roll(x, 1, axis=batch_axis)
        elif x.dtype.kind == "f":
            fresh = generate(x.shape, str(x.dtype), rng, name in smooth_names)
            other[name] = (fresh * (x.std() or 1.0) + x.mean()).astype(x.dtype)
        else:  # integers and booleans: the same values in another order
            other[name] = rng.permutation(x.ravel()).reshape(x.shape)
    return other


def verify(
    model,
    group: str | Group,
    *,
    input_shape: ShapeArg = None,
    inputs=None,
    act: Mapping[str, str] | Sequence[str] | None = None,
    output_type: str | Sequence[str] | Mapping[str, str] = "auto",
    output: str | None = None,
    tol: float | None = None,
    approx_tol: float | None = None,
    seed: int = 0,
    samples: int = 8,
    batch_size: int | None = None,
    dtype: str | None = None,
    device: str = "cpu",
    weights: str | None = None,
    unsafe_load: bool = False,
    allow_tf32: bool = False,
    train_mode: bool = False,
    max_batch: int | None = None,
    per_layer: bool = True,
    layer_types: Mapping[str, str] | Sequence[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    command: str | None = None,
    timeout: float | None = None,
) -> VerificationResult:
    """Check ``model`` (a path, a ``file.py:attr`` spec, an ``nn.Module`` or an ``onnx.ModelProto``) against
    ``group``. A ``file.py:attr`` or ``package.module:attr`` spec imports and runs that code.

    Whatever the model's code raises (``SystemExit`` and ``KeyboardInterrupt`` included) becomes a
    ModelRunError; ``timeout`` seconds (None or 0: no limit) bound the whole check (``eqcheck.guard``).
    """
    start = time.perf_counter()
    check_run_options(samples=samples, tol=tol, approx_tol=approx_tol, seed=seed, batch_size=batch_size,
                      max_batch=max_batch, timeout=timeout)
    group = parse_group(group)
    options = dict(input_shape=input_shape, inputs=inputs, act=act, output_type=output_type, output=output,
                   tol=tol, approx_tol=approx_tol, seed=seed, samples=samples, batch_size=batch_size,
                   max_batch=max_batch, per_layer=per_layer, layer_types=layer_types, progress=progress,
                   command=command)
    with guarded(str(model) if isinstance(model, (str, Path)) else type(model).__name__, timeout) as guard:
        load = dict(device=device, weights=weights, unsafe_load=unsafe_load, allow_tf32=allow_tf32,
                    train_mode=train_mode)
        checked = load_model(model, dtype=dtype, **load)
        result = _check(checked, group, **options)
        # a float32 model failing by a little: checked again in float64, to tell rounding from a broken
        # symmetry; the same network (a factory called again draws other random weights)
        result = with_precision(result, precision_diagnosis(result, lambda: _check(
            with_checked_weights(load_model(_own_copy(model), dtype="float64", **load), checked), group,
            **{**options, "per_layer": False, "progress": None})))
    note = guard.note()
    if note is not None:
        result = replace(result, run=replace(result.run, notes=(*result.run.notes, note)))
    return replace(result, elapsed_s=time.perf_counter() - start)


def _own_copy(model):
    """A model object the float64 re-run may cast (``nn.Module.to`` works in place): a copy of the caller's
    module; paths and specs load afresh."""
    if isinstance(model, (str, Path)):
        return model
    import copy

    try:
        return copy.deepcopy(model)
    except Exception as error:  # noqa: BLE001 (a module that cannot be copied is not re-run)
        raise ModelRunError(f"the model could not be copied ({first_line(error)})") from None


def _check(runner, group: Group, *, input_shape, inputs, act, output_type, output, tol, approx_tol, seed, samples,
           batch_size, max_batch, per_layer, layer_types, progress, command) -> VerificationResult:
    """The check of a loaded model: inputs, the output check, the per-layer analysis, the result."""
    try:
        if not runner.inputs:
            raise UsageError(f"{runner.description} takes no input: there is nothing for the group to act on")
        given = _given_inputs(inputs, runner)
        shapes = ({k: v.shape for k, v in given.items()} if given is not None
                  else resolve_shapes(runner.inputs, _named_shapes(input_shape), batch_size))
        names = [spec.name for spec in runner.inputs]
        dtypes = ({name: str(x.dtype) for name, x in given.items()} if given is not None
                  else {spec.name: spec.dtype for spec in runner.inputs})
        # the reference, the unrelated input and at least one transformed copy, before any is allocated
        check_memory(input_bytes(shapes, dtypes), 3, "the input " + ", ".join(
            f"{name} {list(shape)}" for name, shape in shapes.items()))
        declared = dict(act) if isinstance(act, Mapping) else parse_declarations(list(act or []), names)
        declared = {**{n: t for n, t in runner.declared_types.items() if n in names}, **declared}
        actions, set_size = infer_input_actions(group, shapes, declared, dtypes)
        rng = np.random.default_rng(seed)
        smooth_names = {n for n, rep in actions.items() if rep.spatial and group.needs_smooth_inputs}
        ranges = {name: runner.index_range(name) if np.dtype(dtypes[name]).kind in "iu" else None for name in names}
        for name, rep in actions.items():  # an edge index names nodes: its values lie below the node count
            if isinstance(rep, EdgeIndexAction) and ranges[name] is None:
                ranges[name] = set_size

        def generated(source: np.random.Generator = rng) -> dict[str, np.ndarray]:
            return {name: _generate(name, shapes[name], dtypes[name], source, name in smooth_names, ranges[name])
                    for name in names}

        # more inputs like the generated ones, where an output's type needs more samples than they hold;
        # from their own stream, so that drawing them changes nothing else
        extra_rng = np.random.default_rng([seed, 1])

        feeds = given if given is not None else generated()
        for name, rep in actions.items():  # an edge index names nodes: below the node count, never negative
            values = feeds[name]
            if isinstance(rep, EdgeIndexAction) and values.size and (values.min() < 0 or values.max() >= set_size):
                raise UsageError(f"input {name!r} is an edge index, but holds node {int(values.min())} .. "
                                 f"{int(values.max())} of a graph of {set_size} nodes")
        if group.set_axis == 0:
            # the set is axis 0, so that is no batch axis: stacking inputs there would make one longer set
            runner.batch_dynamic = False
            runner.notes.append("the set axis is axis 0: transformed inputs run one at a time, not stacked")
        batched = group.set_axis != 0
        if group.point_cloud and not any(len(shapes[n]) >= 3 for n, rep in actions.items() if rep.spec != "invariant"):
            batched = False
            # one point cloud ([N, 3]): stacking inputs would make one cloud of their points
            runner.batch_dynamic = False
            runner.notes.append("the inputs have no batch axis (one point cloud): each transformed copy runs alone")
        # without a batch axis every run holds one input, and each captured tensor is compared whole
        batch_axis = 1 if group.set_axis == 0 else 0
        other = _other_inputs(feeds, rng, smooth_names, batch_axis) if given is not None else generated()
        model_dtype = next((d for d in dtypes.values() if d.startswith("float")), "float32")
        tolerance = Tolerance.for_dtype(model_dtype, tol, approx_tol)
        # where the layers are analysed, the output check's passes are the analysis's first captures
        checked, tracer = recording_runner(runner) if per_layer else (runner, None)
        try:
            measurement = measure(checked, group, feeds, other, actions, set_size=set_size, tolerance=tolerance,
                                  rng=rng, samples=samples, output_type=output_type, output_name=output,
                                  max_batch=max_batch, progress=progress,
                                  draw=(lambda: generated(extra_rng)) if given is None else None)
            layers, first_failing, layer_causes = (), None, []
            if per_layer:  # per-layer table, first failing layer, causes attached to layers (eqcheck.layers)
                layers, first_failing, layer_causes = analyze_layers(
                    runner, group, feeds, other, actions, measurement.elements, tolerance, measurement.geometry,
                    set_size=set_size, layer_types=layer_types, max_batch=max_batch, progress=progress,
                    batched=batched, tracer=tracer, output_actions=measurement.actions)
                measurement = typed_by_layers(measurement, layers)
        finally:
            if tracer is not None:
                tracer.close()
        diagnoses = measured_diagnoses(group, measurement, tolerance, runner.device)
        passed = all(o.passed for o in measurement.outputs)
        if not passed:
            diagnoses = (layer_causes or structural_diagnoses(group, scan(runner, feeds, shapes), True)) + diagnoses
        else:  # a passing model has no failing layer: what a layer showed on its own is kept as a note
            first_failing = None
            diagnoses = [replace(d, severity="note") for d in layer_causes] + diagnoses
        run = RunInfo(
            model=runner.description,
            model_format=runner.format,
            group=group.spec,
            inputs={name: tuple(int(d) for d in shape) for name, shape in shapes.items()},
            input_actions={name: rep.spec for name, rep in actions.items()},
            input_source="file" if isinstance(inputs, (str, Path)) else ("given" if given is not None else
                                                                          "generated"),
            dtype=model_dtype,
            seed=seed,
            device=runner.device,
            samples=samples,
            forward_passes=measurement.forward_passes,
            eqcheck_version=__version__,
            command=command,
            notes=tuple(runner.notes),
        )
    finally:
        runner.close()
    return VerificationResult(
        run=run,
        tolerance=tolerance.exact,
        approximate_tolerance=tolerance.approximate,
        outputs=measurement.outputs,
        passed=passed,
        non_determinism=measurement.non_determinism,
        diagnoses=tuple(diagnoses),
        layers=layers,
        first_failing_layer=first_failing,
    )


def _generate(name: str, shape, dtype: str, rng, smooth_spatial: bool, index_range: int | None) -> np.ndarray:
    try:
        return generate(shape, dtype, rng, smooth_spatial, index_range)
    except UsageError as error:
        raise UsageError(f"input {name!r}: {error.message}") from None


from eqcheck.testing import assert_equivariant  # noqa: E402, F401  (re-exported: one function: eqcheck.testing's)
