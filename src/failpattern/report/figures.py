"""The paper's figures, drawn from one run of the analysis plan.

Why: a reader checks a reproduction by eye against the published figures, so
the report draws the same panels, from the same fitted objects that produced
the numbers of the comparison table (never refitted here):

* ``fig1a`` – ``fig1d``: Kaplan-Meier curves of Fig. 1 — (a) PFS1 among
  patients with baseline brain metastases by prior brain radiotherapy, (b)
  PFS2 by salvage radiotherapy, (c) PFS2 by continuation of crizotinib beyond
  progression (CBPD), (d) OS by any radiotherapy — with censor marks, medians,
  the log-rank p and numbers at risk;
* ``fig2``: cumulative incidence of OF, DF and ODF and of any progression
  (Fig. 2);
* ``table3_univariate`` / ``table3_multivariable``: forest plots of Table 3's
  subdistribution hazard ratios, reproduced beside published;
* ``km_pfs1`` / ``km_pfs2`` / ``km_os``: each endpoint in the whole
  population it is defined on.

A panel the cohort cannot support (a missing optional column, no events) is
not drawn; :func:`paper_figures` says which and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from failpattern.errors import InputError
from failpattern.plots import plot_cumulative_incidence, plot_forest, plot_km
from failpattern.stats import KaplanMeierResult, kaplan_meier
from failpattern.study.analyses._base import BINARIES

__all__ = ["FIGURE_NAMES", "FigureSpec", "paper_figures", "save_paper_figures"]

PATTERN_LABELS = {1: "OF", 2: "DF", 3: "ODF"}

#: Kaplan-Meier curves stop where fewer than this many patients remain at risk.
MIN_AT_RISK = 3
_KM_NOTE = (f" Shaded: pointwise 95% confidence bands (log-log). Curves cut where fewer than {MIN_AT_RISK} "
            "patients remain at risk; + censored. Legend: median (95% CI) read off the same log-log "
            "curves (R survfit, conf.type = \"log-log\"; NR: not reached); the tables give SPSS's "
            "median ± 1.96 SE.")


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report.

    Attributes
    ----------
    name : str
        File stem (``fig1a``) and anchor in the report.
    title : str
        Short title (the paper's panel).
    caption : str
        What is drawn, from which population.
    figure : matplotlib.figure.Figure or None
        None when the figure could not be drawn.
    reason : str
        Why it was not drawn (empty when drawn).
    """

    name: str
    title: str
    caption: str
    figure: Figure | None
    reason: str = ""


# (name, title, endpoint label, {curve label: km key}, log-rank key, caption)
_KM_PANELS = (
    ("fig1a", "Fig. 1a — PFS1 by prior brain radiotherapy (patients with BBM)", "PFS1",
     {"Prior-RT": "pfs1.bbm_prior_brain_rt", "Non prior-RT": "pfs1.bbm_no_prior_brain_rt"},
     "pfs1.bbm.by_prior_brain_rt",
     ("Patients with baseline brain metastases: brain radiotherapy before crizotinib (prior-RT) "
      "versus none (Non prior-RT).")),
    ("fig1b", "Fig. 1b — PFS2 by salvage radiotherapy", "PFS2",
     {"Post-RT": "pfs2.salvage_rt", "Non post-RT": "pfs2.no_salvage_rt"}, "pfs2.by_salvage_rt",
     ("Patients with crizotinib failure: salvage radiotherapy after the first progression (post-RT) "
      "versus none (Non post-RT).")),
    ("fig1c", "Fig. 1c — PFS2 by crizotinib beyond progression", "PFS2",
     {"CBPD": "pfs2.cbpd", "Non-CBPD": "pfs2.non_cbpd"}, "pfs2.by_cbpd",
     ("Patients with crizotinib failure: crizotinib continued beyond progressive disease (CBPD) "
      "versus not (Non-CBPD).")),
    ("fig1d", "Fig. 1d — OS by radiotherapy during the treatment course", "Overall survival",
     {"RT": "os.rt", "Non-RT": "os.nonrt"}, "os.by_any_rt",
     "Whole population: radiotherapy at any time during the treatment course (RT) versus none (Non-RT)."),
)
_OVERALL = (
    ("km_pfs1", "PFS1, all patients", "PFS1", "pfs1.all", "Progression-free survival on crizotinib, all patients."),
    ("km_pfs2", "PFS2, patients with a first progression", "PFS2", "pfs2.all",
     "Second progression-free survival, patients whose disease progressed on crizotinib."),
    ("km_os", "Overall survival, all patients", "Overall survival", "os.all",
     "Overall survival from diagnosis, all patients."),
)


