"""The cohort format specification: names, required columns, analyses, and the generated documentation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from failpattern.cohort import ANALYSES, COLUMNS, RULES
from failpattern.cohort.schema import analysis, column, markdown_table, render_doc, used_by

DOC = Path(__file__).resolve().parent.parent / "docs" / "cohort-format.md"
FIXED = ["patient_id", "pfs1_months", "pfs1_event", "failure_pattern", "pfs2_months", "pfs2_event",
         "os_months", "os_event", "brain_mets", "prior_brain_rt", "salvage_rt", "cbpd", "any_rt",
         "diagnosis_date", "crizotinib_start_date", "first_progression_date", "second_progression_date",
         "death_date", "last_followup_date"]


def test_doc_tables_are_generated_from_the_schema():
    text = DOC.read_text(encoding="utf-8")
    assert render_doc(text) == text, "run: python -m failpattern.cohort docs/cohort-format.md"
    for c in COLUMNS:
        assert f"| `{c.name}` |" in text
    for rule in RULES:
        assert f"| `{rule}` |" in text


def test_render_doc_replaces_stale_blocks():
    text = DOC.read_text(encoding="utf-8")
    stale = text.replace(markdown_table(), "| column |\n| stale |")
    assert stale != text and render_doc(stale) == text
    with pytest.raises(ValueError, match="marker"):
        render_doc("no markers here")


def test_names_are_unique_snake_case_and_include_the_fixed_ones():
    names = [c.name for c in COLUMNS]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)
    assert set(FIXED) <= set(names)
    assert column("failure_pattern").allowed == ("OF", "DF", "ODF", "death")
    for flag in ("brain_mets", "prior_brain_rt", "salvage_rt", "cbpd", "any_rt", "pfs1_event", "os_event"):
        assert column(flag).kind == "binary"


def test_required_columns_are_the_core_endpoints():
    required = {c.name for c in COLUMNS if c.required}
    assert required == {"patient_id", "pfs1_months", "pfs1_event", "failure_pattern", "os_months", "os_event"}


def test_analyses_refer_to_known_columns_and_every_variable_is_used():
    names = {c.name for c in COLUMNS}
    for a in ANALYSES:
        assert set(a.needs) <= names and set(a.uses) <= names, a.key
        assert a.population in ("all", "progressed", "brain_mets", "brain_progression")
    for c in COLUMNS:
        if c.parent:
            assert column(c.parent).kind == "binary"
        if c.kind not in ("date", "id") and c.name not in ("fail_original_site", "fail_new_site"):
            assert used_by(c.name), f"{c.name} is used by no analysis"
    assert analysis("pfs2_by_salvage_rt").population == "progressed"
    with pytest.raises(KeyError, match="pfs1_km"):
        analysis("nope")


def test_paper_variables_are_covered():
    # Table 1 / Table 3 variables, Table 2 sites, brain burden, salvage techniques (Ni et al. 2019)
    names = {c.name for c in COLUMNS}
    for n in ("age_years", "sex", "histology", "ecog", "primary_tumor_size_cm", "t_stage", "n_stage",
              "n_metastatic_organs", "n_metastatic_lesions", "lung_mets", "liver_mets", "adrenal_mets",
              "bone_mets", "brain_mets_burden", "prior_lines", "prior_brain_srs", "prior_wbrt",
              "prior_thoracic_rt", "prior_bone_rt", "prior_adrenal_rt", "best_response",
              "initial_failure_location", "fail_lung", "fail_liver", "fail_brain", "fail_bone",
              "fail_adrenal", "fail_regional_ln", "fail_distant_ln", "fail_other", "brain_progression_type",
              "salvage_rt_eligible", "salvage_rt_eligible_technique", "salvage_rt_technique",
              "next_systemic_therapy"):
        assert n in names, n
    assert column("salvage_rt_technique").allowed == ("WBRT", "SRS", "SBRT")
    assert column("best_response").allowed == ("CR", "PR", "SD", "PD")
