"""Kaplan-Meier medians, log-rank tests (Fig. 1a-d) and the Cox models of PFS1.

Why this module exists: the paper's time-to-event results computed in SPSS 22
(Methods: "Kaplan-Meier ... log-rank test ... Cox proportional hazards
models ... SPSS version 22.0"). Each median is reported twice: in SPSS's
convention (first event time with S <= 0.5, CI median +/- 1.96 SE; this is
the row compared with the card) and in R's (``survfit``, ``conf.type =
"log"``, R's default), under the same id with ``.r`` appended. The Cox
models use Breslow's ties, as SPSS COXREG does. The paper's "median PFS1 ... not
significantly different among patients with OF, ODF, or DF" names no test; the plan
uses the log-rank test over the three patterns among the progressed (``pfs1.pattern.p``).

The fit layer (:mod:`failpattern.stats.fit`: ``km_fits``, ``logrank_fit``,
``coxph_fit``) is called on arrays of the already validated cohort;
``tests/test_plan.py`` checks each value against the public functions.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from failpattern.cohort.schema import PROGRESSION_PATTERNS
from failpattern.errors import ConvergenceError
from failpattern.stats.fit import coxph_fit, km_fits, logrank_fit
from failpattern.study.analyses._base import BINARIES, Context, group_without_events
from failpattern.study.design import PFS1_COX

__all__ = ["SURVIVAL", "run_survival", "survival_ids"]

#: Kaplan-Meier curves and log-rank comparisons:
#: (name, endpoint, cohort analysis, extra columns, group column,
#:  {group value: median id}, log-rank id). ``None`` as group: everyone.
SURVIVAL = (
    ("pfs1.all", "pfs1", "pfs1_km", (), None, {None: "pfs1.median.all"}, None),
    ("pfs1.by_bbm", "pfs1", "pfs1_predictors", ("brain_mets",), "brain_mets",
     {1: "pfs1.median.bbm", 0: "pfs1.median.no_bbm"}, "pfs1.bbm.p"),
    ("pfs1.bbm.by_prior_brain_rt", "pfs1", "pfs1_by_prior_brain_rt", (), "prior_brain_rt",
     {0: "pfs1.median.bbm_no_prior_brain_rt", 1: "pfs1.median.bbm_prior_brain_rt"},
     "pfs1.bbm.prior_brain_rt.p"),
    ("pfs1.by_prior_rt", "pfs1", "pfs1_by_prior_rt", (), "prior_rt",
     {1: "pfs1.median.prior_rt", 0: "pfs1.median.no_prior_rt"}, "pfs1.prior_rt.p"),
    ("pfs2.all", "pfs2", "pfs2_km", (), None, {None: "pfs2.median.all"}, None),
    ("pfs2.by_salvage_rt", "pfs2", "pfs2_by_salvage_rt", (), "salvage_rt",
     {1: "pfs2.median.salvage_rt", 0: "pfs2.median.no_salvage_rt"}, "pfs2.salvage_rt.p"),
    ("pfs2.by_cbpd", "pfs2", "pfs2_by_cbpd", (), "cbpd",
     {1: "pfs2.median.cbpd", 0: "pfs2.median.non_cbpd"}, "pfs2.cbpd.p"),
    ("os.all", "os", "os_km", (), None, {None: "os.median.all"}, None),
    ("os.by_any_rt", "os", "os_by_any_rt", (), "any_rt",
     {1: "os.median.rt", 0: "os.median.nonrt"}, "os.rt_vs_nonrt.p"),
)

_Z = float(ndtri(0.975))
#: Why an endpoint's Kaplan-Meier estimate is not run when its population is empty.
_NO_PATIENTS = {"pfs1": "PFS1 not estimable", "os": "OS not estimable",
                "pfs2": "no patient had a first progression, so PFS2 (which starts at it) is not estimable"}
_SURVIVAL_P_NOTE = ("the paper does not say log-rank or Cox; log-rank here (univariate; Cox p "
                    "under pfs1.uni.* and pfs1.multi.*)")


def survival_ids() -> list[str]:
    """Every id this module can produce (the SPSS ones; ``.r`` twins not listed)."""
    out = []
    for *_, medians, lr in SURVIVAL:
        out += list(medians.values()) + ([lr] if lr else [])
    for _, word in PFS1_COX:
        for kind in ("uni", "multi"):
            out += [f"pfs1.{kind}.{word}.hr", f"pfs1.{kind}.{word}.p"]
    return out + ["pfs1.pattern.p"]


def _km_rows(ctx: Context, id_: str, t, e, sel, n_excluded, analysis) -> None:
    key = id_.replace(".median", "")
    spss, r = km_fits(t, e, conf_types=("spss", "log"), alpha=0.05)  # one curve, both conventions
    ctx.models["km"][key] = spss
    ctx.models["km"][key + ".r"] = r
    note = "" if np.isfinite(spss.median) else "median not reached"
    ctx.add(id_, spss.median, ci=spss.median_ci, analysis=analysis, method="km_median",
            convention="spss22", n_used=t.size, n_excluded=n_excluded,
            note=note or "SPSS: first event time with S <= 0.5; CI median +/- 1.96 SE")
    ctx.add(id_ + ".r", r.median, ci=r.median_ci, analysis=analysis, method="km_median",
            convention="r", n_used=t.size, n_excluded=n_excluded,
            note=note or "R survfit: conf.type = 'log'")


def _comparison(ctx: Context, spec) -> None:
    name, endpoint, key, columns, group, medians, lr_id = spec
    ids = list(medians.values()) + ([lr_id] if lr_id else [])
    sel = ctx.select(name, key, columns, ids=ids)
    if sel is None:
        return
    t = ctx.values(f"{endpoint}_months")[sel.mask]
    e = ctx.values(f"{endpoint}_event")[sel.mask].astype(np.int64)
    if group is None:
        if t.size == 0:
            ctx.skip(name, ids, f"no patients: {_NO_PATIENTS[endpoint]}")
            return
        _km_rows(ctx, medians[None], t, e, sel, sel.n_excluded, name)
        return
    g = ctx.values(group)[sel.mask].astype(np.int64)
    for level, id_ in medians.items():
        m = g == level
        if not m.any():
            ctx.skip(name, [id_], f"no patient has {group} = {level}")
            continue
        _km_rows(ctx, id_, t[m], e[m], sel, sel.n_excluded, name)
    if lr_id is None:
        return
    levels = np.unique(g)
    if levels.size < 2:
        ctx.skip(name, [lr_id], "log-rank test not run: " + (f"it needs two groups, and every patient has "
                                                             f"{group} = {levels[0]}" if levels.size
                                                             else "no patients"))
        return
    if not e.any():
        ctx.skip(name, [lr_id], f"log-rank test not run: no {endpoint.upper()} events")
        return
    codes = np.searchsorted(levels, g)
    res = logrank_fit(t.astype(np.float64), e, codes, levels)
    ctx.models["logrank"][name] = res
    ctx.add(lr_id, res.p_value, sel=sel, analysis=name, method="logrank_p", convention="spss22",
            note=_SURVIVAL_P_NOTE if lr_id in ("pfs1.prior_rt.p", "pfs1.bbm.p")
            else f"log-rank by {group}, chi-square {res.statistic:.3f} on {res.df} df")


def _by_pattern(ctx: Context) -> None:
    """PFS1 by first-failure pattern among the progressed: the paper says only "not
    significantly different"; log-rank over OF / DF / ODF (every patient has an event)."""
    name, id_ = "pfs1.by_pattern", "pfs1.pattern.p"
    sel = ctx.select(name, "pfs1_by_failure_pattern", ids=[id_])
    if sel is None:
        return
    pattern = ctx.values("failure_pattern")[sel.mask]
    present = [p for p in PROGRESSION_PATTERNS if (pattern == p).any()]
    if len(present) < 2:
        ctx.skip(name, [id_], "log-rank test not run: it needs patients of two failure patterns, and "
                 + (f"every patient with a first progression has pattern {present[0]}" if present
                    else "no patient has a first progression"))
        return
    codes = np.select([pattern == p for p in present], np.arange(len(present))).astype(np.int64)
    levels = np.array(present, dtype=object)
    t = ctx.values("pfs1_months")[sel.mask].astype(np.float64)
    e = ctx.values("pfs1_event")[sel.mask].astype(np.int64)
    res = logrank_fit(t, e, codes, levels)
    ctx.models["logrank"][name] = res
    ctx.add(id_, res.p_value, sel=sel, analysis=name, method="logrank_p", convention="spss22",
            note=f"the paper names no test; log-rank by failure pattern among progressed patients, "
                 f"chi-square {res.statistic:.3f} on {res.df} df")


