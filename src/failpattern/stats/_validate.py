"""The one shared validator for array arguments of the statistical functions.

User-facing functions call these helpers first and hand clean ``float64`` /
``int64`` arrays to the kernels, which then trust their input (the R
``survival`` split between ``coxph`` and ``coxph.fit``). Each helper raises
:class:`~failpattern.errors.InputError` naming the argument, the positions of
the first offending values, the values and the rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from failpattern.errors import InputError

_SHOW = 5  # how many offending positions a message lists
#: pandas' nullable numeric and boolean arrays (``Int64``, ``Float64``, ``boolean`` columns)
_MASKED = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)


def _labels(values) -> np.ndarray | None:
    """Index labels of a pandas input, so messages can name rows as the user sees them."""
    if isinstance(values, (pd.Series, pd.DataFrame)) and not isinstance(values.index, pd.RangeIndex):
        return np.asarray(values.index)
    return None


def plain_value(value):
    """A numpy scalar as the Python value it holds, so messages show ``2``, not ``np.int64(2)``."""
    return value.item() if isinstance(value, np.generic) else value


def describe_positions(mask: np.ndarray, values: np.ndarray, labels: np.ndarray | None = None) -> str:
    """Text listing the first few positions where ``mask`` is true, with their values."""
    where = np.flatnonzero(mask)
    parts = []
    for i in where[:_SHOW]:
        place = f"index {plain_value(labels[i])!r}" if labels is not None else f"position {i}"
        parts.append(f"{place} = {plain_value(values[i])!r}")
    more = f" (and {where.size - _SHOW} more)" if where.size > _SHOW else ""
    return ", ".join(parts) + more


def _one_dimensional(values, name: str) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise InputError(f"{name}: expected a sequence of values, got the string {values!r}")
    try:
        if type(values) is np.ndarray:
            arr = values
        elif isinstance(values, pd.Series) and isinstance(values.dtype, np.dtype):
            arr = values.to_numpy()   # same array as np.asarray(values), without its overhead
        elif isinstance(values, pd.Series) and isinstance(values.array, _MASKED):
            # a nullable column (as the cohort loader gives): np.asarray calls the array's own
            # to_numpy() through Series.__array__, here called directly (a third of the time)
            arr = values.array.to_numpy()
        else:
            arr = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise InputError(f"{name}: could not be read as a one-dimensional array ({exc})") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a one-dimensional array, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name}: is empty; at least one observation is needed")
    return arr


def as_numbers(values, name: str) -> np.ndarray:
    arr = _one_dimensional(values, name)
    if arr.dtype == bool:
        return arr.astype(np.float64)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64, copy=True)
    # object / string input: convert element-wise so the message can name the culprit
    out = np.empty(arr.size, dtype=np.float64)
    bad = np.zeros(arr.size, dtype=bool)
    for i, v in enumerate(arr):
        try:
            out[i] = float(v) if v is not None else np.nan
        except (TypeError, ValueError):
            bad[i] = True
    if bad.any():
        raise InputError(f"{name}: values must be numbers; not numeric at "
                         + describe_positions(bad, arr, _labels(values)))
    return out


def as_durations(values, name: str = "time") -> np.ndarray:
    """Finite, non-negative follow-up times as ``float64``."""
    arr = as_numbers(values, name)
    # fast accept: the minimum is NaN if any value is, so this holds only for clean input
    if np.minimum.reduce(arr) >= 0.0 and np.maximum.reduce(arr) < np.inf:
        return arr
    labels = _labels(values)
    for mask, rule in ((np.isnan(arr), "missing (NaN)"),
                       (np.isinf(arr), "infinite"),
                       (arr < 0, "negative; times must be >= 0")):
        if mask.any():
            raise InputError(f"{name}: {int(mask.sum())} value(s) are {rule}: "
                             + describe_positions(mask, arr, labels))
    return arr


def _codes(values, name: str, allowed: str) -> np.ndarray:
    raw = _one_dimensional(values, name)
    if raw.dtype == bool or (raw.dtype.kind in "iu" and np.minimum.reduce(raw) >= 0):
        return raw.astype(np.int64)   # whole, finite and >= 0 by type (a copy, as before)
    arr = as_numbers(values, name)
    labels = _labels(values)
    bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (arr < 0)
    if bad.any():
        raise InputError(f"{name}: codes must be {allowed}; invalid at "
                         + describe_positions(bad, arr, labels))
    return arr.astype(np.int64)


def as_events(values, name: str = "event") -> np.ndarray:
    """Event indicators: 1 = event, 0 = censored (booleans accepted)."""
    codes = _codes(values, name, "0 (censored) or 1 (event)")
    if np.maximum.reduce(codes) <= 1:
        return codes
    bad = codes > 1
    if bad.any():
        raise InputError(f"{name}: codes must be 0 (censored) or 1 (event); invalid at "
                         + describe_positions(bad, codes, _labels(values)))
    return codes


def as_causes(values, name: str = "cause") -> np.ndarray:
    """Competing-risk codes: 0 = censored, 1..k = causes."""
    return _codes(values, name, "whole numbers: 0 = censored, 1..k = causes")


def as_groups(values, name: str = "group", *, min_groups: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes ``0..g-1`` and the sorted group labels; missing labels are an error."""
    arr = _one_dimensional(values, name)
    if arr.dtype.kind == "i" or (arr.dtype.kind == "u" and arr.dtype.itemsize < 8):
        # integers cannot be missing; a small range is counted rather than sorted
        lo, hi = int(np.minimum.reduce(arr)), int(np.maximum.reduce(arr))
        if hi - lo <= 4 * arr.size + 64:
            shifted = np.subtract(arr, lo, dtype=np.intp) if lo else arr
            seen = np.bincount(shifted, minlength=hi - lo + 1) > 0
            present = seen.nonzero()[0]
            lookup = seen.cumsum()
            lookup -= 1
            levels = (present + lo).astype(arr.dtype, copy=False)   # = np.unique(arr)
            codes = lookup[shifted]                                 # its inverse
            if levels.size < min_groups:
                raise InputError(f"{name}: needs at least {min_groups} groups, found "
                                 f"{levels.size} ({', '.join(map(repr, levels.tolist()))})")
            return codes.astype(np.int64, copy=False), levels
    labels = _labels(values)
    missing = np.isnan(arr) if arr.dtype.kind == "f" else pd.isna(arr)
    if missing.any():
        raise InputError(f"{name}: {int(missing.sum())} value(s) are missing: "
                         + describe_positions(missing, arr, labels))
    try:
        levels, codes = np.unique(arr, return_inverse=True)
    except TypeError:  # mixed types that do not sort: compare as text
        levels, codes = np.unique(arr.astype(str), return_inverse=True)
    if levels.size < min_groups:
        raise InputError(f"{name}: needs at least {min_groups} groups, found {levels.size} "
                         f"({', '.join(map(repr, levels.tolist()))})")
    return codes.astype(np.int64), levels


