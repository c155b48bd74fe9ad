"""Methods audit (immortal time): the split, time-dependent Cox, landmarks and Simon-Makuch curves equal R
on the Stanford heart transplant data (tests/reference/audit.R); the audit of Fig. 1b-d on cohorts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fixtures import reference

from failpattern._resources import synthetic_path
from failpattern.errors import InputError
from failpattern.study.audit import LANDMARKS, analyse_exposure, methods_audit, split_at_exposure


def _jasa():
    return {q: reference("audit", "jasa", q) for q in ("time", "event", "treated", "start_of_treatment")}


@pytest.fixture(scope="module")
def jasa_fit():
    d = _jasa()
    return analyse_exposure(d["time"], d["event"], d["treated"], d["start_of_treatment"], landmarks=(30, 90))


def test_split_equals_tmerge():
    d = _jasa()
    rows = split_at_exposure(d["time"], d["event"], d["treated"], d["start_of_treatment"])
    assert len(rows) == reference("audit", "split", "n_rows")[0]
    for ours, theirs in (("start", "start"), ("stop", "stop"), ("event", "event"), ("treated", "treated")):
        np.testing.assert_array_equal(rows[ours].to_numpy(float), reference("audit", "split", theirs))


def _cox_equal(got: pd.Series, case: str, parts=("hr_lower", "hr_upper", "p")):
    np.testing.assert_allclose(np.log(got["hr"]), reference("audit", case, "coef")[0], rtol=1e-10)
    for q in parts:  # our p is the score test's (the time-dependent log-rank)
        np.testing.assert_allclose(got[q], reference("audit", case, "score_p" if q == "p" else q)[0], rtol=1e-10)


def test_naive_and_time_dependent_models_equal_r(jasa_fit):
    got = jasa_fit.naive
    np.testing.assert_allclose(np.log(got["hr"]), reference("audit", "naive", "coef")[0], rtol=1e-10)
    np.testing.assert_allclose([got["hr_lower"], got["hr_upper"]],
                               [reference("audit", "naive", "hr_lower")[0], reference("audit", "naive", "hr_upper")[0]],
                               rtol=1e-10)
    np.testing.assert_allclose(got["p"], reference("audit", "naive", "logrank_p")[0], rtol=1e-10)
    _cox_equal(jasa_fit.time_dependent, "time_dependent")
    # the textbook finding: the naive benefit of transplant vanishes once time before it is not credited
    assert jasa_fit.naive["p"] < 1e-6 and jasa_fit.time_dependent["p"] > 0.5


def test_landmarks_equal_r(jasa_fit):
    for lm in (30, 90):
        row = jasa_fit.landmarks.set_index("landmark").loc[lm]
        case = f"landmark/{lm}"
        assert row["n"] == reference("audit", case, "n")[0] and row["n_treated"] == reference("audit", case,
                                                                                                "n_treated")[0]
        _cox_equal(row, case, ("hr_lower", "hr_upper"))
        np.testing.assert_allclose(row["p"], reference("audit", case, "logrank_p")[0], rtol=1e-10)


def test_simon_makuch_curves_equal_r(jasa_fit):
    for label, k in (("untreated", 0), ("treated", 1)):
        km = jasa_fit.curves[label]
        case = f"simon_makuch/{k}"
        np.testing.assert_allclose(km.time, reference("audit", case, "time"), rtol=1e-12)
        np.testing.assert_allclose(km.at_risk, reference("audit", case, "n_risk"), rtol=1e-12)
        np.testing.assert_allclose(km.survival, reference("audit", case, "surv"), rtol=1e-10)


def test_split_by_hand():
    rows = split_at_exposure([5.0, 5.0, 5.0, 5.0, 0.0], [1, 0, 1, 1, 1], [1, 1, 1, 0, 1], [2.0, 0.0, 5.0, np.nan, 0.0])
    # split at 2; treated from the start; treatment at the end of follow-up = never during it; untreated;
    # a follow-up of 0 holds no time at risk
    assert rows[["patient", "start", "stop", "event", "treated"]].values.tolist() == [
        [0, 0.0, 2.0, 0, 0], [0, 2.0, 5.0, 1, 1], [1, 0.0, 5.0, 0, 1], [2, 0.0, 5.0, 1, 0], [3, 0.0, 5.0, 1, 0]]


def test_audit_of_the_paper_on_a_cohort():
    audit = methods_audit(synthetic_path("ni2019_random_seed1.csv"))
    assert [a.figure for a in audit.comparisons] == ["Fig. 1b", "Fig. 1c", "Fig. 1d"]
    assert audit.skipped.empty and set(audit.summary.columns) >= {"naive_p", "td_hr", "td_p", "holds"}
    d1 = audit["os.by_any_rt"]
    assert d1.p_id == "os.rt_vs_nonrt.p" and d1.n == 93 and d1.n_timed == d1.n_treated > 0
    assert tuple(d1.landmarks["landmark"]) == LANDMARKS["OS"]
    assert all(a.holds is not None for a in audit.comparisons)
    # without recorded timing, salvage RT is taken at first progression: PFS2's time zero, nothing to judge
    frame = pd.read_csv(synthetic_path("ni2019_random_seed1.csv"))
    untimed = methods_audit(frame.drop(columns=[c for c in frame if c.startswith(("salvage_rt_d", "salvage_rt_m",
                                                                                  "cbpd_", "first_rt_"))]))
    assert untimed["pfs2.by_salvage_rt"].holds is None and "cannot judge" in untimed["pfs2.by_salvage_rt"].conclusion
    assert untimed["os.by_any_rt"].n_timed == 0 and "smallest correction" in untimed["os.by_any_rt"].conclusion
    # OS from diagnosis: the naive log-rank is the plan's published comparison
    from failpattern.study import run_plan

    plan = run_plan(synthetic_path("ni2019_random_seed1.csv"))
    assert d1.naive["p"] == pytest.approx(plan.get("os.rt_vs_nonrt.p"), rel=1e-12)
    assert "Fig. 1" in repr(audit)


def test_audit_refuses_bad_landmarks():
    with pytest.raises(InputError, match="landmarks"):
        methods_audit(synthetic_path("ni2019_random_seed1.csv"), landmarks={"OS": (-1,)})


def test_under_the_null_the_naive_analysis_finds_an_effect_the_time_dependent_one_does_not():
    from failpattern.study.audit import immortal_time_null

    null = immortal_time_null(11, replicates=200)
    again = immortal_time_null(11, replicates=200, workers=2)  # the replicate engine: same whatever the workers
    pd.testing.assert_frame_equal(null.replicates, again.replicates)
    naive, td = null.summary.itertuples()
    # longer-lived patients are more often "treated": the naive hazard ratio is pulled far below 1
    # (about 0.56 over 1,000 cohorts), the time-dependent one is not (about 1.02)
    assert naive.median_hr < 0.75 and 0.85 < td.median_hr < 1.2
    assert naive.rejections > td.rejections and naive.lower > null.alpha
    assert td.lower <= null.alpha <= td.upper or td.rejections < null.alpha
    for bad in ({"share": 0}, {"horizon": -1}, {"replicates": 0}, {"n": 0}):
        with pytest.raises(InputError):
            immortal_time_null(1, **bad)


def test_type_one_error_figure():
    from failpattern.plots import plot_type_one_error
    from failpattern.study.audit import immortal_time_null

    null = immortal_time_null(3, replicates=30)
    fig = plot_type_one_error(null)
    bars = [p.get_width() for p in fig.axes[0].patches]
    np.testing.assert_allclose(bars, null.summary["rejections"].to_numpy())
    with pytest.raises(InputError, match="NullStudy"):
        plot_type_one_error(null.replicates)
