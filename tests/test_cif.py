"""Cumulative incidence and Gray's test against cmprsk::cuminc (tests/reference/cif.R)."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failpattern.errors import InputError
from failpattern.stats.cif import cumulative_incidence
from fixtures import dataset, reference

RTOL = 1e-10      # measured worst relative difference to R: below 1e-12
P_ATOL = 1e-14    # cuminc's p-value is 1 - pchisq, exact only to ~1e-16 absolute


def _rel_err(ours, ref):
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), "NA pattern differs from R"
    ok = ~np.isnan(ref)
    diff = np.abs(ours[ok] - ref[ok])
    scale = np.abs(ref[ok])
    return float(np.max(np.where(scale > 0, diff / np.where(scale > 0, scale, 1), diff),
                        initial=0.0))


def _data(case):
    """The rows cif.R used for ``case``: (time, cause, group, strata)."""
    if case.startswith("pbc"):
        d = dataset("pbc")
        if case == "pbc_female_stage":  # cif.R drops the rows with stage missing
            d = d[d["stage"].notna()]
        group = {"pbc_all": None, "pbc_edema": d["edema"], "pbc_female": d["female"],
                 "pbc_female_stage": d["female"]}[case]
        strata = d["stage"] if case == "pbc_female_stage" else None
        return d["time"], d["status"], group, strata
    if case == "mgus2_male":
        d = dataset("mgus2")
        return d["time"], d["cause"], d["male"], None
    if case == "singular":
        return (*(reference("cif", case, q) for q in ("time", "cause", "group")), None)
    return tuple(reference("cif", case, q) for q in ("time", "cause", "group", "strata"))


CASES = ["pbc_all", "pbc_edema", "pbc_female", "pbc_female_stage", "mgus2_male", "tiny",
         "singular", "strata_end"]


@pytest.mark.parametrize("case", CASES)
def test_estimate_and_variance_match_cuminc(case):
    time, cause, group, strata = _data(case)
    fit = cumulative_incidence(time, cause, group=group, strata=strata)
    times = reference("cif", case, "times")
    levels = reference("cif", case, "levels")
    if group is not None:
        assert np.allclose(fit.groups, levels)
    assert fit.causes == ((1, 2, 3) if case == "tiny" else (1, 2))
    worst = 0.0
    for g, level in enumerate(levels, start=1):
        label = None if group is None else level
        for c in fit.causes:
            est = reference("cif", case, f"est_g{g}_c{c}")
            var = reference("cif", case, f"var_g{g}_c{c}")
            worst = max(worst, _rel_err(fit.at(times, c, label), est),
                        _rel_err(fit.variance_at(times, c, label), var))
    assert worst < RTOL, worst
    # the grid exercises times beyond the end and (except in tiny, which has events
    # at time 0) before the first event
    assert np.isnan(reference("cif", case, "est_g1_c1")).any()
    assert case == "tiny" or (reference("cif", case, "est_g1_c1") == 0).any()


@pytest.mark.parametrize("case", CASES)
def test_confidence_limits_match_loglog_on_cuminc(case):
    # cif.R applies F ** exp(-+z se / (F log F)) to timepoints' est and var in plain R
    time, cause, group, strata = _data(case)
    times = reference("cif", case, "times")
    levels = reference("cif", case, "levels")
    worst = 0.0
    for level in (95, 90) if case == "tiny" else (95,):
        fit = cumulative_incidence(time, cause, group=group, strata=strata,
                                   conf_level=level / 100)
        assert fit.conf_level == level / 100
        for g, label in enumerate(levels, start=1):
            label = None if group is None else label
            for c in fit.causes:
                lo, hi = fit.limits_at(times, c, label)
                worst = max(worst, _rel_err(lo, reference("cif", case, f"lower{level}_g{g}_c{c}")),
                            _rel_err(hi, reference("cif", case, f"upper{level}_g{g}_c{c}")))
    assert worst < RTOL, worst


@pytest.mark.parametrize("case", CASES)
def test_confidence_limit_invariants(case):
    time, cause, group, strata = _data(case)
    fit = cumulative_incidence(time, cause, group=group, strata=strata)
    wide = cumulative_incidence(time, cause, group=group, strata=strata, conf_level=0.99)
    f, v, lo, hi = fit.cif, fit.variance, fit.lower, fit.upper
    assert lo.shape == hi.shape == f.shape
    # undefined (NaN) only where F is 1 with a positive variance (pbc by edema: every
    # patient with edema 1 died, none was transplanted; singular: group 1 ends with
    # a cause-1 event)
    undefined = (f >= 1 - 1e-12) & (v > 0)
    assert np.array_equal(np.isnan(lo), undefined) and np.array_equal(np.isnan(hi), undefined)
    assert undefined.any() == (case in ("pbc_edema", "singular"))
    f, v, lo, hi = f[~undefined], v[~undefined], lo[~undefined], hi[~undefined]
    w_lo, w_hi = wide.lower[~undefined], wide.upper[~undefined]
    assert np.all((0 <= lo) & (lo <= f) & (f <= hi) & (hi <= 1 + 1e-12))
    assert np.all(w_lo <= lo) and np.all(w_hi >= hi)
    inner = (f > 0) & (f < 1) & (v > 0)
    assert inner.any()
    assert np.all(w_lo[inner] < lo[inner]) and np.all(w_hi[inner] > hi[inner])
    assert np.all(lo[inner] < f[inner]) and np.all(hi[inner] > f[inner])
    flat = v == 0
    assert flat.any()  # before the first event of each cause
    assert np.array_equal(lo[flat], f[flat]) and np.array_equal(hi[flat], f[flat])
    # limits_at reads the same step function as at: 0 before, NaN after follow-up
    t_max = float(fit.last_time[0])
    label = None if fit.groups is None else fit.groups[0]
    lo_at, hi_at = fit.limits_at([0.0, t_max, t_max + 1], 1, label)
    f_at = fit.at([0.0, t_max, t_max + 1], 1, label)
    assert np.isnan(lo_at[2]) and np.isnan(hi_at[2])
    assert lo_at[1] <= f_at[1] <= hi_at[1] or np.isnan(lo_at[1]) and f_at[1] == 1
    assert case == "tiny" or lo_at[0] == hi_at[0] == f_at[0] == 0  # tiny: events at 0
    summ = fit.summary
    np.testing.assert_array_equal(summ["lower"], fit.lower[-1].ravel())
    np.testing.assert_array_equal(summ["upper"], fit.upper[-1].ravel())


def test_confidence_limits_by_hand():
    # t = 1, 2, 2, 2, 3, 4 with causes 1 1 2 0 1 0. At t = 1 (n = 6, one cause-1
    # event, no ties): F = 1/6 and Gray's variance is
    #   v1 + F^2 v3 - 2 F v2 with v1 = v2 = v3 = (1 + F/S)^2 / n^2 ... = 1/25,
    # so var = (1/25) (1 + 1/36 - 1/3) = 1/36, se = 1/6 = F. Then
    #   z se / (F log F) = -z / log 6, lower = (1/6) ** exp(z / log 6),
    #   upper = (1/6) ** exp(-z / log 6); on the log(-log) scale
    #   log(-log lower) = log(log 6) + z / log 6 (and - for upper).
    fit = cumulative_incidence([1, 2, 2, 2, 3, 4], [1, 1, 2, 0, 1, 0])
    assert fit.variance_at(1.0) == pytest.approx(1 / 36, rel=1e-14)
    z = 1.959963984540054  # qnorm(0.975)
    lo, hi = fit.limits_at(1.5)
    assert isinstance(lo, float) and isinstance(hi, float)
    assert lo == pytest.approx((1 / 6) ** np.exp(z / np.log(6)), rel=1e-13)
    assert hi == pytest.approx((1 / 6) ** np.exp(-z / np.log(6)), rel=1e-13)
    assert np.log(-np.log(lo)) == pytest.approx(np.log(np.log(6)) + z / np.log(6), rel=1e-13)
    assert np.log(-np.log(hi)) == pytest.approx(np.log(np.log(6)) - z / np.log(6), rel=1e-13)
    assert lo == pytest.approx(0.0047487036, rel=1e-8) and hi == pytest.approx(0.54876324, rel=1e-7)
    lo, hi = fit.limits_at([0.0, 0.5, 10.0])
    np.testing.assert_array_equal(lo, [0.0, 0.0, np.nan])  # 0 and 0 before the first event
    np.testing.assert_array_equal(hi, [0.0, 0.0, np.nan])
    assert fit.lower[0, 0, 0] == fit.limits_at(1.0)[0]
    # everyone fails from cause 1 at once: F = 1, var = 0, a band of zero width
    one = cumulative_incidence([1, 1], [1, 1])
    assert (one.at(1.0), one.variance_at(1.0), one.limits_at(1.0)) == (1.0, 0.0, (1.0, 1.0))


def test_zero_variance_inside_gives_zero_width():
    from failpattern.stats.cif import _loglog_limits
    f = np.array([0.0, 0.3, 0.3, 1.0, np.nan, 1 - 4e-16, 1 + 2e-16])
    v = np.array([0.0, 0.0, 0.01, 0.0, np.nan, 0.01, 0.01])
    lo, hi = _loglog_limits(f, v, 1.959963984540054)
    np.testing.assert_array_equal(lo[[0, 1, 3, 4]], f[[0, 1, 3, 4]])
    np.testing.assert_array_equal(hi[[0, 1, 3, 4]], f[[0, 1, 3, 4]])
    assert lo[2] < 0.3 < hi[2]
    assert np.isnan(lo[5:]).all() and np.isnan(hi[5:]).all()  # F = 1 up to rounding, var > 0


@pytest.mark.parametrize("level", [0, 1, 95, -0.5, float("nan"), True, "0.95", None])
def test_bad_conf_level(level):
    with pytest.raises(InputError, match="conf_level"):
        cumulative_incidence([1, 2, 3], [1, 0, 2], conf_level=level)


@pytest.mark.parametrize("case", [c for c in CASES if c != "pbc_all"])
def test_gray_test_matches_cuminc(case):
    time, cause, group, strata = _data(case)
    fit = cumulative_incidence(time, cause, group=group, strata=strata)
    rhos = {"tiny": (0, 1, 0.5), "singular": (0,)}.get(case, (0, 1))
    for rho in rhos:
        key = f"rho{rho:g}"
        stat, pv, df = (reference("cif", case, f"{q}_{key}") for q in ("stat", "pv", "df"))
        for c in fit.causes:
            res = fit.gray_test(cause=c, rho=rho)
            assert res.df == df[c - 1] == len(fit.groups) - 1
            if stat[c - 1] == -1:  # cuminc's marker for a singular variance: we give NaN
                assert np.isnan(res.statistic) and np.isnan(res.p_value)
                continue
            assert res.statistic == pytest.approx(stat[c - 1], rel=RTOL)
            assert res.p_value == pytest.approx(pv[c - 1], rel=1e-9, abs=P_ATOL)


def test_strata_change_the_test_but_not_the_estimate():
    time, cause, group, strata = _data("pbc_female_stage")
    plain = cumulative_incidence(time, cause, group=group)
    strat = cumulative_incidence(time, cause, group=group, strata=strata)
    assert np.array_equal(plain.cif, strat.cif)
    assert plain.gray_test(2).statistic != pytest.approx(strat.gray_test(2).statistic, rel=1e-3)


def test_hand_computed_ties():
    # t:     1  2  2  2  3  4     causes 1 1 2 0 1 0
    # t = 1: n = 6, one cause-1 event  -> F1 = 1/6, S = 5/6
    # t = 2: n = 5 (the censoring at 2 is still at risk: events come first),
    #        one cause-1 and one cause-2 event -> F1 = 1/6 + 5/6 * 1/5 = 1/3,
    #        F2 = 5/6 * 1/5 = 1/6, S = 5/6 * 3/5 = 1/2
    # t = 3: n = 2, one cause-1 event -> F1 = 1/3 + 1/2 * 1/2 = 7/12, S = 1/4
    # t = 4: censored; after 4 (the largest time) timepoints gives NA
    fit = cumulative_incidence([1, 2, 2, 2, 3, 4], [1, 1, 2, 0, 1, 0])
    got = fit.at([0, 0.5, 1, 1.5, 2, 3, 4, 4.5], cause=1)
    want = [0, 0, 1 / 6, 1 / 6, 1 / 3, 7 / 12, 7 / 12, np.nan]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert fit.at(2.5, cause=2) == pytest.approx(1 / 6, rel=1e-15)
    assert isinstance(fit.at(2.5, cause=2), float)
    assert fit.variance_at(0.5) == 0.0
    tab = fit.table
    assert tab["time"].tolist() == [1, 2, 3, 2]
    assert tab["cause"].tolist() == [1, 1, 1, 2]
    np.testing.assert_allclose(tab["cif"], [1 / 6, 1 / 3, 7 / 12, 1 / 6], rtol=1e-15)


def test_singular_case_is_covered():
    assert reference("cif", "singular", "stat_rho0")[0] == -1
    fit = cumulative_incidence(*_data("singular")[:2], group=_data("singular")[2])
    assert np.isnan(fit.gray_test(1).statistic) and np.isfinite(fit.gray_test(2).statistic)


def test_cause_codes_need_not_be_consecutive():
    time, cause, group, _ = _data("pbc_edema")
    base = cumulative_incidence(time, cause, group=group)
    relabelled = cumulative_incidence(time, np.asarray(cause) * 3, group=group)  # 0, 3, 6
    assert relabelled.causes == (3, 6)
    np.testing.assert_array_equal(relabelled.cif, base.cif)
    assert relabelled.gray_test(6).statistic == base.gray_test(2).statistic
    with pytest.raises(InputError, match="available causes: 3, 6"):
        relabelled.at(1.0, cause=1, group=0.0)
    huge = cumulative_incidence([1, 2, 3], [10**9, 0, 7])  # codes too large to count
    assert huge.causes == (7, 10**9)
    assert huge.at(3.0, cause=10**9) == pytest.approx(1 / 3)
    assert huge.at(3.0, cause=7) == pytest.approx(2 / 3)  # S(3-) = 2/3, 1 of 1 at risk fails


def test_results_are_frozen_and_tables_shaped():
    time, cause, group, _ = _data("pbc_edema")
    fit = cumulative_incidence(time, cause, group=group)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.n = 3
    with pytest.raises(ValueError):
        fit.cif[0, 0, 0] = 1.0
    assert fit.n == len(time) and fit.groups == (0.0, 0.5, 1.0)
    tab = fit.to_frame()
    assert list(tab.columns) == ["group", "cause", "time", "cif", "variance", "events",
                                 "lower", "upper"]
    assert tab["events"].sum() == int((cause > 0).sum())
    summ = fit.summary
    assert len(summ) == 6 and summ["events"].sum() == int((cause > 0).sum())
    last = summ.iloc[0]
    assert last["cif"] == fit.at(last["last_time"], 1, 0.0)
    gt = fit.gray_test(2)
    assert gt.summary.loc[0, "statistic"] == gt.statistic
    with pytest.raises(dataclasses.FrozenInstanceError):
        gt.statistic = 0.0


# ---------------------------------------------------------------- invariants
def _km(time, dead):
    """All-cause Kaplan-Meier at each distinct time, by direct counting."""
    ut = np.unique(time)
    n = np.array([np.sum(time >= u) for u in ut], float)
    d = np.array([np.sum((time == u) & dead) for u in ut], float)
    return ut, np.cumprod(1 - d / n)


samples = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 3), st.integers(0, 2)),
                   min_size=2, max_size=60).filter(lambda o: any(c > 0 for _, c, _ in o))


@settings(max_examples=60, deadline=None)
@given(samples)
def test_causes_sum_to_one_minus_km(obs):
    t = np.array([o[0] for o in obs], float) + 0.5
    c = np.array([o[1] for o in obs])
    g = np.array([o[2] for o in obs])
    fit = cumulative_incidence(t, c, group=g)
    for label in fit.groups:
        sel = g == label
        ut, km = _km(t[sel], c[sel] > 0)
        total = sum(fit.at(ut, k, label) for k in fit.causes)
        np.testing.assert_allclose(total, 1 - km, rtol=1e-12, atol=1e-14)
        for k in fit.causes:
            f = fit.at(ut, k, label)
            assert np.all(np.diff(f) >= -1e-15) and f.min() >= 0 and f.max() <= 1 + 1e-12
            assert np.all(fit.variance_at(ut, k, label) >= -1e-15)
            lo, hi = fit.limits_at(ut, k, label)
            undefined = (f >= 1 - 1e-12) & (fit.variance_at(ut, k, label) > 0)
            assert np.array_equal(np.isnan(lo), undefined) and np.array_equal(np.isnan(hi),
                                                                               undefined)
            ok = ~undefined
            assert np.all((0 <= lo[ok]) & (lo[ok] <= f[ok]) & (f[ok] <= hi[ok])
                          & (hi[ok] <= 1 + 1e-12))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.booleans()), min_size=1, max_size=50)
       .filter(lambda o: any(e for _, e in o)))
def test_single_cause_is_one_minus_km(obs):
    t = np.array([o[0] for o in obs], float)
    e = np.array([o[1] for o in obs])
    fit = cumulative_incidence(t, e.astype(int))
    ut, km = _km(t, e)
    np.testing.assert_allclose(fit.at(ut), 1 - km, rtol=1e-12, atol=1e-14)
    try:
        from failpattern.stats.km import kaplan_meier
    except ImportError:
        return
    np.testing.assert_allclose(fit.at(ut), 1 - kaplan_meier(t, e.astype(int)).survival_at(ut),
                               rtol=1e-12, atol=1e-14)


two_group = st.lists(st.tuples(st.integers(0, 10), st.integers(0, 2), st.integers(0, 1),
                               st.integers(0, 1)), min_size=6, max_size=60).filter(
    lambda o: len({ob[2] for ob in o}) == 2 and any(ob[1] == 1 for ob in o))


@settings(max_examples=50, deadline=None)
@given(two_group, st.integers(0, 2**32 - 1), st.floats(0.01, 1000))
def test_row_order_and_time_scale_do_not_matter(obs, seed, scale):
    t, c, g, s = (np.array(col) for col in zip(*obs))
    t = t + 1.0
    fit = cumulative_incidence(t, c, group=g, strata=s)
    perm = np.random.default_rng(seed).permutation(t.size)
    shuffled = cumulative_incidence(t[perm], c[perm], group=g[perm], strata=s[perm])
    scaled = cumulative_incidence(t * scale, c, group=g, strata=s)
    assert np.array_equal(fit.cif, shuffled.cif)
    assert np.array_equal(fit.variance, shuffled.variance)
    np.testing.assert_array_equal(fit.cif, scaled.cif)
    for rho in (0, 1):
        base = fit.gray_test(1, rho).statistic
        for other in (shuffled, scaled):
            got = other.gray_test(1, rho).statistic
            assert (np.isnan(base) and np.isnan(got)) or got == pytest.approx(base, rel=1e-12)


def test_batching_of_causes_and_strata_does_not_change_the_test(monkeypatch):
    time, cause, group, strata = _data("tiny")
    fit = cumulative_incidence(time, cause, group=group, strata=strata)
    together = fit.gray_tests(rho=0.5)
    assert [r.cause for r in together] == [1, 2, 3]
    import failpattern.stats._gray as kernel
    monkeypatch.setattr(kernel, "_BATCH_CELLS", 1)  # force one cause per batch
    batched = fit.gray_tests(rho=0.5)
    monkeypatch.setattr(kernel, "_DENSE_CELLS", 0)  # force one stratum at a time
    by_stratum = fit.gray_tests(rho=0.5)
    for res, again, apart in zip(together, batched, by_stratum):
        single = fit.gray_test(res.cause, rho=0.5)
        for other in (single, again, apart):
            assert other.statistic == pytest.approx(res.statistic, rel=1e-13)
            np.testing.assert_allclose(other.variance, res.variance, rtol=1e-13)


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("time, cause, match", [
    ([1, np.nan, 3], [1, 0, 1], "time.*missing"),
    ([1, -2, 3], [1, 0, 1], "time.*negative"),
    ([1, "a", 3], [1, 0, 1], "time.*not numeric"),
    ([1, 2, 3], [1, 1.5, 0], "cause.*whole numbers"),
    ([1, 2, 3], [1, -1, 0], "cause.*whole numbers"),
    ([1, 2, 3], [1, 0], "same length"),
    ([1, 2, 3], [0, 0, 0], "all observations are censored"),
])
def test_bad_input(time, cause, match):
    with pytest.raises(InputError, match=match):
        cumulative_incidence(time, cause)


def test_bad_groups_and_requests():
    t, c = [1, 2, 3, 4], [1, 2, 0, 1]
    with pytest.raises(InputError, match="group.*same length|same length"):
        cumulative_incidence(t, c, group=[0, 1, 1])
    with pytest.raises(InputError, match="group.*missing"):
        cumulative_incidence(t, c, group=[0, None, 1, 1])
    with pytest.raises(InputError, match="strata.*give group"):
        cumulative_incidence(t, c, strata=[0, 0, 1, 1])
    one = cumulative_incidence(t, c, group=["a"] * 4)
    assert one.at(1, 1, "a") == 0.25
    with pytest.raises(InputError, match="at least 2.*one group"):
        one.gray_test()
    with pytest.raises(InputError, match="at least 2.*no group"):
        cumulative_incidence(t, c).gray_test()
    two = cumulative_incidence(t, c, group=["a", "b", "a", "b"])
    with pytest.raises(InputError, match="name one of the groups.*'a', 'b'"):
        two.at(1)
    with pytest.raises(InputError, match="'z' is not one of the groups"):
        two.at(1, group="z")
    with pytest.raises(InputError, match="cause: 3 has no events.*available causes: 1, 2"):
        two.at(1, cause=3, group="a")
    with pytest.raises(InputError, match="cause: 3 has no events"):
        two.gray_test(cause=3)
    with pytest.raises(InputError, match="rho"):
        two.gray_test(rho=float("nan"))
    with pytest.raises(InputError, match="rho"):
        two.gray_tests(rho="1")
    with pytest.raises(InputError, match="cause: True has no events"):
        two.at(1, cause=True, group="a")
    with pytest.raises(InputError, match="is not one of the groups"):
        two.at(1, group=["a"])
    assert "n=4" in repr(two) and "1: 2" in repr(two)
    with pytest.raises(InputError, match="times.*negative"):
        two.at([-1.0], group="a")
    with pytest.raises(InputError, match="group: 'a' given, but the estimate has no groups"):
        cumulative_incidence(t, c).at(1, group="a")
