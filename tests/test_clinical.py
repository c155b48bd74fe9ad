"""Hard clinical plausibility rules (failpattern.cohort.clinical): each fires on a hand-made violation,
stays quiet on a valid cohort, skips missing columns and empty cells; random cohorts obey them all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from failpattern.cohort import check_clinical, load_cohort
from failpattern.cohort.clinical import CLINICAL_RULES
from failpattern.cohort.schema import COLUMNS, DATE_COLUMNS
from failpattern.simulate import simulate
from failpattern.study import load_study

CARD = load_study("ni2019")
DPM = 365.25 / 12
_FAIL = ("lung", "liver", "brain", "bone", "adrenal", "regional_ln", "distant_ln", "other")


def _patient(pid, *, dx, start, fp=None, sp=None, death=None, lfu=None, fail=(), **kw):
    """One patient; durations follow from the dates; fail_<site> 0/1 for progressed patients only."""
    d = {k: pd.Timestamp(v) if v else None for k, v in
         {"dx": dx, "start": start, "fp": fp, "sp": sp, "death": death, "lfu": lfu}.items()}
    end = d["death"] or d["lfu"]
    row = {c.name: None for c in COLUMNS}
    row.update(patient_id=pid, diagnosis_date=dx, crizotinib_start_date=start, first_progression_date=fp,
               second_progression_date=sp, death_date=death, last_followup_date=lfu,
               os_months=round((end - d["dx"]).days / DPM, 2), os_event=int(death is not None),
               pfs1_months=round(((d["fp"] or end) - d["start"]).days / DPM, 2),
               pfs1_event=int(fp is not None or death is not None))
    if fp:
        ev2 = sp is not None or death is not None
        row.update(pfs2_months=round(((d["sp"] or end) - d["fp"]).days / DPM, 2), pfs2_event=int(ev2))
        row.update({f"fail_{s}": int(s in fail) for s in _FAIL})
    row.update(age_years=50, sex="female", histology="adenocarcinoma", ecog=1, n_stage="N2", prior_lines=0)
    row.update(kw)
    return row


def _base() -> pd.DataFrame:
    """Four valid patients: OF (PR), censored (SD), DF (CR), ODF after best response PD (died)."""
    rows = [
        _patient("P1", dx="2015-01-01", start="2015-02-01", fp="2015-10-01", sp="2016-03-01", death="2016-09-01",
                 fail=("brain",), failure_pattern="OF", fail_original_site=1, fail_new_site=0,
                 initial_failure_location="metastasis", best_response="PR", primary_tumor_size_cm=2.5,
                 t_stage="T1", n_metastatic_organs=2, n_metastatic_lesions=4, lung_mets=0, liver_mets=0,
                 brain_mets=1, adrenal_mets=0, bone_mets=1, brain_mets_burden="oligo", prior_rt=1,
                 prior_brain_rt=1, prior_brain_srs=1, prior_wbrt=0, prior_thoracic_rt=0, prior_bone_rt=1,
                 prior_adrenal_rt=0, brain_progression_type="oligo", salvage_rt_eligible=1,
                 salvage_rt_eligible_technique="SRS", salvage_rt=1, salvage_rt_technique="SRS", cbpd=1,
                 next_systemic_therapy="crizotinib", any_rt=1),
        _patient("P2", dx="2016-01-10", start="2016-02-01", lfu="2018-05-01", best_response="SD",
                 primary_tumor_size_cm=5.0, t_stage="T2", n_metastatic_organs=1, n_metastatic_lesions=1,
                 lung_mets=0, liver_mets=0, brain_mets=0, adrenal_mets=0, bone_mets=1, prior_rt=0,
                 prior_brain_rt=0, prior_brain_srs=0, prior_wbrt=0, prior_thoracic_rt=0, prior_bone_rt=0,
                 prior_adrenal_rt=0, any_rt=0),
        _patient("P3", dx="2014-05-01", start="2014-06-01", fp="2015-01-15", lfu="2018-05-30", fail=("brain",),
                 failure_pattern="DF", fail_original_site=0, fail_new_site=1, initial_failure_location="metastasis",
                 best_response="CR", primary_tumor_size_cm=7.5, t_stage="T3", n_metastatic_organs=1,
                 n_metastatic_lesions=2, lung_mets=0, liver_mets=0, brain_mets=0, adrenal_mets=0, bone_mets=1,
                 prior_rt=1, prior_brain_rt=0, prior_brain_srs=0, prior_wbrt=0, prior_thoracic_rt=1,
                 prior_bone_rt=0, prior_adrenal_rt=0, brain_progression_type="multiple", salvage_rt_eligible=1,
                 salvage_rt_eligible_technique="WBRT", salvage_rt=0, cbpd=0,
                 next_systemic_therapy="next_gen_alk_tki", any_rt=1),
        _patient("P4", dx="2017-01-15", start="2017-03-01", fp="2017-04-20", death="2017-06-01",
                 fail=("lung", "liver"), failure_pattern="ODF", fail_original_site=1, fail_new_site=1,
                 initial_failure_location="both", best_response="PD", primary_tumor_size_cm=4.0, t_stage="T4",
                 age_years=70, n_metastatic_organs=1, n_metastatic_lesions=3, lung_mets=0, liver_mets=0,
                 brain_mets=0, adrenal_mets=0, bone_mets=1, prior_rt=0, prior_brain_rt=0, prior_brain_srs=0,
                 prior_wbrt=0, prior_thoracic_rt=0, prior_bone_rt=0, prior_adrenal_rt=0, salvage_rt_eligible=0,
                 salvage_rt=0, cbpd=0, next_systemic_therapy="chemotherapy", any_rt=0),
    ]
    return pd.DataFrame(rows, columns=[c.name for c in COLUMNS])


def _with(frame, row, changes):
    out = frame.copy()
    for k, v in changes.items():
        out[k] = out[k].astype(object)
        out.at[row, k] = v
    return out


def test_valid_cohort_is_quiet():
    base = _base()
    for card in (None, CARD):
        got = check_clinical(base, card)
        assert got.empty, got.message.tolist()
        assert list(got.columns) == ["rule", "row", "patient_id", "column", "value", "message"]


def test_valid_cohort_is_quiet_typed_by_the_loader_and_without_dates():
    base = _base()
    cohort = load_cohort(base)
    assert check_clinical(cohort.data, CARD).empty
    assert check_clinical(cohort, CARD).empty  # a Cohort is read through its data
    assert check_clinical(base.drop(columns=list(DATE_COLUMNS))).empty


# (rule, row, changes, column reported)
CASES = [
    ("progression_before_first_assessment", 0, {"first_progression_date": "2015-02-20"}, "first_progression_date"),
    ("response_before_first_assessment", 1, {"pfs1_months": 0.9}, "pfs1_months"),
    ("pd_without_early_progression", 3, {"first_progression_date": "2017-07-01", "death_date": "2017-09-01"},
     "first_progression_date"),
    ("pd_without_early_progression", 1, {"best_response": "PD"}, "pfs1_event"),
    ("second_progression_too_soon", 0, {"second_progression_date": "2015-10-10"}, "second_progression_date"),
    ("dates_out_of_order", 0, {"diagnosis_date": "2015-03-01"}, "crizotinib_start_date"),
    ("dates_out_of_order", 1, {"death_date": "2017-01-01"}, "last_followup_date"),
    ("outside_study_window", 0, {"diagnosis_date": "2013-05-01", "crizotinib_start_date": "2013-06-01"},
     "crizotinib_start_date"),
    ("outside_study_window", 1, {"last_followup_date": "2018-06-15"}, "last_followup_date"),
    ("progression_on_last_followup", 2, {"first_progression_date": "2018-05-30"}, "first_progression_date"),
    ("prior_rt_without_disease", 0, {"bone_mets": 0, "n_metastatic_organs": 1}, "prior_bone_rt"),
    ("prior_rt_without_disease", 1, {"prior_adrenal_rt": 1, "prior_rt": 1}, "prior_adrenal_rt"),
    ("prior_rt_flags", 0, {"prior_rt": 0}, "prior_rt"),
    ("prior_rt_flags", 1, {"prior_rt": 1}, "prior_rt"),
    ("pattern_flags_mismatch", 0, {"fail_new_site": 1}, "failure_pattern"),
    ("progression_without_site", 0, {"fail_brain": 0, "brain_progression_type": None}, "fail_lung"),
    ("progression_without_site", 2, {"fail_brain": 0, "fail_bone": 0, "fail_liver": 0, "fail_lung": 0,
                                     "fail_regional_ln": 0, "fail_distant_ln": 0, "fail_other": 0,
                                     "brain_progression_type": None, "initial_failure_location": "metastasis"},
     "fail_lung"),
    ("of_at_new_site", 0, {"fail_liver": 1}, "fail_liver"),
    ("of_at_new_site", 0, {"fail_lung": 1}, "initial_failure_location"),
    ("df_at_original_site", 2, {"fail_regional_ln": 1}, "fail_regional_ln"),
    ("df_at_original_site", 2, {"fail_bone": 1, "fail_brain": 0, "brain_progression_type": None}, "failure_pattern"),
    ("df_at_original_site", 2, {"initial_failure_location": "both"}, "initial_failure_location"),
    ("odf_sites", 3, {"fail_liver": 0}, "failure_pattern"),
    ("brain_progression_type", 0, {"brain_progression_type": None}, "brain_progression_type"),
    ("brain_progression_type", 3, {"brain_progression_type": "oligo"}, "brain_progression_type"),
    ("salvage_after_progression", 1, {"cbpd": 1}, "cbpd"),
    ("salvage_after_progression", 2, {"salvage_rt": 1, "salvage_rt_eligible": 0,
                                      "salvage_rt_eligible_technique": None, "salvage_rt_technique": "SRS"},
     "salvage_rt"),
    ("salvage_after_progression", 2, {"salvage_rt": 1, "salvage_rt_technique": "SRS"}, "salvage_rt_technique"),
    ("t_stage_size", 0, {"primary_tumor_size_cm": 3.4}, "primary_tumor_size_cm"),
    ("t_stage_size", 1, {"primary_tumor_size_cm": 7.2}, "primary_tumor_size_cm"),
    ("t_stage_size", 3, {"t_stage": "T0", "primary_tumor_size_cm": 1.5}, "primary_tumor_size_cm"),
    ("metastatic_counts", 0, {"n_metastatic_organs": 1}, "n_metastatic_organs"),
    ("metastatic_counts", 0, {"n_metastatic_lesions": 1}, "n_metastatic_organs"),
    ("metastatic_counts", 1, {"brain_mets_burden": "oligo"}, "brain_mets_burden"),
    ("outside_published_range", 3, {"age_years": 80}, "age_years"),
    ("outside_published_range", 1, {"primary_tumor_size_cm": 8.5, "t_stage": "T4"}, "primary_tumor_size_cm"),
]


def _id(case):
    return f"{case[0]}-{case[3]}-row{case[1]}"


@pytest.mark.parametrize("rule,row,changes,column", CASES, ids=[_id(c) for c in CASES])
def test_rule_fires_on_a_violation(rule, row, changes, column):
    frame = _with(_base(), row, changes)
    got = check_clinical(frame, CARD)
    hit = got[(got.rule == rule) & (got.row == row) & (got.column == column)]
    assert len(hit) == 1, got[["rule", "row", "column"]].to_string()
    h = hit.iloc[0]
    assert h.patient_id == f"P{row + 1}"
    cell = frame.at[row, column]
    assert h.value == ("" if cell is None else (f"{cell:g}" if isinstance(cell, float) else str(cell)))
    # the message names the row, the column, the value and the rule
    for part in (f"Row {row} ", f"patient P{row + 1}", f"{column} = {h.value}", f"[rule {rule}]"):
        assert part in h.message, (part, h.message)
    # the same on a frame typed as the loader types it (dates, categories, nullable numbers)
    typed = check_clinical(_typed(frame), CARD)
    assert ((typed.rule == rule) & (typed.row == row) & (typed.column == column)).sum() == 1


_DTYPE = {"binary": "Int64", "count": "Int64", "months": "Float64", "number": "Float64", "category": "category",
          "id": "string"}


def _typed(frame):
    """The loader's dtypes without its cross-checks (which refuse some of the violations)."""
    out = frame.copy()
    for c in COLUMNS:
        if c.name in out:
            out[c.name] = (pd.to_datetime(out[c.name]).astype("datetime64[ns]") if c.kind == "date"
                           else out[c.name].astype(_DTYPE[c.kind]))
    return out


