"""Known causes attached to the layers where they apply (CONVENTIONS section 5), one line each."""
from __future__ import annotations

from eqcheck.actions.representations import ImageAction, RegularFieldAction, Representation
from eqcheck.groups.base import Group
from eqcheck.layers.layer_actions import ChannelPermutationAction
from eqcheck.result import Diagnosis, LayerResult
from eqcheck.structure import WindowOp
from eqcheck.tolerance import Tolerance

#: layers whose weights nothing constrains: equivariant to rotations only if their weights happen to be
PLAIN_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d",
             "Linear", "LazyConv2d", "LazyLinear"}
#: ops that add or scale by a tensor: with a constant operand, a positional embedding
MIXING_OPS = {"Add", "Sub", "Mul", "add", "sub", "mul", "iadd"}
REDUCED = {"float16": "float16", "bfloat16": "bfloat16"}


def _describe(rep: Representation | None) -> str:
    if isinstance(rep, (RegularFieldAction, ChannelPermutationAction)):
        return f"group feature maps ({rep.spec})"
    if isinstance(rep, ImageAction):
        return "an image"
    return rep.spec if rep is not None else "its input"


def window_causes(group: Group, name: str, ops: list[WindowOp]) -> list[Diagnosis]:
    """Grid alignment of a strided or padded op: why rotations about the centre stop being exact."""
    found = []
    for op in ops:
        for reason in op.misalignment():
            code = "asymmetric-padding" if reason.startswith("asymmetric") else "stride-alignment"
            found.append(Diagnosis(code, f"{name} ({op.op}): {reason}; the sampling grid is no longer centred, "
                                         f"so rotations about the centre are not exact", layer=name))
        strided = [axis for axis in (0, 1) if op.stride[axis] > 1 and
                   (op.size[axis] + op.pad_begin[axis] + op.pad_end[axis] - op.kernel[axis]) % op.stride[axis]]
        if any(op.size[axis] % 2 == 0 for axis in strided):
            found.append(Diagnosis("even-size", f"{name} ({op.op}): even input size {op.size[0]}x{op.size[1]} "
                                                f"under stride {op.stride[0]}: p4/p4m need odd sizes at every "
                                                f"strided layer (or padding that makes (N + 2p - k) mod s == 0)",
                                   layer=name))
        if any(k % 2 == 0 for k in op.kernel) and (op.misalignment() or op.pad_begin != op.pad_end):
            found.append(Diagnosis("even-kernel", f"{name} ({op.op}): even kernel {op.kernel[0]}x{op.kernel[1]} "
                                                  f"has its centre between pixels; it keeps the grid centred only "
                                                  f"with symmetric padding and (N + 2p - k) mod s == 0", layer=name))
    if group.translates and not group.rotates and not group.zero_fill:
        for op in ops:
            if any(op.pad_begin) or any(op.pad_end):
                found.append(Diagnosis("zero-padding", f"{name} ({op.op}): zero padding "
                                                       f"{list(op.pad_begin)}: circular shifts bring the border in; "
                                                       f"use padding_mode='circular' or translation:interior",
                                       layer=name))
    return found


def layer_causes(group: Group, row: LayerResult, op: str, input_action: Representation | None,
                 constants: tuple[str, ...], nondeterminism: float, dtype: str, ops: list[WindowOp],
                 tolerance: Tolerance, glue: bool = False) -> list[Diagnosis]:
    """Every known cause that applies to one failing layer."""
    name = row.name
    found = window_causes(group, name, ops) if group.spatial else []
    if nondeterminism > tolerance.exact:
        found.append(Diagnosis("non-determinism", f"{name} ({op}) gives different outputs for the same input "
                                                  f"(rel {nondeterminism:.1e}): dropout in train mode or a random "
                                                  f"op", layer=name))
    if group.permutes_sets and constants and (op in MIXING_OPS or glue):
        found.append(Diagnosis("positional-embedding", f"{name} ({op}) combines the set with "
                                                       f"{', '.join(constants)}, which does not move with it: a "
                                                       f"positional embedding breaks permutation equivariance",
                               layer=name))
    plain = (op in PLAIN_OPS and group.spatial and group.name != "translation"
             and isinstance(input_action, (ImageAction, RegularFieldAction, ChannelPermutationAction)))
    if plain and not any(d.code in ("stride-alignment", "asymmetric-padding") for d in found):
        between = "between group layers " if not isinstance(input_action, ImageAction) else ""
        found.append(Diagnosis("plain-layer", f"{name} ({op}) is a plain layer {between}on "
                                              f"{_describe(input_action)}: its weights are not tied by "
                                              f"{group.spec}, so it mixes the transformed channels arbitrarily",
                               layer=name))
    if dtype in REDUCED:
        found.append(Diagnosis("precision", f"{name} ({op}) computes in {dtype}: rounding alone reaches about "
                                            f"1e-3", layer=name))
    if not found:
        found.append(Diagnosis("layer", f"{name} ({op}) is not equivariant on its own (local rel error "
                                        f"{row.local_rel_error if row.local_rel_error is not None else row.max_rel_error:.2e}) "
                                        f"with input {_describe(input_action)}", layer=name))
    return found
