"""The projections `eventvault projections --module tests.projections.cli_module` loads."""

from __future__ import annotations

from .model import Counter, Picky, Totals

PROJECTIONS = [Totals(), Counter, Picky()]
NOT_A_LIST = "totals"
