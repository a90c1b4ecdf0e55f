"""The group registry: immutable groups parsed from spec strings, and their testing elements."""
from eqcheck.groups.base import Group, SamplingContext
from eqcheck.groups.element import Element
from eqcheck.groups.point import PointElement, PointGroup
from eqcheck.groups.registry import REGISTRY, parse_group

__all__ = ["Element", "Group", "PointElement", "PointGroup", "REGISTRY", "SamplingContext", "parse_group"]
