"""Kaplan-Meier: R survfit (tests/reference/km.csv), SPSS 31 output, hand examples, properties."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failpattern.errors import InputError
from failpattern.stats.km import kaplan_meier
from fixtures import REFERENCE, cases, dataset, reference

RTOL = 1e-10  # observed max relative error against R is ~1e-15
R_TYPES = ("log", "log-log", "plain")
# counting-process (delayed entry) and case-weight cases: test_matches_r_entry_and_weights
CP_NAMES = ("trunc", "trunc_w", "trunc_fw", "mgus2_age", "lung_w", "lung_fw")
CP_CASES = [c for c in cases("km") if c.split("/")[0] in CP_NAMES and not c.endswith("/input")]
R_CASES = [c for c in cases("km") if not c.endswith("/input") and c not in CP_CASES]


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows R used for a fixture case name such as ``lung_sex=2`` or ``flat``."""
    base, _, level = name.partition("=")
    if base in ("lung", "lung90"):
        frame = dataset("lung")
    elif base in ("lung_sex", "veteran_trt"):
        data, var = base.split("_")
        frame = dataset(data)
        frame = frame[frame[var] == int(level)]
    else:
        return reference("km", f"{name}/input", "time"), reference("km", f"{name}/input", "event")
    return frame["time"].to_numpy(), frame["event"].to_numpy()


def _close(ours, ref, rtol=RTOL):
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=1e-14, equal_nan=True)


@pytest.mark.parametrize("case", R_CASES)
def test_matches_r_survfit(case):
    name, conf_type = case.split("/")
    alpha = 0.10 if name == "lung90" else 0.05
    fit = kaplan_meier(*_data(name), conf_type=conf_type, alpha=alpha)
    ref = lambda q: reference("km", case, q)  # noqa: E731
    np.testing.assert_array_equal(fit.time, ref("time"))
    np.testing.assert_array_equal(fit.at_risk, ref("n_risk"))
    np.testing.assert_array_equal(fit.events, ref("n_event"))
    np.testing.assert_array_equal(fit.censored, ref("n_censor"))
    for ours, quantity in ((fit.survival, "surv"), (fit.se, "se"), (fit.lower, "lower"),
                           (fit.upper, "upper")):
        _close(ours, ref(quantity))
    _close([fit.median, *fit.median_ci],
           np.concatenate([ref("median"), ref("median_lower"), ref("median_upper")]))


def test_r_cases_cover_the_rules():
    # the fixture really exercises the flat-at-0.5 midpoint and NA limits
    assert reference("km", "flat/log", "median")[0] == 5.5
    assert reference("km", "veteran_trt=2/log-log", "median")[0] == 52.5
    assert np.isnan(reference("km", "flat/log-log", "lower")[0])  # S = 1
    assert {c.split("/")[1] for c in R_CASES} == set(R_TYPES)


def test_table_columns_and_summary():
    fit = kaplan_meier(*_data("lung"))
    table = fit.table
    assert list(table.columns) == ["time", "at_risk", "events", "censored", "survival", "se",
                                   "lower", "upper"]
    assert table["events"].sum() == fit.n_events == 165 and fit.n == 228
    table.loc[0, "survival"] = -1.0  # a copy: the result is untouched
    assert fit.survival[0] > 0 and fit.table.equals(fit.to_frame())
    summary = fit.summary
    assert summary.loc[0, "median"] == fit.median and summary.loc[0, "conf_type"] == "log-log"
    assert "KaplanMeierResult(n=228" in repr(fit)