def _cox(ctx: Context, name: str, binaries, words, kind: str) -> None:
    ids = [f"pfs1.{kind}.{w}.{s}" for w in words for s in ("hr", "p")]
    made = ctx.design(name, "pfs1_predictors", binaries, ids)
    if made is None:
        return
    sel, X = made
    t = ctx.values("pfs1_months")[sel.mask]
    e = ctx.values("pfs1_event")[sel.mask].astype(np.int64)
    if not e.any():
        ctx.skip(name, ids, f"Cox model not estimable: no PFS1 events among its {t.size} patients")
        return
    empty = group_without_events(binaries, X, e)
    if empty:
        ctx.skip(name, ids, f"Cox model not estimable: no PFS1 event in the group {empty} (the hazard "
                            "ratio would be 0 or infinite)")
        return
    names = [b.name for b in binaries]
    try:
        res = coxph_fit(X, t, e, names=names, ties="breslow", alpha=0.05)
    except ConvergenceError as err:
        ctx.skip(name, ids, f"Cox model did not converge: {err}")
        return
    ctx.models["cox"][name] = res
    ctx.models["model_data"][name] = ("event", t, e, X, tuple(names))  # references, no copy: for diagnostics
    se = res.se
    z = res.coef / se
    p = 2.0 * ndtr(-np.abs(z))
    for j, (b, w) in enumerate(zip(binaries, words)):
        lab = f"{b.label}; HR of {b.levels[0]}"
        hr_ci = (np.exp(res.coef[j] - _Z * se[j]), np.exp(res.coef[j] + _Z * se[j]))
        ctx.add(f"pfs1.{kind}.{w}.hr", np.exp(res.coef[j]), ci=hr_ci, sel=sel,
                analysis=name, method="cox_hr", convention="spss22", note=lab + ", Breslow ties")
        ctx.add(f"pfs1.{kind}.{w}.p", p[j], sel=sel, analysis=name, method="cox_p",
                convention="spss22", note="Wald p, " + lab)


def run_survival(ctx: Context) -> None:
    """Add the Kaplan-Meier, log-rank and PFS1 Cox rows to ``ctx``."""
    for spec in SURVIVAL:
        _comparison(ctx, spec)
    _by_pattern(ctx)
    present = [(BINARIES[b], w) for b, w in PFS1_COX if ctx.has(BINARIES[b].column)]
    for b, w in PFS1_COX:
        if not ctx.has(BINARIES[b].column):
            ctx.skip(f"pfs1.cox.uni.{w}", [f"pfs1.{k}.{w}.{s}" for k in ("uni", "multi") for s in ("hr", "p")],
                     f"the cohort has no column {BINARIES[b].column}")
    for b, w in present:
        _cox(ctx, f"pfs1.cox.uni.{w}", [b], [w], "uni")
    if present:
        _cox(ctx, "pfs1.cox.multi", [b for b, _ in present], [w for _, w in present], "multi")
