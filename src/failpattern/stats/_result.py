"""Helpers for immutable result objects.

Results are frozen dataclasses; arrays they hold are made read-only so a
result cannot be changed after it is returned. Printing and plotting of
results live in ``failpattern.report`` and ``failpattern.plots``, never here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri


def frozen(arr) -> np.ndarray:
    """A read-only copy of ``arr`` as a numpy array."""
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


def sealed(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself made read-only: for an array just computed that nothing else holds
    (:func:`frozen` copies, for arrays that may be shared)."""
    arr.setflags(write=False)
    return arr


def wald_table(coef: np.ndarray, se: np.ndarray, names, alpha: float, ratio: str) -> pd.DataFrame:
    """Per-coefficient Wald table: coef, se, ``ratio``, its limits, z, two-sided p.

    ``ratio`` names the exponentiated coefficient ("hr" for Cox, "shr" for Fine-Gray).
    """
    z = coef / se
    half = float(ndtri(1.0 - alpha / 2.0)) * se
    return pd.DataFrame({
        "coef": coef, "se": se, ratio: np.exp(coef),
        f"{ratio}_lower": np.exp(coef - half), f"{ratio}_upper": np.exp(coef + half),
        "z": z, "p": 2.0 * ndtr(-np.abs(z)),
    }, index=pd.Index(list(names), name="covariate"))
