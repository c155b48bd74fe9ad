"""Exact two-sided Fisher test for r x c tables (network enumeration).

Why our own: scipy 1.17's ``fisher_exact`` gives a Monte Carlo p-value for tables
larger than 2 x 2, while R's ``fisher.test`` (FEXACT, Mehta and Patel's network
algorithm) gives the exact one, which is what papers report. Tables whose
probability is within R's relative tolerance ``1 + 1e-7`` of the observed one
count as "as extreme". Used by :mod:`failpattern.stats.contingency`.

Bounded cost (the rule): the enumeration's work grows about as ``n ** ((r - 1)(c - 1))``
for an r x c table with n counts (quadratic in n for a 2 x 3 or 3 x 2 table:
50,000 counts needed 2 GB), so it runs on a budget of ``workspace`` cells, like R's
``fisher.test(workspace = )``. Charged before each array is allocated: ``r`` cells for
every (node, move) pair listed (``r`` the smaller dimension), one cell for every
(path, move) partial sum held, and :data:`NODE_CELLS` for every distinct node whose
bounds are solved (done in Python, about a thousand array cells' time). When the
next charge would pass ``workspace``, :class:`WorkspaceExceeded` is raised instead of
allocating, so time and memory stay bounded (the default :data:`WORKSPACE`, 2**25
cells: at most a few seconds and a few hundred MB here); R stops with "FEXACT error
7 ... Increase workspace" in the same situation and
:func:`~failpattern.stats.contingency.contingency_test` reports the asymptotic
Pearson test instead, saying so. The charge depends only on the table, so the
outcome is deterministic. Examples of charges (and times, on 2 shared cores): the
r x c cases of ``tests/reference/contingency.R`` at most 0.4M; a 3 x 3 table with
n = 500 11M (0.7 s); a strongly associated 4 x 4 table with n = 100 31M (1.2 s); a
3 x 2 table with n = 5,511 2.6M (0.2 s), the same proportions with n = 20,000 22M
(0.7-1.8 s), with n = 30,000 past the budget at column 2 (after about 2 s) and with
n = 1,000,000 at column 1 (0.05 s).
"""

from __future__ import annotations

import itertools
from math import log1p

import numpy as np
from scipy import special

_FISHER_REL_TOL = 1e-7  # R fisher.test: relErr <- 1 + 10^(-7)
_LOG_TOL = log1p(_FISHER_REL_TOL)
#: Default budget of the exact enumeration, in cells (module docstring).
WORKSPACE = 2**25
#: Cells charged for each distinct node whose bounds are solved (Python, not array, work).
NODE_CELLS = 1000


class WorkspaceExceeded(RuntimeError):
    """The exact enumeration would pass its ``workspace`` budget (nothing was allocated past it).

    Attributes
    ----------
    workspace : int
        The budget, in cells.
    needed : int
        Cells charged so far plus the charge that did not fit (a lower bound on the total).
    column, columns : int
        The column of the (oriented, sorted) table being enumerated, of how many.
    """

    def __init__(self, workspace: int, needed: int, column: int, columns: int):
        self.workspace, self.needed, self.column, self.columns = workspace, needed, column, columns
        super().__init__(f"the exact r x c enumeration needs more than workspace={workspace:,} cells "
                         f"(at least {needed:,} by column {column} of {columns})")


class _Budget:
    """Cells left of the workspace; :meth:`charge` raises before an allocation that would not fit."""

    def __init__(self, workspace: int, columns: int):
        self.workspace, self.used, self.column, self.columns = int(workspace), 0, 1, columns

    def fits(self, cells: int) -> bool:
        return self.used + cells <= self.workspace

    def charge(self, cells: int) -> None:
        if not self.fits(cells):
            raise WorkspaceExceeded(self.workspace, self.used + int(cells), self.column, self.columns)
        self.used += int(cells)