def test_result_is_frozen():
    fit = kaplan_meier([1, 2, 3], [1, 0, 1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.median = 1.0
    with pytest.raises(ValueError):
        fit.survival[0] = 0.0


def test_survival_at_is_right_continuous():
    # S: 1 before t=2; 2/3 on [2, 5) (3 at risk, 1 death); 0 from 5 on (t=4 censored)
    fit = kaplan_meier([2, 4, 5], [1, 0, 1])
    got = fit.survival_at([0, 1.999, 2, 3, 4, 4.5, 5, 100])
    np.testing.assert_allclose(got, [1, 1, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 0, 0])
    assert isinstance(fit.survival_at(3), float) and fit.survival_at(3) == pytest.approx(2 / 3)
    assert np.isnan(fit.survival_at(np.nan))
    assert fit.survival_at([[1, 2]]).shape == (1, 2)


# ---------------------------------------------------------------- SPSS


SPSS = REFERENCE / "spss31_km"


@pytest.mark.parametrize("group", ["sex=1", "sex=2", "overall"])
def test_spss_median_ci_matches_spss31(group):
    data = pd.read_csv(SPSS / "data.csv")
    if group != "overall":
        data = data[data["sex"] == int(group.split("=")[1])]
    ref = pd.read_csv(SPSS / "spss31.csv").set_index("group").loc[group]
    fit = kaplan_meier(data["time"], data["status"], conf_type="spss")
    assert (fit.n, fit.n_events) == (ref["n"], ref["events"])
    assert fit.median == ref["median"]
    # to SPSS's printed precision: SE 8 decimals, limits 3
    assert abs(fit.median_se - ref["se"]) <= 0.5e-8
    assert abs(fit.median_ci[0] - ref["lower"]) <= 0.5e-3
    assert abs(fit.median_ci[1] - ref["upper"]) <= 0.5e-3
    # symmetric, exactly 1.96 SE each side, like the paper's 11.5 (9.8-13.2)
    assert fit.median_ci[1] - fit.median == pytest.approx(fit.median - fit.median_ci[0])
    assert fit.median_ci[1] - fit.median == pytest.approx(1.96 * fit.median_se, rel=1e-14)


def test_spss_hand_example_censored_between_u_and_l():
    # 10 patients, S at event times: 1:.9 2:.8 3:.7 4:.6 | 5 censored | 6:.48 7:.36 9:.18
    # median = 6 (first S <= .5); u = 4 (last event S >= .55), l = 7 (first S <= .45);
    # the censored time 5 (S = .6) must not be used as u.
    # Greenwood sum at 6 = 1/90 + 1/72 + 1/56 + 1/42 + 1/20 = 7/60, se = .48 sqrt(7/60)
    # density = (.6 - .36) / (7 - 4) = .08  ->  SE = 6 sqrt(7/60) = sqrt(4.2)
    time = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    event = [1, 1, 1, 1, 0, 1, 1, 0, 1, 0]
    fit = kaplan_meier(time, event, conf_type="spss")
    assert fit.median == 6
    assert fit.median_se == pytest.approx(math.sqrt(4.2), rel=1e-13)
    half = 1.96 * math.sqrt(4.2)
    np.testing.assert_allclose(fit.median_ci, [6 - half, 6 + half], rtol=1e-13)
    # pointwise limits in spss mode: plain S ± 1.96 se, not clipped
    np.testing.assert_allclose(fit.lower, fit.survival - 1.96 * fit.se, rtol=1e-13)
    np.testing.assert_allclose(fit.upper, fit.survival + 1.96 * fit.se, rtol=1e-13)


def test_spss_flat_at_half_uses_left_end_where_r_uses_midpoint():
    # S: t1 3/4, t2 1/2 (flat through censored t3), t4 0.  SPSS median 2, R median (2+4)/2 = 3.
    # se at 2: .5 sqrt(1/12 + 1/6) = .25; u = 1 (S .75), l = 4 (S 0): density .75/3 = .25
    # SE = .25/.25 = 1, CI 2 ± 1.96
    time, event = [1, 2, 3, 4], [1, 1, 0, 1]
    spss = kaplan_meier(time, event, conf_type="spss")
    assert spss.median == 2 and spss.median_se == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_allclose(spss.median_ci, [0.04, 3.96], rtol=1e-13)
    assert kaplan_meier(time, event, conf_type="log").median == 3


def test_spss_alpha_other_than_005_uses_normal_quantile():
    time = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    event = [1, 1, 1, 1, 0, 1, 1, 0, 1, 0]
    fit = kaplan_meier(time, event, conf_type="spss", alpha=0.10)
    assert fit.median_ci[1] - fit.median == pytest.approx(1.6448536269514722 * fit.median_se)


def test_spss_not_computable_is_nan():
    # first event drops S to .5: no event time with S >= .55, so no SE
    fit = kaplan_meier([1, 1, 2, 3], [1, 1, 1, 0], conf_type="spss")
    assert fit.median == 1 and np.isnan(fit.median_se) and np.isnan(fit.median_ci).all()
    # median never reached
    fit = kaplan_meier([1, 2, 3, 4], [1, 0, 0, 0], conf_type="spss")
    assert np.isnan(fit.median) and np.isnan(fit.median_ci).all()
    assert np.isnan(kaplan_meier([1, 2], [1, 1]).median_se)  # only for spss


# ---------------------------------------------------------------- input rules


@pytest.mark.parametrize("time, event, words", [
    ([1, -2, 3], [1, 1, 1], "negative"),
    ([1, np.nan, 3], [1, 1, 1], "missing"),
    ([1, np.inf, 3], [1, 1, 1], "infinite"),
    ([1, 2, 3], [1, 2, 0], "0 (censored) or 1"),
    ([1, 2, 3], [1, 0.5, 0], "0 (censored) or 1"),
    ([1, 2, 3], [1, 0], "same length"),
    ([], [], "empty"),
])
def test_bad_input_raises(time, event, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        kaplan_meier(time, event)


def test_bad_options_raise():
    with pytest.raises(InputError, match="conf_type"):
        kaplan_meier([1, 2], [1, 1], conf_type="arcsin")
    with pytest.raises(InputError, match="alpha"):
        kaplan_meier([1, 2], [1, 1], alpha=1.5)


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain", "spss"])
def test_all_censored_is_flat_at_one(conf_type):
    fit = kaplan_meier([3, 1, 2, 2], [0, 0, 0, 0], conf_type=conf_type)
    assert fit.n_events == 0 and np.all(fit.survival == 1) and np.all(fit.se == 0)
    assert np.isnan(fit.median) and np.isnan(fit.median_ci).all()
    assert fit.survival_at(10.0) == 1.0


# ---------------------------------------------------------------- properties

samples = st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=40)
conf_types = st.sampled_from(["log", "log-log", "plain", "spss"])


@settings(max_examples=60, deadline=None)
@given(samples, conf_types)
def test_curve_is_a_survival_function_inside_its_band(rows, conf_type):
    time, event = np.array(rows, dtype=float).T
    fit = kaplan_meier(time, event, conf_type=conf_type)
    assert np.all((fit.survival >= 0) & (fit.survival <= 1))
    assert np.all(np.diff(fit.survival) <= 0)
    ok = ~np.isnan(fit.lower)
    assert np.all(fit.lower[ok] <= fit.survival[ok] + 1e-15)
    assert np.all(fit.survival[ok] <= fit.upper[ok] + 1e-15)
    lo, hi = fit.median_ci
    if not np.isnan(fit.median) and not np.isnan(lo) and not np.isnan(hi):
        assert lo <= fit.median <= hi


@settings(max_examples=60, deadline=None)
@given(samples, conf_types, st.randoms(use_true_random=False))
def test_row_order_does_not_matter(rows, conf_type, rnd):
    time, event = np.array(rows, dtype=float).T
    order = list(range(len(rows)))
    rnd.shuffle(order)
    a = kaplan_meier(time, event, conf_type=conf_type)
    b = kaplan_meier(time[order], event[order], conf_type=conf_type)
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal([a.median, *a.median_ci], [b.median, *b.median_ci])


@settings(max_examples=60, deadline=None)
@given(samples, conf_types, st.floats(0.01, 1000))
def test_rescaling_time_scales_the_median(rows, conf_type, c):
    time, event = np.array(rows, dtype=float).T
    a = kaplan_meier(time, event, conf_type=conf_type)
    b = kaplan_meier(time * c, event, conf_type=conf_type)
    np.testing.assert_allclose(b.survival, a.survival, rtol=1e-14)
    np.testing.assert_allclose([b.median, *b.median_ci], c * np.array([a.median, *a.median_ci]),
                               rtol=1e-12)


# ---------------------------------------------------------------- delayed entry, case weights


def _cp_data(name: str) -> dict:
    """time, event, entry, weights of an R counting-process / weighted case (see km.R)."""
    base, _, wt = name.partition("_")
    if base == "trunc":
        ref = lambda q: reference("km", "trunc/input", q)  # noqa: E731
        out = dict(time=ref("time"), event=ref("event"), entry=ref("entry"))
        if wt:
            out["weights"] = ref(wt)
        return out
    if base == "mgus2":  # age scale in months
        m = dataset("mgus2")
        return dict(time=m["age"].to_numpy() * 12 + m["time"].to_numpy(),
                    event=(m["cause"] > 0).to_numpy().astype(int), entry=m["age"].to_numpy() * 12)
    lung = dataset("lung")
    return dict(time=lung["time"].to_numpy(), event=lung["event"].to_numpy(),
                weights=reference("km", "lung/input", wt))


@pytest.mark.parametrize("case", CP_CASES)
def test_matches_r_entry_and_weights(case):
    name, conf_type = case.split("/")
    data = _cp_data(name)
    fit = kaplan_meier(data.pop("time"), data.pop("event"), conf_type=conf_type, **data)
    ref = lambda q: reference("km", case, q)  # noqa: E731
    np.testing.assert_array_equal(fit.time, ref("time"))
    for ours, quantity in ((fit.at_risk, "n_risk"), (fit.events, "n_event"),
                           (fit.censored, "n_censor"), (fit.survival, "surv"), (fit.se, "se"),
                           (fit.lower, "lower"), (fit.upper, "upper")):
        _close(ours, ref(quantity))
    _close([fit.median, *fit.median_ci],
           np.concatenate([ref("median"), ref("median_lower"), ref("median_upper")]))


def test_entry_and_weight_cases_cover_the_rules():
    assert {c.split("/")[1] for c in CP_CASES} == {"log", "log-log"}
    assert len(CP_CASES) == 2 * len(CP_NAMES)
    # fractional weights: R's robust SE is 0 (not NA) once S = 0; Greenwood's is NA
    assert reference("km", "trunc_fw/log", "se")[-1] == 0
    assert np.isnan(reference("km", "trunc_w/log", "se")[-1])
    # the two entries at 2 tie the first event time, 2: those rows are not yet at risk there
    # (all 9 rows have time >= 2; entries 2, 2, 3, 4 are not below it)
    assert reference("km", "trunc/log", "n_risk")[0] == 5


def _table(fit):
    return fit.table.astype(float)


def _same_fit(a, b, exact=False):
    if exact:
        pd.testing.assert_frame_equal(a.table, b.table)
        np.testing.assert_array_equal([a.median, *a.median_ci, a.median_se],
                                      [b.median, *b.median_ci, b.median_se])
        assert (a.n, a.n_events) == (b.n, b.n_events)
        return
    pd.testing.assert_frame_equal(_table(a), _table(b), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose([a.median, *a.median_ci, a.median_se],
                               [b.median, *b.median_ci, b.median_se], rtol=1e-12)


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain", "spss"])
def test_entry_all_zero_equals_no_entry(conf_type):
    lung = dataset("lung")
    time, event = lung["time"].to_numpy(), lung["event"].to_numpy()
    _same_fit(kaplan_meier(time, event, conf_type=conf_type) if conf_type != "spss" else
              kaplan_meier(time, event, conf_type="plain"),
              kaplan_meier(time, event, conf_type="plain" if conf_type == "spss" else conf_type,
                           entry=np.zeros(time.size)), exact=True)


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain", "spss"])
def test_unit_weights_equal_no_weights(conf_type):
    lung = dataset("lung")
    time, event = lung["time"].to_numpy(), lung["event"].to_numpy()
    _same_fit(kaplan_meier(time, event, conf_type=conf_type),
              kaplan_meier(time, event, conf_type=conf_type, weights=np.ones(time.size)))


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain", "spss"])
@pytest.mark.parametrize("with_entry", [False, True])
def test_whole_number_weights_equal_replicated_rows(conf_type, with_entry):
    if conf_type == "spss" and with_entry:
        return
    m = dataset("mgus2")
    time = m["age"].to_numpy() * 12.0 + m["time"].to_numpy()
    event = (m["cause"] > 0).to_numpy().astype(int)
    entry = m["age"].to_numpy() * 12.0 if with_entry else None
    w = 1 + np.arange(time.size) % 3  # 1, 2, 3 (no 0: a 0-weight row still adds a time)
    rep = np.repeat(np.arange(time.size), w)
    a = kaplan_meier(time, event, conf_type=conf_type, weights=w.astype(float),
                     entry=entry)
    b = kaplan_meier(time[rep], event[rep], conf_type=conf_type,
                     entry=None if entry is None else entry[rep])
    _same_fit(a, b)
    assert a.n_events == b.n_events


weighted_rows = st.lists(st.tuples(st.integers(0, 10), st.integers(1, 10), st.booleans(),
                                   st.integers(1, 4)), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(weighted_rows, st.sampled_from(["log", "log-log", "plain"]))
def test_weights_and_entry_properties(rows, conf_type):
    entry, length, event, w = (np.array(c, dtype=float) for c in zip(*rows))
    time = entry + length
    a = kaplan_meier(time, event, conf_type=conf_type, entry=entry, weights=w)
    rep = np.repeat(np.arange(time.size), w.astype(int))
    b = kaplan_meier(time[rep], event[rep], conf_type=conf_type, entry=entry[rep])
    _same_fit(a, b)
    assert np.all((a.survival >= 0) & (a.survival <= 1)) and np.all(np.diff(a.survival) <= 0)
    # S is unchanged when every weight is scaled (the SE is not, for whole-number weights)
    c = kaplan_meier(time, event, conf_type=conf_type, entry=entry, weights=w * 0.5)
    np.testing.assert_allclose(c.survival, a.survival, rtol=1e-12)
    assert np.all(np.isfinite(c.se[c.survival > 0]))


def test_fractional_weights_use_the_robust_se():
    # one row per time, weights halved: S unchanged; the robust SE of S is
    # S sqrt(sum_i (w_i dlogS/dw_i)^2), here checked against a direct n x m evaluation
    time = np.array([2, 5, 3, 6, 4, 7, 8, 3, 4.0])
    event = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1])
    entry = np.array([0, 0, 1, 2, 3, 0.5, 4, 2, 0])
    w = np.array([1.5, 2, 1, 3, 0, 2, 0.5, 0.25, 1])
    fit = kaplan_meier(time, event, entry=entry, weights=w, conf_type="log")
    t = fit.time
    at_risk = (entry[:, None] < t) & (time[:, None] >= t)
    died = (time[:, None] == t) & (event[:, None] == 1)
    n, d = w @ at_risk, w @ died
    ok = n > d
    step = (died * n - at_risk * d) / np.where(ok, n * (n - d), 1)
    infl = np.cumsum(np.where(ok, step, 0), axis=1)
    se = fit.survival * np.sqrt(((w[:, None] * infl) ** 2).sum(axis=0))
    np.testing.assert_allclose(fit.se, np.where(fit.survival > 0, se, 0.0), rtol=1e-12, atol=1e-15)


def test_weighted_counts_are_floats():
    fit = kaplan_meier([1, 2, 3], [1, 0, 1], weights=[0.5, 1, 2])
    assert fit.at_risk.dtype == np.float64 and fit.n_events == 2.5 and fit.n == 3
    np.testing.assert_array_equal(fit.at_risk, [3.5, 3, 2])
    np.testing.assert_array_equal(fit.censored, [0, 1, 0])
    unweighted = kaplan_meier([1, 2, 3], [1, 0, 1], entry=[0, 0.5, 1])
    assert unweighted.at_risk.dtype.kind == "i" and isinstance(unweighted.n_events, int)


@pytest.mark.parametrize("kwargs, words", [
    (dict(entry=[0, 2, 1]),
     r"entry: must be strictly less than time.*position 1: entry 2.0 >= time 2.0"),
    (dict(entry=[0, 3, 4]), r"2 row\(s\) are not: position 1: entry 3.0 >= time 2.0, "
                            r"position 2: entry 4.0 >= time 3.0$"),
    (dict(entry=[0, -1, 0]), "entry: .*negative"),
    (dict(entry=[0, np.nan, 0]), "entry: .*missing"),
    (dict(entry=[0, 1]), "same length"),
    (dict(weights=[1, -1, 1]), "weights: .*negative.*position 1 = -1"),
    (dict(weights=[1, np.nan, 1]), "weights: .*missing"),
    (dict(weights=[1, np.inf, 1]), "weights: .*infinite"),
    (dict(weights=[0, 0, 0]), "weights: all weights are 0"),
    (dict(weights=[1, 1]), "same length"),
    (dict(weights=["a", 1, 1]), "weights"),
    (dict(entry=[0, 0, 0], conf_type="spss"), "spss.*delayed entry"),
    (dict(weights=[1, 0.5, 1], conf_type="spss"), "weights: .*spss.*whole-number"),
])
def test_bad_entry_and_weights_raise(kwargs, words):
    with pytest.raises(InputError, match=words):
        kaplan_meier([1, 2, 3], [1, 0, 1], **kwargs)


def test_entry_errors_name_pandas_labels():
    entry = pd.Series([0, 5], index=["a", "b"])
    with pytest.raises(InputError, match="index 'b': entry 5.0 >= time 2.0"):
        kaplan_meier([1, 2], [1, 1], entry=entry)


def test_spss_with_whole_number_weights_equals_replicated_rows():
    data = pd.read_csv(SPSS / "data.csv")
    w = 1 + np.arange(len(data)) % 2
    rep = np.repeat(np.arange(len(data)), w)
    a = kaplan_meier(data["time"], data["status"], conf_type="spss", weights=w)
    b = kaplan_meier(data["time"].to_numpy()[rep], data["status"].to_numpy()[rep],
                     conf_type="spss")
    _same_fit(a, b)
