"""rho(g) from the group law: homomorphisms for every group and type, and escnn's own matrices
(tests/data/escnn_representations.json, made by benchmarks/zoo/make_escnn_reps.py with escnn 1.0.11)."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from eqcheck.errors import UsageError
from eqcheck.groups.element import Element
from eqcheck.groups.point import PointElement, PointGroup
from eqcheck.reps import FieldGroup, character_name, decompose, parse_field_group, parse_sum

ESCNN = json.loads((Path(__file__).parents[1] / "data" / "escnn_representations.json").read_text())
GROUPS = {"c4": "c4", "c8": "c8", "d4": "d4", "d4_axis0": "d4:axis=0", "d8": "d8"}
#: escnn's name -> eqcheck's spec
NAMES = {"regular": "regular", "basespace_action": "vector", "quotient[2]": "quotient(2)",
         "quotient[4]": "quotient(4)"}


def eqcheck_spec(escnn_name: str) -> str | None:
    if escnn_name in NAMES:
        return NAMES[escnn_name]
    if escnn_name.startswith("irrep_"):
        return f"irrep({escnn_name[6:]})"
    return None


def escnn_label(group: FieldGroup, value) -> PointElement:
    flip, rot = (value if isinstance(value, list) else (0, value))
    return PointElement(flip, rot, group.n)


CASES = [(g["name"], name) for g in ESCNN["groups"] if g["name"] in GROUPS for name in g["representations"]
         if eqcheck_spec(name) is not None]


@pytest.mark.parametrize("group_name, escnn_name", CASES)
def test_matrices_equal_escnn_representation(group_name, escnn_name) -> None:
    entry = next(g for g in ESCNN["groups"] if g["name"] == group_name)
    group = parse_field_group(GROUPS[group_name])
    rep = parse_sum(eqcheck_spec(escnn_name), group)
    for element, expected in zip(entry["elements"], entry["representations"][escnn_name]):
        label = escnn_label(group, element["value"])
        np.testing.assert_allclose(rep.matrix(label), np.array(expected), atol=1e-7,
                                   err_msg=f"{escnn_name} of {group_name} at {element['str']}")


def test_so2_irreps_and_vector_equal_escnn_at_every_stored_angle() -> None:
    entry = next(g for g in ESCNN["groups"] if g["name"] == "so2")
    group = FieldGroup("so2")
    for escnn_name, matrices in entry["representations"].items():
        rep = parse_sum(eqcheck_spec(escnn_name), group)
        for element, expected in zip(entry["elements"], matrices):
            np.testing.assert_allclose(rep.matrix(float(element["value"])), np.array(expected), atol=1e-7)


@pytest.mark.parametrize("spec, group_spec", [
    ("regular", "c4"), ("regular", "d4"), ("regular", "d4:axis=0"), ("irrep(1)", "c8"), ("irrep(2)", "c8"),
    ("irrep(4)", "c8"), ("irrep(1,1)", "d4"), ("irrep(1,2)", "d4"), ("irrep(0,2)", "d4"), ("irrep(1,0)", "d8"),
    ("irrep(1,3)", "d8"), ("quotient(2)", "c8"), ("vector", "d4"), ("vector", "d4:axis=0"), ("vector", "c4"),
    ("2*regular+irrep(1,1)+trivial", "d4"), ("3*irrep(1)+2*trivial", "c6"), ("irrep(1,2)", "d5"),
])
def test_every_type_is_a_homomorphism_and_orthogonal(spec, group_spec) -> None:
    group = parse_field_group(group_spec)
    rep = parse_sum(spec, group)
    point_group = PointGroup(group.n, group.mirrors)
    for a, b in itertools.product(group.elements(), repeat=2):
        product = rep.matrix(point_group.compose(a, b))
        np.testing.assert_allclose(product, rep.matrix(a) @ rep.matrix(b), atol=1e-12, err_msg=f"{a} {b}")
    for g in group.elements():
        m = rep.matrix(g)
        np.testing.assert_allclose(m @ m.T, np.eye(rep.dim), atol=1e-12)
        perm = rep.permutation(g)
        if perm is not None:
            np.testing.assert_array_equal(np.eye(rep.dim)[perm], m)


def test_a_broken_law_fails_the_homomorphism_check() -> None:
    """The check above can fail: an irrep with the wrong frequency sign breaks it under D4."""
    group = parse_field_group("d4")
    rep = parse_sum("irrep(1,1)", group)
    point_group = PointGroup(4, True)
    wrong = lambda g: rep.matrix(g) if g.flip else rep.matrix(g).T  # noqa: E731
    a, b = PointElement(1, 0, 4), PointElement(0, 1, 4)
    assert not np.allclose(wrong(point_group.compose(a, b)), wrong(a) @ wrong(b))


def test_restriction_of_c8_regular_to_c4_equals_escnn() -> None:
    entry = next(r for r in ESCNN["restrictions"] if r["group"] == "c8")
    rep = parse_sum("regular@c8", FieldGroup("c", 4))
    for k, expected in zip(range(4), entry["matrices"]):  # C4's r^k is C8's r^(2k)
        element = Element(label=f"r{k}", angle=k * math.pi / 2, quarter_turns=k)
        np.testing.assert_allclose(rep.matrix(rep.group.label(element)), np.array(expected), atol=1e-12)


def test_the_mirror_axis_decides_which_element_a_flip_is() -> None:
    flip = Element(label="flip", angle=0.0, quarter_turns=0, flip=True)
    assert parse_field_group("d4").label(flip) == PointElement(1, 0, 4)
    assert parse_field_group("d4:axis=0").label(flip) == PointElement(1, 2, 4)  # f_cols = r^2 m_rows
    assert parse_field_group("c4").label(flip) is None
    assert parse_field_group("c4").label(Element(label="r45", angle=math.pi / 4, quarter_turns=None)) is None


@pytest.mark.parametrize("spec, group_spec, name", [
    ("regular", "c4", "regular"), ("3*regular", "d4", "3*regular"), ("vector", "d4", "irrep(1,1)"),
    ("irrep(1)+trivial+irrep(1)", "c8", "2*irrep(1)+trivial"), ("quotient(2)", "c8", "irrep(2)+irrep(4)+trivial"),
    ("regular@c8", "c4", "2*regular"),
])
def test_characters_name_the_decomposition(spec, group_spec, name) -> None:
    tested = parse_field_group(group_spec)
    rep = parse_sum(spec, tested)
    characters = {}
    for g in tested.elements():
        flip, angle = tested.geometric(g)
        label = rep.group.label(Element(label="g", angle=angle, quarter_turns=None, flip=flip))
        characters[g] = float(np.trace(rep.matrix(label)))
    assert character_name(decompose(characters, tested), tested) == name


@pytest.mark.parametrize("spec", ["2*regular+irrep(1,1)+trivial", "vector", "3*regular@c8", "quotient(2)@c8",
                                  "irrep(1,1)@d4:axis=0"])
def test_specs_print_back(spec) -> None:
    assert parse_sum(spec, FieldGroup("d", 4)).spec == spec


@pytest.mark.parametrize("spec", ["irrep(3)", "regular(1)", "quotient(3)", "spin", "2*", "irrep(1)@q9"])
def test_bad_specs_are_usage_errors(spec) -> None:
    with pytest.raises(UsageError):
        parse_sum(spec, FieldGroup("c", 4))


def _element(group: FieldGroup, value) -> Element:
    """eqcheck's testing element for an escnn element value (flip columns first, then rotate)."""
    if group.kind == "so2":
        angle = float(value)
        flip = False
    else:
        flip, angle = group.geometric(escnn_label(group, value))
    quarter = angle / (math.pi / 2)
    turns = round(quarter) % 4 if abs(quarter - round(quarter)) < 1e-9 else None
    return Element(label="g", angle=angle, quarter_turns=turns, flip=flip)


