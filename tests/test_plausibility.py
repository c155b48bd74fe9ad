"""Plausibility of a cohort under the model: log-likelihood by hand, curve statistics by hand, verdicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from failpattern.errors import InputError
from failpattern.simulate import DEFAULT_PARAMS, simulate_many, to_frame
from failpattern.simulate.generate import DPM, pfs1_inv
from failpattern.simulate.plausibility import (
    CLUSTER_FROM_MONTHS,
    CLUSTER_MONTHS,
    PLATEAU_MIN_AT_RISK,
    course_arrays,
    curve_statistics,
    plausibility,
    time_loglik,
)

P = DEFAULT_PARAMS


def _course(**over):
    """Two patients, no brain metastases, adenocarcinoma, 1 organ, PR, RT group."""
    base = {"pfs1": [7.0, 20.0], "pfs2": [5.0, 0.0], "os": [40.0, 30.0], "wait": [3.0, np.nan],
            "ev1": [True, False], "ev2": [True, False], "died": [True, False], "pattern": [1, 0],
            "response": [1, 1], "brain": [0, 0], "brain_rt": [0, 0], "burden": [0, 0], "non_adeno": [0, 0],
            "organs": [1, 1], "salvage": [True, False], "cbpd": [False, False], "rt": [1, 1]}
    base.update(over)
    return {k: np.asarray(v)[None, :] for k, v in base.items()}


def _weibull(t, scale, shape, lp, event):
    """scipy's Weibull with the PH scale: S(t) = exp(-(t / scale)^shape * exp(lp))."""
    dist = stats.weibull_min(shape, scale=scale * np.exp(-lp / shape))
    return dist.logpdf(t) if event else dist.logsf(t)


def test_loglik_equals_scipy_by_component():
    ll = time_loglik(P, _course())
    lp1 = 0.0  # PR, adenocarcinoma, one organ, no brain metastases
    want1 = _weibull(7.0, P.pfs1_scale, P.pfs1_shape, lp1, True) + _weibull(20.0, P.pfs1_scale, P.pfs1_shape, lp1,
                                                                            False)
    lp2 = P.c_salvage
    want2 = np.log1p(-P.pfs2_no_progression) + _weibull(5.0, P.pfs2_scale, P.pfs2_shape, lp2, True)
    want3 = stats.expon(scale=1 / P.death_rate).logpdf(3.0)
    np.testing.assert_allclose([ll["pfs1"][0], ll["pfs2"][0], ll["death"][0]], [want1, want2, want3], rtol=1e-12)
    assert ll["loglik"][0] == pytest.approx(want1 + want2 + want3, rel=1e-12) and ll["outside"][0] == 0
    # censored PFS2: the never-progressing fraction plus the Weibull survival
    cens = time_loglik(P, _course(ev2=[False, False], died=[False, False]))
    s = np.exp(_weibull(5.0, P.pfs2_scale, P.pfs2_shape, lp2, False))
    assert cens["pfs2"][0] == pytest.approx(np.log(P.pfs2_no_progression + (1 - P.pfs2_no_progression) * s))
    # best response PD is left out of PFS1; a death without a second progression is outside the model
    assert time_loglik(P, _course(response=[3, 3]))["pfs1"][0] == 0.0
    assert time_loglik(P, _course(ev2=[False, False]))["outside"][0] == 1


def test_piecewise_pfs1_survival_inverts_the_generators_draw():
    """BBM without brain RT: S(pfs1_inv(u)) = 1 - u across the change point, and the density is
    the derivative of the cumulative hazard."""
    u = np.linspace(0.02, 0.98, 49)
    cov = {"brain": np.ones(49), "brain_rt": np.zeros(49), "burden": np.full(49, 2), "non_adeno": np.zeros(49),
           "organs": np.full(49, 3), "response": np.ones(49)}
    t = pfs1_inv(P, u, cov)
    assert (t < P.pfs1_change).any() and (t > P.pfs1_change).any()
    course = _course(**{k: v for k, v in cov.items()}, pfs1=t, ev1=np.zeros(49, bool), pfs2=np.zeros(49),
                     os=t + 1, wait=np.full(49, np.nan), ev2=np.zeros(49, bool), died=np.zeros(49, bool),
                     pattern=np.zeros(49), salvage=np.zeros(49, bool), cbpd=np.zeros(49, bool), rt=np.ones(49))
    one = {k: v[:, :1] for k, v in course.items()}
    for i in range(49):
        one = {k: v[:, i:i + 1] for k, v in course.items()}
        assert time_loglik(P, one)["pfs1"][0] == pytest.approx(np.log1p(-u[i]), rel=1e-10)
    h = 1e-6
    for i in (5, 40):
        at = {k: v[:, i:i + 1] for k, v in course.items()}
        logS = [time_loglik(P, {**at, "pfs1": at["pfs1"] + d})["pfs1"][0] for d in (-h, h)]
        dens = time_loglik(P, {**at, "ev1": np.ones((1, 1), bool), "pfs2": np.zeros((1, 1))})
        hazard = -(logS[1] - logS[0]) / (2 * h)
        assert dens["pfs1"][0] == pytest.approx(np.log(hazard) + time_loglik(P, at)["pfs1"][0], rel=1e-6)