def _extremes(total: int, caps: tuple[int, ...], lf: np.ndarray) -> tuple[float, float]:
    """Smallest and largest ``sum log(x_i!)`` over integers ``0 <= x_i <= caps_i`` summing to ``total``.

    ``log(x!)`` is convex, so the minimum is the even spread with saturated caps filled
    first (water-filling) and the maximum sits at a vertex of the feasible polytope:
    every ``x_i`` at 0 or its cap except at most one. Vertices are listed for up to 12
    caps; beyond that ``log(total!)`` (superadditivity) bounds the maximum.
    """
    caps = sorted(caps)
    low, remaining, parts = 0.0, total, len(caps)
    for cap in caps:
        if cap <= remaining // parts:
            low += lf[cap]
            remaining -= cap
            parts -= 1
            continue
        q, r = divmod(remaining, parts)
        low += r * lf[q + 1] + (parts - r) * lf[q]
        break
    if len(caps) == 2:  # one free coordinate, convex along the segment: the larger end
        x = (max(0, total - caps[1]), min(caps[0], total))
        return float(low), float(max(lf[x[0]] + lf[total - x[0]], lf[x[1]] + lf[total - x[1]]))
    if len(caps) > 12:
        return float(low), float(lf[total])
    high = -np.inf
    for full in itertools.product((False, True), repeat=len(caps)):
        used = sum(c for c, f in zip(caps, full) if f)
        rest = total - used
        if rest < 0:
            continue
        base = sum(lf[c] for c, f in zip(caps, full) if f)
        if rest == 0:
            high = max(high, base)
        elif any(not f and c >= rest for c, f in zip(caps, full)):
            high = max(high, base + lf[rest])
    return float(low), float(high)


def _compositions(total: int, caps, budget: _Budget | None = None) -> np.ndarray:
    """All integer rows ``0 <= x_i <= caps_i`` with sum ``total``, as an ``(m, len(caps))`` array.

    With ``budget``, ``m * len(caps)`` cells are charged to it; every prefix is completable,
    so no intermediate list is longer than the result and the check comes before any
    allocation past the budget.
    """
    caps = [int(c) for c in caps]
    rows = np.zeros((1, 0), dtype=np.int64)
    sums = np.zeros(1, dtype=np.int64)
    for i, cap in enumerate(caps[:-1]):
        later = sum(caps[i + 1:])
        lo = np.maximum(0, total - sums - later)
        hi = np.minimum(cap, total - sums)
        counts = np.maximum(hi - lo + 1, 0)
        if budget is not None and not budget.fits(int(counts.sum()) * len(caps)):
            budget.charge(int(counts.sum()) * len(caps))  # raises
        parent = np.repeat(np.arange(sums.size), counts)
        x = lo[parent] + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        rows = np.column_stack([rows[parent], x])
        sums = sums[parent] + x
    last = total - sums
    keep = last <= caps[-1]
    out = np.column_stack([rows[keep], last[keep]])
    if budget is not None:
        budget.charge(out.size)
    return out


def _paths(values: np.ndarray, weights: np.ndarray) -> tuple:
    """Paths into a node: partial V, multiplicities, min and max V, log sum of w exp(-V)."""
    vmin = float(values.min())  # logsumexp(-values, b=weights), without scipy's per-call overhead
    return values, weights, vmin, float(values.max()), float(np.log(weights @ np.exp(vmin - values)) - vmin)