def _missing(plan_result, analysis: str) -> str:
    """The plan's reasons for not computing ``analysis`` (a name of ``PlanResult.skipped``; a name
    ending in "." stands for every analysis it starts, e.g. ``t3.uni.``), if it recorded any."""
    sk = plan_result.skipped
    names = sk["analysis"].astype(str)
    hit = sk[names.str.startswith(analysis) if analysis.endswith(".") else names == analysis]
    reasons = list(dict.fromkeys(str(r) for r in hit["reason"]))
    if len(reasons) > 3:  # e.g. each of Table 3's 17 models: the list is under "Analyses not run"
        return f"not computed for this cohort ({len(hit)} models not run; reasons under \"Analyses not run\")"
    return f"not computed for this cohort ({'; '.join(reasons)})" if reasons else "not computed for this cohort"


def _loglog(res: KaplanMeierResult) -> KaplanMeierResult:
    """The same curve with log-log limits (and median limits), from the result's own table."""
    if res.conf_type == "log-log":
        return res
    d = np.asarray(res.events, dtype=np.int64)
    c = np.asarray(res.censored, dtype=np.int64)
    t = np.concatenate([np.repeat(res.time, d), np.repeat(res.time, c)])
    e = np.concatenate([np.ones(int(d.sum()), dtype=np.int64), np.zeros(int(c.sum()), dtype=np.int64)])
    return kaplan_meier(t, e, conf_type="log-log", alpha=res.alpha)


def _draw_km(curves, **kw) -> Figure:
    """A report KM figure: log-log bands, curves cut at MIN_AT_RISK, no title (the heading has it)."""
    return plot_km({k: _loglog(v) for k, v in curves.items()} if isinstance(curves, dict) else _loglog(curves),
                   risk_table=True, ci=True, min_at_risk=MIN_AT_RISK, title=None, figsize=(4.2, 3.0),
                   legend_loc="above", **kw)


def _km_panel(plan_result, name, title, endpoint, curves, test, caption) -> FigureSpec:
    missing = [k for k in curves.values() if k not in plan_result.km]
    if missing:
        return FigureSpec(name, title, caption, None, _missing(plan_result, test))
    lr = plan_result.logrank.get(test)
    fig = _draw_km({label: plan_result.km[key] for label, key in curves.items()}, p_value=lr,
                   ylabel=f"{endpoint} probability")
    return FigureSpec(name, title, caption + _KM_NOTE, fig)


def _fig2(plan_result) -> FigureSpec:
    title = "Fig. 2 — Cumulative incidence of the patterns of failure"
    caption = ("Cumulative incidence (Aalen-Johansen) of original-site failure (OF), distant failure (DF), "
               "both (ODF) and any progression, by months on crizotinib; death without progression competing. "
               "Shaded and hatched: pointwise 95% confidence bands of each pattern (log-log). No Gray's test: "
               "OF, DF and ODF are competing causes in one population, not groups to compare.")
    res = plan_result.cif.get("patterns")
    if res is None:
        return FigureSpec("fig2", title, caption, None, _missing(plan_result, "pattern.cif"))
    causes = [c for c in PATTERN_LABELS if c in res.causes]
    if not causes:  # only deaths without progression: every pattern's incidence is 0 throughout
        return FigureSpec("fig2", title, caption, None,
                          "no first progression (OF, DF or ODF) in the cohort: the cumulative incidence of "
                          "every pattern is 0")
    only_patterns = set(res.causes) <= set(PATTERN_LABELS)
    km = plan_result.km.get("pfs1.all")
    risk = km if km is not None and km.n == res.n else False
    fig = plot_cumulative_incidence(res, causes=causes, labels=PATTERN_LABELS, add_total=only_patterns,
                                    risk_table=risk, title=None, ci=True)
    if not only_patterns and "any" in plan_result.cif:  # death is a cause: "any progression" from its own fit
        anyfit = plan_result.cif["any"]
        times = np.unique(np.concatenate([[0.0], np.asarray(anyfit.time, dtype=float)]))
        ax = next(a for a in fig.axes if a.get_label() != "risk-table")
        ax.plot(times, anyfit.at(times, cause=1), drawstyle="steps-post", color="black", linewidth=2.2,
                label="Any progression", gid="cif-total", zorder=4)
        ax.legend(loc="best", handlelength=1.8)
    return FigureSpec("fig2", title, caption, fig)


