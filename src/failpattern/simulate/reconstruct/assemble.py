"""From a count skeleton, baseline details and event times to cohorts the plan can read.

Why this module exists: the reconstruction works on three layers (the count
skeleton, solved once; baseline details drawn once; latent times searched),
and the analysis plan reads cohorts. :func:`baseline_details` fills in what the
skeleton leaves open (exact ages and tumour sizes, ECOG score, T and N stage,
lesion count, prior lines), placing ages and sizes so that each RT group's
median and printed range come out as printed; :func:`assemble` stacks
``k`` candidate time sets over one skeleton into a
:class:`~failpattern.simulate.generate.Batch` of shape ``(k, n)``, the form the
simulator's frame writer and the batched plan take.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import ndtr, ndtri

from failpattern.simulate.generate import SITES, T_MAX_CM, Batch, calendar_for
from failpattern.simulate.model import Params

__all__ = ["SWAPPABLE", "assemble", "baseline_details", "fit_across_groups", "place_quantiles"]



def place_quantiles(values: np.ndarray, median: float, lo: float, hi: float, decimals: int) -> np.ndarray:
    """Sorted ``values`` moved the least so that, rounded, their median and range are as printed.

    The smallest becomes ``lo``, the largest ``hi``, the middle one (both middle ones
    for an even count) ``median``; the others are clipped into ``[lo, median]`` below
    the middle and ``[median, hi]`` above it, then rounded to ``decimals``.

    Parameters
    ----------
    values : numpy.ndarray
        Draws, any order (at least 3).
    median, lo, hi : float
        The printed median and range.
    decimals : int
        Decimals the variable is recorded with.

    Returns
    -------
    numpy.ndarray
        Sorted.
    """
    v = np.sort(np.asarray(values, float))
    m = v.size
    mid = (m - 1) // 2, m // 2
    below = np.arange(m) < mid[0]
    above = np.arange(m) > mid[1]
    v = np.where(below, np.clip(v, lo, median), np.where(above, np.clip(v, median, hi), median))
    v[0], v[-1] = lo, hi
    return np.round(v, decimals)


def _truncated_normal(u, mean, sd, lo, hi):
    a, b = ndtr((lo - mean) / sd), ndtr((hi - mean) / sd)
    return mean + sd * ndtri(np.clip(a + u * (b - a), 1e-15, 1 - 1e-15))


#: Most re-draws :func:`fit_across_groups` makes for one variable, and how many in a row that do
#: not bring it closer end the fit (each costs about 0.1 ms; a fit that reaches its targets stops
#: at once, and one whose p-value has no attainable printed value stops after the patience).
ACROSS_MOVES = 1500
ACROSS_PATIENCE = 300


def _side_cdf(dist: tuple, x):
    """CDF of a group's model distribution: ``("normal", mean, sd)`` or ``("lognormal", median, sigma)``."""
    kind, a, b = dist
    with np.errstate(divide="ignore"):
        z = (np.asarray(x, float) - a) / b if kind == "normal" else (np.log(np.asarray(x, float)) - np.log(a)) / b
    return ndtr(z)


def _side_quantile(dist: tuple, u):
    kind, a, b = dist
    z = ndtri(np.clip(u, 1e-15, 1 - 1e-15))
    return a + b * z if kind == "normal" else np.exp(np.log(a) + b * z)


