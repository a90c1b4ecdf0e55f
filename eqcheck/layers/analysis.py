"""Per-layer analysis, the one entry point: a row per layer, the first failing layer, and its causes."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from eqcheck.actions.representations import Representation
from eqcheck.compare import Geometry
from eqcheck.errors import ModelLoadError, UsageError
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.layers.causes import layer_causes
from eqcheck.layers.glue import describe_glue
from eqcheck.engine import transform_feeds
from eqcheck.layers.propagate import LAYER_MEMORY_BUDGET, Analysed, LayerAnalysis
from eqcheck.layers.trace import LayerTracer, Site
from eqcheck.models.base import ModelRunner, first_line
from eqcheck.result import Diagnosis, LayerResult
from eqcheck.structure import scan
from eqcheck.tolerance import Tolerance

Row = tuple[Site, LayerResult, Analysed]


def parse_layer_types(values: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """``--layer-type NAME=TYPE`` values (NAME may be a glob: ``'/conv4*'``)."""
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return dict(values)
    parsed = {}
    for value in values:
        name, sep, spec = value.partition("=")  # a type may hold "=" (set:axis=2), a layer name does not
        if not sep or not name or not spec:
            raise UsageError(f"--layer-type {value!r}: expected NAME=TYPE")
        parsed[name] = spec
    return parsed


def analyze_layers(
    runner: ModelRunner,
    group: Group,
    feeds: dict[str, np.ndarray],
    other_feeds: dict[str, np.ndarray],
    input_actions: Mapping[str, Representation],
    elements: list[Element],
    tolerance: Tolerance,
    geometry: Geometry,
    *,
    set_size: int | None = None,
    layer_types: Mapping[str, str] | Sequence[str] | None = None,
    max_batch: int | None = None,
    memory_budget: int = LAYER_MEMORY_BUDGET,
    progress: Callable[[str, int, int], None] | None = None,
    batched: bool = True,
    output_actions: Mapping[str, Representation] | None = None,
    tracer: LayerTracer | None = None,
) -> tuple[tuple[LayerResult, ...], str | None, list[Diagnosis]]:
    """Rows in execution order, the name of the first layer whose local error fails (None if none),
    and the known causes attached to failing layers (``tracer``: the one the output check ran through,
    recording_runner). Never raises for a model it cannot analyse: a one-line notice goes to
    ``runner.notes`` instead."""
    types = parse_layer_types(layer_types)
    try:
        tracer = tracer or make_tracer(runner, feeds)
    except Exception as error:
        return _stopped(runner, error)
    if tracer is None:
        return (), None, []
    exact = [e for e in elements if e.exact]
    if any(not e.is_identity for e in exact) and len(exact) < len(elements):
        runner.notes.append(f"per-layer errors use the {len(exact)} elements that act exactly on the grid; "
                            f"interpolated rotations of feature maps are checked on the output only")
        elements = exact
    first = next((x for x in feeds.values() if x.ndim >= 3), None)
    report = (lambda done, total: progress("per-layer analysis", done, total)) if progress else None

    def analysed(tracer) -> LayerAnalysis:
        analysis = LayerAnalysis(tracer, group, elements, tolerance, geometry, set_size, input_actions, types,
                                 first.shape[-1] if first is not None else None, batched, output_actions)
        analysis.run(feeds, items, max_batch, memory_budget, report)
        return analysis

    try:
        items = generate_items(group, elements, feeds, other_feeds, input_actions, geometry)
        try:
            analysis = analysed(tracer)
        except (UsageError, MemoryError):
            raise
        except Exception:
            from eqcheck.layers.capture_graph import GraphTracer

            if not (isinstance(tracer, GraphTracer) and tracer.from_python):
                raise
            # a traced graph that does not run as the model does (fx drops `with torch.enable_grad()`,
            # and the like): the same layers by hooks
            from eqcheck.layers.capture_torch import TorchTracer

            tracer.close()
            tracer = TorchTracer(runner)
            analysis = analysed(tracer)
        runner.notes.extend(analysis.notes)
        rows = build_rows(analysis, tracer)
        unknown = [row.name for _, row, _ in rows if row.representation_source == "undetermined"]
        if unknown:
            runner.notes.append(
                f"per-layer: no action eqcheck knows explains {len(unknown)} tensor(s) (first: {unknown[0]}); "
                f"their layers are not judged: declare one with --layer-type '{unknown[0]}=TYPE'")
        failing = first_failing(rows)
        causes = diagnose(runner, group, rows, feeds, tolerance, tracer) if failing else []
        if failing is None and unknown and rows and not rows[-1][1].cumulative_passed:
            # the error shows at the end, but only after tensors no known action explains: the first of
            # them is where it can no longer be followed, so it is named, and why
            first = next(row for _, row, _ in rows if row.representation_source == "undetermined")
            failing = first.name
            causes = [Diagnosis("undetermined", f"{first.name} ({first.op}) gives a tensor no action eqcheck knows "
                                                f"explains, and the error shows after it: it (or a layer after it) "
                                                f"breaks equivariance; declare its type with --layer-type "
                                                f"'{first.name}=TYPE' to follow it further", layer=first.name)]
    except UsageError:
        raise
    except Exception as error:  # the per-layer table only adds to the verdict: never let it stop a check
        return _stopped(runner, error)
    finally:
        tracer.close()
    return tuple(row for _, row, _ in rows), failing, causes


def _stopped(runner: ModelRunner, error: Exception) -> tuple[tuple[LayerResult, ...], None, list[Diagnosis]]:
    if os.environ.get("EQCHECK_DEBUG"):
        raise error
    runner.notes.append(f"per-layer analysis stopped: {first_line(error)}")
    return (), None, []


def _row(site: Site, a: Analysed, name: str | None = None, op: str | None = None) -> LayerResult:
    choice, cumulative = a.choice, a.cumulative or a.local
    if a.undetermined:
        representation, source = "undetermined", "undetermined"
    elif a.absorbed:
        representation, source = "none", "block"
    else:
        representation, source = choice.rep.spec, choice.source
    return LayerResult(
        name=name or site.name, op=op or site.op, shape=tuple(int(d) for d in a.view.raw_ref.shape),
        representation=representation, max_rel_error=cumulative.worst,
        local_rel_error=None if a.mixed or a.undetermined else a.local.worst,
        passed=a.local.passed or a.absorbed or a.mixed or a.undetermined,
        tensor=site.tensor, representation_source=source,
        representation_margin=None if a.absorbed or a.undetermined else choice.margin,
        cumulative_passed=cumulative.passed, element_errors=cumulative.errors)


def build_rows(analysis: LayerAnalysis, tracer) -> list[Row]:
    """Layers in execution order; code between modules (torch) gets a row where it makes an error."""
    rows: list[Row] = [(s, _row(s, analysis.analysed[s.output]), analysis.analysed[s.output])
                       for s in tracer.sites if s.output in analysis.analysed]
    calls = getattr(tracer, "calls", [])
    for key, a in analysis.glue.items():
        if a.local.passed or a.absorbed:
            continue
        site = a.site
        start = site.span[0] if site.span else None
        parent = (max((c for c in calls if c.enter < start < c.exit), key=lambda c: c.enter, default=None)
                  if start is not None else None)
        name, op, constants = describe_glue(tracer.module, parent.name if parent else "", site.node,
                                            tracer.output_keys.get(key))
        glue = Site(name=name, op=op, output=key, glue=True, constants=constants,
                    span=(start - 0.5, start - 0.5) if start is not None else None)
        rows.append((glue, _row(glue, a, name, op), a))
    return sorted(rows, key=lambda r: r[0].span[0] if r[0].span else float("inf"))


def first_failing(rows: list[Row]) -> str | None:
    """The first layer whose local error fails, in execution order; inside a failing module that is not
    declared (eqcheck.nn), the first failing layer it contains, since that is the one that breaks it."""
    failing = [(s, row) for s, row, _ in rows if not row.passed]
    if not failing:
        return None
    site, row = failing[0]
    while site.span and not site.glue and site.declared_out is None:
        inner = [(s, r) for s, r in failing if s is not site and s.span
                 and site.span[0] < s.span[0] and s.span[1] <= site.span[1]]
        if not inner:
            break
        site, row = inner[0]
    return row.name


def diagnose(runner: ModelRunner, group: Group, rows: list[Row], feeds, tolerance: Tolerance,
             tracer: LayerTracer) -> list[Diagnosis]:
    """Causes for every layer that fails on its own, window ops read from the tracer's parsed model and
    the shapes its reference capture gave."""
    failing = {site.node for site, row, _ in rows if not row.passed and site.node}
    shapes = {k: tuple(np.shape(v)) for k, v in tracer.ref.items()}
    ops = (scan(runner, feeds, {k: v.shape for k, v in feeds.items()}, tracer.scan_model, failing, shapes)
           if failing else [])
    found: list[tuple[str, Diagnosis]] = []
    for site, row, a in rows:
        if row.passed:
            continue
        mine = [op for op in ops if op.name == site.node]
        found += [(f"{row.name} ({site.op})", d) for d in
                  layer_causes(group, row, site.op, a.input_action, site.constants, a.local.identity,
                               str(a.view.raw_ref.dtype), mine, tolerance, glue=site.glue)]
    return merge_causes(found)


def merge_causes(found: list[tuple[str, Diagnosis]]) -> list[Diagnosis]:
    """One line per cause: layers with the same cause in the same words (a plain CNN's every conv) are
    listed in one diagnosis, attached to the first of them. ``found``: (the message's subject, cause)."""
    merged: dict[tuple[str, str], list[tuple[str, Diagnosis]]] = {}
    for subject, diagnosis in found:
        rest = diagnosis.message[len(subject):] if diagnosis.message.startswith(subject) else diagnosis.message
        merged.setdefault((diagnosis.code, rest), []).append((subject, diagnosis))
    causes = []
    for (_, rest), members in merged.items():
        first = members[0][1]
        if len(members) == 1 or rest == first.message:
            causes += [d for _, d in members]
            continue
        subjects = [subject for subject, _ in members]
        listed = ", ".join(subjects[:-1]) + f" and {subjects[-1]}"
        causes.append(Diagnosis(first.code, f"each of {listed}{rest}", first.severity, first.layer))
    return causes


def recording_runner(runner: ModelRunner) -> tuple[ModelRunner, LayerTracer | None]:
    """What the output check runs where the layers are analysed after it: for an ONNX model with large
    weights, the runner whose passes are the analysis's first captures (capture_onnx.RecordingRunner),
    and its tracer; else the runner itself (and the tracer, or None: analyze_layers makes one, and says
    why where it cannot)."""
    if runner.format != "onnx":
        return runner, None
    from eqcheck.layers.capture_onnx import OnnxTracer, RecordingRunner

    try:
        tracer = OnnxTracer(runner)
    except Exception:
        return runner, None
    return (RecordingRunner(runner, tracer) if tracer.large else runner), tracer


def make_tracer(runner: ModelRunner, feeds: dict[str, np.ndarray]) -> LayerTracer | None:
    """The capture for this kind of model, or None (with a notice in the run notes) when hooks cannot work.
    A TorchScript model (no hooks, no fx) is captured through its ONNX export, made with ``feeds``."""
    if runner.format == "onnx":
        from eqcheck.layers.capture_onnx import OnnxTracer

        return OnnxTracer(runner)
    if runner.format == "torchscript":
        from eqcheck.layers.capture_onnx import OnnxTracer
        from eqcheck.models.torchscript_onnx import exported_to_onnx

        try:
            exported = exported_to_onnx(runner, feeds)
        except ModelLoadError as error:
            runner.notes.append(f"per-layer analysis skipped: TorchScript runs no forward hooks, and {error}; "
                                f"only the output was checked (export to .pt2 or ONNX for the per-layer table)")
            return None
        runner.notes.append("per-layer table read from the TorchScript model's ONNX export (torch.onnx, "
                            "dynamo=False); the output check ran the TorchScript model")
        return OnnxTracer(exported)
    import torch

    if not isinstance(runner.module, torch.nn.Module):
        runner.notes.append("per-layer analysis skipped: the model is not an nn.Module")
        return None
    from eqcheck.layers.capture_graph import GraphTracer, trace_module

    if isinstance(runner.module, torch.fx.GraphModule):  # a .pt2: its own exported graph
        return GraphTracer(runner, runner.module)
    traced = trace_module(runner.module)
    if traced is not None:
        return GraphTracer(runner, traced, runner.module)
    from eqcheck.layers.capture_torch import TorchTracer

    runner.notes.append("per-layer analysis by module hooks: the model's forward could not be traced "
                        "(torch.fx), so code between modules is seen only where it makes an error")
    return TorchTracer(runner)


def generate_items(group, elements, feeds, other_feeds, input_actions, geometry) -> list[dict[str, np.ndarray]]:
    """The input transformed by each element; first the unrelated input where interpolated elements need
    the spread."""
    other = [other_feeds] if any(not e.exact for e in elements) else []
    return other + [transform_feeds(group, g, feeds, input_actions, geometry.order, geometry.zero_fill)
                    for g in elements]