def test_typed_frame_matches_the_loader():
    typed, loaded = _typed(_base()), load_cohort(_base()).data
    assert dict(typed.dtypes.astype(str)) == {k: v for k, v in loaded.dtypes.astype(str).items() if k in typed}


def test_every_rule_has_a_violation_case():
    assert {r.name for r in CLINICAL_RULES} == {c[0] for c in CASES}
    assert len({r.name for r in CLINICAL_RULES}) == len(CLINICAL_RULES)


def test_card_rules_skipped_without_a_card():
    frame = _with(_base(), 3, {"age_years": 80, "crizotinib_start_date": "2017-03-01"})
    assert not check_clinical(frame).rule.eq("outside_published_range").any()
    frame = _with(_base(), 1, {"last_followup_date": "2018-06-15"})
    assert check_clinical(frame).empty


@pytest.mark.parametrize("rule,row,changes,column", CASES, ids=[_id(c) for c in CASES])
def test_rule_skipped_when_its_columns_are_missing(rule, row, changes, column):
    spec = next(r for r in CLINICAL_RULES if r.name == rule)
    frame = _with(_base(), row, changes).drop(columns=[c for c in spec.columns if c != "patient_id"])
    got = check_clinical(frame, CARD)
    assert not got.rule.eq(rule).any(), got.message.tolist()