def test_curve_statistics_by_hand():
    n = 30
    pfs1 = np.concatenate([[3.0, 3.2, 3.4, 5.0, 20.0], np.full(n - 5, 30.0)])
    ev1 = np.array([True] * 5 + [False] * (n - 5))
    course = {"pfs1": pfs1[None], "ev1": ev1[None], "pfs2": np.zeros((1, n)), "ev2": np.zeros((1, n), bool),
              "os": np.full((1, n), 40.0), "died": np.zeros((1, n), bool), "pattern": np.where(ev1, 1, 0)[None]}
    got = curve_statistics(course).iloc[0]
    # gaps 0.2, 0.2, 1.6, 15.0, all with >= 25 at risk after the earlier event
    assert got[("plateau", "PFS1")] == pytest.approx(15.0) and got[("plateau", "OF")] == pytest.approx(15.0)
    # 3.0, 3.2, 3.4 lie within half a month, after the first scans
    assert CLUSTER_MONTHS == 0.5 and CLUSTER_FROM_MONTHS < 3.0 and got[("cluster", "PFS1")] == 3
    early = {**course, "pfs1": np.where(pfs1 < 4, pfs1 - 2.0, pfs1)[None]}
    assert curve_statistics(early).iloc[0][("cluster", "PFS1")] == 1
    assert got[("plateau", "DF")] == 0 and got[("cluster", "DF")] == 0 and got[("plateau", "OS")] == 0
    # a gap that starts with fewer than PLATEAU_MIN_AT_RISK at risk is the tail, not a plateau
    few = {**course, "pfs1": np.concatenate([[1.0, 2.0], np.full(PLATEAU_MIN_AT_RISK - 2, 30.0), [60.0]])[None],
           "ev1": np.array([True, True] + [False] * (PLATEAU_MIN_AT_RISK - 2) + [True])[None]}
    few = {k: (v[:, :PLATEAU_MIN_AT_RISK + 1] if k not in ("pfs1", "ev1") else v) for k, v in few.items()}
    few["pattern"] = np.where(few["ev1"], 1, 0)
    assert curve_statistics(few).iloc[0][("plateau", "PFS1")] == pytest.approx(1.0)


def test_the_frame_and_the_arrays_give_the_same_statistics():
    batch = simulate_many(replicates=1, seed=4)
    a, f = course_arrays(batch), course_arrays(to_frame(batch, 0))
    # months rounded to 0.01 in the file: log-likelihoods within a few hundredths, statistics alike
    la, lf = time_loglik(P, a), time_loglik(P, f)
    assert abs(la["loglik"][0] - lf["loglik"][0]) < 0.1
    pd.testing.assert_frame_equal(curve_statistics(a).round(1), curve_statistics(f).round(1), atol=0.02)


def test_random_cohorts_are_mostly_typical_and_a_packed_cluster_is_not():
    batch = simulate_many(replicates=20, seed=7)
    verdicts = [plausibility(to_frame(batch, i), replicates=200, rng=i).typical for i in range(20)]
    # a 5% family-wise test and the central 90% of the log-likelihood: ~85% of random cohorts pass;
    # fewer than 12 of 20 would happen with probability < 0.001
    assert sum(verdicts) >= 12
    # eight first progressions packed into one week at 11 months, with 80 patients at risk
    one = dataclasses.replace(batch, **{f.name: getattr(batch, f.name)[:1] for f in dataclasses.fields(batch)
                                        if isinstance(getattr(batch, f.name), np.ndarray)},
                              mets={k: v[:1] for k, v in batch.mets.items()},
                              fail={k: v[:1] for k, v in batch.fail.items()})
    ev = np.flatnonzero(one.pfs1_event[0] == 1)[:8]
    pfs1 = one.pfs1_d.copy()
    pfs1[0, ev] = np.round(11.0 * DPM) + np.arange(8) % 7
    packed = dataclasses.replace(one, pfs1_d=pfs1)
    res = plausibility(packed, replicates=300, rng=1)
    row = res.table[(res.table.statistic == "cluster") & (res.table.curve == "PFS1")].iloc[0]
    assert row.value >= 8 and not row.typical and not res.typical and res.family_p <= 0.05


def test_same_seed_same_verdicts_and_bad_input():
    df = to_frame(simulate_many(replicates=1, seed=2), 0)
    a, b = plausibility(df, replicates=100, rng=3), plausibility(df, replicates=100, rng=3)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert "family p" in repr(a) and list(a.summary.columns) == list(a.table.columns)
    with pytest.raises(InputError, match="replicates"):
        plausibility(df, replicates=0)
    with pytest.raises(InputError, match="seed"):
        plausibility(df, rng="x")
