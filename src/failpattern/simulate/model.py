"""Parameters of the cohort simulator, with the published number each one is fitted to.

Why a separate module: the simulator, the calibration, the documentation table
(``docs/simulator.md``) and the tests all need the same list of parameters, their
values and their provenance. Keeping them here, as data, means the documentation
is generated from the values the simulator actually uses, and a test fails if
they drift apart.

The values in :data:`DEFAULT_PARAMS` are the output of
``failpattern.simulate.calibrate(load_study("ni2019"))`` (replicates=1000, seed=20190314)
(see ``docs/simulator.md``); ``calibrate`` re-fits them from any study card.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = ["DEFAULT_PARAMS", "PARAM_INFO", "ParamInfo", "Params", "parameter_table"]


@dataclass(frozen=True)
class ParamInfo:
    """How one parameter is obtained.

    Attributes
    ----------
    meaning : str
        What the parameter does in the model.
    how : str
        ``closed form`` (a ratio of published counts), ``fitted`` (simulated
        moments), ``Schoenfeld`` (effect size implied by a published p-value
        through the expected-information formula), or ``assumption``.
    targets : str
        The study-card ids (or the reasoning) it is calibrated to.
    """

    meaning: str
    how: str
    targets: str


# Per-group probabilities are (non-RT, RT) pairs.
@dataclass(frozen=True)
class Params:
    """All parameters of the generative model (months as the time unit).

    See :data:`PARAM_INFO` for the meaning and provenance of each field and
    ``docs/simulator.md`` for the model. Pairs are ``(non-RT group, RT group)``.
    The class defaults are the closed-form values and, for fitted parameters, the
    *starting guesses* of :func:`~failpattern.simulate.calibrate` (rounded from an
    earlier fit); the fitted values are :data:`DEFAULT_PARAMS`.
    """

    # --- design and follow-up
    p_rt: float = 42 / 93
    accrual_growth: float = 1.5
    lag_first_line: tuple = (0.25, 1.5)
    lag_per_line_mean: float = 9.2
    # --- baseline (Table 1), (non-RT, RT)
    p_male: tuple = (26 / 51, 29 / 42)
    p_non_adeno: tuple = (1 / 51, 2 / 42)
    p_ecog2: tuple = (3 / 51, 2 / 42)
    p_t34: tuple = (22 / 51, 19 / 42)
    p_n0: tuple = (4 / 51, 5 / 42)
    p_organs3: tuple = (19 / 51, 8 / 42)
    p_lesions6: tuple = (40 / 51, 25 / 42)
    p_lung: tuple = (17 / 51, 7 / 42)
    p_liver: tuple = (11 / 51, 4 / 42)
    p_bbm: tuple = (13 / 51, 22 / 42)
    p_adrenal: tuple = (10 / 51, 3 / 42)
    p_bone: tuple = (19 / 51, 14 / 42)
    age_median: tuple = (49.0, 50.0)
    age_sd: float = 10.0
    size_median: tuple = (3.5, 3.0)
    size_sigma: float = 0.45
    p_prior_lines: tuple = (57 / 93, 26 / 93, 10 / 93)
    # --- brain metastases and radiotherapy before crizotinib
    p_oligo: float = 15 / 35
    p_brain_rt_oligo: float = 5 / (22 * 15 / 35)
    p_brain_rt_multiple: float = 6 / (22 * 20 / 35)
    p_srs_oligo: float = 4 / 5
    p_srs_multiple: float = 1 / 6
    p_xrt_no_brain_rt: float = 14 / 31
    p_xrt_brain_rt: float = 1 / 11
    xrt_sites: tuple = (9 / 15, 4 / 15, 1 / 15, 1 / 15)
    p_response: tuple = (1 / 93, 66 / 93, 22 / 93, 4 / 93)
    # --- PFS1 (Weibull proportional hazards, piecewise for BBM without brain RT; best
    # response PD progresses at the first scan)
    pfs1_scale: float = 55.0
    pfs1_shape: float = 0.7
    b_bbm_untreated: float = 0.5
    b_bbm_untreated_late: float = 0.5
    pfs1_change: float = 6.0
    b_multiple_untreated: float = 0.5
    b_bbm_brain_rt: float = 0.15
    b_non_adeno: float = 1.6
    b_organs3: float = 0.85
    b_no_response: float = 0.7
    pd_scan: tuple = (1.4, 1.9)
    # --- brain progression at first failure (given progression)
    q_bbm_untreated: float = 0.85
    q_brain_rt: float = 0.72
    q_no_bbm: float = 0.42
    p_multiple_bbm_brain_rt: float = 2 / 3
    p_multiple_no_bbm: float = 4 / 13
    # --- first-failure pattern (logistic, given progression and brain progression)
    of_intercept: float = -2.9
    of_bbm: float = 3.2
    of_size: float = 3.2
    of_non_adeno: float = 2.9
    of_brain: float = 0.0
    df_intercept: float = -0.18
    df_brain: float = 0.0
    # --- failure location and sites (Table 2)
    p_primary_only_of: float = 7 / 11
    p_both_of: float = 3 / 19
    p_both_odf: float = 7 / 14
    site_rate_of: tuple = (7 / 19, 2 / 19, 1 / 19, 0.0, 3 / 19, 2 / 19, 1 / 19)
    site_rate_odf: tuple = (8 / 14, 1 / 14, 2 / 14, 1 / 14, 3 / 14, 2 / 14, 1 / 14)
    # --- after first failure
    p_srs_eligible: float = 10 / 11
    p_sbrt_eligible_rt: float = 0.63
    p_treat_wbrt: float = 0.94
    p_treat_srs: float = 0.96
    p_treat_sbrt: float = 1.0
    p_cbpd_salvage: float = 1.0
    p_cbpd_other: float = 16 / 33
    p_next: tuple = (9 / 17, 5 / 17, 3 / 17)
    # --- PFS2 and death
    pfs2_scale: float = 7.4
    pfs2_shape: float = 0.7
    pfs2_no_progression: float = 0.2
    c_salvage: float = -0.17
    c_cbpd: float = -0.45
    death_rate: float = 0.022
    d_non_rt: float = 1.2

    def replace(self, **changes) -> Params:
        """A copy with ``changes`` applied (the dataclass is frozen)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        """Field name -> value."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_C, _F, _S, _A = "closed form", "fitted", "Schoenfeld", "assumption"
_T1 = "Table 1 `t1.{v}.nonrt.n`, `t1.{v}.rt.n` over 51 / 42"

#: Provenance of every parameter (a test checks every field has an entry).
PARAM_INFO: dict[str, ParamInfo] = {
    "p_rt": ParamInfo("P(radiotherapy at any time); defines the RT / non-RT groups", _C, "`rt_course.n` / `cohort.enrolled.n`"),
    "accrual_growth": ParamInfo("crizotinib starts 2014-01-01..2018-03-31 with density ∝ exp(g·s/S) (more patients later)", _F, "`followup.median` (median of OS follow-up from diagnosis)"),
    "lag_first_line": ParamInfo("diagnosis to crizotinib, first line: uniform (months)", _A, "first-line crizotinib starts within weeks"),
    "lag_per_line_mean": ParamInfo("diagnosis to crizotinib after chemotherapy: 1.5 + gamma(2) with this mean per line (months)", _F, "`followup.median` range_upper 72.0 (median over cohorts of the longest follow-up)"),
    "p_male": ParamInfo("P(male) by group", _C, _T1.format(v="sex.male")),
    "p_non_adeno": ParamInfo("P(non-adenocarcinoma) by group", _C, _T1.format(v="histology.non_adeno")),
    "p_ecog2": ParamInfo("P(ECOG 2) by group (0 vs 1 split 40:60 within 0-1, assumption)", _C, _T1.format(v="ecog.ecog2")),
    "p_t34": ParamInfo("P(T3-4) by group", _C, _T1.format(v="t_stage.t3_4")),
    "p_n0": ParamInfo("P(N0) by group (N1/N2/N3 15:40:45, assumption)", _C, _T1.format(v="n_stage.n0")),
    "p_organs3": ParamInfo("P(>= 3 metastatic organs) by group", _C, _T1.format(v="met_organs.organs3plus")),
    "p_lesions6": ParamInfo("P(>= 6 metastatic lesions) by group", _C, _T1.format(v="met_lesions.lesions6plus")),
    "p_lung": ParamInfo("P(lung metastases) by group", _C, _T1.format(v="lung_met.yes")),
    "p_liver": ParamInfo("P(liver metastases) by group", _C, _T1.format(v="liver_met.yes")),
    "p_bbm": ParamInfo("P(baseline brain metastases) by group", _C, _T1.format(v="brain_met.yes")),
    "p_adrenal": ParamInfo("P(adrenal metastases) by group", _C, _T1.format(v="adrenal_met.yes")),
    "p_bone": ParamInfo("P(bone metastases) by group", _C, _T1.format(v="bone_met.yes")),
    "age_median": ParamInfo("age ~ normal(median, sd) by group", _C, "`t1.age.median.nonrt`, `t1.age.median.rt`"),
    "age_sd": ParamInfo("age standard deviation (years)", _A, "not published"),
    "size_median": ParamInfo("primary tumour size ~ lognormal(median, sigma) by group", _C, "`t1.tumor_size.median.nonrt`, `t1.tumor_size.median.rt`"),
    "size_sigma": ParamInfo("log-sd of primary tumour size", _A, "not published"),
    "p_prior_lines": ParamInfo("P(0, 1, 2 lines of chemotherapy before crizotinib)", _C, "`treatment.first_line.n`, `treatment.pretreated.n` (1 vs 2 lines split 26:10, assumption)"),
    "p_oligo": ParamInfo("P(oligo brain metastases | BBM)", _C, "`bbm.oligo.n` / `t1.brain_met.yes.all.n`"),
    "p_brain_rt_oligo": ParamInfo("P(brain RT before crizotinib | RT group, BBM, oligo)", _C, "(`prior_rt.srs_oligo.n` + `prior_rt.wbrt_oligo.n`) / E[oligo BBM in RT group]"),
    "p_brain_rt_multiple": ParamInfo("P(brain RT before crizotinib | RT group, BBM, multiple)", _C, "(`prior_rt.srs_multiple.n` + `prior_rt.wbrt_multiple.n`) / E[multiple BBM in RT group]"),
    "p_srs_oligo": ParamInfo("P(SRS, not WBRT | oligo, brain RT)", _C, "`prior_rt.srs_oligo.n` / 5"),
    "p_srs_multiple": ParamInfo("P(SRS, not WBRT | multiple, brain RT)", _C, "`prior_rt.srs_multiple.n` / 6"),
    "p_xrt_no_brain_rt": ParamInfo("P(extracranial RT before crizotinib | RT group, no brain RT)", _C, "(`prior_rt.n` - `prior_rt.brain.n`) / (42 - 11)"),
    "p_xrt_brain_rt": ParamInfo("P(extracranial RT | brain RT)", _C, "`prior_rt.extracranial.n` - 14 = 1 of 11"),
    "xrt_sites": ParamInfo("extracranial sites: thoracic, bone, adrenal, thoracic+bone", _C, "`prior_rt.thoracic.n`, `prior_rt.bone.n`, `prior_rt.adrenal.n` over `prior_rt.extracranial.n` (16 courses, 15 patients)"),
    "p_response": ParamInfo("P(best response CR, PR, SD, PD)", _C, "`response.cr.n`, `response.pr.n`, `response.sd.n`, `response.pd.n`"),
    "pfs1_scale": ParamInfo("Weibull scale of PFS1 (months, reference patient)", _F, "`pfs1.median.all`, `progression1.n`"),
    "pfs1_shape": ParamInfo("Weibull shape of PFS1", _F, "`pfs1.median.all`, `progression1.n`"),
    "b_bbm_untreated": ParamInfo("log HR of PFS1, BBM without brain RT, first `pfs1_change` months", _F, "`pfs1.median.bbm_no_prior_brain_rt`, `pfs1.median.bbm`, `pfs1.bbm.p`, `pfs1.bbm.prior_brain_rt.p`"),
    "b_bbm_untreated_late": ParamInfo("log HR of PFS1, BBM without brain RT, after `pfs1_change` months (piecewise PH)", _F, "`pfs1.median.bbm`, `pfs1.median.bbm_no_prior_brain_rt`, `progression1.n`"),
    "b_multiple_untreated": ParamInfo("log HR of PFS1, multiple vs oligo BBM without brain RT", _F, "`multi_pd.oligo_no_prior_rt.n` / `brain_pd.bbm_no_prior_brain_rt.n` (4 of 13: the oligo share of the progressions)"),
    "pfs1_change": ParamInfo("change point of the piecewise hazard of BBM without brain RT (months): its published median, where the curve flattens", _C, "`pfs1.median.bbm_no_prior_brain_rt`"),
    "b_bbm_brain_rt": ParamInfo("log HR of PFS1, BBM with brain RT before crizotinib", _F, "`pfs1.median.bbm_prior_brain_rt`, `pfs1.bbm.prior_brain_rt.p`"),
    "b_non_adeno": ParamInfo("log HR of PFS1, non-adenocarcinoma", _S, "`pfs1.multi.histology.p`"),
    "b_organs3": ParamInfo("log HR of PFS1, >= 3 metastatic organs", _S, "`pfs1.multi.met_organs.p`"),
    "b_no_response": ParamInfo("log HR of PFS1, stable disease (no objective response)", _S, "`pfs1.multi.response.p`"),
    "pd_scan": ParamInfo("best response PD: progression at the first scan, uniform (months)", _C, "`protocol.scan_interval.min`/`max` (6-8 weeks)"),
    "q_bbm_untreated": ParamInfo("P(brain progression | progression, BBM, no brain RT); all multiple-progressive", _F, "`brain_pd.bbm_no_prior_brain_rt.n`"),
    "q_brain_rt": ParamInfo("P(brain progression | progression, BBM, brain RT)", _F, "`brain_pd.bbm_prior_brain_rt.n`"),
    "q_no_bbm": ParamInfo("P(brain progression | progression, no BBM)", _F, "`brain_pd.no_bbm.n`"),
    "p_multiple_bbm_brain_rt": ParamInfo("P(multiple-progressive | brain progression, BBM with brain RT, not SRS-treated oligo); SRS-treated oligo: 0 (`multi_pd.oligo_prior_srs.n`)", _F, "`multi_pd.bbm.n` - `brain_pd.bbm_no_prior_brain_rt.n` (untreated BBM progress as multiple)"),
    "p_multiple_no_bbm": ParamInfo("P(multiple-progressive | brain progression, no BBM)", _C, "`multi_pd.no_bbm.n` / `brain_pd.no_bbm.n`"),
    "of_intercept": ParamInfo("logit P(OF | progression), reference patient", _F, "`pattern.of.n`"),
    "of_bbm": ParamInfo("logit effect of BBM on OF", _F, "`t3.uni.brain_met.shr`"),
    "of_size": ParamInfo("logit effect of primary tumour >= 3.5 cm on OF", _F, "`t3.uni.tumor_size.shr`"),
    "of_non_adeno": ParamInfo("logit effect of non-adenocarcinoma on OF", _F, "`t3.uni.histology.shr`"),
    "of_brain": ParamInfo("logit effect on OF (vs ODF) of a brain progression with BBM (an original site: never DF)", _F, "`t2.brain.of.n`"),
    "df_intercept": ParamInfo("logit P(DF | progression, not OF)", _F, "`pattern.df.n`, `pattern.odf.n`"),
    "df_brain": ParamInfo("logit effect on DF (vs ODF) of a brain progression without BBM (a new site: never OF)", _F, "`t2.brain.df.n`"),
    "p_primary_only_of": ParamInfo("P(primary-only failure | OF without brain progression)", _F, "`t2.primary_only.of.n`"),
    "p_both_of": ParamInfo("P(primary and metastasis | OF, metastatic failure)", _F, "`t2.primary_and_metastasis.of.n`"),
    "p_both_odf": ParamInfo("P(primary and metastasis | ODF)", _F, "`t2.primary_and_metastasis.odf.n`"),
    "site_rate_of": ParamInfo("P(site | metastatic OF failure): lung, liver, bone, adrenal, regional LN, distant LN, other (a failure with no site drawn gets one ∝ Table 2 totals)", _F, "`t2.lung.of.n`, `t2.liver.of.n`, `t2.bone.of.n`, `t2.adrenal.of.n`, `t2.regional_ln.of.n`, `t2.distant_ln.of.n`, `t2.others.of.n`"),
    "site_rate_odf": ParamInfo("P(site | ODF failure), same order", _F, "`t2.lung.odf.n`, `t2.liver.odf.n`, `t2.bone.odf.n`, `t2.adrenal.odf.n`, `t2.regional_ln.odf.n`, `t2.distant_ln.odf.n`, `t2.others.odf.n`"),
    "p_srs_eligible": ParamInfo("P(eligible for SRS | oligo brain progression); multiple-progressive are WBRT-eligible", _C, "`salvage.eligible_srs.n` / 11; `salvage.eligible_wbrt.n` = 19 = multiple-progressive"),
    "p_sbrt_eligible_rt": ParamInfo("P(eligible for SBRT | extracranial progression, RT group)", _F, "`salvage.eligible_sbrt.n`"),
    "p_treat_wbrt": ParamInfo("P(salvage WBRT | WBRT-eligible, RT group)", _F, "`salvage.wbrt.n`"),
    "p_treat_srs": ParamInfo("P(salvage SRS | SRS-eligible, RT group)", _F, "`salvage.srs.n`"),
    "p_treat_sbrt": ParamInfo("P(salvage SBRT | SBRT-eligible)", _C, "`salvage.sbrt.n` / `salvage.eligible_sbrt.n`"),
    "p_cbpd_salvage": ParamInfo("P(crizotinib beyond progression | salvage RT)", _A, "local therapy with continued crizotinib"),
    "p_cbpd_other": ParamInfo("P(crizotinib beyond progression | no salvage RT)", _F, "`after_pd.cbpd.n`"),
    "p_next": ParamInfo("next therapy without CBPD: supportive care, 2nd-generation ALK TKI, chemotherapy", _C, "`after_pd.bsc.n`, `after_pd.alk2.n`, `after_pd.chemo.n`"),
    "pfs2_scale": ParamInfo("Weibull scale of PFS2 of those who progress again (months, no salvage RT, no CBPD)", _F, "`pfs2.median.*`, `progression2.n`"),
    "pfs2_shape": ParamInfo("Weibull shape of PFS2", _F, "`pfs2.median.*`, `progression2.n`"),
    "pfs2_no_progression": ParamInfo("P(no second progression | first progression): long-term control after first failure", _F, "`progression2.n`, `pfs2.median.all`"),
    "c_salvage": ParamInfo("log HR of PFS2, salvage RT", _F, "`pfs2.median.salvage_rt`, `pfs2.median.no_salvage_rt`, `pfs2.salvage_rt.p`"),
    "c_cbpd": ParamInfo("log HR of PFS2, CBPD", _F, "`pfs2.median.cbpd`, `pfs2.median.non_cbpd`"),
    "death_rate": ParamInfo("death hazard after second progression (per month, RT group)", _F, "`deaths.n`"),
    "d_non_rt": ParamInfo("log HR of death, no radiotherapy at any time", _F, "`os.rt_vs_nonrt.p` (Schoenfeld start value)"),
}


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return f"{v:.4g}"


def parameter_table(params: Params | None = None) -> str:
    """The markdown table of ``docs/simulator.md``: name, value, how obtained, target, meaning.

    Parameters
    ----------
    params : Params, optional
        Values to show; :data:`DEFAULT_PARAMS` by default.

    Returns
    -------
    str
    """
    p = DEFAULT_PARAMS if params is None else params
    rows = ["| parameter | value | how | calibrated to | meaning |", "| --- | --- | --- | --- | --- |"]
    for f in fields(p):
        info = PARAM_INFO[f.name]
        rows.append(f"| `{f.name}` | {_fmt(getattr(p, f.name))} | {info.how} | {info.targets} | {info.meaning} |")
    return "\n".join(rows)


#: Calibrated defaults: ``calibrate(load_study("ni2019"))`` with its defaults (replicates=1000,
#: seed=20190314, rounds=3, maxiter=100; `failpattern calibrate` prints the same values); fields
#: not listed equal the class defaults (closed forms and assumptions).
DEFAULT_PARAMS = Params(
    accrual_growth=1.3891619181338368,
    lag_per_line_mean=9.670508301296389,
    pfs1_scale=50.60401429315636,
    pfs1_shape=0.7059498985123897,
    b_bbm_untreated=-0.0723160702799589,
    b_bbm_untreated_late=-1.1885706080272769,
    b_multiple_untreated=1.0151614034658936,
    b_bbm_brain_rt=0.045954938664050315,
    b_non_adeno=1.6119320882240822,
    b_organs3=0.8575808293105152,
    b_no_response=0.6842647416857467,
    pd_scan=(1.379876796714579, 1.839835728952772),
    q_bbm_untreated=0.9323730252655593,
    q_brain_rt=0.6743626821729606,
    q_no_bbm=0.4064631855341243,
    p_multiple_bbm_brain_rt=0.7578299787353946,
    of_intercept=-1.7365885472992553,
    of_bbm=-0.0027699089029738265,
    of_size=3.999535152250341,
    of_non_adeno=3.969625470472346,
    of_brain=2.972084135868084,
    df_intercept=0.13595864777055938,
    df_brain=-0.27774976676599994,
    p_primary_only_of=0.6417536185052265,
    p_both_of=0.1544487076139702,
    p_both_odf=0.4867987204305103,
    site_rate_of=(0.3715415686082891, 0.12343450026369386, 0.03666527695504188, 0.0, 0.10307161956757825, 0.06694321716418526, 0.025534928100790433),
    site_rate_odf=(0.4859510814833238, 0.0028145689995247125, 0.029023800264177977, 0.04306181359595165, 0.09751570831697753, 0.0011765884558530598, 0.001),
    p_sbrt_eligible_rt=0.6821830865230732,
    p_treat_wbrt=0.8801534727841327,
    p_treat_srs=1.0,
    p_cbpd_other=0.47298967724816926,
    pfs2_scale=2.492216661840745,
    pfs2_shape=0.7794000037274096,
    pfs2_no_progression=0.3495762020569746,
    c_salvage=-0.08231125064084203,
    c_cbpd=-0.589511878880458,
    death_rate=0.02549913308716038,
    d_non_rt=1.7105634773755427,
)
