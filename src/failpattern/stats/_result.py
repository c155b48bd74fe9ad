"""Helpers for immutable result objects.

Results are frozen dataclasses; arrays they hold are made read-only so a
result cannot be changed after it is returned. Printing and plotting of
results live in ``failpattern.report`` and ``failpattern.plots``, never here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def frozen(arr) -> np.ndarray:
    """A read-only copy of ``arr`` as a numpy array."""
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


def frozen_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A defensive copy of a result table; callers get a fresh copy each time via properties."""
    return frame.copy(deep=True)