@pytest.mark.parametrize("rule,row,changes,empty", [
    ("progression_before_first_assessment", 0, {"first_progression_date": "2015-02-20"}, "best_response"),
    ("second_progression_too_soon", 0, {"second_progression_date": "2015-10-10"}, "first_progression_date"),
    ("prior_rt_without_disease", 0, {"bone_mets": 0}, "bone_mets"),
    ("t_stage_size", 0, {"primary_tumor_size_cm": 3.4}, "t_stage"),
    ("of_at_new_site", 0, {"fail_liver": 1}, "liver_mets"),
    ("metastatic_counts", 0, {"n_metastatic_organs": 1}, "lung_mets"),
])
def test_rule_skipped_for_an_empty_cell(rule, row, changes, empty):
    frame = _with(_base(), row, {**changes, empty: None})
    got = check_clinical(frame, CARD)
    if rule == "metastatic_counts":  # one flag empty: only the flags that are there count (2 > 1 still)
        assert got.rule.eq(rule).any()
        frame = _with(frame, row, {"brain_mets": None, "bone_mets": None, "brain_mets_burden": None})
        got = check_clinical(frame, CARD)
    assert not got.rule.eq(rule).any(), got.message.tolist()


def test_durations_only():
    """Without dates, PFS1 and PFS2 come from the months, and a PFS2 event is a second progression."""
    nodates = _base().drop(columns=list(DATE_COLUMNS))
    got = check_clinical(_with(nodates, 0, {"pfs2_months": 0.3}))
    assert got[["rule", "column"]].values.tolist() == [["second_progression_too_soon", "pfs2_months"]]
    got = check_clinical(_with(nodates, 0, {"pfs1_months": 1.0}))
    assert got[["rule", "column"]].values.tolist() == [["progression_before_first_assessment", "pfs1_months"]]


