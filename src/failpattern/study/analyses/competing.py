"""Cumulative incidence of the failure patterns (Fig. 2) and Fine-Gray models of OF (Table 3).

Why this module exists: the paper treats the three patterns of first failure
as competing risks ("DF and ODF both defined as competing events", Stata
13.1 ``stcrreg``). Death without progression is not mentioned. Here it is a
**competing event by default**: it ends the time at risk of a first
progression for good, so censoring it would model a world in which the
patient could still fail at the original site. ``death="censored"``
(``run_plan(..., death_without_progression="censored")``) gives the other
reading, which is what ``stcrreg`` does if deaths were coded as censored.

* Fig. 2: Aalen-Johansen cumulative incidence of OF, DF, ODF (causes 1-3,
  death 4) and of any progression (death competing), at the card's time
  points, with a plain 95% CI from cuminc's variance. Ids ``cif.<pattern>.<t>m``.
* The card's "cumulative actuarial rates of any progression" (76.9% and 90.4%)
  are, as its ``inconsistency`` notes show, the share of the progressed
  patients who had progressed by 12 and 24 months (40/52, 47/52); that crude
  rate is computed for the card ids ``pattern.any.rate_<t>m``.
* Table 3: univariate and multivariable Fine-Gray models of OF with the
  paper's groupings (:data:`~failpattern.study.analyses._base.BINARIES`),
  ``variance="stata"`` (``stcrreg``'s robust variance with the n/(n-1) factor).
  The card has no Gray's test, so none is reported. The models are prepared
  first, the one-covariate models on the same patients fitted together
  (:func:`~failpattern.stats.fit.finegray_fit_univariate`), then reported in the paper's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from failpattern.errors import ConvergenceError, InputError
from failpattern.stats.cif import cumulative_incidence
from failpattern.stats.fit import (
    FineGrayFit,
    FineGrayPrepared,
    FineGrayTimes,
    finegray_fit,
    finegray_fit_univariate,
    finegray_prepare,
    finegray_prepare_times,
)
from failpattern.study.analyses._base import BINARIES, Context, group_without_events
from failpattern.study.design import T3_COVARIATES, landmark_tag

__all__ = ["PATTERN_CODES", "competing_ids", "run_competing"]

#: Cause codes of the cumulative incidence (0 = censored).
PATTERN_CODES = {"OF": 1, "DF": 2, "ODF": 3, "death": 4}

_Z = float(ndtri(0.975))


def competing_ids(settings) -> list[str]:
    """Every id this module can produce with ``settings``."""
    out = []
    for t in settings.landmarks:
        out += [f"cif.{p}.{landmark_tag(t)}" for p in ("of", "df", "odf", "any")]
        out.append(f"pattern.any.rate_{landmark_tag(t)}")
    for name in T3_COVARIATES:
        out += [f"t3.uni.{name}.shr", f"t3.uni.{name}.p"]
    for name in settings.t3_multi:
        out += [f"t3.multi.{name}.shr", f"t3.multi.{name}.p"]
    return out


def _cif(ctx: Context) -> None:
    landmarks = ctx.settings.landmarks
    ids = [f"cif.{p}.{landmark_tag(t)}" for t in landmarks for p in ("of", "df", "odf", "any")]
    sel = ctx.select("pattern.cif", "failure_pattern_cif", ids=ids)
    if sel is None:
        return
    m = sel.mask
    t = ctx.values("pfs1_months")[m]
    pattern = ctx.values("failure_pattern")[m]
    cause = np.array([PATTERN_CODES.get(p, 0) if p is not None else 0 for p in pattern], dtype=np.int64)
    if not cause.any():
        ctx.skip("pattern.cif", ids, "cumulative incidence not estimable: no first failure (progression or "
                                     "death without progression) in the cohort")
        return
    any_cause = np.where((cause >= 1) & (cause <= 3), 1, np.where(cause == 4, 2, 0))
    fits = {"patterns": cumulative_incidence(t, cause), "any": cumulative_incidence(t, any_cause)}
    ctx.models["cif"].update(fits)
    times = np.asarray(landmarks, dtype=np.float64)
    for word, fit, code in (("of", fits["patterns"], 1), ("df", fits["patterns"], 2),
                            ("odf", fits["patterns"], 3), ("any", fits["any"], 1)):
        if code not in fit.causes:
            est = var = np.zeros(times.size)  # no event of this cause: incidence 0
            est = np.where(times > t.max(), np.nan, est)
        else:
            est, var = fit.at(times, cause=code), fit.variance_at(times, cause=code)
        for tt, f, v in zip(landmarks, est, var):
            half = _Z * np.sqrt(v)
            ended = "" if f == f else f"not estimable: follow-up ends at {t.max():g} months, before {tt:g}; "
            ctx.add(f"cif.{word}.{landmark_tag(tt)}", 100 * f, sel=sel, analysis="pattern.cif", method="cif_at",
                    convention="r", ci=(100 * max(f - half, 0.0), 100 * min(f + half, 1.0)),
                    note=f"{ended}Aalen-Johansen ({'any progression' if word == 'any' else word.upper()}; "
                         "death without progression competing), cmprsk::cuminc; plain 95% CI")


def _crude_rates(ctx: Context) -> None:
    ids = [f"pattern.any.rate_{landmark_tag(t)}" for t in ctx.settings.landmarks]
    sel = ctx.select("pattern.rate", "failure_pattern_cif", ids=ids)
    if sel is None:
        return
    prog = sel.mask & ctx.progressed
    t = ctx.values("pfs1_months")[prog]
    if t.size == 0:
        ctx.skip("pattern.rate", ids, "share progressed by each time not computed: no patient had a first "
                                      "progression")
        return
    for tt in ctx.settings.landmarks:
        k = np.count_nonzero(t <= tt)
        ctx.add(f"pattern.any.rate_{landmark_tag(tt)}", 100.0 * k / t.size, sel=sel, analysis="pattern.rate",
                method="rate", n_used=t.size,
                note=f"{k}/{t.size} of the patients with a first progression had it by {tt:g} months "
                     "(the card shows the paper's 'actuarial rate' is this crude share)")


@dataclass
class _Model:
    """One Fine-Gray model of OF, prepared (``prep``) or with the reasons it cannot be fitted."""

    name: str
    binaries: list
    kind: str
    ids: list
    skipped: list                    # entries for ctx.skipped, in the order they arose
    sel: object = None
    prep: FineGrayPrepared | None = None
    times: FineGrayTimes | None = None
    fitted: FineGrayFit | None = None  # fitted already (with the other models)
    data: tuple | None = None        # (t, cause, X) of a large model, prepared only when fitted


def _prepare(ctx: Context, name: str, binaries, kind: str, cause: np.ndarray, shared: dict) -> _Model:
    """Select the patients and prepare the kernel's arrays; ``shared`` holds the kernel's
    time tables by patient selection (most of Table 3 is on the same patients)."""
    ids = [f"t3.{kind}.{b.name}.{s}" for b in binaries for s in ("shr", "p")]
    mark = len(ctx.skipped)
    made = ctx.design(name, "of_predictors", binaries, ids)
    model = _Model(name, list(binaries), kind, ids, ctx.skipped[mark:])
    del ctx.skipped[mark:]  # recorded again in _report, in the order of the models
    if made is None:
        return model
    model.sel, X = made
    m = model.sel.mask
    c = cause[m]
    if not (c == 1).any():
        model.skipped.append({"analysis": name, "ids": tuple(ids), "reason": (
            f"Fine-Gray model not estimable: no original-site failure (OF) among its {c.size} patients")})
        return model
    empty = group_without_events(model.binaries, X, c == 1)
    if empty:
        model.skipped.append({"analysis": name, "ids": tuple(ids), "reason": (
            f"Fine-Gray model not estimable: no original-site failure (OF) in the group {empty} (the "
            "subdistribution hazard ratio would be 0 or infinite)")})
        return model
    t = ctx.values("pfs1_months")[m]
    ctx.models["model_data"][name] = ("cause", t, c, X, tuple(b.name for b in binaries))  # references, no copy
    # fine_gray_fit(X, t, c, names=..., variance="stata"), in steps: the sort and the
    # censoring weights are computed once for all the models of the same patients
    key = m.tobytes()
    if key not in shared:
        shared[key] = (t, c, finegray_prepare_times(t, c, cause_of_interest=1))
    t, c, model.times = shared[key]
    if model.times.dense is None:  # large: not batched, so prepared in _report, one model's arrays at a time
        model.data = (t, c, X)
    else:
        model.prep = finegray_prepare(t, c, X, cause_of_interest=1, times=model.times)
    return model


def _fit_together(models: list[_Model]) -> None:
    """Fit the one-covariate models on the same patients at once (``finegray_fit_univariate``)."""
    groups: dict[int, list[_Model]] = {}
    for m in models:
        if m.prep is not None and m.prep.x.shape[1] == 1 and m.times.dense is not None:
            groups.setdefault(id(m.times), []).append(m)
    for group in groups.values():
        if len(group) > 1:
            fits = finegray_fit_univariate(group[0].times, [m.prep for m in group], tol=1e-9,
                                           max_iter=50)
            for m, fit in zip(group, fits):
                m.fitted = fit  # None: the one-fit kernel fits it (and reports any failure)


def _report(ctx: Context, model: _Model) -> None:
    """Fit (unless fitted with the others) and add the rows."""
    ctx.skipped.extend(model.skipped)
    if model.prep is None and model.data is None:
        return
    name, binaries, kind, sel = model.name, model.binaries, model.kind, model.sel
    prep = model.prep if model.prep is not None else finegray_prepare(*model.data, cause_of_interest=1,
                                                                      times=model.times)
    model.prep = model.data = None  # the kernel's arrays (n x (2p + 2) and more) go with this fit
    try:
        fit = finegray_fit(prep, names=tuple(b.name for b in binaries), cause_of_interest=1,
                           variance="stata", alpha=0.05, tol=1e-9, max_iter=50, fitted=model.fitted)
    except (ConvergenceError, InputError) as err:
        ctx.skip(name, model.ids, f"Fine-Gray model failed: {err}")
        return
    ctx.models["finegray"][name] = fit
    se = fit.se
    p = 2.0 * ndtr(-np.abs(fit.coef / se))
    death = ctx.settings.death
    for j, b in enumerate(binaries):
        lab = f"{b.label}; SHR of {b.levels[0]}; DF, ODF" + (" and death" if death == "competing" else "") \
            + " competing" + ("" if death == "competing" else ", death censored")
        ci = (np.exp(fit.coef[j] - _Z * se[j]), np.exp(fit.coef[j] + _Z * se[j]))
        ctx.add(f"t3.{kind}.{b.name}.shr", np.exp(fit.coef[j]), ci=ci, sel=sel,
                analysis=name, method="finegray_shr", convention="stata13", note=lab)
        ctx.add(f"t3.{kind}.{b.name}.p", p[j], sel=sel, analysis=name, method="finegray_p",
                convention="stata13", note="Wald p (stcrreg robust variance), " + lab)


def run_competing(ctx: Context) -> None:
    """Add the cumulative-incidence and Fine-Gray rows to ``ctx``."""
    _cif(ctx)
    _crude_rates(ctx)
    pattern = ctx.values("failure_pattern")
    death_code = 2 if ctx.settings.death == "competing" else 0
    cause = np.select([pattern == "OF", np.isin(pattern, ("DF", "ODF")), pattern == "death"],
                      [1, 2, death_code], 0).astype(np.int64)
    shared: dict = {}
    models = []
    for name in T3_COVARIATES:
        b = BINARIES[name]
        if not ctx.has(b.column):
            models.append(_Model(f"t3.uni.{name}", [b], "uni", [], [{
                "analysis": f"t3.uni.{name}", "reason": f"the cohort has no column {b.column}",
                "ids": tuple(f"t3.{k}.{name}.{s}" for k in ("uni", "multi") for s in ("shr", "p"))}]))
            continue
        models.append(_prepare(ctx, f"t3.uni.{name}", [b], "uni", cause, shared))
    multi = [BINARIES[n] for n in ctx.settings.t3_multi if ctx.has(BINARIES[n].column)]
    if multi:
        models.append(_prepare(ctx, "t3.multi", multi, "multi", cause, shared))
    _fit_together(models)
    for model in models:
        _report(ctx, model)
