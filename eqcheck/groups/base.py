"""The interface every group of the registry implements, and what sampling needs to know."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from eqcheck.groups.element import Element
from eqcheck.groups.point import PointGroup


@dataclass(frozen=True)
class SamplingContext:
    """Facts about the run that choosing testing elements depends on."""

    rng: np.random.Generator
    samples: int = 8
    set_size: int | None = None
    #: the sizes of the axes the group moves (the last two of an image; translations: as many as the input has)
    spatial_size: tuple[int, ...] | None = None
    stride: int = 1


class Group(ABC):
    """An immutable group: parsed from a spec string, printed back as that spec."""

    name: str = ""
    summary: str = ""
    #: the finite point group whose regular representation labels channels, if any
    point_group: PointGroup | None = None
    #: True when elements act on the two spatial axes of an image
    spatial: bool = False
    #: True when elements permute a set axis
    permutes_sets: bool = False
    #: True when elements rotate (or mirror) the last two axes about the centre: they must be square
    rotates: bool = False
    #: True when elements translate: the model's total stride (and an interior margin) is probed first
    translates: bool = False
    #: True when translations fill with zeros and compare the interior only (else they roll)
    zero_fill: bool = False
    #: pixels left out at each border in interior comparisons; None: probed from the model
    margin: int | None = None
    #: the spline order of interpolated rotations
    interpolation_order: int = 3
    #: the element order a plain ``regular`` type means (escnn's, or GrouPy's for ``p4m:groupy``)
    convention: str = "escnn"
    #: the axis of the set a permutation group permutes (None: no set)
    set_axis: int | None = None
    #: True when elements act on 3-D coordinates: positions, vectors and O(3) irreps on a tensor's last axis
    point_cloud: bool = False

    @property
    def samples_elements(self) -> bool:
        """True where ``--samples`` elements are drawn (continuous groups, translations, permutations); False
        where every element is tested."""
        return True

    @property
    @abstractmethod
    def spec(self) -> str:
        """The canonical spec string; ``parse_group(g.spec) == g``."""

    def __str__(self) -> str:
        return self.spec

    @abstractmethod
    def testing_elements(self, ctx: SamplingContext) -> list[Element]:
        """The elements a check uses, identity first."""

    @abstractmethod
    def compose(self, a: Element, b: Element) -> Element:
        """``a * b``: act with b first, then with a."""

    @abstractmethod
    def inverse(self, a: Element) -> Element:
        """The element that undoes ``a``."""

    @abstractmethod
    def identity(self, ctx: SamplingContext | None = None) -> Element:
        """The neutral element."""

    @property
    def field_group(self):
        """The group (``eqcheck.reps.FieldGroup``) whose representations act on the channels of this group's
        fields, or None where channels are not acted on (translations, permutations)."""
        return None

    def generator_elements(self) -> list[Element]:
        """Elements that generate the part of the group acting on channels (none by default)."""
        return []

    def spatial_rank(self, ndim: int) -> int:
        """How many trailing axes of a batch-first input of rank ``ndim`` the group moves: rotations and
        mirrors the last two (an image's); translations override (signals, voxel grids)."""
        return 2

    @property
    def needs_smooth_inputs(self) -> bool:
        """True when some elements interpolate, so inputs must be band-limited."""
        return False