def _t3_label(card, id_: str) -> str:
    """Table 3's row, ``Histology: adenocarcinoma vs non-adenocarcinoma (ref)``.

    Table 3 (the card's row label, else :data:`BINARIES`' label) prints ``Name (reference vs
    comparison)``; the SHR is of the comparison level (coded 1) against the reference."""
    name = id_.split(".")[2]
    labels = []
    if card is not None and id_ in set(card.ids):
        m = re.search(r"row '([^']*)'", card.get(id_).location or "")
        if m:
            labels.append(m.group(1))
    if name in BINARIES:
        labels.append(BINARIES[name].label)
    for label in labels:
        m = re.fullmatch(r"(.+?) \((.+?) vs (.+?)\)", label.strip())
        if m:
            what, ref, comp = (g.strip() for g in m.groups())
            comp = re.split(r"[;:]", comp)[0].strip()
            return f"{what}: {comp} vs {ref} (ref)"
    return labels[0] if labels else name.replace("_", " ")


def _forest(plan_result, card, kind: str, published_too: bool) -> FigureSpec:
    name = f"table3_{'univariate' if kind == 'uni' else 'multivariable'}"
    title = f"Table 3 — {'univariate' if kind == 'uni' else 'multivariable'} Fine-Gray models of OF"
    caption = ("Subdistribution hazard ratios of original-site failure with 95% CI (death and the other "
               "patterns competing)" + (", reproduced beside published" if published_too else "") +
               "; each row: comparison level vs the reference level (ref). N: patients in the model; events: "
               "original-site failures among them; p: Wald p of the reproduced SHR.")
    v = plan_result.values
    v = v[v["id"].str.match(rf"t3\.{kind}\.[^.]+\.shr$") & np.isfinite(v["value"].to_numpy(float))]
    if v.empty:
        return FigureSpec(name, title, caption, None, _missing(plan_result, "t3.uni." if kind == "uni" else "t3.multi"))
    labels = [_t3_label(card, i) for i in v["id"]]
    ours = pd.DataFrame({"shr": v["value"].to_numpy(float), "shr_lower": v["ci_lower"].to_numpy(float),
                         "shr_upper": v["ci_upper"].to_numpy(float)}, index=labels)
    fits = [plan_result.finegray.get("t3.multi" if kind == "multi" else f"t3.uni.{i.split('.')[2]}")
            for i in v["id"]]
    ours["n"] = [np.nan if f is None else f.n for f in fits]
    ours["events"] = [np.nan if f is None else f.n_events for f in fits]
    pv = plan_result.values.set_index("id")["value"]
    ours["p"] = [float(pv.get(i[: -len("shr")] + "p", np.nan)) for i in v["id"]]
    published = None
    if card is not None and published_too:
        nums = card.numbers.set_index("id")
        rows = [(lab, i) for lab, i in zip(labels, v["id"]) if i in nums.index]
        if rows:
            published = pd.DataFrame({"shr": [float(nums.at[i, "value"]) for _, i in rows],
                                      "shr_lower": [float(nums.at[i, "ci_lower"]) for _, i in rows],
                                      "shr_upper": [float(nums.at[i, "ci_upper"]) for _, i in rows]},
                                     index=[lab for lab, _ in rows])
    try:
        fig = plot_forest(ours, published=published, title=None, n="n", events="events", p="p",
                          width=7.0)  # a journal page wide: its 7.5 pt text prints at 7.5 pt
    except InputError as exc:
        return FigureSpec(name, title, caption, None, str(exc))
    return FigureSpec(name, title, caption, fig)


