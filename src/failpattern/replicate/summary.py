"""Summaries of a replicate study: the distribution of each reproduced number.

Why: a single simulated cohort says little about whether a published number
is plausible. Over many replicates each id has a distribution; this module
reports its centre and spread (n, mean, sd, median, 5th and 95th
percentiles — numpy's default linear interpolation, R's type 7) and, given
the published values, where each published value falls in that distribution
(its percentile) and, for p-values, how often the replicates reach
significance (the power of the study design under the simulation model).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import numpy as np
import pandas as pd

from failpattern.errors import InputError

__all__ = ["summarise", "published_frame", "is_p_value_method"]

_STATS = ["n", "n_missing", "mean", "sd", "median", "p05", "p95"]


def is_p_value_method(method: object) -> bool:
    """Whether a study-card ``method`` names a p-value.

    Every p-value method of the card vocabulary ends in ``_p``
    (``logrank_p``, ``cox_p``, ``finegray_p``, ``contingency_p``, ...) and no
    other method does.
    """
    return isinstance(method, str) and method.endswith("_p")


def published_frame(published: pd.DataFrame | Mapping | pd.Series) -> pd.DataFrame:
    """Normalise published values to a frame with ``id``, ``published``, ``is_p_value``.

    Parameters
    ----------
    published : DataFrame, Mapping or Series
        * a DataFrame with ``id`` and ``value`` and either ``is_p_value``
          (bool) or ``method`` (p-values are the methods ending in ``_p``;
          ``StudyCard.numbers`` has this form), or neither (no p-values);
        * a Mapping ``id -> value`` (no p-values) or
          ``id -> {"value": v, "method": m}`` / ``{"value": v, "is_p_value": b}``;
        * a Series indexed by id (no p-values).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        Missing columns, duplicated ids, or a value that is not a number.
    """
    if isinstance(published, pd.Series):
        published = published.to_dict()
    if isinstance(published, Mapping):
        rows = []
        for id_, v in published.items():
            if isinstance(v, Mapping):
                if "value" not in v:
                    raise InputError(f"published: entry {id_!r} has no 'value'")
                flag = v["is_p_value"] if "is_p_value" in v else is_p_value_method(v.get("method"))
                rows.append((id_, v["value"], bool(flag)))
            else:
                rows.append((id_, v, False))
        frame = pd.DataFrame(rows, columns=["id", "published", "is_p_value"])
    elif isinstance(published, pd.DataFrame):
        missing = [c for c in ("id", "value") if c not in published.columns]
        if missing:
            raise InputError(f"published: missing column(s) {missing}; need 'id' and 'value' "
                             "(and 'method' or 'is_p_value' to mark p-values)")
        if "is_p_value" in published.columns:
            flag = published["is_p_value"].fillna(False).astype(bool)
        elif "method" in published.columns:
            flag = published["method"].map(is_p_value_method)
        else:
            flag = False
        frame = pd.DataFrame({"id": published["id"].to_numpy(), "published": published["value"].to_numpy(),
                              "is_p_value": flag if np.isscalar(flag) else np.asarray(flag, bool)})
    else:
        raise InputError(f"published: expected a DataFrame, Mapping or Series, got "
                         f"{type(published).__name__}")
    dup = frame["id"][frame["id"].duplicated()]
    if len(dup):
        raise InputError(f"published: duplicated id(s) {sorted(map(str, set(dup)))[:5]}")
    values = pd.to_numeric(frame["published"], errors="coerce")
    bad = values.isna() & frame["published"].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"published: value of {frame['id'].iloc[i]!r} is not a number: "
                         f"{frame['published'].iloc[i]!r}")
    return frame.assign(published=values.astype(float), is_p_value=frame["is_p_value"].astype(bool))


def _describe(v: np.ndarray) -> dict[str, float]:
    n = v.size
    if n == 0:
        return {"mean": np.nan, "sd": np.nan, "median": np.nan, "p05": np.nan, "p95": np.nan}
    p05, med, p95 = np.percentile(v, [5.0, 50.0, 95.0])
    return {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if n > 1 else np.nan,
            "median": float(med), "p05": float(p05), "p95": float(p95)}


def summarise(results: pd.DataFrame, published: pd.DataFrame | Mapping | pd.Series | None = None,
              *, alpha: float = 0.05) -> pd.DataFrame:
    """Per id, the distribution of ``value`` over replicates.

    Parameters
    ----------
    results : pandas.DataFrame
        Replicate results with ``id`` and ``value`` columns and usually
        ``replicate`` (as :func:`~failpattern.replicate.load_replicates`
        returns them). Missing values (NaN) are left out of every statistic
        and counted in ``n_missing``.
    published : DataFrame, Mapping or Series, optional
        Published values, in any form :func:`published_frame` accepts (e.g.
        ``load_study().numbers``).
    alpha : float, default 0.05
        Significance level for ``power``.

    Returns
    -------
    pandas.DataFrame
        One row per id (in order of first appearance; published ids absent
        from the results follow with ``n = 0``): ``id``, ``n`` (non-missing
        values), ``n_missing`` (replicates with no value: NaN, or no row for
        the id when ``replicate`` is present), ``mean``, ``sd`` (``ddof=1``),
        ``median``, ``p05``, ``p95``. With ``published`` also:
        ``published``; ``is_p_value``; ``published_percentile``, the
        mid-rank percentile of the published value among the replicates,
        ``100 * (#{v < x} + #{v == x} / 2) / n``; and ``power``, for p-value
        ids the proportion of replicates with ``p < alpha`` (NaN otherwise).

    Raises
    ------
    InputError
        Missing columns, a non-numeric ``value``, an id reported twice by one
        replicate, or ``alpha`` outside (0, 1).
    """
    if not isinstance(results, pd.DataFrame):
        raise InputError(f"results: expected a pandas.DataFrame, got {type(results).__name__}")
    missing = [c for c in ("id", "value") if c not in results.columns]
    if missing:
        raise InputError(f"results: missing column(s) {missing}")
    if not pd.api.types.is_numeric_dtype(results["value"]) and len(results):
        raise InputError(f"results: column 'value' must be numeric, has dtype {results['value'].dtype}")
    if not (isinstance(alpha, Real) and 0 < alpha < 1):
        raise InputError(f"alpha: must be a number in (0, 1), got {alpha!r}")
    has_rep = "replicate" in results.columns
    if has_rep:
        dup = results.duplicated(["replicate", "id"])
        if dup.any():
            r = results.loc[dup].iloc[0]
            raise InputError(f"results: replicate {r['replicate']} reports id {r['id']!r} more than "
                             "once")
        n_rep = results["replicate"].nunique()

    rows = []
    for id_, group in results.groupby("id", sort=False)["value"]:
        v = group.to_numpy(dtype=float)
        v = v[~np.isnan(v)]
        n_missing = (n_rep if has_rep else group.size) - v.size
        rows.append({"id": id_, "n": v.size, "n_missing": n_missing, **_describe(v), "_v": v})

    pub = None if published is None else published_frame(published)
    if pub is not None:
        seen = {r["id"] for r in rows}
        for id_ in pub["id"]:
            if id_ not in seen:
                rows.append({"id": id_, "n": 0, "n_missing": n_rep if has_rep else 0,
                             **_describe(np.empty(0)), "_v": np.empty(0)})
    frame = pd.DataFrame(rows, columns=["id", *_STATS, "_v"])
    if pub is None:
        return frame.drop(columns="_v").astype({"n": np.int64, "n_missing": np.int64})

    frame = frame.merge(pub, on="id", how="left")
    frame["is_p_value"] = frame["is_p_value"].eq(True)  # ids not published: NaN -> False
    pct, power = [], []
    for v, x, is_p in zip(frame["_v"], frame["published"], frame["is_p_value"], strict=True):
        if v.size == 0 or np.isnan(x):
            pct.append(np.nan)
        else:
            pct.append(100.0 * (np.count_nonzero(v < x) + 0.5 * np.count_nonzero(v == x)) / v.size)
        power.append(float(np.mean(v < alpha)) if is_p and v.size else np.nan)
    frame["published_percentile"] = pct
    frame["power"] = power
    return frame.drop(columns="_v").astype({"n": np.int64, "n_missing": np.int64})
