"""Which action each model input carries: declared with ``--act NAME=TYPE``, or inferred from its shape."""
from __future__ import annotations

from eqcheck.actions.euclidean import IrrepsAction, PositionAction
from eqcheck.actions.parse import group_convention, parse_representation, parse_type
from eqcheck.actions.representations import (
    EdgeAction, EdgeIndexAction, GraphAction, ImageAction, Representation, SetAction,
)
from eqcheck.errors import UsageError
from eqcheck.groups.base import Group
from eqcheck.inputs import is_integer_dtype


def split_declaration(option: str, value: str, names: list[str]) -> tuple[str | None, str]:
    """``NAME=TYPE`` split at the ``=`` whose left side is one of ``names`` (a type may hold ``=`` too, as
    ``set:axis=2``); ``(None, TYPE)`` for a bare type."""
    for index, char in enumerate(value):
        if char == "=" and value[:index] in names:
            return value[:index], value[index + 1:]
    head, sep, _ = value.partition("=")
    if sep and ":" not in head:  # NAME=TYPE with a name the model does not have
        raise UsageError(f"{option} names no {'input' if option == '--act' else 'output'} of the model: {head!r} "
                         f"({'inputs' if option == '--act' else 'outputs'}: {', '.join(names)})")
    return None, value


def parse_declarations(values: list[str] | None, input_names: list[str]) -> dict[str, str]:
    """``--act NAME=TYPE`` values (a bare ``TYPE`` names the first input)."""
    declared = {}
    for value in values or []:
        name, spec = split_declaration("--act", value, input_names)
        declared[name or input_names[0]] = spec
    return declared


def infer_input_actions(group: Group, shapes: dict[str, tuple[int, ...]], declared: dict[str, str],
                        dtypes: dict[str, str] | None = None) -> tuple[dict[str, Representation], int | None]:
    """Actions for every input, and the set size (for permutation groups)."""
    names = list(shapes)
    dtypes = dtypes or {}
    positions = positions_input(shapes, dtypes) if group.point_cloud else None
    first = shapes[names[0]]
    set_size = None
    if group.permutes_sets:
        axis = group.set_axis
        if len(first) <= axis:
            raise UsageError(f"{group.spec} permutes axis {axis}, but input {names[0]!r} has shape {list(first)}")
        set_size = first[axis]
        if set_size < 2:
            raise UsageError(f"{group.spec} permutes axis {axis} of input {names[0]!r}, which has size "
                             f"{set_size}: nothing to permute (shape {list(first)})")
    actions: dict[str, Representation] = {}
    for index, name in enumerate(names):
        shape = shapes[name]
        if name in declared:
            given = declared[name]  # a spec, or the model's own type (an escnn module's in_type)
            rep = given if isinstance(given, Representation) else parse_type(given, group, shape)
            reason = rep.fits(group, shape, set_size)
            if reason:
                raise UsageError(f"--act {name}={rep.spec if isinstance(given, Representation) else given}: {reason}")
        elif group.point_cloud:
            rep = _infer_3d(shape, dtypes.get(name, "float32"), name == positions)
        else:
            rep = _infer(group, shape, set_size, index == 0, dtypes.get(name, "float32"))
            if rep is None:
                reason = ImageAction().fits(group, shape) if group.spatial else "no set axis"
                raise UsageError(f"{group.spec} cannot act on input {name!r}: {reason}")
        actions[name] = rep
    if group.point_cloud and all(type(rep) is Representation for rep in actions.values()):
        # nothing would move: the check could not fail
        raise UsageError(f"{group.spec} acts on positions and vectors (a last axis of 3), and no input has one "
                         f"(shapes {', '.join(f'{n} {list(shapes[n])}' for n in names)}): declare one with "
                         f"--act NAME=positions (or an irreps type)")
    counts = {shapes[n][1] for n, rep in actions.items() if isinstance(rep, EdgeIndexAction)}  # [2, E] (fits)
    for name in names:  # values per edge follow their edges, which a node permutation lists in its own order
        shape = shapes[name]
        per_edge = bool(shape) and shape[0] in counts and (shape[0] != set_size or name.startswith("edge"))
        if name not in declared and per_edge and not isinstance(actions[name], EdgeIndexAction):
            actions[name] = EdgeAction()
    return actions, set_size


def _infer(group: Group, shape: tuple[int, ...], set_size: int | None, is_first: bool,
           dtype: str = "float32") -> Representation | None:
    candidates: list[Representation] = []
    if group.permutes_sets and not is_first and is_integer_dtype(dtype):
        # integers are labels, never numbers to permute blindly: an edge index [2, E] names nodes; a batch
        # vector [N] on the set axis follows its nodes; other integers (atom types per edge...) stay
        axis = group.set_axis
        if len(shape) == 2 and shape[0] == 2 and axis == 0:
            return EdgeIndexAction()
        if len(shape) > axis and shape[axis] == set_size:  # labels per element (atom types, a batch vector)
            return SetAction(spec="set" if axis == 1 else f"set:axis={axis}", axis=axis)
        return Representation()
    if group.permutes_sets:
        axis = group.set_axis
        if not is_first:
            candidates.append(GraphAction())
        candidates.append(SetAction(spec="set" if axis == 1 else f"set:axis={axis}", axis=axis))
    elif group.spatial:
        if group.point_group is not None and len(shape) == 5:
            candidates.append(parse_representation("regular:5d", shape, group_convention(group)))
        candidates.append(ImageAction())
    for candidate in candidates:
        if candidate.fits(group, shape, set_size) is None:
            return candidate
    return None if is_first else Representation()


#: argument names that hold positions (a model taking (features3, pos) moves pos, not the first)
POSITION_NAMES = ("pos", "positions", "coords", "coors", "coordinates", "xyz", "r")


def _is_point(shape: tuple[int, ...], dtype: str) -> bool:
    """A float tensor ``[..., 3]``: points or vectors in space."""
    return bool(shape) and shape[-1] == 3 and not is_integer_dtype(dtype) and dtype != "bool"


def positions_input(shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str]) -> str | None:
    """The input that holds positions: a float ``[..., 3]`` named so (``pos``, ``coords``, ...), else the
    first float ``[..., 3]``."""
    points = [n for n, shape in shapes.items() if _is_point(shape, dtypes.get(n, "float32"))]
    return next((n for n in points if n.lower() in POSITION_NAMES), points[0] if points else None)


def _infer_3d(shape: tuple[int, ...], dtype: str, is_positions: bool) -> Representation:
    """A 3-D group's input: positions (``x R^T + t``), other float tensors ``[..., 3]`` vectors (``1o``);
    everything else (node features, atom types, edge indices) is invariant (``--act`` declares otherwise)."""
    if is_positions:
        return PositionAction()
    if _is_point(shape, dtype):
        return IrrepsAction(spec="1x1o")
    return Representation()