def check_lengths(**arrays: np.ndarray) -> int:
    """All arrays have the same length; return it."""
    sizes = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k} has {n}" for k, n in sizes.items())
        raise InputError(f"arguments must have the same length: {listed}")
    return next(iter(sizes.values()))


def require_events(events: np.ndarray, what: str, name: str = "event") -> None:
    """At least one event, where an estimate needs one."""
    if not events.any():
        raise InputError(f"{name}: all observations are censored; {what} needs at least one event")


def check_alpha(alpha: float) -> float:
    if not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 1.0:
        raise InputError(f"alpha: must be a number strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


def check_flag(value, name: str) -> bool:
    """A ``True`` / ``False`` keyword (numpy booleans accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}: must be True or False, got {value!r}")
    return bool(value)


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise InputError(f"{name}: must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def frame_column(data: pd.DataFrame, column: str, role: str) -> pd.Series:
    """A column of ``data``, with an error naming the role it was asked for."""
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if column not in data.columns:
        raise InputError(f"{role}: column {column!r} is not in data (columns: "
                         f"{', '.join(map(str, data.columns))})")
    return data[column]


def covariate_matrix(data: pd.DataFrame, covariates: Sequence[str],
                     columns: dict | None = None) -> np.ndarray:
    """Numeric, complete, non-constant covariates as an ``(n, p)`` float matrix.

    ``columns`` may map covariate names to columns already read from ``data``.
    """
    if isinstance(covariates, str):
        covariates = [covariates]
    covariates = list(covariates)
    if not covariates:
        raise InputError("covariates: at least one covariate is needed")
    if (len(set(covariates)) == len(covariates) and isinstance(data, pd.DataFrame)
            and len(data) > 0):
        # fast path: one pass filling the matrix, then one check of all of it; any
        # doubt falls through to the column-by-column checks below, which name the problem
        out = np.empty((len(data), len(covariates)))
        ok = True
        for j, c in enumerate(covariates):
            col = columns.get(c) if columns else None
            if col is None:
                if c not in data.columns:
                    ok = False
                    break
                col = data[c]
            if not (isinstance(col, pd.Series) and isinstance(col.dtype, np.dtype)
                    and col.dtype.kind in "biuf"):
                ok = False
                break
            out[:, j] = col.to_numpy()
        if ok and np.isfinite(out).all() and not (out == out[0]).all(axis=0).any():
            return out
    return _covariate_matrix(data, covariates)


def _covariate_matrix(data: pd.DataFrame, covariates: list[str]) -> np.ndarray:
    dupes = sorted({c for c in covariates if covariates.count(c) > 1})
    if dupes:
        raise InputError(f"covariates: listed more than once: {', '.join(dupes)}")
    columns = []
    for c in covariates:
        col = frame_column(data, c, "covariates")
        if col.dtype.kind not in "biuf":
            raise InputError(f"covariates: column {c!r} is not numeric (dtype {col.dtype}); "
                             "encode categories as 0/1 indicator columns first")
        values = col.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(f"covariates: column {c!r} has {int(bad.sum())} missing or infinite "
                             "value(s): " + describe_positions(bad, values, _labels(col)))
        if values.size and np.all(values == values[0]):
            raise InputError(f"covariates: column {c!r} is constant (every value is "
                             f"{values[0]!r}); it cannot be estimated")
        columns.append(values)
    return np.column_stack(columns)
