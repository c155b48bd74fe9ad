"""Exact mode, covariates: which patients carry which Table 1 value, fitted to Table 3 and Cox.

Why: Table 1 fixes how many patients of each RT group have each covariate level, not
which ones. Given the fitted PFS1 times and first-failure patterns, that choice decides
the Fine-Gray subdistribution hazard ratios of Table 3 (univariate and multivariable),
the multivariable Cox p-values of PFS1 and, for age and tumour size, the Mann-Whitney
tests of Table 1. :func:`fit_covariates` anneals it with count-preserving moves:

* binary Table 1 covariates: swap the values of two patients of the same RT group
  (metastatic sites only where a patient with 1-2 metastatic organs keeps at most two
  flagged sites, brain included);
* prior chemotherapy lines: swap two patients' lines (the paper gives no split by group);
* best response: swap SD with CR / PR between two patients (PD stays at the first scan);
* age, tumour size: swap two values within an RT group, or move one value by one year /
  0.1 cm (Table 1 medians and Mann-Whitney p are targets too).

Each move recomputes only the statistics that involve the moved covariate.
"""

from __future__ import annotations

import numpy as np

from failpattern.errors import ConvergenceError, InputError
from failpattern.simulate._anneal import Target, anneal, card_targets, term, zterm
from failpattern.simulate._exact_times import fg_uni, shr_terms
from failpattern.stats._coxfit import cox_fit
from failpattern.stats.finegray import fine_gray_fit
from failpattern.stats.twosample import _mann_whitney

__all__ = ["COX", "KEYS", "fit_covariates", "indicators"]

#: state key -> Table 3 covariate name
KEYS = {"age": "age", "male": "sex", "non_adeno": "histology", "ecog2": "ecog", "size": "tumor_size",
        "t34": "t_stage", "n0": "n_stage", "organs3": "met_organs", "lesions6": "met_lesions",
        "lung": "lung_met", "liver": "liver_met", "adrenal": "adrenal_met", "bone": "bone_met",
        "lines": "prior_lines", "resp": "objective_response"}
#: the multivariable Cox model of PFS1 (the plan's order) and the card ids of its p-values
COX = ("histology", "met_organs", "objective_response", "prior_local_therapy", "brain_met")
_COX_IDS = {"histology": "pfs1.multi.histology.p", "met_organs": "pfs1.multi.met_organs.p",
            "objective_response": "pfs1.multi.response.p"}
# published direction: adenocarcinoma and objective response longer PFS1, >= 3 organs shorter
_COX_SIGN = {"histology": -1.0, "met_organs": 1.0, "objective_response": -1.0}
_T3 = ("age", "sex", "histology", "ecog", "tumor_size", "t_stage", "n_stage", "met_organs", "met_lesions",
       "lung_met", "liver_met", "brain_met", "adrenal_met", "bone_met", "prior_lines", "prior_local_therapy",
       "objective_response")
_SITES = ("lung", "liver", "adrenal", "bone")


def indicators(st: dict, cx: dict, age_cut=50.0, size_cut=3.5) -> dict:
    """The plan's 0/1 groupings (level 1 = Table 3's comparison level) by Table 3 name."""
    return {"age": st["age"] > age_cut, "sex": st["male"] == 1, "histology": st["non_adeno"] == 0,
            "ecog": st["ecog2"] == 1, "tumor_size": st["size"] >= size_cut, "t_stage": st["t34"] == 1,
            "n_stage": st["n0"] == 0, "met_organs": st["organs3"] == 1, "met_lesions": st["lesions6"] == 1,
            "lung_met": st["lung"] == 1, "liver_met": st["liver"] == 1, "brain_met": cx["bbm"],
            "adrenal_met": st["adrenal"] == 1, "bone_met": st["bone"] == 1, "prior_lines": st["lines"] == 0,
            "prior_local_therapy": cx["prt"], "objective_response": st["resp"] <= 1}


def _site_violations(st, cx) -> int:
    """Patients with 1-2 metastatic organs but more than two flagged sites (brain included)."""
    flagged = cx["bbm"].astype(int) + sum(st[k].astype(int) for k in _SITES)
    return int(((st["organs3"] == 0) & (flagged > 2)).sum())


