"""Two-sample comparisons of a continuous variable: Mann-Whitney U, Student and Welch t.

Why this module exists: baseline tables (e.g. age in Table 1 of Ni et al. 2019)
compare two groups with a rank test or a t-test computed in SPSS. The p-value
SPSS prints for Mann-Whitney is the asymptotic (normal) one with the tie
correction and no continuity correction, which is neither scipy's default
(``method="auto"`` may go exact) nor R's default (continuity-corrected), so the
variants are spelled out here with their group summaries.

References matched (``tests/reference/twosample.R``):

* ``method="mann-whitney"``: R ``wilcox.test(x, y, exact = FALSE, correct = FALSE)``
  (SPSS "Asymp. Sig. (2-tailed)"); ``continuity=True`` gives R's default
  ``correct = TRUE``. The statistic is R's ``W``: the rank sum of the first group
  (first sorted label) minus ``n1 (n1 + 1) / 2``.
* ``method="t-test"``: R ``t.test(x, y, var.equal = TRUE)`` (pooled variance).
* ``method="welch"``: R ``t.test(x, y)`` (Welch-Satterthwaite degrees of freedom).

The sign of ``statistic`` follows R: first group minus second group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr, stdtr

from failpattern.errors import InputError
from failpattern.stats._result import frozen
from failpattern.stats._validate import (as_groups, as_numbers, check_choice, check_lengths,
                                         describe_positions)

__all__ = ["TwoSampleResult", "two_sample_test", "METHODS"]

METHODS = ("mann-whitney", "t-test", "welch")


@dataclass(frozen=True)
class TwoSampleResult:
    """Result of :func:`two_sample_test`.

    Attributes
    ----------
    statistic : float
        Mann-Whitney ``W`` (R's statistic) or the t statistic (first group minus second).
    p_value : float
        Two-sided p-value.
    method : str
        ``"mann-whitney"``, ``"t-test"`` or ``"welch"``.
    df : float
        Degrees of freedom of the t statistic; ``nan`` for Mann-Whitney.
    z : float
        Standardised Mann-Whitney statistic (after any continuity correction);
        ``nan`` for the t-tests.
    continuity : bool
        Whether the Mann-Whitney continuity correction was applied.
    groups : tuple
        The two group labels, sorted; the first is R's ``x``.
    n : tuple of int
        Number of observations in each group, in the order of ``groups``.
    medians, q1, q3, means, sds : numpy.ndarray
        Read-only per-group summaries (quartiles by linear interpolation, R's
        ``quantile`` type 7; SD with denominator ``n - 1``).
    """

    statistic: float
    p_value: float
    method: str
    df: float
    z: float
    continuity: bool
    groups: tuple
    n: tuple
    medians: np.ndarray = field(repr=False)
    q1: np.ndarray = field(repr=False)
    q3: np.ndarray = field(repr=False)
    means: np.ndarray = field(repr=False)
    sds: np.ndarray = field(repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per group: n, median, q1, q3, iqr, mean, sd."""
        return pd.DataFrame({
            "group": list(self.groups), "n": list(self.n), "median": self.medians,
            "q1": self.q1, "q3": self.q3, "iqr": self.q3 - self.q1,
            "mean": self.means, "sd": self.sds,
        })

    def to_frame(self) -> pd.DataFrame:
        """One-row test table: method, statistic, df, z, p_value, n1, n2."""
        return pd.DataFrame({
            "method": [self.method], "statistic": [self.statistic], "df": [self.df],
            "z": [self.z], "p_value": [self.p_value], "continuity": [self.continuity],
            "n1": [self.n[0]], "n2": [self.n[1]],
        })


# ---------------------------------------------------------------- kernels

def _mid_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks with ties given their mean rank (``scipy.stats.rankdata``'s "average", the
    same numbers without its overhead) and the size of each group of ties, by value."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.empty(ordered.size, dtype=bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    first = new.nonzero()[0]
    ties = np.diff(first, append=ordered.size)
    ranks = np.empty(ordered.size)
    ranks[order] = np.repeat(first + 1 + (ties - 1) / 2.0, ties)  # half-integers: exact
    return ranks, ties


def _mann_whitney(x: np.ndarray, y: np.ndarray, continuity: bool) -> tuple[float, float, float]:
    """R wilcox.test(x, y, exact = FALSE, correct = continuity): W, z, two-sided p."""
    nx, ny = x.size, y.size
    ranks, ties = _mid_ranks(np.concatenate([x, y]))
    w = float(ranks[:nx].sum() - nx * (nx + 1) / 2.0)
    ties = ties.astype(np.float64)
    n = nx + ny
    sigma = np.sqrt(nx * ny / 12.0 * ((n + 1) - np.sum(ties**3 - ties) / (n * (n - 1))))
    centred = w - nx * ny / 2.0
    correction = 0.5 * np.sign(centred) if continuity else 0.0
    z = float((centred - correction) / sigma)
    # ndtr(z) and ndtr(-z) are what stats.norm.cdf(z) and stats.norm.sf(z) compute
    p = float(2.0 * min(ndtr(z), ndtr(-z)))
    return w, z, min(1.0, p)


def _t_test(x: np.ndarray, y: np.ndarray, pooled: bool) -> tuple[float, float, float]:
    """R t.test(x, y, var.equal = pooled): t, df, two-sided p."""
    nx, ny = x.size, y.size
    vx = float(np.var(x, ddof=1)) if nx > 1 else 0.0
    vy = float(np.var(y, ddof=1)) if ny > 1 else 0.0
    if pooled:
        df = float(nx + ny - 2)
        v = ((nx - 1) * vx + (ny - 1) * vy) / df
        se = np.sqrt(v * (1.0 / nx + 1.0 / ny))
    else:
        sx, sy = vx / nx, vy / ny
        se = np.sqrt(sx + sy)
        df = float((sx + sy) ** 2 / (sx**2 / (nx - 1) + sy**2 / (ny - 1)))
    t = float((x.mean() - y.mean()) / se)
    return t, df, float(2.0 * stdtr(df, -abs(t)))  # stdtr(df, -|t|) = stats.t.sf(|t|, df)


# ---------------------------------------------------------------- public API

def two_sample_test(values, group, *, method: str = "mann-whitney",
                    continuity: bool = False) -> TwoSampleResult:
    """Compare a continuous variable between exactly two groups.

    Parameters
    ----------
    values : array_like
        Numeric observations; missing (NaN) or infinite values are an error
        (drop incomplete rows first).
    group : array_like
        Group labels, same length as ``values``; exactly two distinct labels.
        The first sorted label is R's ``x``.
    method : {"mann-whitney", "t-test", "welch"}
        Mann-Whitney U with the normal approximation and tie correction (SPSS
        asymptotic p), Student's pooled t-test, or Welch's t-test.
    continuity : bool
        Mann-Whitney only: apply R's continuity correction (``correct = TRUE``).

    Returns
    -------
    TwoSampleResult

    Raises
    ------
    InputError
        For non-numeric, missing or infinite values, missing labels, other than
        two groups, unequal lengths, groups too small for the method, all values
        tied (Mann-Whitney) or data with no variance (t-tests), ``continuity``
        with a t-test, or an unknown ``method``.
    """
    check_choice(method, "method", METHODS)
    if not isinstance(continuity, (bool, np.bool_)):
        raise InputError(f"continuity: must be True or False, got {continuity!r}")
    if continuity and method != "mann-whitney":
        raise InputError(f"continuity: applies to method='mann-whitney' only, not {method!r}")
    y = as_numbers(values, "values")
    bad = ~np.isfinite(y)
    if bad.any():
        labels = np.asarray(values.index) if isinstance(values, pd.Series) else None
        raise InputError(f"values: {int(bad.sum())} value(s) are missing (NaN) or infinite: "
                         + describe_positions(bad, y, labels) + "; drop incomplete rows first")
    codes, levels = as_groups(group, "group")
    check_lengths(values=y, group=codes)
    if levels.size != 2:
        raise InputError(f"group: needs exactly 2 groups, found {levels.size} "
                         f"({', '.join(map(repr, levels.tolist()))})")
    a, b = y[codes == 0], y[codes == 1]
    need = 2 if method == "welch" else 1
    small = [f"{lab!r} has {arr.size}" for lab, arr in zip(levels.tolist(), (a, b)) if arr.size < need]
    if small or (method == "t-test" and a.size + b.size < 3):
        raise InputError(f"group: method {method!r} needs at least {need} observation(s) per group"
                         + (" and 3 in all" if method == "t-test" else "") + "; "
                         + (", ".join(small) if small else f"{a.size + b.size} in all"))
    if method == "mann-whitney":
        if np.all(y == y[0]):
            raise InputError(f"values: all {y.size} values are tied ({float(y[0])!r}); "
                             "the Mann-Whitney test is undefined")
        stat, z, p = _mann_whitney(a, b, bool(continuity))
        df = float("nan")
    else:
        spread = [arr for arr in (a, b) if arr.size > 1]
        if all(np.all(arr == arr[0]) for arr in spread):
            raise InputError("values: both groups have zero variance; the t statistic is undefined")
        stat, df, p = _t_test(a, b, pooled=(method == "t-test"))
        z = float("nan")
    qa, qb = np.percentile(a, [25, 50, 75]), np.percentile(b, [25, 50, 75])
    sds = [float(np.std(arr, ddof=1)) if arr.size > 1 else float("nan") for arr in (a, b)]
    return TwoSampleResult(statistic=stat, p_value=p, method=method, df=df, z=z,
                           continuity=bool(continuity), groups=tuple(levels.tolist()),
                           n=(int(a.size), int(b.size)), medians=frozen([qa[1], qb[1]]),
                           q1=frozen([qa[0], qb[0]]), q3=frozen([qa[2], qb[2]]),
                           means=frozen([a.mean(), b.mean()]), sds=frozen(sds))
