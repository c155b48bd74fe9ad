"""Small linear-algebra helpers shared by the Newton-Raphson fitters (Cox, Fine-Gray)."""

from __future__ import annotations

import numpy as np

_TRIU: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def triangle(p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper-triangle indices of a ``p x p`` matrix and, for each of its ``p * p`` cells,
    the position of that cell (or its mirror) in the upper-triangle vector (cached).

    The fitters accumulate only the ``p (p + 1) / 2`` distinct products of a symmetric
    information matrix and expand them with the third array.
    """
    out = _TRIU.get(p)
    if out is None:
        iu = np.triu_indices(p)
        full = np.empty((p, p), dtype=np.intp)
        full[iu] = np.arange(iu[0].size)
        full[iu[1], iu[0]] = np.arange(iu[0].size)
        out = _TRIU[p] = (iu[0], iu[1], full.ravel())
    return out