class CovariateLoss:
    """The covariate stage's loss terms, for PFS1 times ``t`` given per call.

    ``cx``: ``rt`` (0/1), ``bbm``, ``prt``, ``pd`` (bool), ``cause`` (1 OF, 2 DF/ODF, 0
    none), ``event`` (PFS1).
    """

    def __init__(self, card, cx: dict):
        self.multi = tuple(n for n in _T3 if f"t3.multi.{n}.shr" in card)
        ids = [f"t3.{k}.{n}.{s}" for n in _T3 for k in ("uni", "multi") for s in ("shr", "p")]
        ids += list(_COX_IDS.values()) + [f"t1.{v}.{s}" for v in ("age", "tumor_size")
                                          for s in ("median.all", "median.nonrt", "median.rt", "p")]
        tg = card_targets(card, ids)
        for v in ("age", "tumor_size"):
            for c in ("all", "nonrt", "rt"):
                i = f"t1.{v}.median.{c}"
                if i in tg:
                    tg[i] = Target(tg[i][0], 0.2)
        self.tg, self.cx = tg, cx
        self.cause, self.ev = cx["cause"], cx["event"].astype(np.int64)

    def uni(self, name, shr, z) -> float:
        key = f"t3.uni.{name}"
        if key + ".shr" not in self.tg:
            return 0.0
        return shr_terms(shr, z, self.tg[key + ".shr"], self.tg[key + ".p"])

    def uni_fit(self, name, x, t) -> float:
        return self.uni(name, *fg_uni(x, t, self.cause))

    def multi_fit(self, ind, t):
        """``[(SHR, z), ...]`` of the multivariable Fine-Gray model (order of ``multi``), or
        ``None`` when it cannot be fitted."""
        X = np.column_stack([ind[n] for n in self.multi]).astype(float)
        try:
            fit = fine_gray_fit(X, t, self.cause, variance="stata")
        except (ConvergenceError, InputError, np.linalg.LinAlgError):
            return None
        return [(float(np.exp(fit.coef[j])), float(fit.coef[j] / fit.se[j])) for j in range(len(self.multi))]

    def cox_z(self, ind, t):
        """Wald z of the multivariable Cox model of PFS1 (order of :data:`COX`), or ``None``."""
        X = np.column_stack([ind[n] for n in COX]).astype(float)
        try:
            fit = cox_fit(X, t, self.ev, strata_codes=None, ties="breslow", names=list(COX))
        except (ConvergenceError, InputError, np.linalg.LinAlgError):
            return None
        return fit.coef / np.sqrt(np.diag(fit.covariance))

    def multi_fg(self, ind, t) -> float:
        if not self.multi:
            return 0.0
        stats = self.multi_fit(ind, t)
        if stats is None:
            return 1e6
        tg = self.tg
        return sum(shr_terms(shr, z, tg[f"t3.multi.{n}.shr"], tg[f"t3.multi.{n}.p"])
                   for n, (shr, z) in zip(self.multi, stats))

    def cox(self, ind, t) -> float:
        z = self.cox_z(ind, t)
        if z is None:
            return 1e6
        return sum(zterm(float(z[j]), self.tg[_COX_IDS[n]], _COX_SIGN[n]) for j, n in enumerate(COX)
                   if _COX_IDS.get(n) in self.tg)

    def table1(self, var, values) -> float:
        rt, tg = self.cx["rt"], self.tg
        a, r = values[rt == 0], values[rt == 1]
        out = term(_mann_whitney(a, r, False)[2], tg[f"t1.{var}.p"]) if f"t1.{var}.p" in tg else 0.0
        for c, v in (("all", values), ("nonrt", a), ("rt", r)):
            if f"t1.{var}.median.{c}" in tg:
                t_med = tg[f"t1.{var}.median.{c}"]
                out += term(float(np.median(v)), t_med)
                out += (max(abs(float(np.median(v)) - t_med[0]) - 0.5, 0.0) / 0.02) ** 2  # wall at the tolerance
        return out


def covariate_moves(cx: dict):
    """``propose(rng, st, keys, weights)``: one count-preserving move of a covariate of
    ``keys`` (chosen with probability ∝ ``weights``); returns ``(state, (key,))`` or None."""
    rt = cx["rt"]
    groups = [np.flatnonzero(rt == g) for g in (0, 1)]
    not_pd = np.flatnonzero(~cx["pd"])
    everyone = np.arange(rt.size)

    def propose(rng, st, keys, weights=None):
        if len(keys) == 1:
            k = keys[0]
        else:
            k = keys[rng.choice(len(keys), p=weights / weights.sum())] if weights is not None \
                else keys[rng.integers(len(keys))]
        v = st[k]
        if k in ("age", "size") and rng.random() < 0.4:
            i = rng.integers(v.size)
            step = (1.0 if k == "age" else 0.1) * rng.choice((-2, -1, 1, 2))
            new = v.copy()
            new[i] = np.round(np.clip(v[i] + step, 20 if k == "age" else 0.5, 85 if k == "age" else 15), 1)
            return {**st, k: new}, (k,)
        if k == "resp":
            pool, flag = not_pd, v[not_pd] <= 1
        elif k == "lines":
            pool, flag = everyone, v == 0
        else:
            pool = groups[rng.integers(2)]
            flag = v[pool] == 1
        i = rng.integers(pool.size)
        other = np.flatnonzero(flag != flag[i])
        if not other.size:
            return None
        i, j = pool[i], pool[other[rng.integers(other.size)]]
        new = v.copy()
        new[i], new[j] = v[j], v[i]
        out = {**st, k: new}
        if k in _SITES + ("organs3",) and _site_violations(out, cx) > _site_violations(st, cx):
            return None
        return out, (k,)

    return propose