#: Simon-Makuch figures of the methods audit: (figure name, the plan's comparison, curve labels).
_AUDIT_PANELS = (
    ("audit_fig1b", "pfs2.by_salvage_rt", ("Post-RT", "Non post-RT")),
    ("audit_fig1c", "pfs2.by_cbpd", ("CBPD", "Non-CBPD")),
    ("audit_fig1d", "os.by_any_rt", ("RT", "Non-RT")),
)


def _audit_panel(plan_result, name, comparison, labels) -> FigureSpec:
    audit = plan_result.audit
    try:
        a = audit[comparison]
    except KeyError:
        reason = "; ".join(audit.skipped.loc[audit.skipped["comparison"] == comparison, "reason"])
        return FigureSpec(name, f"Methods audit — {comparison}", "", None, reason or "not computed for this cohort")
    title = f"Methods audit, {a.figure} — {a.endpoint} by {a.treatment}, treatment counted from its start"
    caption = (f"Simon-Makuch curves: a patient counts as untreated until the treatment begins, then as treated "
               f"(Kaplan-Meier with delayed entry). Compare with {a.figure}, where patients count as treated from "
               f"time zero. {a.conclusion}")
    if a.holds is None and a.n_timed == 0:
        return FigureSpec(name, title, caption, None,
                          f"the cohort does not record when the treatment began, so these curves would be "
                          f"{a.figure}'s")
    if set(a.curves) != {"treated", "untreated"}:
        return FigureSpec(name, title, caption, None, "one group has no time at risk")
    fig = _draw_km({labels[0]: a.curves["treated"], labels[1]: a.curves["untreated"]},
                   ylabel=f"{a.endpoint} probability", censor_marks=False)
    note = (" No censor marks: a patient leaving the untreated curve when treatment begins is not censored. "
            "Numbers at risk count the patients in each state at that time.")
    return FigureSpec(name, title, caption + _KM_NOTE.replace("; + censored", "") + note, fig)


def _builders(plan_result, card, published: bool) -> dict:
    """Figure name -> function drawing it, in report order."""
    out = {panel[0]: (lambda panel=panel: _km_panel(plan_result, *panel)) for panel in _KM_PANELS}
    out["fig2"] = lambda: _fig2(plan_result)
    for kind in ("uni", "multi"):
        name = f"table3_{'univariate' if kind == 'uni' else 'multivariable'}"
        out[name] = lambda kind=kind: _forest(plan_result, card, kind, published and card is not None)
    for name, title, endpoint, key, caption in _OVERALL:
        def overall(name=name, title=title, endpoint=endpoint, key=key, caption=caption):
            if key not in plan_result.km:
                return FigureSpec(name, title, caption, None, _missing(plan_result, key))
            fig = _draw_km(plan_result.km[key], ylabel=f"{endpoint} probability")
            return FigureSpec(name, title, caption + _KM_NOTE, fig)
        out[name] = overall
    for panel in _AUDIT_PANELS:
        out[panel[0]] = lambda panel=panel: _audit_panel(plan_result, *panel)
    return out


#: Figure names in report order.
FIGURE_NAMES = ("fig1a", "fig1b", "fig1c", "fig1d", "fig2", "table3_univariate", "table3_multivariable",
                "km_pfs1", "km_pfs2", "km_os", "audit_fig1b", "audit_fig1c", "audit_fig1d")


def paper_figures(plan_result, card=None, *, published: bool = True, names=None) -> list[FigureSpec]:
    """Every figure of the report (or those in ``names``), drawn from ``plan_result``.

    Parameters
    ----------
    plan_result : PlanResult
        From :func:`~failpattern.study.plan.run_plan`.
    card : StudyCard, optional
        Gives Table 3's row labels and, with ``published=True``, the published
        SHRs shown beside the reproduced ones.
    published : bool
        Draw the published values in the forest plots (``analyze`` without a
        study card passes False).
    names : sequence of str, optional
        Only these figures (of :data:`FIGURE_NAMES`), in report order.

    Returns
    -------
    list of FigureSpec
        In report order: fig1a-d, fig2, table3_univariate,
        table3_multivariable, km_pfs1, km_pfs2, km_os, and the methods audit's
        Simon-Makuch curves audit_fig1b-d. Figures that cannot be
        drawn have ``figure=None`` and a ``reason``.
    """
    builders = _builders(plan_result, card, published)
    wanted = FIGURE_NAMES if names is None else [n for n in FIGURE_NAMES if n in set(names)]
    return [builders[n]() for n in wanted]


