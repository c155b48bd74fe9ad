"""Cohorts failpattern generated itself: cast to the canonical dtypes, without the file checks.

Why this module exists: :func:`~failpattern.cohort.load_cohort` is for files people
wrote — every cell is checked against the format and every problem reported. A
cohort the simulator has just generated is correct by construction (its
tests load every shipped cohort through the loader), and a replicate study
builds thousands of them: checking each again costs as much as a fifth of the
analysis plan. :func:`trusted_cohort` gives the same :class:`Cohort` the loader
would give such a frame — the same columns in the same canonical dtypes
(``string`` ids, ``Float64`` months and numbers, ``Int64`` flags and counts,
categories in the format's order, ``datetime64`` dates) — by casting only.
``tests/test_trusted_cohort.py`` checks that it equals the loader's cohort on
simulated cohorts of both modes. It is not for files: a frame that breaks the
format gives a wrong cohort or an arbitrary error, not a list of problems.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from failpattern.cohort.dates import DAYS_PER_MONTH
from failpattern.cohort.load import _frame as frame_of
from failpattern.cohort.model import Cohort
from failpattern.cohort.schema import ALL_COLUMNS

__all__ = ["trusted_cohort"]

_FLOAT = ("months", "number")
_INT = ("binary", "count")
_SPEC = {c.name: c for c in ALL_COLUMNS}


def _cast(values: pd.Series, kind: str, allowed: tuple[str, ...]):
    """One column in the loader's canonical dtype, built from numpy arrays (no per-cell work)."""
    if kind in _FLOAT or kind in _INT:
        raw = values.to_numpy(dtype=np.float64, na_value=np.nan)
        mask = np.isnan(raw)
        if kind in _FLOAT:
            return pd.arrays.FloatingArray(np.where(mask, 0.0, raw), mask)
        return pd.arrays.IntegerArray(np.where(mask, 0, raw).astype(np.int64), mask)
    if kind == "category":
        codes = pd.Index(list(allowed)).get_indexer(values.to_numpy(dtype=object, na_value=None))
        return pd.Categorical.from_codes(codes, categories=list(allowed))
    if kind == "date":
        text = values.to_numpy(dtype=object, na_value=None)
        days = np.array([np.datetime64("NaT") if v is None else v for v in text], dtype="datetime64[D]")
        return days.astype("datetime64[ns]")
    return pd.array(values.to_numpy(dtype=object, na_value=None), dtype="string")


def trusted_cohort(frame: pd.DataFrame, *, source: str = "<DataFrame>",
                   days_per_month: float = DAYS_PER_MONTH) -> Cohort:
    """A :class:`Cohort` from a frame failpattern generated, cast to the canonical dtypes without checks.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns of the cohort format only (as :func:`failpattern.simulate.simulate`
        returns them, possibly with the exposure-timing columns of
        :data:`~failpattern.cohort.schema.TIMING_COLUMNS`), values already in the format:
        category values spelt as the format spells them, dates as ``YYYY-MM-DD`` text,
        no column to derive (a timing's months given with its date). The columns come
        out in the format's order, as the loader gives them.
    source : str
        How the cohort is named (``Cohort.source``).
    days_per_month : float
        Recorded on the cohort (nothing is derived from dates here).

    Returns
    -------
    Cohort
        Equal to ``load_cohort(frame)`` for such a frame.

    Raises
    ------
    KeyError
        A column that is not in the cohort format (use :func:`load_cohort` for
        anything that did not come from failpattern).
    """
    unknown = [name for name in frame.columns if name not in _SPEC]
    if unknown:
        raise KeyError(f"not columns of the cohort format: {', '.join(map(str, unknown))} (use load_cohort)")
    # the loader's column order (the format's); a generated frame is in it already
    names = [c.name for c in ALL_COLUMNS if c.name in frame.columns]
    data = {}
    for name in names:
        spec = _SPEC[name]
        data[name] = _cast(frame[name], spec.kind, spec.allowed)
    out = frame_of(data, len(frame))
    lines = tuple(np.arange(2, len(frame) + 2).tolist())
    return Cohort(out, source, lines, tuple(names), (), (), (), float(days_per_month))