def fit_covariates(rng, card, cx: dict, st: dict, *, iters: int, polish: int | None = None) -> tuple[dict, dict]:
    """Anneal the covariate assignment ``st`` (see the module docstring).

    ``cx``: ``rt`` (0/1), ``bbm``, ``prt``, ``pd`` (bool), ``t`` (PFS1 months as stored),
    ``cause`` (1 OF, 2 DF/ODF, 0 none), ``event`` (PFS1). ``polish``: moves of the final
    :func:`~failpattern.simulate._exact_polish.polish_covariates` (default ``iters``; 0: neither
    it nor :func:`~failpattern.simulate._exact_solo.search_univariate`).
    Returns the state and its loss parts.
    """
    loss = CovariateLoss(card, cx)
    multi, t = loss.multi, cx["t"]
    move = covariate_moves(cx)

    def parts_for(allowed):
        def parts_of(st, changed, old):
            ind = indicators(st, cx)
            names = [KEYS[k] for k in (changed or allowed)]
            out = dict(old) if old is not None and changed is not None else {}
            for n in names:
                out[f"uni.{n}"] = loss.uni_fit(n, ind[n], t)
            if changed is None and joint:
                for n in ("brain_met", "prior_local_therapy"):
                    out[f"uni.{n}"] = loss.uni_fit(n, ind[n], t)
            if joint and (changed is None or any(n in multi for n in names)):
                out["multi"] = loss.multi_fg(ind, t)
            if joint and (changed is None or any(n in COX for n in names)):
                out["cox"] = loss.cox(ind, t)
            if "age" in (changed or allowed):
                out["t1.age"] = loss.table1("age", st["age"])
            if "size" in (changed or allowed):
                out["t1.tumor_size"] = loss.table1("tumor_size", st["size"])
            return out
        return parts_of

    def related(parts, k):
        n = KEYS[k]
        v = parts.get(f"uni.{n}", 0.0) + (parts.get("multi", 0.0) if n in multi else 0.0) \
            + (parts.get("cox", 0.0) if n in COX else 0.0)
        if k == "age":
            v += parts.get("t1.age", 0.0)
        if k == "size":
            v += parts.get("t1.tumor_size", 0.0)
        return v

    def propose(rng, st, parts):
        w = None if len(keys) == 1 else np.array([0.3 + min(related(parts, k), 50.0) for k in keys])
        return move(rng, st, keys, w)

    # 1. each covariate alone on its univariate model (and Table 1 test); 2. those in the
    # multivariable Fine-Gray / Cox models together; then both again, hotter (T0 = 10) and
    # cooler (T0 = 1), for the covariates outside the multivariable models and the joint set
    solo = [k for k in KEYS if KEYS[k] not in multi and KEYS[k] not in COX]
    together = [k for k in KEYS if k not in solo]
    for rnd, t_start in enumerate((3.0, 10.0, 1.0)):
        joint = False
        for k in (KEYS if rnd == 0 else solo):
            keys = [k]
            st, _ = anneal(rng, st, propose, parts_for((k,)), iters=iters // (25 if k in together else 10),
                           t_start=t_start)
        joint = True
        keys = together
        st, _ = anneal(rng, st, propose, parts_for(keys), iters=iters // (2 + 2 * rnd), t_start=t_start)
    # a last cold anneal that ranks states by how many numbers are outside (_exact_polish),
    # then a search of each univariate-only covariate (_exact_solo); both import this module
    from failpattern.simulate._exact_polish import polish_covariates
    from failpattern.simulate._exact_solo import search_univariate

    polish = iters if polish is None else polish
    st, _ = polish_covariates(rng, card, cx, st, iters=polish)
    if polish > 0:
        st = search_univariate(card, cx, st, rng=rng)
    keys = list(KEYS)
    return anneal(rng, st, propose, parts_for(keys), iters=0)