# ----------------------------------------------------------------------------- drawing and saving
_JOB: dict = {}


def _save(spec: FigureSpec, folder: Path, formats) -> dict:
    from failpattern.plots import save_figure

    entry = {"name": spec.name, "title": spec.title, "caption": spec.caption, "files": [], "png": None,
             "reason": spec.reason}
    if spec.figure is None:
        return entry
    # one call: the layout is solved once and each format drawn once (see save_figure)
    paths = save_figure(spec.figure, folder / spec.name, formats=formats)
    entry["files"] = [f"{folder.name}/{p.name}" for p in paths]
    entry["png"] = (folder / f"{spec.name}.png").read_bytes()
    return entry


def _save_some(names) -> list[dict]:
    """Worker: draw and save ``names`` from the job set up before the fork."""
    plan_result, card, published, folder, formats = (_JOB[k] for k in
                                                      ("plan", "card", "published", "folder", "formats"))
    return [_save(spec, folder, formats) for spec in paper_figures(plan_result, card, published=published,
                                                                   names=names)]


def save_paper_figures(plan_result, card, folder: Path, *, published: bool = True, formats=("png", "svg"),
                       jobs: int | None = None) -> list[dict]:
    """Draw every figure and save it in ``folder`` (PNG first, then the other ``formats``).

    Parameters
    ----------
    plan_result, card, published
        As for :func:`paper_figures`.
    folder : pathlib.Path
        An existing folder (the report's ``figures/``).
    formats : sequence of str
        PNG is always written first (the HTML inlines it).
    jobs : int, optional
        Processes to draw with. Default: 2 on Linux with at least 2 CPUs
        (the worker is forked; fork is unsafe with macOS system libraries and
        absent on Windows), else 1. Drawing and saving the figures is most of the
        time of ``reproduce``; with two processes each draws half.

    Returns
    -------
    list of dict
        Per figure, in report order: ``name``, ``title``, ``caption``,
        ``files`` (relative to the report folder), ``png`` (bytes or None),
        ``reason`` (why not drawn).
    """
    import gc
    import multiprocessing as mp
    import os
    import sys

    formats = tuple(dict.fromkeys(("png", *formats)))
    if jobs is None:
        jobs = 2 if sys.platform.startswith("linux") and (os.cpu_count() or 1) >= 2 else 1
    _JOB.update(plan=plan_result, card=card, published=published, folder=Path(folder), formats=formats)
    # The objects made so far (modules, the plan's results) stay out of the garbage collector's
    # full passes while the figures are drawn: those passes scanned them again and again, a fifth
    # of the drawing time. Frozen before the fork, the worker also leaves their pages shared.
    gc.freeze()
    try:
        if jobs < 2:
            return _save_some(FIGURE_NAMES)
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        # about half the drawing time each (the forest plot of 17 rows costs two KM panels); the worker
        # gets fewer figures, as it starts later (fork) and sends its PNGs back; this process draws the
        # rest, the methods audit's among them (the audit is computed once, here, for the report text too)
        theirs = ("table3_univariate", "fig1b", "fig1d", "km_pfs1")
        mine = tuple(n for n in FIGURE_NAMES if n not in theirs)
        from failpattern._lifeline import die_with_parent

        # the worker ends with this process, even by kill -9 (see failpattern._lifeline)
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"),
                                 initializer=die_with_parent) as pool:
            future = pool.submit(_save_some, theirs)
            entries = _save_some(mine)
            try:
                entries += future.result()
            except BrokenProcessPool:  # the worker died (killed, out of memory): draw its share here
                entries += _save_some(theirs)
        by_name = {e["name"]: e for e in entries}
        return [by_name[n] for n in FIGURE_NAMES]
    finally:
        gc.unfreeze()
        _JOB.clear()