def fit_across_groups(groups: list[np.ndarray], dists: list[tuple], decimals: int, gap, rng: np.random.Generator,
                      *, allowed=None, moves: int = ACROSS_MOVES, patience: int = ACROSS_PATIENCE) -> list[np.ndarray]:
    """Two groups' values re-drawn, each group's median and range kept, until what spans both prints as published.

    Each group's values come from :func:`place_quantiles` (its median and range as printed);
    what Table 1 prints across the groups (the median of all patients, the p-value comparing
    them) follows from how the two samples interleave. A value that is not one of its group's
    anchors (its smallest, largest or middle values) is re-drawn from the group's model
    distribution truncated to its side of the group median (so the median and range hold),
    and kept when the printed-unit gaps ``gap(values)`` do not grow, compared in order (the
    first gap before the second: a median, a count of values, before a p-value, which moves
    with every exchange of ranks); the fit stops when every gap is 0, after ``moves``
    re-draws, or after ``patience`` re-draws in a row that bring it no closer. The values
    stay draws of the model, conditioned on the printed numbers.

    Parameters
    ----------
    groups : list of numpy.ndarray
        Each group's sorted values, as :func:`place_quantiles` returns them (at least 3 each).
    dists : list of tuple
        Each group's model distribution: ``("normal", mean, sd)`` or ``("lognormal", median, sigma)``.
    decimals : int
        Decimals the variable is recorded with.
    gap : callable
        ``gap(groups)`` -> tuple of float, each 0 when its across-group number prints as published.
    rng : numpy.random.Generator
        The only source of randomness.
    allowed : callable, optional
        ``allowed(g, values)`` -> bool, a further rule on group ``g``'s values (e.g. no more
        tumours above T2's largest than T3-4 patients); a re-draw that breaks it is refused.
    moves, patience : int
        Most re-draws, and most re-draws in a row without progress.

    Returns
    -------
    list of numpy.ndarray
        The groups' values (no longer sorted).
    """
    vals = [np.array(v, float) for v in groups]
    free, windows = [], []
    for v in vals:
        m = v.size
        pos = np.arange(m)
        mid = ((m - 1) // 2, m // 2)
        free.append(np.flatnonzero(((pos > 0) & (pos < mid[0])) | ((pos > mid[1]) & (pos < m - 1))))
        med = v[list(mid)].mean()
        # a value below the middle stays in [smallest, median], one above it in [median, largest]
        windows.append((np.where(pos < mid[0], v[0], med), np.where(pos < mid[0], med, v[-1])))
    best = gap(vals)
    stale = 0
    for _ in range(moves):
        if not any(best) or stale >= patience:
            break
        stale += 1
        g = int(rng.integers(len(vals)))
        if free[g].size == 0:
            continue
        i = free[g][rng.integers(free[g].size)]
        lo, hi = windows[g][0][i], windows[g][1][i]
        f_lo, f_hi = _side_cdf(dists[g], lo), _side_cdf(dists[g], hi)
        x = float(np.clip(np.round(_side_quantile(dists[g], f_lo + rng.random() * (f_hi - f_lo)), decimals), lo, hi))
        old = vals[g][i]
        vals[g][i] = x
        if allowed is not None and not allowed(g, vals[g]):
            vals[g][i] = old
            continue
        now = gap(vals)
        if now <= best:
            stale = 0 if now < best else stale
            best = now
        else:
            vals[g][i] = old
    return vals


def _across_gap(card, name: str):
    """The printed-unit gaps of Table 1's all-patient median and group p-value of ``name``, as the plan
    computes them (median of all values; Mann-Whitney, tie-corrected, Non-RT vs RT), for
    :func:`fit_across_groups`; ``None`` when the card prints neither.

    A median off its printed value also counts the values that must still cross into the
    printed window (half of all values at or above its lower end, half at or below its upper
    end): a median moves only when the last of them crosses, and the count shows a search the
    way there.
    """
    from failpattern.simulate.reconstruct.targets import distances, targets_for
    from failpattern.stats.fit import mann_whitney_fit

    keys = [(f"t1.{name}.median.all", "value"), (f"t1.{name}.p", "value")]
    targets = targets_for(card).subset(keys)
    if len(targets) == 0:
        return None
    table = targets.table.set_index("id")
    ids = list(table.index)

    def gap(vals):
        both = np.concatenate(vals)
        got = {keys[0][0]: float(np.median(both)),
               keys[1][0]: mann_whitney_fit(vals[0], vals[1])[2] if np.ptp(both) > 0 else np.nan}
        d = dict(zip(ids, distances(targets, np.array([got[i] for i in ids])).tolist()))
        out = []
        for k, _ in keys:
            if k not in d:
                continue
            if k == keys[0][0] and d[k] > 0:
                half = table.at[k, "unit"] / 2
                lo, hi = table.at[k, "published"] - half, table.at[k, "published"] + half
                need = (both.size + 1) // 2
                d[k] += max(0, need - int((both >= lo).sum())) + max(0, need - int((both <= hi).sum()))
            out.append(d[k])
        return tuple(out)

    return gap


def baseline_details(skel, p: Params, design, rng: np.random.Generator) -> dict:
    """Ages, sizes and the detailed categories the skeleton leaves open.

    Each RT group's ages and sizes are drawn from the model and placed so that the group's
    median and range print as Table 1 prints them (:func:`place_quantiles`); then values
    that are not anchors are re-drawn until the all-patient median and the p-value between
    the groups print as published too (:func:`fit_across_groups`).

    Parameters
    ----------
    skel : CountSkeleton
        From :func:`~failpattern.simulate.reconstruct.counts.solve_counts`.
    p : Params
        Calibrated model parameters (age and size distributions, ECOG and stage splits).
    design : Design
        The card's medians and ranges of age and size per RT group.
    rng : numpy.random.Generator
        The only source of randomness.

    Returns
    -------
    dict
        ``age`` (years), ``size`` (cm, one decimal), ``ecog`` (0-2), ``t_stage`` (1-4),
        ``n_stage`` (0-3), ``lesions``, ``prior_lines`` (0-2): arrays of length n.
    """
    card = design.card
    rt = np.asarray(skel.rt)
    n = rt.size
    age = np.empty(n)
    size = np.empty(n)
    t34 = np.asarray(skel.t34) == 1
    idx = [np.flatnonzero(rt == g) for g in (0, 1)]
    ages, sizes = [], []
    for g, col in ((0, "nonrt"), (1, "rt")):
        a = card.get(f"t1.age.median.{col}")
        draws = _truncated_normal(rng.random(idx[g].size), p.age_median[g], p.age_sd, a.range_lower, a.range_upper)
        ages.append(place_quantiles(draws, a.value, a.range_lower, a.range_upper, 0))
        s = card.get(f"t1.tumor_size.median.{col}")
        z = ndtri(np.clip(rng.random(idx[g].size), 1e-12, 1 - 1e-12))
        draws = np.exp(np.log(p.size_median[g]) + p.size_sigma * z)
        sizes.append(place_quantiles(draws, s.value, s.range_lower, s.range_upper, 1))
    gap = _across_gap(card, "age")
    if gap is not None:
        ages = fit_across_groups(ages, [("normal", p.age_median[g], p.age_sd) for g in (0, 1)], 0, gap, rng)
    gap = _across_gap(card, "tumor_size")
    if gap is not None:
        # a tumour above T2's largest needs a T3-4 patient of its group
        room = [max(int(t34[idx[g]].sum()), int((sizes[g] > T_MAX_CM[1]).sum())) for g in (0, 1)]
        sizes = fit_across_groups(sizes, [("lognormal", p.size_median[g], p.size_sigma) for g in (0, 1)], 1, gap,
                                  rng, allowed=lambda g, v: int((v > T_MAX_CM[1]).sum()) <= room[g])
    for g in (0, 1):
        age[idx[g][rng.permutation(idx[g].size)]] = ages[g]
        # sizes beyond T2's largest go to T3-4 primaries; the rest at random
        big = sizes[g] > T_MAX_CM[1]
        t_idx = idx[g][t34[idx[g]]]
        if big.sum() > t_idx.size:
            big[np.argsort(-sizes[g])[t_idx.size:]] = False
        order = rng.permutation(t_idx.size)
        size[t_idx[order[: big.sum()]]] = sizes[g][big]
        rest = np.setdiff1d(idx[g], t_idx[order[: big.sum()]])
        size[rest[rng.permutation(rest.size)]] = sizes[g][~big]
    u = rng.random((5, n))
    ecog = np.where(np.asarray(skel.ecog2) == 1, 2, (u[0] < 0.6).astype(int))
    t_stage = np.where(t34, 3 + (u[1] >= 0.55), np.where(size <= T_MAX_CM[0], 1, 2))
    n_stage = np.where(np.asarray(skel.n0) == 1, 0, 1 + (u[2] > 0.15) + (u[2] > 0.55))
    organs = np.asarray(skel.organs)
    lesions = np.where(np.asarray(skel.lesions6) == 1, 6 + np.floor(-np.log1p(-u[3]) * 6),
                       np.minimum(np.maximum(organs, 1) + np.floor(u[3] * (6 - np.minimum(organs, 5))), 5))
    lesions = np.maximum(lesions, organs)
    lines = np.where(np.asarray(skel.pretreated) == 1, 1 + (u[4] < p.p_prior_lines[2] / max(
        p.p_prior_lines[1] + p.p_prior_lines[2], 1e-12)), 0)
    return {"age": age, "size": size, "ecog": ecog.astype(np.int8), "t_stage": t_stage.astype(np.int8),
            "n_stage": n_stage.astype(np.int8), "lesions": lesions.astype(np.int64),
            "prior_lines": lines.astype(np.int64)}


#: Fields a search may give per candidate (``assemble``'s ``overrides``): Table 1 values
#: exchanged between patients of one RT group, the best response and the prior lines.
SWAPPABLE = ("male", "non_adeno", "ecog", "n_stage", "age", "size", "t_stage", "response", "prior_lines")


def assemble(skel, details: Mapping, times: Mapping, overrides: Mapping | None = None, *, design) -> Batch:
    """Candidate cohorts as a :class:`Batch` of shape ``(k, n)``.

    Parameters
    ----------
    skel : CountSkeleton
        The skeleton (arrays of length n).
    details : Mapping
        From :func:`baseline_details` (length n).
    times : Mapping
        From :func:`~failpattern.simulate.reconstruct.times.times_from_latents`, arrays ``(k, n)``.
    overrides : Mapping, optional
        Per-candidate values ``(k, n)`` of fields in :data:`SWAPPABLE`, replacing the
        skeleton's or the details'.
    design : Design
        The study's design (its calendar: the date of day 0 and the cut-off).

    Returns
    -------
    Batch
    """
    k = np.asarray(times["pfs1_d"]).shape[0]
    overrides = dict(overrides or {})

    def rep(x):
        x = np.asarray(x)
        return x if x.ndim == 2 else np.broadcast_to(x, (k,) + x.shape)

    skel_fields = {f: overrides.pop(f) for f in ("male", "non_adeno", "response") if f in overrides}
    details = {**details, **overrides}

    base = skel

    class _Skel:  # the skeleton with the candidates' own values where given
        def __getattr__(self, name):
            return skel_fields[name] if name in skel_fields else getattr(base, name)

    skel = _Skel()

    mets = {s: rep(getattr(skel, f"met_{s}")) for s in ("lung", "liver", "brain", "adrenal", "bone")}
    fail = {s: rep(getattr(skel, f"fail_{s}")) for s in SITES}
    pattern = np.asarray(skel.pattern)
    return Batch(rt=rep(skel.rt), male=rep(skel.male), non_adeno=rep(skel.non_adeno), ecog=rep(details["ecog"]),
                 size=rep(details["size"]), t_stage=rep(details["t_stage"]), n_stage=rep(details["n_stage"]),
                 organs=rep(skel.organs), lesions=rep(details["lesions"]), mets=mets, age=rep(details["age"]),
                 prior_lines=rep(details["prior_lines"]), burden=rep(skel.burden), brain_rt=rep(skel.brain_rt),
                 xrt=rep(skel.xrt), response=rep(skel.response), start_d=times["start_d"], lag_d=times["lag_d"],
                 pfs1_d=times["pfs1_d"], pfs1_event=rep((pattern > 0).astype(np.int8)), pattern=rep(pattern),
                 location=rep(skel.location), fail=fail, btype=rep(skel.btype), elig=rep(skel.elig),
                 salvage=rep(skel.salvage), next=rep(skel.next), pfs2_d=times["pfs2_d"],
                 pfs2_event=rep(skel.pfs2_event), os_d=times["os_d"], os_event=rep(skel.os_event),
                 calendar=calendar_for(design))