def fisher_rxc(counts: np.ndarray, workspace: int = WORKSPACE) -> tuple[float, int]:
    """Exact two-sided p-value of Fisher's test for an r x c table (network algorithm).

    A table's probability is ``exp(K - V)`` with ``V = sum log(x_ij!)``; tables with
    ``V >= V_obs - log(1 + 1e-7)`` count. Columns are filled one at a time; a node is the
    sorted vector of remaining row sums (rows are exchangeable for what is left), holding
    the distinct partial ``V`` of the paths reaching it with their multiplicities. A path
    is settled when bounds on the rest of ``V`` show that all (or none) of its
    completions count; the total probability of the completions of a node is known in
    closed form. The bounds relax the sub-table to one column (or one row) at a time
    with the other margin as caps, solved exactly by a small dynamic programme.

    Returns the p-value and the cells charged to ``workspace`` (module docstring);
    raises :class:`WorkspaceExceeded` rather than pass it.
    """
    t = counts if counts.shape[0] <= counts.shape[1] else counts.T
    rows = tuple(int(v) for v in t.sum(axis=1))
    cols = sorted(int(v) for v in t.sum(axis=0))
    n = sum(rows)
    lf = special.gammaln(np.arange(n + 2) + 1.0)
    K = float(lf[list(rows)].sum() + lf[cols].sum() - lf[n])
    threshold = float(lf[t].sum()) - _LOG_TOL
    cache: dict[tuple, tuple[float, float]] = {}
    budget = _Budget(workspace, len(cols))

    def extremes(total: int, caps: tuple[int, ...]) -> tuple[float, float]:
        key = (total, tuple(sorted(c for c in caps if c > 0)))
        if key not in cache:
            cache[key] = _extremes(key[0], key[1], lf)
        return cache[key]

    def bounds(child: tuple[int, ...], rest: list[int]) -> tuple[float, float, float]:
        by_col = [extremes(cj, child) for cj in rest]
        by_row = [extremes(ri, tuple(rest)) for ri in child if ri > 0]
        floor = max(sum(b[0] for b in by_col), sum(b[0] for b in by_row))
        ceiling = min(sum(b[1] for b in by_col), sum(b[1] for b in by_row))
        # log of the sum over completions of 1 / prod(x!): m! / (prod R! prod C!)
        log_mass = float(lf[sum(child)] - lf[list(child)].sum() - lf[rest].sum())
        return floor, ceiling, log_mass

    p = 0.0
    nodes = {tuple(sorted(rows)): _paths(np.zeros(1), np.ones(1))}
    for k, ck in enumerate(cols[:-1]):
        rest = cols[k + 1:]
        budget.column = k + 1
        kept: list[tuple] = []  # (child ids, partial V, weights) of unsettled paths
        # when the next column is the last, each child has one completion (the last column
        # takes what is left): its V is known, so no bounds, no merging of children, and the
        # moves are listed one node at a time (2 x c tables spend most of their time here)
        forced = k == len(cols) - 2
        if forced:
            stage = [(remaining, None) for remaining in nodes]
        else:
            stage = [(remaining, _compositions(ck, remaining, budget)) for remaining in nodes]
            children = np.concatenate([np.sort(np.asarray(rem) - mv, axis=1) for rem, mv in stage])
            if (n + 1.0) ** children.shape[1] < 2.0**62:  # one integer per child: faster unique
                codes = children @ (n + 1) ** np.arange(children.shape[1], dtype=np.int64)
                _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
                unique = children[first]
            else:
                unique, inverse = np.unique(children, axis=0, return_inverse=True)
            budget.charge(len(unique) * NODE_CELLS)
            names = [tuple(c) for c in unique.tolist()]
            table = np.array([bounds(c, rest) for c in names])
            inverse = inverse.ravel()
            start = 0
        for remaining, moves in stage:
            values, weights, vmin, vmax, log_sum = nodes[remaining]
            if forced:  # floor == ceiling: every path below is settled, none is kept
                moves = _compositions(ck, remaining, budget)
                floor = ceiling = lf[np.asarray(remaining) - moves].sum(axis=1)
                log_mass = -floor  # m! / (prod R! prod C!) with one column: 1 / prod(R!)
            else:
                child_ids = inverse[start:start + len(moves)]
                start += len(moves)
                floor, ceiling, log_mass = table[child_ids].T
            steps = lf[moves].sum(axis=1)
            every = vmin + steps + floor >= threshold  # every completion of every path counts
            p += float(np.exp(K + log_sum - steps[every] + log_mass[every]).sum())
            mixed = np.flatnonzero(~every & (vmax + steps + ceiling >= threshold))
            if mixed.size == 0:  # the other moves: no completion counts
                continue
            budget.charge(values.size * mixed.size)
            total = values[:, None] + steps[mixed][None, :]  # paths x moves
            all_in = total + floor[mixed] >= threshold
            if all_in.any():
                terms = np.exp(K - total + log_mass[mixed]) * weights[:, None]
                p += float(terms[all_in].sum())
            path, move = np.nonzero(~all_in & (total + ceiling[mixed] >= threshold))
            if path.size:
                kept.append((child_ids[mixed][move], total[path, move], weights[path]))
        nodes = {}
        if not kept:
            break
        child_ids = np.concatenate([c for c, _, _ in kept])
        values = np.concatenate([v for _, v, _ in kept])
        weights = np.concatenate([w for _, _, w in kept])
        # merge paths that reach the same child with the same partial V
        order = np.lexsort((np.round(values * 1e9), child_ids))
        child_ids, values, weights = child_ids[order], values[order], weights[order]
        keys = np.round(values * 1e9)
        new = np.ones(values.size, dtype=bool)
        new[1:] = (child_ids[1:] != child_ids[:-1]) | (keys[1:] != keys[:-1])
        group = np.cumsum(new) - 1
        child_ids, values = child_ids[new], values[new]
        weights = np.bincount(group, weights=weights)
        starts = np.flatnonzero(np.r_[True, child_ids[1:] != child_ids[:-1]])
        for lo, hi in zip(starts, np.r_[starts[1:], child_ids.size]):
            nodes[names[child_ids[lo]]] = _paths(values[lo:hi], weights[lo:hi])
    for remaining, (values, weights, *_) in nodes.items():  # last column is forced
        total = values + float(lf[list(remaining)].sum())
        hit = total >= threshold
        p += float(np.sum(weights[hit] * np.exp(K - total[hit])))
    return float(min(1.0, p)), budget.used
