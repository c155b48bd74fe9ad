"""The plan's output tables, :attr:`PlanResult.values` and :attr:`PlanResult.skipped`.

Why not ``DataFrame.from_records``: a replicate study builds these tables for
every cohort, and building them column by column gives the same frames
(dtypes included) at a third of the cost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from failpattern.study.analyses._base import ROW_FIELDS

__all__ = ["skipped_frame", "values_frame"]

_FLOATS = frozenset({"value", "ci_lower", "ci_upper", "range_min", "range_max"})
_COUNTS = frozenset({"n_used", "n_excluded"})
_SKIPPED = ("analysis", "ids", "reason")


def values_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of :data:`~failpattern.study.analyses._base.ROW_FIELDS` as a frame: the
    values and limits float, the counts ``Int64`` (``None`` missing), the rest object."""
    data = {}
    for name, col in zip(ROW_FIELDS, zip(*rows) if rows else [()] * len(ROW_FIELDS)):
        if name in _FLOATS:
            data[name] = np.array(col, dtype=np.float64)
        elif name in _COUNTS:
            missing = np.array([x is None for x in col], dtype=bool)
            data[name] = pd.arrays.IntegerArray(
                np.array([0 if x is None else x for x in col], dtype=np.int64), missing)
        else:
            data[name] = np.array(col, dtype=object)
    return pd.DataFrame(data, copy=False)


def skipped_frame(skipped: list[dict]) -> pd.DataFrame:
    """``analysis``, ``ids``, ``reason`` of each skipped computation (object columns)."""
    return pd.DataFrame({k: [s[k] for s in skipped] for k in _SKIPPED}, dtype=object)
