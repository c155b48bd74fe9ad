"""Diagnostic figures: what is drawn is the proportional hazards result and the KM tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from failpattern import kaplan_meier, proportional_hazards_test  # noqa: E402
from failpattern.errors import InputError  # noqa: E402
from failpattern.plots import plot_log_minus_log, plot_schoenfeld  # noqa: E402
from failpattern.plots.diagnostics import natural_spline_smooth  # noqa: E402
from tests.fixtures import dataset  # noqa: E402

LUNG = ["age", "sex", "ph_ecog"]


@pytest.fixture(scope="module")
def lung():
    return dataset("lung").dropna(subset=["time", "event", *LUNG]).reset_index(drop=True)


@pytest.fixture(scope="module")
def zph(lung):
    return proportional_hazards_test(lung, duration="time", event="event", covariates=LUNG)


def _by_label(ax, label):
    found = [a for a in [*ax.collections, *ax.lines] if a.get_label() == label]
    assert len(found) == 1, label
    return found[0]


@pytest.mark.parametrize("covariate", LUNG)
def test_schoenfeld_points_are_the_residuals(zph, covariate):
    fig = plot_schoenfeld(zph, covariate)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    j = LUNG.index(covariate)
    points = _by_label(ax, "residuals").get_offsets()
    np.testing.assert_array_equal(points[:, 0], zph.transformed_time)
    np.testing.assert_array_equal(points[:, 1], zph.scaled_residuals[:, j])
    assert _by_label(ax, "coefficient").get_ydata()[0] == zph.coef[j]
    p = zph.summary.loc[covariate, "p"]
    expected = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    assert expected in ax.get_title()
    smooth = _by_label(ax, "smooth").get_xydata()
    assert np.isfinite(smooth).all()
    assert smooth[0, 0] == zph.transformed_time.min() and smooth[-1, 0] == zph.transformed_time.max()


def test_schoenfeld_into_given_axes(zph):
    fig = Figure()
    ax = fig.subplots()
    assert plot_schoenfeld(zph, "sex", ax=ax) is fig


def test_schoenfeld_bad_input(zph):
    with pytest.raises(InputError, match="weight"):
        plot_schoenfeld(zph, "weight")
    with pytest.raises(InputError, match="ProportionalHazardsResult"):
        plot_schoenfeld(object(), "sex")


def test_smooth_reproduces_a_cubic_and_a_line():
    x = np.linspace(0, 1, 40)
    line = 2 - 3 * x
    np.testing.assert_allclose(natural_spline_smooth(x, line, x), line, atol=1e-10)
    y = np.sin(3 * x)
    fit = natural_spline_smooth(x, y, x)
    assert np.max(np.abs(fit - y)) < 0.01
    # few distinct x: a straight line through the group means
    xb = np.repeat([0.0, 1.0], 10)
    yb = np.r_[np.zeros(10), np.ones(10)]
    np.testing.assert_allclose(natural_spline_smooth(xb, yb, [0.0, 0.5, 1.0]), [0, 0.5, 1],
                               atol=1e-12)


def test_log_minus_log_points_are_the_km_tables(lung):
    curves = {label: kaplan_meier(g["time"], g["event"])
              for label, g in (("male", lung[lung["sex"] == 1]),
                               ("female", lung[lung["sex"] == 2]))}
    fig = plot_log_minus_log(curves)
    ax = fig.axes[0]
    for label, km in curves.items():
        line = _by_label(ax, label)
        assert line.get_drawstyle() == "steps-post"
        keep = (km.events > 0) & (km.survival > 0) & (km.survival < 1)
        np.testing.assert_array_equal(line.get_xdata(), np.log(km.time[keep]))
        np.testing.assert_array_equal(line.get_ydata(), np.log(-np.log(km.survival[keep])))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["male", "female"]


def test_log_minus_log_bad_input(lung):
    with pytest.raises(InputError, match="curves"):
        plot_log_minus_log({})
    with pytest.raises(InputError, match="'a'"):
        plot_log_minus_log({"a": 1})
