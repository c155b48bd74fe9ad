"""The whole analysis plan on one 93-patient cohort, against a lifelines loop.

Target: ``run_plan`` on a 93-patient cohort in <= 25 ms (median of repeats,
card loaded and its settings cached beforehand, as in a simulation study).

Printed, each a median over repeats:

* ``run_plan`` (all ~475 values: Tables 1-3, KM in two conventions, log-rank,
  Cox, cumulative incidence, 18 Fine-Gray fits), and its three phases;
* the comparable subset — 15 Kaplan-Meier curves with medians, 6 log-rank
  tests, 6 Cox models of PFS1 — once with failpattern's public functions and
  once with lifelines (``KaplanMeierFitter``, ``logrank_test``, ``CoxPHFitter``),
  which has no Fine-Gray, Gray or SPSS conventions (so the rest has no
  lifelines counterpart);
* ``compare`` against the card, and the lazy ``exclusions`` (``Cohort.rows_for``).

The cohort comes from ``failpattern.simulate.simulate`` (seeded).
Usage: python benchmarks/bench_plan.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from _harness import row, time_python

from failpattern.cohort import load_cohort
from failpattern.simulate import simulate
from failpattern.stats.cox import cox
from failpattern.stats.km import kaplan_meier
from failpattern.stats.logrank import logrank
from failpattern.study import load_study
from failpattern.study.analyses import competing, survival, tables
from failpattern.study.analyses._base import BINARIES, Context
from failpattern.study.compare import compare
from failpattern.study.plan import run_plan, settings_for

COX = ["histology", "met_organs", "objective_response", "prior_local_therapy", "brain_met"]


def subset_inputs(cohort):
    """Arrays of the comparable subset, selected once with Cohort.rows_for."""
    kms, tests = [], []
    for name, ep, key, cols, group, medians, lr in survival.SURVIVAL:
        inc, _ = cohort.rows_for(key, columns=list(cols))
        t, e = inc[f"{ep}_months"].astype(float).to_numpy(), inc[f"{ep}_event"].astype(int).to_numpy()
        if group is None:
            kms.append((t, e))
            continue
        g = inc[group].astype(int).to_numpy()
        kms += [(t[g == v], e[g == v]) for v in (0, 1)]
        tests.append((t, e, g))
    inc, _ = cohort.rows_for("pfs1_predictors", columns=[BINARIES[n].column for n in COX])
    ctx = Context(cohort, settings_for(load_study("ni2019")))
    keep = inc.index.to_numpy()
    data = pd.DataFrame({n: BINARIES[n].indicator(ctx)[keep] for n in COX})
    data["t"], data["e"] = inc["pfs1_months"].astype(float).to_numpy(), inc["pfs1_event"].astype(int).to_numpy()
    return kms, tests, data


def ours_subset(kms, tests, data):
    def run():
        out = [kaplan_meier(t, e, conf_type="log").median for t, e in kms]
        out += [logrank(t, e, g).p_value for t, e, g in tests]
        out += [cox(data, duration="t", event="e", covariates=[c], ties="efron") for c in COX]
        out.append(cox(data, duration="t", event="e", covariates=COX, ties="efron"))
        return out
    return run


def lifelines_subset(kms, tests, data):
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.statistics import logrank_test

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = [KaplanMeierFitter().fit(t, e).median_survival_time_ for t, e in kms]
            out += [logrank_test(t[g == 0], t[g == 1], e[g == 0], e[g == 1]).p_value for t, e, g in tests]
            out += [CoxPHFitter().fit(data[[c, "t", "e"]], duration_col="t", event_col="e") for c in COX]
            out.append(CoxPHFitter().fit(data[COX + ["t", "e"]], duration_col="t", event_col="e"))
            return out
    return run


def kernel_floor(cohort, settings):
    """The 18 Fine-Gray and 6 Cox fits alone, on arrays (what the plan cannot avoid)."""
    from failpattern.errors import ConvergenceError
    from failpattern.stats._coxfit import cox_fit
    from failpattern.stats.finegray import fine_gray_fit

    ctx = Context(cohort, settings)
    t = ctx.values("pfs1_months")
    e = ctx.values("pfs1_event").astype(np.int64)
    pattern = ctx.values("failure_pattern")
    cause = np.select([pattern == "OF", np.isin(pattern, ("DF", "ODF", "death"))], [1, 2], 0)
    fg = [np.column_stack([BINARIES[n].indicator(ctx)]) for n in competing.T3_COVARIATES]
    fg.append(np.column_stack([BINARIES[n].indicator(ctx) for n in settings.t3_multi]))
    cx = [np.column_stack([BINARIES[n].indicator(ctx)]) for n in COX]
    cx.append(np.column_stack([BINARIES[n].indicator(ctx) for n in COX]))

    def run():
        failed = 0
        for X in fg:
            ok = ~np.isnan(X).any(axis=1)
            try:
                fine_gray_fit(X[ok], t[ok], cause[ok], variance="stata")
            except ConvergenceError:  # a fit that fails in the plan fails here too
                failed += 1
        for X in cx:
            ok = ~np.isnan(X).any(axis=1)
            cox_fit(X[ok], t[ok], e[ok], strata_codes=None, ties="breslow", names=None)
        return failed
    return run


def _cohort():
    """The first seeded simulated cohort on which lifelines' Cox fits converge too."""
    for seed in range(20190093, 20190193):
        cohort = load_cohort(simulate(seed=seed))
        kms, tests, data = subset_inputs(cohort)
        from lifelines.exceptions import ConvergenceError as LifelinesConvergenceError

        try:
            lifelines_subset(kms, tests, data)()
        except LifelinesConvergenceError as err:
            print(f"seed {seed}: lifelines did not converge ({str(err)[:40]}...); next seed")
            continue
        return seed, cohort
    raise RuntimeError("no seed gave a cohort lifelines can fit")


