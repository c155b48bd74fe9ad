"""Figures: what is drawn is what the results say (curves, marks, counts, labels), and files."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from failpattern import output  # noqa: E402
from failpattern.errors import InputError  # noqa: E402
from failpattern.plots import (plot_cumulative_incidence, plot_forest, plot_km,  # noqa: E402
                               save_figure)
from failpattern.plots import _save  # noqa: E402
from failpattern.stats.cif import cumulative_incidence  # noqa: E402
from failpattern.stats.km import kaplan_meier  # noqa: E402
from failpattern.stats.logrank import logrank  # noqa: E402


# --------------------------------------------------------------------------- data
def _two_groups(seed: int = 7):
    """Times rounded to 0.5 (ties), censoring, two groups of different size."""
    rng = np.random.default_rng(seed)
    out = {}
    for label, n, scale in (("Prior-RT", 15, 18.0), ("Non prior-RT", 30, 8.0)):
        t = np.round(rng.exponential(scale, n) * 2) / 2
        c = rng.uniform(5, 30, n)
        out[label] = (np.minimum(t, np.round(c * 2) / 2), (t <= c).astype(int))
    return out


@pytest.fixture(scope="module")
def data():
    return _two_groups()


@pytest.fixture(scope="module")
def curves(data):
    return {k: kaplan_meier(t, e, conf_type="log-log") for k, (t, e) in data.items()}


def _all_axes(fig):
    """Every Axes of the figure, insets (``child_axes``) included."""
    out = []
    for ax in fig.axes:
        out += [ax, *ax.child_axes]
    return out


def _gid(fig_or_ax, gid):
    axes = _all_axes(fig_or_ax) if isinstance(fig_or_ax, Figure) else [fig_or_ax]
    found = [a for ax in axes for a in ax.get_children() if a.get_gid() == gid]
    assert found, f"no artist with gid {gid!r}"
    return found[0]


def _risk_axes(fig):
    (rax,) = [a for a in _all_axes(fig) if a.get_label() == "risk-table"]
    return rax


def _step_value(x, y, at):
    """Value of a steps-post line (x, y) at ``at``: right-continuous."""
    return np.asarray(y)[np.searchsorted(x, at, side="right") - 1]


# --------------------------------------------------------------------------- KM
def test_km_curve_is_the_results_right_continuous_step(curves):
    fig = plot_km(curves, risk_table=False)
    for label, res in curves.items():
        line = _gid(fig, f"km-curve:{label}")
        assert line.get_drawstyle() == "steps-post"
        np.testing.assert_array_equal(line.get_xdata(), np.r_[0.0, res.time])
        np.testing.assert_array_equal(line.get_ydata(), np.r_[1.0, res.survival])
        probe = np.r_[res.time, res.time - 1e-9, np.linspace(0, res.time[-1], 97)]
        probe = probe[probe >= 0]
        np.testing.assert_array_equal(
            _step_value(line.get_xdata(), line.get_ydata(), probe), res.survival_at(probe))


def test_km_censor_marks_at_censored_times(curves, data):
    fig = plot_km(curves, risk_table=False)
    for label, res in curves.items():
        t, e = data[label]
        marks = _gid(fig, f"km-censor:{label}")
        assert marks.get_marker() == "+" and marks.get_linestyle() == "None"
        censored_times = np.unique(t[e == 0])
        assert censored_times.size > 0
        np.testing.assert_array_equal(marks.get_xdata(), censored_times)
        np.testing.assert_array_equal(marks.get_ydata(), res.survival_at(censored_times))
    fig = plot_km(curves, risk_table=False, censor_marks=False)
    assert not [a for ax in fig.axes for a in ax.lines if "censor" in str(a.get_gid())]


def _table_rows(fig):
    """{row label: [(x, text), ...]} of the numbers-at-risk table."""
    rax = _risk_axes(fig)
    labels = {round(t, 6): lab.get_text()
              for t, lab in zip(rax.get_yticks(), rax.get_yticklabels())}
    rows = {}
    for text in rax.texts:
        x, y = text.get_position()
        rows.setdefault(labels[round(y, 6)], []).append((x, text.get_text()))
    return rax, rows


def test_km_numbers_at_risk_under_each_tick(curves, data):
    fig = plot_km(curves)
    ax = [a for a in fig.axes if a.get_label() != "risk-table"][0]
    rax, rows = _table_rows(fig)
    ticks = ax.get_xticks()
    assert set(rows) == set(curves)
    assert rax.get_xlim() == ax.get_xlim()
    assert ticks[0] == 0 and ticks[-1] >= max(r.time[-1] for r in curves.values())
    for label, res in curves.items():
        table = res.table
        expected = []
        for tick in ticks:  # at_risk of the first table time >= tick, 0 after the last
            later = table[table["time"] >= tick]
            expected.append(str(int(later["at_risk"].iloc[0])) if len(later) else "0")
        t, _ = data[label]
        assert expected == [str(int((t >= tick).sum())) for tick in ticks]  # raw counts
        assert [x for x, _ in rows[label]] == list(ticks)
        assert [s for _, s in rows[label]] == expected
        assert expected[0] == str(res.n) and expected[-1] == "0"


def test_km_risk_table_aligned_and_not_clipped(curves):
    fig = plot_km(curves, risk_times=[0, 6, 12, 18, 24, 30, 36])
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    ax = [a for a in fig.axes if a.get_label() != "risk-table"][0]
    rax = _risk_axes(fig)
    np.testing.assert_array_equal(ax.get_xticks(), [0, 6, 12, 18, 24, 30, 36])
    tick_x = [lab.get_window_extent(renderer).x0 + lab.get_window_extent(renderer).width / 2
              for lab in ax.get_xticklabels()]
    fig_box = fig.bbox
    for label in curves:
        texts = [t for t in rax.texts if t.get_color() == rax.get_yticklabels()[
            [lab.get_text() for lab in rax.get_yticklabels()].index(label)].get_color()]
        centres = [t.get_window_extent(renderer).x0 + t.get_window_extent(renderer).width / 2
                   for t in texts]
        np.testing.assert_allclose(centres, tick_x, atol=1.0)  # pixels
    for artist in list(rax.texts) + list(rax.get_yticklabels()):
        box = artist.get_window_extent(renderer)
        assert box.y0 >= fig_box.y0 - 1 and box.x1 <= fig_box.x1 + 1
    # the row labels do not run into the first column of counts
    first = min(rax.texts, key=lambda t: t.get_position()[0]).get_window_extent(renderer)
    assert max(lab.get_window_extent(renderer).x1 for lab in rax.get_yticklabels()) < first.x0


def test_km_risk_times_beyond_follow_up_count_zero(curves):
    res = curves["Prior-RT"]
    times = [0, 1.75, float(res.time[-1]), float(res.time[-1]) + 5]
    fig = plot_km({"Prior-RT": res}, risk_times=times)
    _, rows = _table_rows(fig)
    assert [s for _, s in rows["Prior-RT"]] == [
        str(res.n), str(int((res.time >= 1.75).astype(int) @ (res.events + res.censored))),
        str(int(res.at_risk[-1])), "0"]


def test_km_median_label_and_drop_lines():
    res = kaplan_meier([2, 4, 4, 6, 8, 9, 11, 12, 15, 20], [1, 1, 0, 1, 1, 1, 0, 1, 1, 0],
                       conf_type="spss")
    fig = plot_km({"Arm A": res}, risk_table=False)
    ax = fig.axes[0]
    text = [t.get_text() for t in ax.get_legend().get_texts()]
    lo, hi = res.median_ci
    assert text == [f"Arm A: median {res.median:.1f} ({lo:.1f}–{hi:.1f})"]
    drop = _gid(fig, "km-median:Arm A")
    np.testing.assert_array_equal(drop.get_xdata(), [0, res.median, res.median])
    np.testing.assert_array_equal(drop.get_ydata(), [0.5, 0.5, 0])
    assert res.survival_at(res.median) <= 0.5 < res.survival_at(res.median - 1e-9)

    flat = kaplan_meier([1, 2, 3, 4], [1, 0, 0, 0])  # never reaches 0.5
    fig = plot_km(flat, risk_table=False)
    assert np.isnan(flat.median) and np.isnan(flat.median_ci[1])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        f"median NR ({flat.median_ci[0]:.1f}–NR)"]
    assert not [a for a in fig.axes[0].lines if str(a.get_gid()).startswith("km-median")]


@pytest.mark.parametrize("p, shown", [(0.006, "log-rank p = 0.006"),
                                      (0.0004, "log-rank p < 0.001"),
                                      (0.0501, "log-rank p = 0.050"),
                                      (1.0, "log-rank p > 0.999")])
def test_km_p_value_text(curves, p, shown):
    fig = plot_km(curves, risk_table=False, p_value=p)
    assert _gid(fig, "p-value").get_text() == shown


def test_km_p_value_from_logrank_result(curves, data):
    t = np.concatenate([v[0] for v in data.values()])
    e = np.concatenate([v[1] for v in data.values()])
    g = np.concatenate([[k] * len(v[0]) for k, v in data.items()])
    test = logrank(t, e, g)
    fig = plot_km(curves, risk_table=False, p_value=test)
    text = _gid(fig, "p-value").get_text()
    p = test.p_value
    assert text == ("log-rank p < 0.001" if p < 0.001 else f"log-rank p = {p:.3f}")


def test_km_confidence_band_follows_limits(curves):
    res = curves["Non prior-RT"]
    fig = plot_km({"x": res}, risk_table=False, ci=True)
    band = _gid(fig, "km-ci:x")
    verts = np.concatenate([p.vertices for p in band.get_paths()])
    lower = np.where(np.isnan(res.lower) & (res.survival >= 1), 1.0, res.lower)
    ok = ~np.isnan(res.upper)
    assert verts[:, 1].min() == pytest.approx(np.nanmin(lower))
    assert verts[:, 1].max() == pytest.approx(1.0)
    # every finite limit is a vertex of the band
    ys = set(np.round(verts[:, 1], 12))
    assert set(np.round(res.upper[ok], 12)) <= ys and set(np.round(res.lower[ok], 12)) <= ys
    assert not [a for a in plot_km({"x": res}, risk_table=False).axes[0].collections]


def test_km_into_given_axes(curves):
    fig = Figure(figsize=(5, 6))
    ax = fig.add_axes([0.2, 0.45, 0.7, 0.5])
    out = plot_km(curves, ax=ax, title="Fig. 1a")
    assert out is fig
    assert _risk_axes(fig).get_xlim() == ax.get_xlim()
    assert ax.get_title(loc="left") == "Fig. 1a"


def test_km_rejects_bad_input(curves):
    with pytest.raises(InputError, match="curves"):
        plot_km({})
    with pytest.raises(InputError, match="'b'"):
        plot_km({"a": curves["Prior-RT"], "b": 3})
    with pytest.raises(InputError, match="risk_times"):
        plot_km(curves, risk_times=[0, 12, 6])
    with pytest.raises(InputError, match="colors"):
        plot_km(curves, colors=["red"])
    with pytest.raises(InputError, match="p_value"):
        plot_km(curves, p_value=1.5)


# --------------------------------------------------------------------------- CIF
@pytest.fixture(scope="module")
def competing():
    rng = np.random.default_rng(3)
    n = 80
    latent = np.column_stack([rng.exponential(s, n) for s in (20.0, 40.0, 35.0)])
    cens = rng.uniform(10, 40, n)
    t = np.round(np.minimum(latent.min(axis=1), cens))  # whole months: ties
    cause = np.where(latent.min(axis=1) <= cens, latent.argmin(axis=1) + 1, 0)
    arm = rng.choice(["A", "B"], n)
    return t, cause, arm


def test_cif_curves_equal_the_estimate(competing):
    t, cause, _ = competing
    res = cumulative_incidence(t, cause)
    fig = plot_cumulative_incidence(res, labels={1: "OF", 2: "DF", 3: "ODF"})
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_legend().get_texts()] == ["OF", "DF", "ODF"]
    probe = np.linspace(0, res.last_time[0], 211)
    for c in res.causes:
        line = _gid(fig, f"cif:{c}")
        x, y = line.get_xdata(), line.get_ydata()
        assert line.get_drawstyle() == "steps-post"
        assert (x[0], y[0]) == (0.0, 0.0) and x[-1] == res.last_time[0]
        jumps = res.table.query("cause == @c")["time"].to_numpy()
        np.testing.assert_allclose(y[1:-1], res.at(jumps, c))
        np.testing.assert_allclose(_step_value(x, y, probe), res.at(probe, c), atol=1e-15)


def test_cif_total_is_one_minus_km_of_any_failure(competing):
    t, cause, _ = competing
    res = cumulative_incidence(t, cause)
    km = kaplan_meier(t, (cause > 0).astype(int))
    fig = plot_cumulative_incidence(res, add_total=True, causes=[1])
    total = _gid(fig, "cif-total")
    assert total.get_label() == "Any progression"
    probe = np.linspace(0, res.last_time[0], 173)
    np.testing.assert_allclose(_step_value(total.get_xdata(), total.get_ydata(), probe),
                               1.0 - km.survival_at(probe), atol=1e-12)


def test_cif_stacked_bands_sum_to_total(competing):
    t, cause, _ = competing
    res = cumulative_incidence(t, cause)
    fig = plot_cumulative_incidence(res, stacked=True, add_total=True)
    top = _gid(fig, f"cif:{res.causes[-1]}")
    total = _gid(fig, "cif-total")
    np.testing.assert_allclose(top.get_ydata(), total.get_ydata(), atol=1e-12)
    first = _gid(fig, f"cif:{res.causes[0]}")
    probe = np.linspace(0, res.last_time[0], 50)
    np.testing.assert_allclose(_step_value(first.get_xdata(), first.get_ydata(), probe),
                               res.at(probe, res.causes[0]), atol=1e-12)
    assert len([a for a in fig.axes[0].collections
                if str(a.get_gid()).startswith("cif-band")]) == len(res.causes)


def test_cif_group_km_overlay_p_value_and_risk_table(competing):
    t, cause, arm = competing
    res = cumulative_incidence(t, cause, group=arm)
    sel = arm == "B"
    naive = kaplan_meier(t[sel], (cause[sel] == 1).astype(int))  # other causes censored
    gray = res.gray_test(1)
    fig = plot_cumulative_incidence(res, group="B", causes=[1], compare_one_minus_km=naive,
                                    risk_table=True, p_value=gray, risk_times=[0, 10, 20, 30])
    line = _gid(fig, "cif:1")
    probe = np.linspace(0, res.last_time[1], 80)
    np.testing.assert_allclose(_step_value(line.get_xdata(), line.get_ydata(), probe),
                               res.at(probe, 1, "B"), atol=1e-15)
    dashed = _gid(fig, "one-minus-km:1 − KM")
    assert dashed.get_linestyle() == "--"
    np.testing.assert_allclose(dashed.get_ydata(), 1 - np.r_[1.0, naive.survival])
    # 1 - KM with competing events censored is never below the cumulative incidence
    assert np.all(1 - naive.survival_at(probe) >= res.at(probe, 1, "B") - 1e-12)
    assert _gid(fig, "p-value").get_text().startswith("Gray's test p ")
    _, rows = _table_rows(fig)
    assert rows == {"B": [(x, str(int((t[sel] >= x).sum()))) for x in (0, 10, 20, 30)]}


def test_cif_rejects_bad_input(competing):
    t, cause, arm = competing
    res = cumulative_incidence(t, cause, group=arm)
    with pytest.raises(InputError, match="group"):
        plot_cumulative_incidence(res)
    with pytest.raises(InputError, match="cause"):
        plot_cumulative_incidence(res, group="A", causes=[7])
    with pytest.raises(InputError, match="risk_table"):
        plot_cumulative_incidence(res, group="A", risk_table=True)
    with pytest.raises(InputError, match="result"):
        plot_cumulative_incidence(kaplan_meier(t, cause > 0))


# --------------------------------------------------------------------------- forest
@pytest.fixture()
def table3():
    ours = pd.DataFrame({"shr": [0.5, 0.21, 2.6], "shr_lower": [0.24, 0.09, 1.2],
                         "shr_upper": [1.1, 0.47, 5.6]},
                        index=pd.Index(["Age", "Histology", "Tumor size"], name="covariate"))
    published = pd.DataFrame({"shr": [2.74, 0.55], "shr_lower": [1.28, 0.26],
                              "shr_upper": [5.87, 1.16]}, index=["Tumor size", "Age"])
    return ours, published


def test_forest_points_bars_and_text(table3):
    ours, _ = table3
    fig = plot_forest(ours)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(ours.index)
    assert ax.get_xscale() == "log"
    est = _gid(fig, "forest-est:reproduced")
    np.testing.assert_array_equal(est.get_xdata(), ours["shr"])
    np.testing.assert_array_equal(est.get_ydata(), [0, 1, 2])
    segs = _gid(fig, "forest-ci:reproduced").get_segments()
    np.testing.assert_allclose([s[:, 0] for s in segs], ours[["shr_lower", "shr_upper"]])
    assert _gid(fig, "reference-line").get_xdata()[0] == 1.0
    (tax,) = [a for a in fig.axes if a.get_label() == "forest-table"]
    texts = [t.get_text() for t in tax.texts if t.get_gid() == "forest-text:reproduced"]
    assert texts == ["0.50 (0.24–1.10)", "0.21 (0.09–0.47)", "2.60 (1.20–5.60)"]
    assert [t.get_text() for t in tax.texts if t.get_gid() == "forest-header:reproduced"] == [
        "SHR (95% CI)"]


def test_forest_published_beside_reproduced(table3):
    ours, published = table3
    fig = plot_forest(ours, published=published)
    ours_y = _gid(fig, "forest-est:reproduced").get_ydata()
    pub = _gid(fig, "forest-est:published")
    np.testing.assert_array_equal(pub.get_xdata(), [0.55, 2.74])  # frame's order: Age, size
    offset = pub.get_ydata() - ours_y[[0, 2]]  # beside the rows of the same labels
    assert offset[0] == pytest.approx(offset[1]) and 0 < abs(offset[0]) < 0.5
    np.testing.assert_array_equal(np.round(pub.get_ydata()), [0, 2])
    assert pub.get_marker() != _gid(fig, "forest-est:reproduced").get_marker()
    (tax,) = [a for a in fig.axes if a.get_label() == "forest-table"]
    assert [t.get_text() for t in tax.texts if t.get_gid() == "forest-text:published"] == [
        "0.55 (0.26–1.16)", "—", "2.74 (1.28–5.87)"]
    heads = [t.get_text() for t in tax.texts if str(t.get_gid()).startswith("forest-header")]
    assert heads == ["Reproduced\nSHR (95% CI)", "Published\nSHR (95% CI)"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "Reproduced", "Published"]


def test_forest_label_column_linear_scale_and_open_interval():
    frame = pd.DataFrame({"name": ["a", "b"], "hr": [1.5, 3.0], "lo": [0.8, 1.1],
                          "hi": [2.9, np.inf]})
    fig = plot_forest(frame, estimate="hr", lower="lo", upper="hi", label_column="name",
                      log_scale=False, reference_line=None)
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == "hr"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    segs = _gid(fig, "forest-ci:reproduced").get_segments()
    assert segs[1][1, 0] == ax.get_xlim()[1]  # cut at the edge ...
    assert _gid(fig, "forest-cut:reproduced").get_marker() == ">"  # ... and marked
    assert not [a for a in ax.lines if a.get_gid() == "reference-line"]
    (tax,) = [a for a in fig.axes if a.get_label() == "forest-table"]
    assert [t.get_text() for t in tax.texts if t.get_gid() == "forest-text:reproduced"] == [
        "1.50 (0.80–2.90)", "3.00 (1.10–∞)"]


def test_forest_rejects_bad_input(table3):
    ours, published = table3
    with pytest.raises(InputError, match="'hr'"):
        plot_forest(ours, estimate="hr")
    with pytest.raises(InputError, match="'Sex'"):
        plot_forest(ours, published=pd.concat([published, published.rename({"Age": "Sex"})
                                               .iloc[[1]]]))
    with pytest.raises(InputError, match="duplicated"):
        plot_forest(pd.concat([ours, ours.iloc[[0]]]))


# --------------------------------------------------------------------------- save
@pytest.fixture(scope="module")
def small_fig(curves):
    return plot_km(curves, p_value=0.006)


def test_save_writes_valid_png_and_svg(small_fig, tmp_path):
    paths = save_figure(small_fig, tmp_path / "km", dpi=80)
    assert paths == [tmp_path / "km.png", tmp_path / "km.svg"]
    png = paths[0].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = mpimg.imread(paths[0])
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300
    root = ET.parse(paths[1]).getroot()
    assert root.tag.endswith("svg")
    svg = paths[1].read_text()
    assert "log-rank p = 0.006" in svg and "Number at risk" in svg  # text kept as text
    assert sorted(os.listdir(tmp_path)) == ["km.png", "km.svg"]  # no temporary files left
    mode = paths[0].stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_save_svg_is_reproducible(curves, tmp_path):
    """The same figure built twice gives byte-identical SVG (no date, fixed ids)."""
    a = save_figure(plot_km(curves), tmp_path / "a", formats=("svg",))[0].read_text()
    b = save_figure(plot_km(curves), tmp_path / "b", formats=("svg",))[0].read_text()
    assert a == b


def test_save_draws_each_figure_once_per_format(curves, tmp_path, monkeypatch):
    """One draw per format: the PNG is cut from the draw that lays the figure out, the SVG
    reuses that layout (``bbox_inches="tight"`` drew twice per file: 4 draws here)."""
    draws = []
    real_draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(1) or real_draw(self, renderer))
    fig = plot_km(curves, p_value=0.006)
    save_figure(fig, tmp_path / "km", formats=("png", "svg"))
    assert len(draws) == 2
    assert fig.get_layout_engine() is not None  # the figure's layout engine is given back


def _tight_png(fig, path, dpi):
    """What save_figure wrote before it drew once: savefig(bbox_inches="tight") per file."""
    fig.savefig(path, format="png", dpi=dpi, bbox_inches="tight", pad_inches=_save.PAD_INCHES)
    return mpimg.imread(path)


@pytest.mark.parametrize("outside", [False, True], ids=["inside", "drawn-outside-the-figure"])
def test_save_png_matches_a_tight_savefig(curves, tmp_path, outside):
    """The PNG is the tight-bbox PNG (same size, the risk table whole) up to a sub-pixel shift,
    also when something is drawn outside the figure (then it is drawn by savefig)."""
    def build():
        fig = plot_km(curves, p_value=0.006, title="A title")
        if outside:
            fig.axes[0].text(1.4, 0.5, "far right", transform=fig.axes[0].transAxes)
        return fig

    ours = mpimg.imread(save_figure(build(), tmp_path / "ours", formats=("png",), dpi=60)[0])
    reference = _tight_png(build(), tmp_path / "ref.png", 60)
    assert ours.shape == reference.shape
    # the shift moves edges by under a pixel: few pixels differ much, none outside the blur
    assert np.mean(np.abs(ours - reference).max(axis=2) > 0.25) < 0.05
    assert np.abs(ours[:, :, :3].mean(axis=(0, 1)) - reference[:, :, :3].mean(axis=(0, 1))).max() < 0.01


def test_save_is_reproducible_in_every_format_combination(curves, tmp_path):
    """PNG and SVG are byte-stable, and the SVG is the same whether or not a PNG is written."""
    first = save_figure(plot_km(curves), tmp_path / "a")
    second = save_figure(plot_km(curves), tmp_path / "b")
    alone = save_figure(plot_km(curves), tmp_path / "c", formats=("svg",))
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes() == alone[0].read_bytes()


def test_save_refuses_to_overwrite(small_fig, tmp_path):
    (tmp_path / "fig.svg").write_text("keep me")
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "fig.svg"))):
        save_figure(small_fig, tmp_path / "fig")
    assert not (tmp_path / "fig.png").exists()  # nothing written, not even the free one
    assert (tmp_path / "fig.svg").read_text() == "keep me"
    save_figure(small_fig, tmp_path / "fig", overwrite=True, dpi=50)
    assert (tmp_path / "fig.svg").read_text().lstrip().startswith("<?xml")


def test_save_is_atomic(small_fig, tmp_path, monkeypatch):
    moves = []
    real_replace = os.replace

    def spy(src, dst):
        assert os.path.getsize(src) > 0 and not os.path.exists(dst)  # complete before the move
        moves.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", spy)
    save_figure(small_fig, tmp_path / "fig", dpi=50)
    assert [dst for _, dst in moves] == [str(tmp_path / "fig.png"), str(tmp_path / "fig.svg")]
    assert all(os.path.dirname(src) == str(tmp_path) and src != dst for src, dst in moves)

    # a failure mid-write leaves the old file and no temporary file behind
    (tmp_path / "g.png").write_bytes(b"old")

    def broken(out, **kwargs):
        out.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(small_fig, "savefig", broken)
    monkeypatch.setattr(_save, "_write_png", lambda out, *args: broken(out))  # PNG: cut from one render
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(small_fig, tmp_path / "g", formats=("png",), overwrite=True)
    assert (tmp_path / "g.png").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["fig.png", "fig.svg", "g.png"]


def test_save_rejects_bad_arguments(small_fig, tmp_path):
    with pytest.raises(InputError, match="formats"):
        save_figure(small_fig, tmp_path / "x", formats=("jpg",))
    with pytest.raises(InputError, match="does not exist"):
        save_figure(small_fig, tmp_path / "nope" / "x")
    with pytest.raises(InputError, match="fig"):
        save_figure(small_fig.axes[0], tmp_path / "x")
    assert os.listdir(tmp_path) == []


# KM and forest
def _gid_artists(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def _legend_texts(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_km_min_at_risk_cuts_each_curve():
    data = _two_groups()
    curves = {lab: kaplan_meier(t, e) for lab, (t, e) in data.items()}
    fig = plot_km(curves, ci=True, min_at_risk=3, risk_table=False)
    for lab, res in curves.items():
        x = _gid_artists(fig, f"km-curve:{lab}")[0].get_xdata()
        last = res.time[np.flatnonzero(res.at_risk >= 3)[-1]]
        assert x[-1] == last  # the step at the last time with >= 3 at risk is still drawn
        assert res.at_risk[res.time > last].max(initial=0) < 3 and x.max() < res.time[-1]
        marks = _gid_artists(fig, f"km-censor:{lab}")[0].get_xdata()
        assert marks.size == 0 or marks.max() <= last
        band = _gid_artists(fig, f"km-ci:{lab}")[0]
        assert band.get_paths()[0].vertices[:, 0].max() <= last
    full = plot_km(curves, risk_table=False)
    lab = "Non prior-RT"
    assert _gid_artists(full, f"km-curve:{lab}")[0].get_xdata()[-1] == curves[lab].time[-1]
    for bad in (0, 2.5, True):
        with pytest.raises(InputError, match="min_at_risk"):
            plot_km(curves, min_at_risk=bad)


def test_km_legend_clamps_spss_limits_and_marks_them():
    from failpattern.plots.km import median_label

    # few patients, the median late: SPSS's median - 1.96 SE falls below 0
    t = np.array([1.0, 2.0, 13.6, 40.0, 45.0, 50.0])
    e = np.array([1, 1, 1, 1, 0, 0])
    res = kaplan_meier(t, e, conf_type="spss")
    assert res.median_ci[0] < 0 and res.median_ci[1] > 50.0  # 13.6 (-32.0–59.2)
    text, notes = median_label(res)
    assert text == "13.6 (0.0*–50.0*)"  # clamped to [0, last follow-up]
    assert notes == [f"{res.median_ci[0]:.1f}", f"{res.median_ci[1]:.1f}"] == ["-32.0", "59.2"]
    fig = plot_km({"Prior-RT": res}, risk_table=False)
    assert _legend_texts(fig) == [f"Prior-RT: median {text}"]
    assert "-" not in _legend_texts(fig)[0].split("(")[1]  # no negative limit shown


def test_km_legend_reached_median_with_unreached_limit():
    from failpattern.plots.km import median_label

    t = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    e = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    res = kaplan_meier(t, e, conf_type="log-log")
    assert np.isfinite(res.median) and np.isnan(res.median_ci[1])
    text, _ = median_label(res)
    assert text == f"{res.median:.1f} ({res.median_ci[0]:.1f}–NR)"
    assert "NR–NR" not in text
    none = kaplan_meier(t, np.zeros(10, dtype=int))
    assert median_label(none)[0] == "NR"
    fig = plot_km(res, risk_table=False)
    assert _legend_texts(fig) == [f"median {text}"]


def test_km_bands_within_unit_interval():
    rng = np.random.default_rng(3)
    t, e = np.round(rng.exponential(10, 12), 1), (rng.random(12) < 0.8).astype(int)
    res = kaplan_meier(t, e, conf_type="spss")  # S ± 1.96 se: outside [0, 1] at both ends
    assert np.nanmax(res.upper) > 1 or np.nanmin(res.lower) < 0
    fig = plot_km(res, ci=True, risk_table=False)
    y = _gid_artists(fig, "km-ci:")[0].get_paths()[0].vertices[:, 1]
    assert np.all((y >= 0) & (y <= 1))


def test_km_events_table():
    from failpattern.plots.km import cumulative_events

    data = _two_groups()
    curves = {lab: kaplan_meier(t, e) for lab, (t, e) in data.items()}
    ticks = [0, 5, 10, 20, 30]
    fig = plot_km(curves, risk_times=ticks, events_table=True)
    for lab, res in curves.items():
        shown = [int(a.get_text()) for a in _gid_artists(fig, f"km-events:{lab}")]
        want = [int(res.events[res.time <= tk].sum()) for tk in ticks]
        assert shown == want == list(cumulative_events(res, ticks))
    assert not _gid_artists(plot_km(curves, risk_times=ticks), f"km-events:{lab}")


def test_forest_optional_columns():
    frame = pd.DataFrame({"shr": [0.5, 2.0], "shr_lower": [0.2, 1.1], "shr_upper": [1.2, 3.6],
                          "n": [93, 90], "ev": [26, 25], "pv": [0.12, 0.0004]},
                         index=["Age: >50y vs ≤50y (ref)", "Sex: male vs female (ref)"])
    fig = plot_forest(frame, n="n", events="ev", p="pv")
    table = next(ax for ax in fig.axes if ax.get_label() == "forest-table")
    texts = {k: [t.get_text() for t in table.texts if t.get_gid() == f"forest-text:{k}"]
             for k in ("n", "events", "p", "reproduced")}
    assert texts == {"n": ["93", "90"], "events": ["26", "25"], "p": ["0.120", "<0.001"],
                     "reproduced": ["0.50 (0.20–1.20)", "2.00 (1.10–3.60)"]}
    heads = {t.get_gid() for t in table.texts if (t.get_gid() or "").startswith("forest-header")}
    assert {"forest-header:n", "forest-header:events", "forest-header:p"} <= heads
    plain = plot_forest(frame)
    assert not [t for ax in plain.axes for t in ax.texts if t.get_gid() == "forest-text:n"]
    with pytest.raises(InputError, match="events"):
        plot_forest(frame, events="nope")


def test_report_forest_rows_name_the_reference_level():
    from failpattern.report.figures import _t3_label
    from failpattern.study.analyses._base import BINARIES

    # no card: BINARIES' label "Histology (non-adenocarcinoma vs adenocarcinoma)", level 1 = adeno
    assert BINARIES["histology"].levels[0] == "adeno"
    assert _t3_label(None, "t3.uni.histology.shr") == \
        "Histology: adenocarcinoma vs non-adenocarcinoma (ref)"
    assert _t3_label(None, "t3.multi.sex.shr") == "Sex: male vs female (ref)"
    assert _t3_label(None, "t3.uni.t_stage.shr") == "T stage: T3-4 vs T1-2 (ref)"


# --------------------------------------------------------------------------- CIF bands
def _band_inside(band, x, y):
    return band.get_paths()[0].contains_point((x, y))


def test_cif_ci_bands_follow_the_limits(competing):
    t, cause, _ = competing
    res = cumulative_incidence(t, cause)
    names = {1: "OF", 2: "DF", 3: "ODF"}
    fig = plot_cumulative_incidence(res, labels=names, ci=True)
    ax = fig.axes[0]
    bands = [_gid(fig, f"cif-ci:{names[c]}") for c in res.causes]
    assert len({b.get_hatch() for b in bands}) == len(bands)  # apart in greyscale print
    assert len({b.get_facecolor()[0][3] for b in bands}) == len(bands)
    assert all(b.get_facecolor()[0][3] <= 0.25 for b in bands)  # light
    last = res.last_time[0]
    for c, band in zip(res.causes, bands):
        xy = np.concatenate([p.vertices for p in band.get_paths()])
        assert np.all((xy[:, 1] >= 0) & (xy[:, 1] <= 1))
        assert xy[:, 0].min() == 0.0 and xy[:, 0].max() == last
        jumps = res.table.query("cause == @c")["time"].to_numpy()
        lo, hi = res.limits_at(jumps, c)
        assert set(np.round(lo, 12)) | set(np.round(hi, 12)) <= set(np.round(xy[:, 1], 12))
        # step-shaped like the curve: between jumps the band spans [lower, upper] at the
        # jump before, and holds the curve
        mids = (jumps[:-1] + jumps[1:]) / 2
        lo, hi = res.limits_at(mids, c)
        f = res.at(mids, c)
        wide = hi - lo > 1e-3
        assert wide.any()
        for m, a, b, v in zip(mids[wide], lo[wide], hi[wide], f[wide]):
            assert _band_inside(band, m, v)
            assert _band_inside(band, m, a + 1e-4) and _band_inside(band, m, b - 1e-4)
            assert not _band_inside(band, m, a - 1e-4) and not _band_inside(band, m, b + 1e-4)
    texts = [x.get_text() for x in ax.get_legend().get_texts()]
    assert texts == ["OF", "DF", "ODF", "95% pointwise CI"]
    plain = plot_cumulative_incidence(res, labels=names)
    assert not [a for a in plain.axes[0].get_children()
                if str(a.get_gid()).startswith("cif-ci")]
    level = plot_cumulative_incidence(cumulative_incidence(t, cause, conf_level=0.9), ci=True,
                                      causes=[2])
    assert [x.get_text() for x in level.axes[0].get_legend().get_texts()] == [
        "Cause 2", "90% pointwise CI"]
    _gid(level, "cif-ci:Cause 2")


def test_cif_ci_band_where_the_incidence_reaches_one():
    # group b ends with everyone failed from cause 1: F = 1 with a positive variance,
    # limits NaN; the band is drawn up to the curve there, not left open
    res = cumulative_incidence([1, 2, 3, 4, 1, 2, 3], [1, 2, 0, 1, 1, 0, 1],
                               group=["a", "a", "a", "a", "b", "b", "b"])
    assert np.isnan(res.limits_at(3.0, 1, "b")[0])
    band = _gid(plot_cumulative_incidence(res, group="b", ci=True), "cif-ci:Cause 1")
    xy = band.get_paths()[0].vertices
    assert np.all(np.isfinite(xy)) and xy[:, 1].max() == 1.0


@pytest.mark.parametrize("p, shown", [(0.012, "Gray's test p = 0.012"),
                                      (0.0004, "Gray's test p < 0.001")])
def test_cif_gray_p_text(competing, p, shown):
    t, cause, _ = competing
    fig = plot_cumulative_incidence(cumulative_incidence(t, cause), ci=True, gray_p=p,
                                    add_total=True)
    text = _gid(fig, "p-value")
    assert text.get_text() == shown
    # the legend sits below the p-value text, not over it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legend = fig.axes[0].get_legend().get_window_extent(renderer)
    assert not legend.overlaps(text.get_window_extent(renderer))


def test_cif_gray_p_from_gray_test_result(competing):
    t, cause, arm = competing
    res = cumulative_incidence(t, cause, group=arm)
    gray = res.gray_test(1)
    fig = plot_cumulative_incidence(res, group="A", ci=True, gray_p=gray)
    assert _gid(fig, "p-value").get_text() == f"Gray's test p = {gray.p_value:.3f}" or \
        _gid(fig, "p-value").get_text() in ("Gray's test p < 0.001", "Gray's test p > 0.999")
    _gid(fig, "cif-ci:Cause 1")
    with pytest.raises(InputError, match="gray_p.*not both"):
        plot_cumulative_incidence(res, group="A", gray_p=gray, p_value=gray)
    with pytest.raises(InputError, match="gray_p"):
        plot_cumulative_incidence(res, group="A", gray_p=1.5)
    with pytest.raises(InputError, match="gray_p"):
        plot_cumulative_incidence(res, group="A", gray_p="small")
    with pytest.raises(InputError, match="ci.*stacked"):
        plot_cumulative_incidence(res, group="A", ci=True, stacked=True)


# forest width
_T3_LABELS = [
    "Age: >50y vs ≤50y (ref)", "Sex: male vs female (ref)",
    "Histology: adenocarcinoma vs non-adenocarcinoma (ref)", "ECOG: 2 vs 0–1 (ref)",
    "Primary tumor size: ≥3.5 vs < 3.5 (ref)", "T stage: T3–4 vs T1–2 (ref)",
    "N stage: N1–3 vs N0 (ref)", "Number of metastatic organs: ≥3 vs 1–2 (ref)",
    "Number of metastatic lesions: ≥6 vs 1–5 (ref)",
    "Presence of lung metastases: Yes vs No (ref)", "Presence of liver metastases: Yes vs No (ref)",
    "Presence of brain metastases: Yes vs No (ref)",
    "Presence of adrenal metastases: Yes vs No (ref)",
    "Presence of bone metastases: Yes vs No (ref)", "Prior lines of therapy: 0 vs ≥1 (ref)",
    "Prior local therapy: Yes vs No (ref)", "Objective response: yes vs no (ref)"]


def _t3_frames():
    rng = np.random.default_rng(17)
    est = np.exp(rng.normal(0, 0.8, len(_T3_LABELS)))
    ours = pd.DataFrame({"shr": est, "shr_lower": est / 2.7, "shr_upper": est * 3.4,
                         "n": 93.0, "events": 26.0, "p": rng.uniform(0.0002, 0.9, len(est))},
                        index=_T3_LABELS)
    ours.loc[_T3_LABELS[6], ["shr", "shr_lower", "shr_upper"]] = [3.15, 0.66, 14.94]
    published = ours[["shr", "shr_lower", "shr_upper"]] * 1.02
    return ours, published


def _font_sizes(fig):
    from matplotlib.text import Text
    return [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()]


def test_forest_table3_fits_a_page_width_with_readable_text():
    ours, published = _t3_frames()
    fig = plot_forest(ours, published=published, n="n", events="events", p="p")
    width, _ = fig.get_size_inches()
    assert width <= 7.0
    assert min(_font_sizes(fig)) >= 7.0  # printed at natural size: >= 7 pt
    # every column is there, one text per row
    table = next(ax for ax in fig.axes if ax.get_label() == "forest-table")
    for kind in ("n", "events", "reproduced", "published", "p"):
        assert len([t for t in table.texts if t.get_gid() == f"forest-text:{kind}"]) == 17
    # the long labels are wrapped at a space onto two lines, none of their text lost
    shown = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert [s.replace("\n", " ") for s in shown] == _T3_LABELS
    assert all(s.count("\n") <= 1 for s in shown)
    assert "Histology: adenocarcinoma\nvs non-adenocarcinoma (ref)" in shown
    assert "Age: >50y vs ≤50y (ref)" in shown  # short ones stay on one line
    # drawn: it fits (the tight box within the figure) and no two texts overlap
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    tight = fig.get_tightbbox(renderer)
    assert tight.x0 >= -0.01 and tight.x1 <= width + 0.01
    texts = [t for ax in fig.axes for t in (*ax.texts, *ax.get_yticklabels(), *ax.get_xticklabels())
             if t.get_visible() and t.get_text().strip()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            assert not a.overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())


def test_forest_width_and_fontsize_arguments():
    ours, published = _t3_frames()
    natural = plot_forest(ours, published=published, n="n", events="events", p="p", width=None)
    assert [t.get_text() for t in natural.axes[0].get_yticklabels()] == _T3_LABELS  # not wrapped
    assert natural.get_size_inches()[0] > 7.0
    big = plot_forest(ours.iloc[:3], fontsize=9, width=9.0)
    assert big.get_size_inches()[0] == pytest.approx(9.0)
    assert min(_font_sizes(big)) >= 9.0
