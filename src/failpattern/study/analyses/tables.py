"""Counts, percentages and group comparisons: Tables 1 and 2 and the numbers of the text.

Why this module exists: most of the paper's numbers are counts of patients
and their percentages, plus "chi-square or Fisher's exact test" p-values
(SPSS 22) whose test the paper does not name for any row. For each such
p-value the plan reports the Pearson, Yates (2 x 2) and Fisher p-values under
``<id>.pearson``, ``<id>.yates`` and ``<id>.fisher``, and under the card id the
test whose p-value from the card's printed counts reproduces the printed one,
or comes closest (found with
:func:`~failpattern.study.aggregate.recompute_aggregates`: Pearson for every
Table 1 row but BBM, Fisher for BBM and the two brain-progression
comparisons); for a p-value without printed counts, the SPSS-style rule of
``contingency_test(method="auto")``. An r x c table too large for the exact
Fisher test (``contingency_test``'s ``workspace`` rule: large cohorts) gets the
asymptotic Pearson p under ``<id>.fisher`` instead, with method ``chisq_p`` and a
note saying why; the model entry's ``ran`` names the test behind each p. Continuous
baseline variables (age, tumour size) are compared with the Mann-Whitney
test (SPSS asymptotic p; the paper prints medians), the t-test under
``<id>.t_test``.

Percentages use as denominator the patients of the group whose value is known.
The contingency and two-sample kernels are called through the fit layer
(:mod:`failpattern.stats.fit`) on counts the plan has built; ``tests/test_plan.py``
checks them against the public functions.
"""

from __future__ import annotations

import numpy as np

from failpattern.cohort.schema import PROGRESSION_PATTERNS
from failpattern.stats.contingency import contingency_test
from failpattern.stats.fit import (
    auto_contingency_method,
    chisq_p,
    expected_counts,
    fisher_2x2_p,
    km_fit,
    mann_whitney_fit,
    t_test_fit,
)
from failpattern.study.analyses._base import BINARIES, Context
from failpattern.study.design import PATTERNS, T1_CONTINUOUS, T1_ROWS, T2_ROWS

__all__ = ["run_tables"]



def _count(ctx, id_, mask, sel, analysis, *, of=None, pct_id=None, note="", n_excluded=None):
    """Add count ``id_`` (patients in ``mask``) and optionally its percentage of ``of``."""
    k = np.count_nonzero(mask)  # = int(mask.sum()) of a boolean mask, a tenth of the cost
    ctx.add(id_, k, sel=sel, analysis=analysis, method="count", note=note, n_excluded=n_excluded)
    if pct_id is not None:
        d = np.count_nonzero(of)
        if d:
            ctx.add(pct_id, 100.0 * k / d, sel=sel, analysis=analysis, method="proportion",
                    note=f"{k}/{d}", n_excluded=n_excluded)
        else:  # one entry per analysis listing its percentages, not one per percentage
            reason = "percentage not computed: no patients in its denominator (the group it is a share of)"
            last = ctx.skipped[-1] if ctx.skipped else {}
            if last.get("analysis") == analysis and last.get("reason") == reason:
                last["ids"] += (pct_id,)
            else:
                ctx.skip(analysis, [pct_id], reason)


