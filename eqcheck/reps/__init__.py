"""Representations rho(g) of the groups fields are defined on, derived from the group law (one place):
``fieldgroup.py`` (C_N, D_N and its mirror axis, SO(2), and which element a tested one is), ``irreps.py``
(trivial, irreps, regular, quotient, vector), ``sum.py`` (direct sums, their specs, decomposition by
characters). A new representation is one class in ``irreps.py`` and one name in ``make_rep``."""
from eqcheck.reps.fieldgroup import FieldGroup, parse_field_group
from eqcheck.reps.irreps import Rep, irreps, make_rep
from eqcheck.reps.sum import DirectSum, character_name, decompose, parse_sum

__all__ = ["DirectSum", "FieldGroup", "Rep", "character_name", "decompose", "irreps", "make_rep",
           "parse_field_group", "parse_sum"]
