"""Fit the simulator's parameters to a study card, and report each target beside the model.

Why: hand-tuned parameters cannot be checked or re-derived for another study. Here
every parameter is obtained from the card's numbers (read by id) in one of three
ways, recorded in :data:`~failpattern.simulate.model.PARAM_INFO`:

* **closed form**: a ratio of published counts (Table 1 proportions by RT group,
  response, prior RT techniques, ...), or the Schoenfeld expected-information
  formula turning a published p-value into a log hazard ratio,
  beta = z_{1-p/2} / sqrt(D * pi * (1 - pi)) (D events, pi the exposed fraction);
* **fitted** by the method of simulated moments with common random numbers: a
  fixed seed draws ``replicates`` cohorts, the model statistic is computed on
  them, and the parameter block is moved until the statistic equals the target
  (least squares, trust-region Gauss-Newton then Nelder-Mead, for the PFS1, pattern,
  PFS2 and death blocks on Kaplan-Meier medians, pooled survival at the published
  medians, expected counts and log-rank z; multiplicative fixed-point updates
  p <- p * target / E[count] for probabilities; Brent's root for the accrual growth
  against the median follow-up and for the chemotherapy lag against its maximum);
* **assumption** where the paper is silent (said so in ``docs/simulator.md``).

Blocks follow the order of the model (accrual -> PFS1 -> brain -> pattern -> sites
-> salvage and CBPD -> PFS2 -> death), and the whole pass is repeated because
censoring couples them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from failpattern.simulate._fit_blocks import (
    SHAPE_MIN,
    _fit_accrual,
    _fit_brain,
    _fit_death,
    _fit_pattern,
    _fit_pfs1,
    _fit_pfs2,
    _fit_salvage,
    _fit_sites,
    _Sim,
    _v,
)
from failpattern.simulate.generate import DPM, draw_batch
from failpattern.simulate.model import PARAM_INFO, Params
from failpattern.simulate.moments import TARGETS, expected, per_cohort

__all__ = ["SHAPE_MIN", "CalibrationResult", "calibrate", "contradicted", "schoenfeld_beta", "target_table",
           "verdict"]

@dataclass(frozen=True)
class CalibrationResult:
    """Fitted parameters and the target table.

    Attributes
    ----------
    params : Params
        The fitted parameters.
    table : pandas.DataFrame
        One row per card id the model reproduces: ``id``, ``method``,
        ``published``, ``model`` (expected value over the evaluation cohorts),
        ``difference``, ``tolerance`` (the card's), ``within`` and ``parameters``
        (which parameters the id calibrates).
    replicates : int
        Cohorts per evaluation.
    seed : int
        Seed of the common random numbers.
    """

    params: Params
    table: pd.DataFrame
    replicates: int
    seed: int

    def __repr__(self) -> str:
        ok = int(self.table["within"].sum())
        contra = int((self.table["contradicted"] != "").sum()) if "contradicted" in self.table else 0
        return (f"CalibrationResult({ok}/{len(self.table)} targets within tolerance, {contra} contradicted by "
                f"the paper, replicates={self.replicates})")


def schoenfeld_beta(p_value: float, events: float, exposed_fraction: float) -> float:
    """Log hazard ratio whose expected Wald test has two-sided p-value ``p_value``.

    Parameters
    ----------
    p_value : float
        Published two-sided p-value.
    events : float
        Number of events D.
    exposed_fraction : float
        Fraction pi of patients in the exposed group.

    Returns
    -------
    float
        z_{1 - p/2} / sqrt(D pi (1 - pi)) (positive: the exposed group does worse).
    """
    z = float(ndtri(1.0 - p_value / 2.0))
    return z / np.sqrt(events * exposed_fraction * (1.0 - exposed_fraction))


def closed_form(card, p: Params) -> Params:
    """Parameters that are ratios of published counts, and the Schoenfeld effects."""
    n = _v(card, "cohort.enrolled.n")
    n_rt = _v(card, "rt_course.n")
    n_non = n - n_rt
    ch = {"p_rt": n_rt / n}
    pairs = {"p_male": "sex.male", "p_non_adeno": "histology.non_adeno", "p_ecog2": "ecog.ecog2",
             "p_t34": "t_stage.t3_4", "p_n0": "n_stage.n0", "p_organs3": "met_organs.organs3plus",
             "p_lesions6": "met_lesions.lesions6plus", "p_lung": "lung_met.yes", "p_liver": "liver_met.yes",
             "p_bbm": "brain_met.yes", "p_adrenal": "adrenal_met.yes", "p_bone": "bone_met.yes"}
    for field, key in pairs.items():
        ch[field] = (_v(card, f"t1.{key}.nonrt.n") / n_non, _v(card, f"t1.{key}.rt.n") / n_rt)
    ch["age_median"] = (_v(card, "t1.age.median.nonrt"), _v(card, "t1.age.median.rt"))
    ch["size_median"] = (_v(card, "t1.tumor_size.median.nonrt"), _v(card, "t1.tumor_size.median.rt"))
    first, pre = _v(card, "treatment.first_line.n"), _v(card, "treatment.pretreated.n")
    split = p.p_prior_lines[1] / (p.p_prior_lines[1] + p.p_prior_lines[2])
    ch["p_prior_lines"] = (first / n, pre * split / n, pre * (1 - split) / n)
    bbm, oligo, mult = _v(card, "t1.brain_met.yes.all.n"), _v(card, "bbm.oligo.n"), _v(card, "bbm.multiple.n")
    bbm_rt = _v(card, "t1.brain_met.yes.rt.n")
    s_o, w_o = _v(card, "prior_rt.srs_oligo.n"), _v(card, "prior_rt.wbrt_oligo.n")
    s_m, w_m = _v(card, "prior_rt.srs_multiple.n"), _v(card, "prior_rt.wbrt_multiple.n")
    ch["p_oligo"] = oligo / bbm
    ch["p_brain_rt_oligo"] = (s_o + w_o) / (bbm_rt * oligo / bbm)
    ch["p_brain_rt_multiple"] = (s_m + w_m) / (bbm_rt * mult / bbm)
    ch["p_srs_oligo"] = s_o / (s_o + w_o)
    ch["p_srs_multiple"] = s_m / (s_m + w_m)
    prior, brain = _v(card, "prior_rt.n"), _v(card, "prior_rt.brain.n")
    extra = _v(card, "prior_rt.extracranial.n")
    only_x = prior - brain
    ch["p_xrt_no_brain_rt"] = only_x / (n_rt - brain)
    ch["p_xrt_brain_rt"] = max(extra - only_x, 0.0) / brain
    th, bo, ad = _v(card, "prior_rt.thoracic.n"), _v(card, "prior_rt.bone.n"), _v(card, "prior_rt.adrenal.n")
    both = max(th + bo + ad - extra, 0.0)  # courses beyond patients: thoracic + bone
    ch["xrt_sites"] = ((th - both) / extra, (bo - both) / extra, ad / extra, both / extra)
    resp = [_v(card, f"response.{k}.n") for k in ("cr", "pr", "sd", "pd")]
    ch["p_response"] = tuple(r / n for r in resp)
    lo, hi = _v(card, "protocol.scan_interval.min"), _v(card, "protocol.scan_interval.max")
    ch["pd_scan"] = (lo * 7 / DPM, hi * 7 / DPM)
    ch["pfs1_change"] = _v(card, "pfs1.median.bbm_no_prior_brain_rt")
    ch["p_multiple_no_bbm"] = _v(card, "multi_pd.no_bbm.n") / _v(card, "brain_pd.no_bbm.n")
    oligo_pd = _v(card, "brain_pd.n") - _v(card, "multi_pd.bbm.n") - _v(card, "multi_pd.no_bbm.n")
    ch["p_srs_eligible"] = min(_v(card, "salvage.eligible_srs.n") / oligo_pd, 1.0)
    ch["p_treat_sbrt"] = _v(card, "salvage.sbrt.n") / _v(card, "salvage.eligible_sbrt.n")
    disc = _v(card, "after_pd.discontinued.n")
    ch["p_next"] = tuple(_v(card, f"after_pd.{k}.n") / disc for k in ("bsc", "alk2", "chemo"))
    d1 = _v(card, "progression1.n")
    ch["b_non_adeno"] = schoenfeld_beta(_v(card, "pfs1.multi.histology.p"), d1,
                                        _v(card, "t1.histology.non_adeno.all.n") / n)
    ch["b_organs3"] = schoenfeld_beta(_v(card, "pfs1.multi.met_organs.p"), d1,
                                      _v(card, "t1.met_organs.organs3plus.all.n") / n)
    ch["b_no_response"] = schoenfeld_beta(_v(card, "pfs1.multi.response.p"), d1, resp[2] / n)
    ch["d_non_rt"] = schoenfeld_beta(_v(card, "os.rt_vs_nonrt.p"), _v(card, "deaths.n"), n_non / n)
    return p.replace(**ch)


def contradicted(table: pd.DataFrame, card, ok: str = "within") -> pd.Series:
    """Which outside targets the paper itself contradicts, and what the model follows instead.

    A row outside tolerance (``table[ok]`` false) whose card number records
    ``contradicted_by`` ids that are all rows within tolerance cannot be reproduced
    together with them (the paper contradicts itself; the model follows those ids).
    Decided on the first-pass verdicts, so two numbers naming each other cannot excuse
    each other (the rule of :func:`failpattern.study.compare.contradicted_numbers`).

    Parameters
    ----------
    table : pandas.DataFrame
        With columns ``id`` and ``ok``.
    card : StudyCard
        Where ``contradicted_by`` is read.
    ok : str
        Name of the boolean pass column.

    Returns
    -------
    pandas.Series of str
        The ids the model follows, comma-separated, for such rows; ``""`` for the others.
    """
    from failpattern.study.compare import contradicted_numbers

    excused = contradicted_numbers(card, {i: bool(v) for i, v in zip(table["id"], table[ok])})
    return pd.Series([", ".join(excused.get(i, ())) for i in table["id"]], index=table.index, dtype=object)


def verdict(row_ok: bool, follows: str) -> str:
    """``pass`` / ``FAIL`` / ``contradicted by the paper (model follows ...)`` for a report line."""
    if follows:
        return f"contradicted by the paper (model follows {follows})"
    return "pass" if row_ok else "FAIL"


def target_table(params: Params, card, *, replicates: int = 200, seed: int = 1, n: int | None = None,
                 ids=None) -> pd.DataFrame:
    """Each card id the model reproduces, beside its expected value under ``params``.

    Parameters
    ----------
    params : Params
        Model parameters.
    card : StudyCard
        Targets (ids missing from the card are skipped).
    replicates : int
        Simulated cohorts.
    seed : int
        Seed of the simulated cohorts.
    n : int, optional
        Patients per cohort (the card's ``cohort.enrolled.n`` by default); counts
        are compared after scaling by n / enrolled.
    ids : iterable of str, optional
        Restrict to these ids.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, method, published, model, difference, tolerance, within, parameters,
        contradicted`` (the ids the model follows where the paper contradicts this
        target and those ids are within tolerance, see :func:`contradicted`; else ``""``).
    """
    n_card = int(_v(card, "cohort.enrolled.n"))
    n = n_card if n is None else n
    from failpattern.study.design import design_for

    b = draw_batch(params, np.random.default_rng(seed), replicates, n, design=design_for(card))
    use = [i for i in (TARGETS if ids is None else ids) if i in card]
    vals = per_cohort(b, use)
    rows = []
    users: dict[str, list[str]] = {}
    for name, info in PARAM_INFO.items():
        for i in use:
            if f"`{i}`" in info.targets:
                users.setdefault(i, []).append(name)
    for i in use:
        num = card.get(i)
        kind = TARGETS[i].kind
        model = expected(vals[i], kind)
        pub = float(num.value)
        if kind == "count":
            pub = pub * n / n_card
        tol = num.tolerance
        if tol is None:
            from failpattern.study.card import METHODS
            tol = METHODS[num.method].tolerance or 0.0
        # a count's expectation is not an integer: allow one patient or 5 %
        tol_used = max(1.0, 0.05 * pub) if kind == "count" else max(tol, 0.1 * pub)
        rows.append({"id": i, "method": num.method, "published": pub, "model": model,
                     "difference": model - pub, "tolerance": tol_used,
                     "within": bool(abs(model - pub) <= tol_used),
                     "parameters": ", ".join(users.get(i, [])) or "-"})
    out = pd.DataFrame(rows)
    out["contradicted"] = contradicted(out, card) if len(out) else pd.Series(dtype=object)
    return out


def calibrate(card, *, replicates: int = 1000, seed: int = 20190314, n: int | None = None,
              start: Params | None = None, rounds: int = 3, maxiter: int = 100,
              eval_replicates: int | None = None) -> CalibrationResult:
    """Re-fit the simulator's parameters to a study card.

    Parameters
    ----------
    card : StudyCard
        The study card (e.g. ``load_study("ni2019")`` or a user's own card with the
        ids listed in ``docs/simulator.md``).
    replicates : int
        Simulated cohorts per evaluation (common random numbers). The median over cohorts
        of a Kaplan-Meier median in a group of 11 patients moves by more than a month
        between seeds at 300 cohorts; 1,000 keep it within about 0.5 month.
    seed : int
        Seed of the common random numbers; the target table uses ``seed + 1``.
    n : int, optional
        Patients per cohort; the card's ``cohort.enrolled.n`` by default.
    start : Params, optional
        Starting values; by default the starting guesses of :class:`Params` (its class
        defaults), so that ``calibrate(load_study("ni2019"))`` reproduces
        :data:`DEFAULT_PARAMS` exactly.
    rounds : int
        Passes over the parameter blocks.
    maxiter : int
        Simulations allowed per least-squares block and pass.
    eval_replicates : int, optional
        Cohorts for the target table (``replicates`` by default).

    Returns
    -------
    CalibrationResult

    Raises
    ------
    KeyError
        If the card lacks an id a closed-form or fitted parameter needs.
    """
    n = int(_v(card, "cohort.enrolled.n")) if n is None else int(n)
    p = closed_form(card, Params() if start is None else start)
    from failpattern.study.design import design_for

    sim = _Sim(replicates, n, seed, design=design_for(card))
    for _ in range(rounds):
        p = _fit_accrual(sim, p, card)
        p = _fit_pfs1(sim, p, card, maxiter)
        p = _fit_brain(sim, p, card)
        p = _fit_pattern(sim, p, card, maxiter)
        p = _fit_sites(sim, p, card)
        p = _fit_salvage(sim, p, card)
        p = _fit_pfs2(sim, p, card, maxiter)
        p = _fit_death(sim, p, card)
    table = target_table(p, card, replicates=eval_replicates or replicates, seed=seed + 1, n=n)
    return CalibrationResult(params=p, table=table, replicates=replicates, seed=seed)
