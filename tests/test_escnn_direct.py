"""escnn modules checked directly (no export, no annotation): typed by their own in_type and out_type.
escnn is not installed beside eqcheck: these run where it is, e.g.
``PYTHONPATH=. .venv-escnn/bin/python -m pytest tests/test_escnn_direct.py`` (THIRD_PARTY.md)."""
from __future__ import annotations

import warnings

import pytest

escnn = pytest.importorskip("escnn")

import torch  # noqa: E402
from escnn import gspaces, nn  # noqa: E402

import eqcheck  # noqa: E402


def steerable(gspace, out_reps):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        field_in = nn.FieldType(gspace, [gspace.trivial_repr])
        hidden = nn.FieldType(gspace, 4 * [gspace.regular_repr])
        return nn.SequentialModule(nn.R2Conv(field_in, hidden, 5, padding=2), nn.ReLU(hidden),
                                   nn.R2Conv(hidden, nn.FieldType(gspace, out_reps), 5, padding=2)).eval()


CASES = [
    ("c4", lambda: gspaces.rot2dOnR2(4), lambda g: [g.irrep(1)] * 2, "p4", "escnn:2*irrep_1"),
    ("d4", lambda: gspaces.flipRot2dOnR2(4), lambda g: [g.trivial_repr, g.irrep(1, 1), g.regular_repr], "p4m",
     "escnn:irrep_0,0+irrep_1,1+regular"),
    ("d4 axis=0", lambda: gspaces.flipRot2dOnR2(4, axis=0.0), lambda g: [g.irrep(1, 1)], "p4m", "escnn:irrep_1,1"),
]


@pytest.mark.parametrize("name, make, reps, group, spec", CASES, ids=[c[0] for c in CASES])
def test_escnn_modules_are_checked_with_their_own_types(name, make, reps, group, spec) -> None:
    gspace = make()
    result = eqcheck.verify(steerable(gspace, reps(gspace)), group)
    assert result.passed and result.run.model_format == "escnn"
    assert result.output.representation == spec and result.output.representation_source == "declared"
    assert result.output.max_rel_error < 1e-5


def test_a_group_the_fields_do_not_have_is_a_usage_error() -> None:
    from eqcheck.errors import UsageError

    gspace = gspaces.rot2dOnR2(4)
    with pytest.raises(UsageError, match="no element"):
        eqcheck.verify(steerable(gspace, [gspace.regular_repr]), "p4m")
