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

__all__ = ["summarise", "summarise_chunks", "Accumulator", "published_frame", "is_p_value_method"]

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
        reps = results["replicate"].to_numpy()
        if not results["replicate"].isna().any() and (len(reps) < 2 or bool((reps[1:] >= reps[:-1]).all())):
            # rows by replicate (as a study stores them): each id's values in the same order as
            # grouped row by row, so the same numbers, from one float64 matrix
            acc = Accumulator()
            acc.add(results)
            return acc.summary(published, alpha=alpha)
        dup = results.duplicated(["replicate", "id"])
        if dup.any():
            r = results.loc[dup].iloc[0]
            raise InputError(f"results: replicate {r['replicate']} reports id {r['id']!r} more than "
                             "once")
        n_rep = results["replicate"].nunique()
    rows = []
    for id_, group in results.groupby("id", sort=False, observed=True)["value"]:
        v = group.to_numpy(dtype=float)
        v = v[~np.isnan(v)]
        rows.append((id_, v, (n_rep if has_rep else group.size) - v.size))
    return _table(rows, n_rep if has_rep else 0, published, alpha)


def _table(rows, n_rep: int, published, alpha: float) -> pd.DataFrame:
    """The summary frame from ``(id, values without NaN, n_missing)`` per id, in order.

    ``rows`` may be a generator: each id's values are described (and compared with its published
    value) as they come and then dropped, so a large study's values are not held twice (a
    million replicates: some 3 GB)."""
    pub = None if published is None else published_frame(published)
    known = {} if pub is None else dict(zip(pub["id"], zip(pub["published"], pub["is_p_value"], strict=True),
                                            strict=True))
    out = []
    for id_, v, miss in rows:
        record = {"id": id_, "n": v.size, "n_missing": miss, **_describe(v)}
        x, is_p = known.get(id_, (np.nan, False))
        if v.size == 0 or np.isnan(x):
            record["_pct"] = np.nan
        else:
            record["_pct"] = 100.0 * (np.count_nonzero(v < x) + 0.5 * np.count_nonzero(v == x)) / v.size
        record["_power"] = float(np.mean(v < alpha)) if is_p and v.size else np.nan
        out.append(record)
    if pub is not None:
        seen = {r["id"] for r in out}
        for id_ in pub["id"]:
            if id_ not in seen:
                out.append({"id": id_, "n": 0, "n_missing": n_rep, **_describe(np.empty(0)),
                            "_pct": np.nan, "_power": np.nan})
    frame = pd.DataFrame(out, columns=["id", *_STATS, "_pct", "_power"])
    if pub is None:
        return frame.drop(columns=["_pct", "_power"]).astype({"n": np.int64, "n_missing": np.int64})

    frame = frame.merge(pub, on="id", how="left")
    frame["is_p_value"] = frame["is_p_value"].eq(True)  # ids not published: NaN -> False
    frame["published_percentile"] = frame["_pct"]
    frame["power"] = frame["_power"]
    return frame.drop(columns=["_pct", "_power"]).astype({"n": np.int64, "n_missing": np.int64})


