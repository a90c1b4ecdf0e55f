"""escnn modules checked directly: an ``EquivariantModule`` takes a ``GeometricTensor``; eqcheck wraps it
so that it takes a plain tensor, and types its input and output with the module's own ``in_type`` and
``out_type``: rho(g) is escnn's ``representation(g)``, and reports name escnn's field types. escnn is not
a dependency: this file is used only when escnn is imported by the model's code."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from eqcheck.actions.fields import mix_channels
from eqcheck.actions.representations import Representation, _spatial_fits
from eqcheck.actions.spatial import apply_spatial
from eqcheck.groups.base import Group
from eqcheck.reps import FieldGroup

#: the input size eqcheck gives an escnn module that declares none: odd, so rotations keep the grid centred
DEFAULT_SIZE = 17


def is_escnn_module(obj) -> bool:
    """True for an escnn ``EquivariantModule`` (only where the model's code imported escnn)."""
    escnn_nn = sys.modules.get("escnn.nn")
    return escnn_nn is not None and isinstance(obj, escnn_nn.EquivariantModule)


def field_group(gspace) -> FieldGroup:
    """The FieldGroup of an escnn 2-D gspace: C_N, D_N with its mirror axis (read from the action of the
    mirror on the plane), or SO(2)."""
    group = gspace.fibergroup
    order = group.order()
    if order < 0:
        return FieldGroup("so2")
    if gspace.flips_order > 0 or group.name.startswith("D"):
        n = order // 2
        mirror = np.asarray(gspace.basespace_action(group.element((1, 0))))
        return FieldGroup("d", n, "cols" if mirror[0, 0] < 0 else "rows")
    return FieldGroup("c", order)


@dataclass(frozen=True)
class EscnnFieldAction(Representation):
    """An escnn ``FieldType`` on channels ``[B, C, H, W]``: its ``representation(g)``, then the spatial action."""

    spec: str = "escnn"
    spatial: bool = True
    field_type: object = field(default=None, hash=False, compare=False)
    group: FieldGroup = field(default=FieldGroup("c", 1))

    def _element(self, element):
        label = self.group.label(element)
        if label is None:
            raise ValueError(f"{element.label} is not an element of {self.group.spec}")
        escnn_group = self.field_type.fibergroup
        if self.group.kind == "so2":
            return escnn_group.element(float(label))
        return escnn_group.element((label.flip, label.rot) if self.group.mirrors else label.rot)

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        matrix = np.asarray(self.field_type.representation(self._element(element)), dtype=np.float64)
        mixed = mix_channels(matrix, x)
        if x.ndim >= 4:
            mixed = apply_spatial(element, mixed, stride=stride, zero_fill=zero_fill, order=order)
        return mixed

    def fits(self, group: Group, shape, set_size=None):
        missing = [e.label for e in group.generator_elements() if self.group.label(e) is None]
        if missing:
            return f"the module's fields are of {self.group.spec}, which has no element {missing[0]} of {group.spec}"
        if len(shape) < 2 or shape[1] != self.field_type.size:
            return f"the module's type has {self.field_type.size} channels, the tensor has shape {list(shape)}"
        return _spatial_fits(group, shape, 4) if len(shape) >= 4 else None


def type_action(field_type) -> EscnnFieldAction:
    """The action of an escnn FieldType, named by escnn's representation names."""
    names = [rep.name for rep in field_type.representations]
    counted = []
    for name in dict.fromkeys(names):
        count = names.count(name)
        counted.append(name if count == 1 else f"{count}*{name}")
    return EscnnFieldAction(spec="escnn:" + "+".join(counted), field_type=field_type,
                            group=field_group(field_type.gspace))


def wrap(module):
    """A torch module taking a plain tensor, the escnn module inside; its input and output types; the
    input shape to generate (the module's own example, else [2, C, 17, 17])."""
    import torch
    from escnn.nn import GeometricTensor

    class GeometricInput(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(GeometricTensor(x, self.inner.in_type))

    wrapped = GeometricInput(module)
    types = {"input": type_action(module.in_type), "output": type_action(module.out_type)}
    shape = (2, module.in_type.size, DEFAULT_SIZE, DEFAULT_SIZE)
    return wrapped, types, shape
