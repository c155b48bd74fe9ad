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

from failpattern.simulate.generate import SITES, Batch
from failpattern.simulate.model import Params

__all__ = ["SWAPPABLE", "assemble", "baseline_details", "place_quantiles"]

#: Largest primary tumour (cm) of each T category T1, T2 in the AJCC 7th edition
#: (the edition in force for diagnoses of 2013-2018); T3/T4 may be by invasion at any size.
T_MAX_CM = (3.0, 7.0)


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


def baseline_details(skel, p: Params, design, rng: np.random.Generator) -> dict:
    """Ages, sizes and the detailed categories the skeleton leaves open.

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
    for g, col in ((0, "nonrt"), (1, "rt")):
        idx = np.flatnonzero(rt == g)
        a = card.get(f"t1.age.median.{col}")
        draws = _truncated_normal(rng.random(idx.size), p.age_median[g], p.age_sd, a.range_lower, a.range_upper)
        age[idx[rng.permutation(idx.size)]] = place_quantiles(draws, a.value, a.range_lower, a.range_upper, 0)
        s = card.get(f"t1.tumor_size.median.{col}")
        z = ndtri(np.clip(rng.random(idx.size), 1e-12, 1 - 1e-12))
        draws = np.exp(np.log(p.size_median[g]) + p.size_sigma * z)
        sizes = place_quantiles(draws, s.value, s.range_lower, s.range_upper, 1)
        # sizes beyond T2's largest go to T3-4 primaries; the rest at random
        big = sizes > T_MAX_CM[1]
        t_idx = idx[t34[idx]]
        if big.sum() > t_idx.size:
            big[np.argsort(-sizes)[t_idx.size:]] = False
        order = rng.permutation(t_idx.size)
        size[t_idx[order[: big.sum()]]] = sizes[big]
        rest = np.setdiff1d(idx, t_idx[order[: big.sum()]])
        size[rest[rng.permutation(rest.size)]] = sizes[~big]
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


def assemble(skel, details: Mapping, times: Mapping, overrides: Mapping | None = None) -> Batch:
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
                 pfs2_event=rep(skel.pfs2_event), os_d=times["os_d"], os_event=rep(skel.os_event))