def main() -> None:
    card = load_study("ni2019")
    settings = settings_for(card)  # cached per card, as every later run_plan uses it
    seed, cohort = _cohort()
    result = run_plan(cohort, card=card)
    print(f"cohort: simulate(seed={seed}), {cohort.n_patients} patients; plan: {len(result.values)} values, "
          f"{len(result.skipped)} skipped; target <= 25 ms")
    plan = time_python(lambda: run_plan(cohort, card=card), repeat=100, warmup=3)
    print(row("run_plan (whole plan)", plan))
    print(row("run_plan, CPU time (process_time)", time_python(lambda: run_plan(cohort, card=card), repeat=100,
                                                                  warmup=1, clock=time.process_time)))
    for label, fn in (("  tables (counts, Tables 1-2, tests)", tables.run_tables),
                      ("  survival (KM x2, log-rank, Cox)", survival.run_survival),
                      ("  competing (CIF, 18 Fine-Gray)", competing.run_competing)):
        print(row(label, time_python(lambda fn=fn: fn(Context(cohort, settings)), repeat=100, warmup=3)))
    print(row("  kernel floor: 18 Fine-Gray + 6 Cox fits", time_python(kernel_floor(cohort, settings),
                                                                    repeat=50, warmup=2)))
    kms, tests, data = subset_inputs(cohort)
    ours = time_python(ours_subset(kms, tests, data), repeat=50, warmup=2)
    life = time_python(lifelines_subset(kms, tests, data), repeat=10, warmup=1)
    print(row(f"subset: {len(kms)} KM, {len(tests)} log-rank, 6 Cox", ours, lifelines=life))
    print(row("compare(result, card)", time_python(lambda: compare(result, card), repeat=30)))
    print(row("exclusions (lazy, Cohort.rows_for)",
              time_python(lambda: run_plan(cohort, card=card).exclusions, repeat=20) - plan))


if __name__ == "__main__":
    main()
