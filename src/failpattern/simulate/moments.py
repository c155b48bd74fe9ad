"""The published numbers the simulator reproduces, computed on simulated cohorts.

Why: calibration and its report compare each study-card target (by id) with the
model's expected value over many simulated cohorts. This module is the one place
that says how each id is computed from a :class:`~failpattern.simulate.generate.Batch`
(:data:`TARGETS`), so the calibration, the benchmark, the tests and a user's own
card all use the same definitions. ``docs/simulator.md`` lists the ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from failpattern.simulate._km import km_medians, logrank_z
from failpattern.simulate.generate import DPM, SITES, Batch

__all__ = ["TARGETS", "Target", "expected", "per_cohort"]


@dataclass(frozen=True)
class Target:
    """How one study-card id is computed on simulated cohorts.

    Attributes
    ----------
    kind : str
        ``count`` (expected value = mean over cohorts), ``median`` (a per-cohort
        median statistic; expected value = median over cohorts, a median not
        reached counting as +inf), ``p`` (a p-value, per cohort; median over cohorts).
    fn : callable
        Batch -> array of shape (replicates,).
    """

    kind: str
    fn: Callable
    z: Callable | None = None


def _n(mask_fn):
    return Target("count", lambda b: mask_fn(b).sum(1).astype(float))


def _km(which: str, mask_fn):
    def fn(b: Batch):
        if which == "pfs1":
            t, e = b.pfs1_d / DPM, b.pfs1_event
        else:
            t, e = b.pfs2_d / DPM, b.pfs2_event
        return km_medians(t, e, mask_fn(b))
    return Target("median", fn)


def _prog(b):
    return b.pattern > 0


def _both(f, g):
    return lambda b: f(b) & g(b)


def _code(attr: str, code: int):
    return lambda b: getattr(b, attr) == code


def _met(site: str, value: int):
    return lambda b: b.mets[site] == value


def _loc(pf, code: int):
    return lambda b: pf(b) & (b.location == code)


def _site(pf, site: str):
    return lambda b: pf(b) & (b.fail[site] == 1)


def _group_median(gf, attr: str, decimals: int):
    return lambda b: np.nanmedian(np.where(gf(b), np.round(getattr(b, attr), decimals), np.nan), 1)


def _build() -> dict[str, Target]:
    T: dict[str, Target] = {}
    grp = {"all": lambda b: np.ones(b.shape, bool), "rt": lambda b: b.rt == 1, "nonrt": lambda b: b.rt == 0}
    flags = {"sex.male": lambda b: b.male == 1, "sex.female": lambda b: b.male == 0,
             "histology.adeno": lambda b: b.non_adeno == 0, "histology.non_adeno": lambda b: b.non_adeno == 1,
             "ecog.ecog0_1": lambda b: b.ecog <= 1, "ecog.ecog2": lambda b: b.ecog == 2,
             "t_stage.t1_2": lambda b: b.t_stage <= 2, "t_stage.t3_4": lambda b: b.t_stage >= 3,
             "n_stage.n0": lambda b: b.n_stage == 0, "n_stage.n1_3": lambda b: b.n_stage >= 1,
             "met_organs.organs1_2": lambda b: b.organs <= 2, "met_organs.organs3plus": lambda b: b.organs >= 3,
             "met_lesions.lesions1_5": lambda b: b.lesions <= 5, "met_lesions.lesions6plus": lambda b: b.lesions >= 6}
    for site in ("lung", "liver", "brain", "adrenal", "bone"):
        flags[f"{site}_met.yes"] = _met(site, 1)
        flags[f"{site}_met.no"] = _met(site, 0)
    for name, f in flags.items():
        for g, gf in grp.items():
            T[f"t1.{name}.{g}.n"] = _n(_both(f, gf))
    for g, gf in grp.items():
        T[f"t1.age.median.{g}"] = Target("median", _group_median(gf, "age", 0))
        T[f"t1.tumor_size.median.{g}"] = Target("median", _group_median(gf, "size", 1))
    T["rt_course.n"] = _n(lambda b: b.rt == 1)
    T["bbm.oligo.n"] = _n(lambda b: b.burden == 1)
    T["bbm.multiple.n"] = _n(lambda b: b.burden == 2)
    T["treatment.first_line.n"] = _n(lambda b: b.prior_lines == 0)
    T["treatment.pretreated.n"] = _n(lambda b: b.prior_lines > 0)
    T["prior_rt.n"] = _n(lambda b: (b.brain_rt > 0) | (b.xrt > 0))
    T["prior_rt.brain.n"] = _n(lambda b: b.brain_rt > 0)
    T["prior_rt.thoracic.n"] = _n(lambda b: np.isin(b.xrt, (1, 4)))
    T["prior_rt.bone.n"] = _n(lambda b: np.isin(b.xrt, (2, 4)))
    T["prior_rt.adrenal.n"] = _n(lambda b: b.xrt == 3)
    T["prior_rt.extracranial.n"] = _n(lambda b: b.xrt > 0)
    T["prior_rt.srs_oligo.n"] = _n(lambda b: (b.brain_rt == 1) & (b.burden == 1))
    T["prior_rt.srs_multiple.n"] = _n(lambda b: (b.brain_rt == 1) & (b.burden == 2))
    T["prior_rt.wbrt_oligo.n"] = _n(lambda b: (b.brain_rt == 2) & (b.burden == 1))
    T["prior_rt.wbrt_multiple.n"] = _n(lambda b: (b.brain_rt == 2) & (b.burden == 2))
    T["prior_rt.wbrt.n"] = _n(lambda b: b.brain_rt == 2)
    T["bbm.no_prior_brain_rt.n"] = _n(lambda b: (b.bbm == 1) & (b.brain_rt == 0))
    T["bbm.oligo_no_prior_brain_rt.n"] = _n(lambda b: (b.burden == 1) & (b.brain_rt == 0))
    for k, code in (("cr", 0), ("pr", 1), ("sd", 2), ("pd", 3)):
        T[f"response.{k}.n"] = _n(_code("response", code))
    T["followup.median"] = Target("median", lambda b: np.median(b.os_d / DPM, 1))
    T["progression1.n"] = _n(_prog)
    T["pfs1.median.all"] = _km("pfs1", lambda b: np.ones(b.shape, bool))
    T["pfs1.median.bbm"] = _km("pfs1", lambda b: b.bbm == 1)
    T["pfs1.median.bbm_prior_brain_rt"] = _km("pfs1", lambda b: b.brain_rt > 0)
    T["pfs1.median.bbm_no_prior_brain_rt"] = _km("pfs1", lambda b: (b.bbm == 1) & (b.brain_rt == 0))
    for k, code in (("of", 1), ("df", 2), ("odf", 3)):
        T[f"pattern.{k}.n"] = _n(_code("pattern", code))

    def brain(b):
        return b.fail["brain"] == 1

    T["brain_pd.n"] = _n(brain)
    T["brain_pd.bbm.n"] = _n(lambda b: brain(b) & (b.bbm == 1))
    T["brain_pd.no_bbm.n"] = _n(lambda b: brain(b) & (b.bbm == 0))
    T["brain_pd.bbm_prior_brain_rt.n"] = _n(lambda b: brain(b) & (b.brain_rt > 0))
    T["brain_pd.bbm_no_prior_brain_rt.n"] = _n(lambda b: brain(b) & (b.bbm == 1) & (b.brain_rt == 0))
    T["multi_pd.bbm.n"] = _n(lambda b: (b.btype == 2) & (b.bbm == 1))
    T["multi_pd.no_bbm.n"] = _n(lambda b: (b.btype == 2) & (b.bbm == 0))
    T["multi_pd.oligo_no_prior_rt.n"] = _n(lambda b: (b.btype == 2) & (b.burden == 1) & (b.brain_rt == 0))
    T["multi_pd.oligo_prior_srs.n"] = _n(lambda b: (b.btype == 2) & (b.burden == 1) & (b.brain_rt == 1))
    pats = {"all": lambda b: b.pattern > 0, "of": lambda b: b.pattern == 1, "df": lambda b: b.pattern == 2,
            "odf": lambda b: b.pattern == 3}
    locs = {"primary_only": 1, "metastasis_only": 2, "primary_and_metastasis": 3}
    for pn, pf in pats.items():
        for ln, code in locs.items():
            T[f"t2.{ln}.{pn}.n"] = _n(_loc(pf, code))
        for s in SITES:
            key = "others" if s == "other" else s
            T[f"t2.{key}.{pn}.n"] = _n(_site(pf, s))
    T["salvage.eligible.n"] = _n(lambda b: b.elig > 0)
    for k, code in (("wbrt", 1), ("srs", 2), ("sbrt", 3)):
        T[f"salvage.eligible_{k}.n"] = _n(_code("elig", code))
        T[f"salvage.{k}.n"] = _n(_code("salvage", code))
    T["salvage.received.n"] = _n(lambda b: b.salvage > 0)
    T["after_pd.cbpd.n"] = _n(lambda b: b.next == 0)
    T["after_pd.discontinued.n"] = _n(lambda b: b.next > 0)
    T["after_pd.bsc.n"] = _n(lambda b: b.next == 1)
    T["after_pd.alk2.n"] = _n(lambda b: b.next == 2)
    T["after_pd.chemo.n"] = _n(lambda b: b.next == 3)
    T["progression2.n"] = _n(lambda b: b.pfs2_event == 1)
    T["pfs2.median.all"] = _km("pfs2", _prog)
    T["pfs2.median.salvage_rt"] = _km("pfs2", lambda b: b.salvage > 0)
    T["pfs2.median.no_salvage_rt"] = _km("pfs2", lambda b: _prog(b) & (b.salvage == 0))
    T["pfs2.median.cbpd"] = _km("pfs2", lambda b: b.next == 0)
    T["pfs2.median.non_cbpd"] = _km("pfs2", lambda b: b.next > 0)
    T["deaths.n"] = _n(lambda b: b.os_event == 1)
    # log-rank p-values (two-sided), from the signed z of group 1
    T["pfs1.bbm.prior_brain_rt.p"] = _p(lambda b: _z_pfs1(b, b.brain_rt > 0, b.bbm == 1))
    T["pfs1.bbm.p"] = _p(lambda b: _z_pfs1(b, b.bbm == 1, None))
    T["pfs1.prior_rt.p"] = _p(lambda b: _z_pfs1(b, (b.brain_rt > 0) | (b.xrt > 0), None))
    T["pfs2.salvage_rt.p"] = _p(lambda b: logrank_z(b.pfs2_d / DPM, b.pfs2_event, b.salvage > 0, _prog(b)))
    T["os.rt_vs_nonrt.p"] = _p(lambda b: logrank_z(b.os_d / DPM, b.os_event, b.rt == 1))
    return T


def _z_pfs1(b, group, mask):
    return logrank_z(b.pfs1_d / DPM, b.pfs1_event, group, mask)


def _p(z_fn):
    """A p-value target; ``fn`` gives the two-sided p, ``z`` the signed statistic."""
    return Target("p", lambda b: 2.0 * ndtr(-np.abs(z_fn(b))), z_fn)


#: Study-card id -> how the model computes it.
TARGETS: dict[str, Target] = _build()


def per_cohort(batch: Batch, ids=None) -> dict[str, np.ndarray]:
    """Each target's value in every simulated cohort (arrays of shape ``(replicates,)``)."""
    ids = TARGETS if ids is None else ids
    return {i: TARGETS[i].fn(batch) for i in ids}


def expected(values: np.ndarray, kind: str) -> float:
    """Expected value over cohorts: mean for counts, median otherwise (a median not
    reached counts as +inf, a p-value that cannot be computed as 1)."""
    v = np.asarray(values, float)
    if kind == "count":
        return float(v.mean())
    if kind == "p":
        return float(np.median(np.where(np.isnan(v), 1.0, v)))
    v = np.where(np.isnan(v), np.inf, v)
    return float(np.median(v))