def contingency(ctx: Context, id_: str, counts, sel, analysis: str, what: str, n_excluded=None) -> None:
    """Pearson, Yates, Fisher p of an r x c table; the card's test under ``id_``."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[0] < 2 or counts.shape[1] < 2:  # e.g. one failure pattern, or none
        ctx.skip(analysis, [id_], f"{what}: not tested, at least two groups with patients are needed "
                                  f"(table {counts.tolist()})")
        return
    if (counts.sum(axis=1) == 0).any() or (counts.sum(axis=0) == 0).any():
        ctx.skip(analysis, [id_], f"{what}: not tested, the table {counts.tolist()} has an empty row or "
                                  "column")
        return
    is2 = counts.shape == (2, 2)
    expected = expected_counts(counts)
    # Pearson, the N-1 chi-square (SPSS's linear-by-linear row of a 2 x 2 table) and G
    p = {m: chisq_p(counts, expected, method=m) for m in ("pearson", "n-1", "g")}
    shown = {"pearson": "pearson", "yates": "yates", "fisher": "fisher", "n-1": "N-1 chi-square", "g": "G test"}
    if is2:
        p["fisher"], p["yates"] = fisher_2x2_p(counts), chisq_p(counts, expected, method="yates")
    else:  # past the exact test's workspace: the asymptotic Pearson p, and the result says so
        fisher = contingency_test(counts, method="fisher")
        p["fisher"] = fisher.p_value
        if fisher.method != "fisher":
            shown["fisher"] = f"{fisher.method} ({fisher.reason})"
    auto, reason = auto_contingency_method(expected)
    chosen = ctx.settings.contingency.get(id_)
    why = "the test whose p from the card's printed counts reproduces, or is closest to, the printed p"
    if chosen not in p:
        chosen, why = auto, f"SPSS-style rule: {reason}"
    ctx.models["contingency"][id_] = {"table": counts, "p": dict(p), "chosen": chosen, "auto": auto,
                                      "ran": {t: t if t in ("n-1", "g") else shown[t].split(" ")[0] for t in p}}
    kw = {"sel": sel, "analysis": analysis, "convention": "spss22", "n_excluded": n_excluded}
    ctx.add(id_, p[chosen], method="contingency_p", note=f"{shown[chosen]} ({why}); {what}, table {counts.tolist()}",
            **kw)
    for test, method in (("pearson", "chisq_p"), ("yates", "chisq_p"), ("fisher", "fisher_p")):
        if test in p:
            ctx.add(f"{id_}.{test}", p[test], method=method if shown[test] == test else "chisq_p",
                    note=f"{shown[test]}; {what}", **kw)


def _table1(ctx: Context) -> None:
    rt_all = ctx.flag("any_rt")
    for name in T1_ROWS:
        b = BINARIES[name]
        ids = [f"t1.{name}.{lv}.{c}.{k}" for lv in b.levels for c in ("all", "nonrt", "rt") for k in ("n", "pct")]
        sel = ctx.select(f"t1.{name}", "baseline_by_any_rt", (b.column,), ids=ids + [f"t1.{name}.p"],
                         derived=(b,))
        if sel is None:
            continue
        x = b.indicator(ctx)
        cols = {"all": sel.mask, "nonrt": sel.mask & ~rt_all, "rt": sel.mask & rt_all}
        for lv, val in zip(b.levels, (1.0, 0.0)):
            for c, m in cols.items():
                _count(ctx, f"t1.{name}.{lv}.{c}.n", m & (x == val), sel, f"t1.{name}", of=m,
                       pct_id=f"t1.{name}.{lv}.{c}.pct")
        table = [[np.count_nonzero(cols[g] & (x == v)) for v in (1.0, 0.0)] for g in ("nonrt", "rt")]
        contingency(ctx, f"t1.{name}.p", table, sel, f"t1.{name}", f"{b.label} by RT during the course")
    for name, col in T1_CONTINUOUS:
        ids = [f"t1.{name}.median.{c}" for c in ("all", "nonrt", "rt")] + [f"t1.{name}.p"]
        sel = ctx.select(f"t1.{name}", "baseline_by_any_rt", (col,), ids=ids)
        if sel is None:
            continue
        v = ctx.values(col)
        groups = {"all": sel.mask, "nonrt": sel.mask & ~rt_all, "rt": sel.mask & rt_all}
        for c, m in groups.items():
            if m.any():
                ctx.add(f"t1.{name}.median.{c}", np.median(v[m]), sel=sel, analysis=f"t1.{name}",
                        method="median", n_used=np.count_nonzero(m), range=(v[m].min(), v[m].max()))
        a, r = v[groups["nonrt"]], v[groups["rt"]]
        if a.size and r.size and not np.all(v[sel.mask] == v[sel.mask][0]):
            w, z, p = mann_whitney_fit(a, r, continuity=False)
            ctx.models["two_sample"][f"t1.{name}.p"] = {"W": w, "z": z, "p": p}
            ctx.add(f"t1.{name}.p", p, sel=sel, analysis=f"t1.{name}", method="two_sample_p",
                    convention="spss22", note="Mann-Whitney, asymptotic with tie correction (SPSS); "
                                              "the paper does not name the test")
            spread = [x for x in (a, r) if x.size > 1]
            if a.size + r.size > 2 and not all(np.all(x == x[0]) for x in spread):
                ctx.add(f"t1.{name}.p.t_test", t_test_fit(a, r, pooled=True)[2], sel=sel,
                        analysis=f"t1.{name}", method="two_sample_p", convention="spss22",
                        note="Student's t-test")
        else:
            ctx.skip(f"t1.{name}", [f"t1.{name}.p"], "two groups with varying values are needed")


def _table2(ctx: Context) -> None:
    pattern = ctx.values("failure_pattern")
    for name, col, hit in T2_ROWS:
        ids = [f"t2.{name}.{c}.{k}" for c in ("all", "of", "df", "odf") for k in ("n", "pct")]
        sel = ctx.select(f"t2.{name}", "initial_failure_sites", (col,), ids=ids)
        if sel is None:
            continue
        involved = sel.mask & (ctx.values(col) == hit)
        _count(ctx, f"t2.{name}.all.n", involved, sel, f"t2.{name}", of=sel.mask, pct_id=f"t2.{name}.all.pct")
        for word, code in PATTERNS:
            grp = sel.mask & (pattern == code)
            _count(ctx, f"t2.{name}.{word}.n", involved & grp, sel, f"t2.{name}", of=grp,
                   pct_id=f"t2.{name}.{word}.pct")


def _counts(ctx: Context) -> None:
    ctx.add("cohort.enrolled.n", ctx.n, analysis="cohort", method="count", n_used=ctx.n, n_excluded=0)
    sel = ctx.select("pattern.counts", "failure_pattern_cif", ids=["progression1.n"])
    if sel is not None:
        pattern = ctx.values("failure_pattern")
        prog = sel.mask & ctx.progressed
        _count(ctx, "progression1.n", prog, sel, "pattern.counts")
        for word, code in PATTERNS + (("death", "death"),):
            _count(ctx, f"pattern.{word}.n", sel.mask & (pattern == code), sel, "pattern.counts", of=prog,
                   pct_id=None if word == "death" else f"pattern.{word}.pct")
        _count(ctx, "pattern.censored.n", sel.mask & (pattern == None), sel, "pattern.counts")
    sel = ctx.select("os.counts", "os_km", ids=["deaths.n", "followup.median"])
    if sel is not None:
        os_t, os_e = ctx.values("os_months")[sel.mask], ctx.values("os_event")[sel.mask]
        _count(ctx, "deaths.n", sel.mask & (ctx.values("os_event") == 1), sel, "os.counts")
        ctx.add("followup.median", np.median(os_t), sel=sel, analysis="os.counts", method="follow_up_median",
                range=(os_t.min(), os_t.max()),
                note="median and range of os_months (diagnosis to death or last follow-up); the paper prints "
                     "a range, so a plain median")
        if (os_e == 0).any():
            rev = km_fit(os_t, (os_e == 0).astype(np.int64), conf_type="log", alpha=0.05)
            ctx.models["km"]["followup.reverse"] = rev
            ctx.add("followup.median.reverse_km", rev.median, ci=rev.median_ci, sel=sel, analysis="os.counts",
                    method="follow_up_median", convention="r", note="reverse Kaplan-Meier of OS")
    sel = ctx.select("pfs2.counts", "pfs2_km", ids=["progression2.n"])
    if sel is not None:
        _count(ctx, "progression2.n", sel.mask & (ctx.values("pfs2_event") == 1), sel, "pfs2.counts",
               note="PFS2 events: second progression or death after a first progression")
    sel = ctx.select("response", "pfs1_predictors", ("best_response",),
                     ids=[f"response.{r}.n" for r in ("cr", "pr", "sd", "pd")] + ["response.orr.pct"])
    if sel is not None:
        resp = ctx.values("best_response")
        for r in ("CR", "PR", "SD", "PD"):
            _count(ctx, f"response.{r.lower()}.n", sel.mask & (resp == r), sel, "response")
        for id_, lv in (("response.orr.pct", ("CR", "PR")), ("response.dcr.pct", ("CR", "PR", "SD"))):
            k, d = np.count_nonzero(sel.mask & np.isin(resp, lv)), sel.n
            if d:
                ctx.add(id_, 100.0 * k / d, sel=sel, analysis="response", method="proportion", note=f"{k}/{d}")
    sel = ctx.select("response.by_pattern", "response_by_failure_pattern", ids=["response.pattern.p"])
    if sel is not None:
        # "response rate ... not significantly different among patients with OF, ODF, or DF"
        resp, pattern = ctx.values("best_response"), ctx.values("failure_pattern")
        orr = sel.mask & np.isin(resp, ("CR", "PR"))
        present = [p for p in PROGRESSION_PATTERNS if np.any(sel.mask & (pattern == p))]
        if len(present) < 2:
            ctx.skip("response.by_pattern", ["response.pattern.p"],
                     "objective response by first-failure pattern not tested: "
                     + ("no patient with a first progression and a known response" if not present
                        else f"every patient with a first progression and a known response has pattern "
                             f"{present[0]}"))
        else:
            table = [[np.count_nonzero(orr & (pattern == p)), np.count_nonzero(sel.mask & ~orr & (pattern == p))]
                     for p in present]
            contingency(ctx, "response.pattern.p", table, sel, "response.by_pattern",
                        "objective response (CR or PR) by first-failure pattern")
    sel = ctx.select("treatment.line", "of_predictors", ("prior_lines",),
                     ids=["treatment.first_line.n", "treatment.pretreated.n"])
    if sel is not None:
        lines = ctx.values("prior_lines")
        _count(ctx, "treatment.first_line.n", sel.mask & (lines == 0), sel, "treatment.line")
        _count(ctx, "treatment.pretreated.n", sel.mask & (lines >= 1), sel, "treatment.line")
    sel = ctx.select("rt_course", "os_by_any_rt", ids=["rt_course.n"])
    if sel is not None:
        _count(ctx, "rt_course.n", sel.mask & ctx.flag("any_rt"), sel, "rt_course")


def _prior_rt(ctx: Context) -> None:
    sites = (("prior_rt.brain.n", ("prior_brain_rt",)), ("prior_rt.thoracic.n", ("prior_thoracic_rt",)),
             ("prior_rt.bone.n", ("prior_bone_rt",)), ("prior_rt.adrenal.n", ("prior_adrenal_rt",)),
             ("prior_rt.extracranial.n", ("prior_thoracic_rt", "prior_bone_rt", "prior_adrenal_rt")))
    for id_, cols in (("prior_rt.n", ()),) + sites:
        sel = ctx.select(f"prior_rt.{id_.split('.')[1]}", "pfs1_by_prior_rt", cols, ids=[id_])
        if sel is not None:
            hit = np.zeros(ctx.n, dtype=bool)
            for c in cols or ("prior_rt",):
                hit |= ctx.flag(c)
            _count(ctx, id_, sel.mask & hit, sel, f"prior_rt.{id_.split('.')[1]}")
    sel = ctx.select("bbm.burden", "pfs1_by_prior_brain_rt", ("brain_mets_burden", "prior_brain_srs", "prior_wbrt"),
                     ids=["bbm.oligo.n", "bbm.multiple.n", "prior_rt.wbrt.n", "prior_rt.srs_oligo.n"])
    if sel is None:
        return
    burden, m = ctx.values("brain_mets_burden"), sel.mask
    oligo, multiple = m & (burden == "oligo"), m & (burden == "multiple")
    brain_rt, srs, wbrt = ctx.flag("prior_brain_rt"), ctx.flag("prior_brain_srs"), ctx.flag("prior_wbrt")
    for id_, mask in (("bbm.oligo.n", oligo), ("bbm.multiple.n", multiple), ("prior_rt.wbrt.n", m & wbrt),
                      ("bbm.no_prior_brain_rt.n", m & ~brain_rt), ("prior_rt.srs_oligo.n", oligo & srs),
                      ("prior_rt.srs_multiple.n", multiple & srs), ("prior_rt.wbrt_multiple.n", multiple & wbrt),
                      ("prior_rt.wbrt_oligo.n", oligo & wbrt), ("bbm.oligo_no_prior_brain_rt.n", oligo & ~brain_rt)):
        _count(ctx, id_, mask, sel, "bbm.burden", of=m, pct_id="bbm.oligo.pct" if id_ == "bbm.oligo.n" else None)


def _brain(ctx: Context) -> None:
    """Brain progression by BBM (all patients: no progression counts as no brain progression)."""
    base = ctx.select("brain.bbm_status", "pfs1_predictors", ("brain_mets",),
                      ids=["brain_pd.bbm.n", "brain_pd.bbm_vs_no_bbm.p"])
    sites = ctx.select("brain.sites", "initial_failure_sites", ("fail_brain",), ids=["brain_pd.n"])
    if sites is not None:
        _count(ctx, "brain_pd.n", sites.mask & ctx.flag("fail_brain"), sites, "brain.sites", of=sites.mask,
               pct_id="brain_pd.pct")
    if base is None or sites is None:
        return
    known = base.mask & (~ctx.progressed | sites.mask)
    n_ex = base.n_excluded + np.count_nonzero(base.mask & ~known)
    bbm = ctx.flag("brain_mets")
    brain_pd = known & ctx.progressed & ctx.flag("fail_brain")
    for word, grp in (("bbm", known & bbm), ("no_bbm", known & ~bbm)):
        _count(ctx, f"brain_pd.{word}.n", brain_pd & grp, base, "brain.bbm_status", of=grp,
               pct_id=f"brain_pd.{word}.pct", n_excluded=n_ex)
    table = [[np.count_nonzero(brain_pd & g), np.count_nonzero(~brain_pd & g)] for g in (known & bbm, known & ~bbm)]
    contingency(ctx, "brain_pd.bbm_vs_no_bbm.p", table, base, "brain.bbm_status",
                "brain progression at first failure by BBM (all patients)", n_excluded=n_ex)
    prior = ctx.select("brain.prior_rt", "pfs1_by_prior_brain_rt", ("brain_mets_burden",),
                       ids=["brain_pd.bbm_prior_brain_rt.n"])
    if prior is not None:
        pk = prior.mask & (~ctx.progressed | sites.mask)
        brain_rt = ctx.flag("prior_brain_rt")
        _count(ctx, "brain_pd.bbm_prior_brain_rt.n", brain_pd & pk & brain_rt, prior, "brain.prior_rt")
        _count(ctx, "brain_pd.bbm_no_prior_brain_rt.n", brain_pd & pk & ~brain_rt, prior, "brain.prior_rt")
    typed = ctx.select("brain.type", "brain_progression_type_by_bbm",
                       ids=["multi_pd.bbm.n", "multi_pd.bbm_vs_no_bbm.p"])
    if typed is None:
        return
    multiple = typed.mask & (ctx.values("brain_progression_type") == "multiple")
    for word, grp in (("bbm", typed.mask & bbm), ("no_bbm", typed.mask & ~bbm)):
        _count(ctx, f"multi_pd.{word}.n", multiple & grp, typed, "brain.type", of=grp, pct_id=f"multi_pd.{word}.pct")
    table = [[np.count_nonzero(multiple & g), np.count_nonzero(~multiple & g)]
             for g in (typed.mask & bbm, typed.mask & ~bbm)]
    contingency(ctx, "multi_pd.bbm_vs_no_bbm.p", table, typed, "brain.type",
                "multiple- vs oligo-progressive brain disease by BBM")
    if prior is not None:
        burden = ctx.values("brain_mets_burden")
        ok = pk & (~brain_pd | typed.mask)
        oligo = ok & (burden == "oligo")
        grp = oligo & ~ctx.flag("prior_brain_rt")
        _count(ctx, "multi_pd.oligo_no_prior_rt.n", multiple & grp, prior, "brain.prior_rt", of=grp,
               pct_id="multi_pd.oligo_no_prior_rt.pct")
        if ctx.has("prior_brain_srs"):
            _count(ctx, "multi_pd.oligo_prior_srs.n", multiple & oligo & ctx.flag("prior_brain_srs"), prior,
                   "brain.prior_rt")
        else:
            ctx.skip("brain.prior_rt", ["multi_pd.oligo_prior_srs.n"], "the cohort has no column prior_brain_srs")


def _after_progression(ctx: Context) -> None:
    sel = ctx.select("salvage.eligible", "salvage_rt_eligibility", ("salvage_rt_eligible_technique",),
                     ids=["salvage.eligible.n", "salvage.eligible.pct"])
    if sel is not None:
        elig = sel.mask & ctx.flag("salvage_rt_eligible")
        _count(ctx, "salvage.eligible.n", elig, sel, "salvage.eligible", of=sel.mask, pct_id="salvage.eligible.pct")
        if sel.n:
            ctx.add("salvage.eligible.pct_discussion", 100.0 * np.count_nonzero(elig) / sel.n, sel=sel,
                    analysis="salvage.eligible", method="proportion", note="same as salvage.eligible.pct")
        else:
            ctx.skip("salvage.eligible", ["salvage.eligible.pct_discussion"],
                     "percentage not computed: no patient with a first progression")
        tech = ctx.values("salvage_rt_eligible_technique")
        for t in ("WBRT", "SRS", "SBRT"):
            _count(ctx, f"salvage.eligible_{t.lower()}.n", elig & (tech == t), sel, "salvage.eligible")
    sel = ctx.select("salvage.received", "salvage_rt_eligibility", ("salvage_rt", "salvage_rt_technique"),
                     ids=["salvage.wbrt.n", "salvage.srs.n", "salvage.sbrt.n"])
    if sel is not None:
        tech = ctx.values("salvage_rt_technique")
        for t in ("WBRT", "SRS", "SBRT"):
            _count(ctx, f"salvage.{t.lower()}.n", sel.mask & ctx.flag("salvage_rt") & (tech == t), sel,
                   "salvage.received")
    sel = ctx.select("pfs2.by_salvage_rt", "pfs2_by_salvage_rt", ids=["salvage.received.n"])
    if sel is not None:
        _count(ctx, "salvage.received.n", sel.mask & ctx.flag("salvage_rt"), sel, "pfs2.by_salvage_rt",
               note="the post-RT group of Fig. 1b")
    cbpd = ctx.flag("cbpd") if ctx.has("cbpd") else None
    sel = ctx.select("pfs2.by_cbpd", "pfs2_by_cbpd", ids=["after_pd.cbpd.n", "after_pd.discontinued.n"])
    if sel is not None:
        _count(ctx, "after_pd.cbpd.n", sel.mask & cbpd, sel, "pfs2.by_cbpd", note="the CBPD group of Fig. 1c")
        _count(ctx, "after_pd.discontinued.n", sel.mask & ~cbpd, sel, "pfs2.by_cbpd")
    sel = ctx.select("after_pd.next", "pfs2_by_cbpd", ("next_systemic_therapy",),
                     ids=["after_pd.bsc.n", "after_pd.alk2.n", "after_pd.chemo.n"])
    if sel is not None:
        nxt = ctx.values("next_systemic_therapy")
        for id_, val in (("after_pd.bsc.n", "best_supportive_care"), ("after_pd.alk2.n", "next_gen_alk_tki"),
                         ("after_pd.chemo.n", "chemotherapy")):
            _count(ctx, id_, sel.mask & ~cbpd & (nxt == val), sel, "after_pd.next")


def run_tables(ctx: Context) -> None:
    """Add Table 1, Table 2 and the counts of the text to ``ctx``."""
    _counts(ctx)
    _table1(ctx)
    _prior_rt(ctx)
    _brain(ctx)
    _table2(ctx)
    _after_progression(ctx)