def _replicate_codes(replicate: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(replicate, sort=False)``'s codes and uniques (order of first appearance).

    Why not factorize: a chunk of a study holds its replicates in order, each a run of rows
    (hundreds of thousands of rows a chunk); the runs give the same codes and uniques without
    hashing every row. Other input is factorized."""
    r = replicate.to_numpy()
    if r.dtype.kind in "iu" and r.size and (r[1:] >= r[:-1]).all():
        starts = np.empty(r.size, dtype=bool)
        starts[0] = True
        np.not_equal(r[1:], r[:-1], out=starts[1:])
        return np.cumsum(starts) - 1, r[starts]
    return pd.factorize(replicate, sort=False)


class Accumulator:
    """Replicate results taken a chunk at a time, kept as each id's values, for :meth:`summary`.

    Why: a study of 100,000 replicates has some 70 million ``(replicate, id, value)`` rows; as one
    long DataFrame (an object column of ids, then grouped) that is several GB. Exact percentiles
    need every value of an id, but not the rows: each chunk is turned into a float64 block
    ``(ids, replicates)`` (NaN where a replicate has no value) and dropped, so the memory is 8
    bytes per value plus one chunk. Chunks must hold disjoint replicates, each in order (a study's
    chunk files do); each id's values are then in replicate order, as :func:`summarise` groups
    them, so the summary is the same, bit for bit. Chunks may come in any order when each is
    given its ``position`` (a study's chunk number): the values are then taken in position order,
    so a study summarised as its chunks arrive from the workers gives the same summary, bit for
    bit, as one read back in order.
    """

    def __init__(self, keep=None):
        """``keep``: the ids to summarise (default: every id); the others' rows are dropped as read."""
        self.ids: list = []            # in the order taken (summary() orders them by position)
        self._col: dict = {}
        self._keep = None if keep is None else set(keep)
        self._blocks: list[tuple[int, np.ndarray]] = []  # (position, block)
        self._first: list[tuple[int, int]] = []  # per id: (position, rank in its chunk) where first seen
        self._next = 0
        self.n_replicates = 0

    def add(self, frame: pd.DataFrame, position: int | None = None) -> None:
        """Take one chunk: ``replicate``, ``id`` and ``value`` columns (``id`` may be categorical).

        ``position``: where the chunk's replicates fall among the chunks (a study's chunk number),
        for chunks taken out of order; by default after every chunk taken so far.

        Raises
        ------
        InputError
            Missing columns, a non-numeric ``value``, or an id reported twice by one replicate.
        """
        missing = [c for c in ("replicate", "id", "value") if c not in frame.columns]
        if missing:
            raise InputError(f"results: missing column(s) {missing}")
        if not pd.api.types.is_numeric_dtype(frame["value"]) and len(frame):
            raise InputError(f"results: column 'value' must be numeric, has dtype {frame['value'].dtype}")
        if position is None:
            position = self._next
        self._next = max(self._next, position + 1)
        if not len(frame):
            return
        rep, reps = _replicate_codes(frame["replicate"])
        code, uniques = pd.factorize(frame["id"], sort=False)
        key = rep.astype(np.int64) * len(uniques) + code
        # a count per (replicate, id) finds a repeat without hashing every row; only a chunk that
        # has one is searched for the first (to name it)
        if np.bincount(key, minlength=1).max() > 1:
            i = int(np.flatnonzero(pd.Series(key).duplicated().to_numpy())[0])
            raise InputError(f"results: replicate {frame['replicate'].iloc[i]} reports id "
                             f"{frame['id'].iloc[i]!r} more than once")
        cols = np.empty(len(uniques), dtype=np.int64)
        for k, id_ in enumerate(np.asarray(uniques, dtype=object)):
            j = self._col.get(id_)
            if j is None:
                if self._keep is not None and id_ not in self._keep:
                    cols[k] = -1
                    continue
                j = self._col[id_] = len(self.ids)
                self.ids.append(id_)
                self._first.append((position, k))
            elif (position, k) < self._first[j]:  # seen so far only in chunks that come later
                self._first[j] = (position, k)
            cols[k] = j
        block = np.full((len(self.ids), len(reps)), np.nan)
        at = cols[code]
        kept = at >= 0
        block[at[kept], rep[kept]] = frame["value"].to_numpy(dtype=np.float64)[kept]
        self._blocks.append((position, block))
        self.n_replicates += len(reps)

    def values(self, j: int) -> np.ndarray:
        """The values of ``ids[j]`` in replicate order (chunks by position), NaN where missing."""
        blocks = sorted(self._blocks, key=lambda pb: pb[0])  # stable: equal positions as taken
        parts = [b[j] if j < b.shape[0] else np.full(b.shape[1], np.nan) for _, b in blocks]
        return np.concatenate(parts) if parts else np.empty(0)

    def summary(self, published=None, *, alpha: float = 0.05) -> pd.DataFrame:
        """:func:`summarise` of everything added (same parameters and result)."""
        if not (isinstance(alpha, Real) and 0 < alpha < 1):
            raise InputError(f"alpha: must be a number in (0, 1), got {alpha!r}")
        order = sorted(range(len(self.ids)), key=self._first.__getitem__)  # first appearance, by position
        def rows():  # one id's values at a time (_table keeps only their statistics)
            for j in order:
                id_ = self.ids[j]
                v = self.values(j)
                v = v[~np.isnan(v)]
                yield id_, v, self.n_replicates - v.size
        return _table(rows(), self.n_replicates, published, alpha)


def summarise_chunks(chunks, published: pd.DataFrame | Mapping | pd.Series | None = None,
                     *, alpha: float = 0.05) -> pd.DataFrame:
    """:func:`summarise` of the rows of several frames, taken one at a time.

    Parameters
    ----------
    chunks : iterable of pandas.DataFrame
        ``replicate``, ``id``, ``value``; disjoint replicates, each frame by replicate (as a
        study's chunk files, :func:`failpattern.replicate.store.read_chunk`).
    published, alpha
        As :func:`summarise`.

    Returns
    -------
    pandas.DataFrame
        :func:`summarise` of their concatenation, without holding it.

    Raises
    ------
    InputError
        As :func:`summarise`.
    """
    if not (isinstance(alpha, Real) and 0 < alpha < 1):
        raise InputError(f"alpha: must be a number in (0, 1), got {alpha!r}")
    acc = Accumulator()
    for frame in chunks:
        acc.add(frame)
    return acc.summary(published, alpha=alpha)