TRANSFORMS = [(g["name"], role) for g in ESCNN["groups"] if g["name"] in (*GROUPS, "so2")
              for role in g["transforms"]["fields"]]
SPECS = {"trivial": "trivial", "regular": "regular", "irrep_1": "irrep(1)", "irrep_1,1": "irrep(1,1)",
         "basespace_action": "vector"}


@pytest.mark.parametrize("group_name, role", TRANSFORMS)
def test_field_types_transform_geometric_tensors_as_escnn_does(group_name, role) -> None:
    """escnn's ``GeometricTensor.transform(g)`` (spatial and channel parts, both mirror axes) on stored
    tensors, against eqcheck's action for the same element."""
    from eqcheck.actions.parse import parse_representation

    entry = next(g for g in ESCNN["groups"] if g["name"] == group_name)
    group = FieldGroup("so2") if group_name == "so2" else parse_field_group(GROUPS[group_name])
    field = entry["transforms"]["fields"][role]
    x = np.array(field["input"])
    action = parse_representation(f"1*{SPECS[role]}", field_group=group)  # "1*": a field type, not a layout
    for index, expected in zip(entry["transforms"]["element_indices"], field["outputs"]):
        got = action.apply(_element(group, entry["elements"][index]["value"]), x)
        np.testing.assert_allclose(got, np.array(expected), atol=1e-7,
                                   err_msg=f"{role} of {group_name} at {entry['elements'][index]['str']}")