def test_an_early_death_after_progression_is_allowed():
    frame = _with(_base(), 3, {"death_date": "2017-04-25", "pfs2_months": 0.16})
    assert check_clinical(frame, CARD).empty
    # with durations only the same event reads as a second progression
    got = check_clinical(frame.drop(columns=list(DATE_COLUMNS)))
    assert got.rule.tolist() == ["second_progression_too_soon"]


def test_a_primary_only_failure_needs_no_site_flag_and_a_resected_primary_keeps_its_t_stage():
    """Table 2 counts the primary apart from its sites; a primary of 0 cm at baseline (resected or
    occult) keeps the T stage of its diagnosis (the paper: sizes from 0.0 cm, every patient T1-4)."""
    no_sites = {f"fail_{s}": 0 for s in ("lung", "liver", "brain", "bone", "adrenal", "regional_ln",
                                         "distant_ln", "other")}
    frame = _with(_base(), 0, {**no_sites, "brain_progression_type": None, "initial_failure_location": "primary"})
    frame = _with(frame, 1, {"primary_tumor_size_cm": 0.0, "t_stage": "T2"})
    assert check_clinical(frame, CARD).empty


def test_no_columns_at_all():
    assert check_clinical(pd.DataFrame({"patient_id": ["a", "b"]}), CARD).empty
    assert check_clinical(pd.DataFrame(), CARD).empty


def test_canonical_cohort_can_be_checked():
    """The shipped exact cohort is being regenerated: only check that it can be read both ways."""
    from failpattern._resources import synthetic_path
    path = synthetic_path("ni2019_exact.csv")
    raw = check_clinical(pd.read_csv(path), CARD)
    typed = check_clinical(load_cohort(path).data, CARD)
    assert raw[["rule", "row", "column"]].equals(typed[["rule", "row", "column"]])


def test_random_cohorts_obey_every_rule():
    """Census over 20 random cohorts (the generator is built to obey every rule)."""
    counts = {}
    for seed in range(20):
        got = check_clinical(simulate("ni2019", seed=seed, mode="random"), CARD)
        for rule, n in got.rule.value_counts().items():
            counts[rule] = counts.get(rule, 0) + int(n)
    assert counts == {}, counts


def test_many_cohorts_in_one_frame():
    """Ten cohorts stacked (930 rows, repeated patient ids) are checked row by row like one."""
    big = pd.concat([simulate("ni2019", seed=s) for s in range(10)], ignore_index=True)
    assert check_clinical(big, CARD).empty
    assert np.all(big.index == np.arange(len(big)))
