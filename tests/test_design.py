"""The design module: the paper's structure read once from the card, followed by plan and simulator."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from failpattern.cohort import load_cohort
from failpattern.errors import InputError
from failpattern.study import design_for, load_study, run_plan
from failpattern.study.design import (
    BINARIES,
    PATTERNS,
    PFS1_COX,
    T1_CONTINUOUS,
    T1_ROWS,
    T2_ROWS,
    T3_COVARIATES,
)

ROOT = Path(__file__).resolve().parents[1]
CARD = load_study("ni2019")
YAML = ROOT / "data" / "studies" / "ni2019.yaml"


def _edited_card(tmp_path, id_: str, new: str, *more):
    """A copy of the ni2019 card with the ``value`` of ``id_`` (and of each further (id, value)) replaced."""
    text = YAML.read_text(encoding="utf-8")
    for i, v in ((id_, new),) + tuple(more):
        pattern = re.compile(rf"(- id: {re.escape(i)}\n\s+value: )([^\n]+)")
        text, n = pattern.subn(lambda m: m.group(1) + v, text)
        assert n == 1, i
    path = tmp_path / "card.yaml"
    path.write_text(text, encoding="utf-8")
    return load_study(path)


def test_cutoffs_and_dates_are_the_cards():
    d = design_for(CARD)
    s = d.settings
    assert s.age_cutoff == CARD.get("protocol.t3.age_cutoff").value
    assert s.tumor_size_cutoff == CARD.get("protocol.t3.tumor_size_cutoff").value
    assert s.met_organs_cutoff == CARD.get("protocol.pfs1.met_organs_cutoff").value
    assert s.met_lesions_cutoff == CARD.get("protocol.t1.met_lesions_cutoff").value
    assert d.n == CARD.get("cohort.enrolled.n").value
    # enrolment "2014-01" .. "2018-03": first day of the first month to the last day of the last
    assert d.enrolment == (np.datetime64("2014-01-01"), np.datetime64("2018-03-31"))
    assert d.cutoff == np.datetime64(CARD.study["data_cutoff"])
    assert d.ranges["age"] == (CARD.get("t1.age.median.all").range_lower, CARD.get("t1.age.median.all").range_upper)
    assert design_for(CARD) is d  # cached per card


def test_structure_lists_name_rows_the_card_prints():
    """Every row of the structure tables has its numbers in the card, and the card has no row they miss."""
    ids = set(CARD.ids)
    for row in T1_ROWS:
        assert f"t1.{row}.p" in ids
        for level in BINARIES[row].levels:
            assert {f"t1.{row}.{level}.{c}.n" for c in ("all", "nonrt", "rt")} <= ids, (row, level)
    t1_rows = {i.split(".")[1] for i in ids if re.fullmatch(r"t1\.\w+\.\w+\.all\.n", i)}
    assert t1_rows == set(T1_ROWS)
    assert {i.split(".")[1] for i in ids if re.fullmatch(r"t1\.\w+\.median\.all", i)} == {c for c, _ in T1_CONTINUOUS}
    assert {i.split(".")[1] for i in ids if re.fullmatch(r"t2\.\w+\.all\.n", i)} == {r for r, _, _ in T2_ROWS}
    assert {i.split(".")[2] for i in ids if re.fullmatch(r"t3\.uni\.\w+\.shr", i)} == set(T3_COVARIATES)
    assert design_for(CARD).t3_covariates == T3_COVARIATES
    assert {i.split(".")[2] for i in ids if re.fullmatch(r"pfs1\.multi\.\w+\.p", i)} <= {w for _, w in PFS1_COX}
    assert {f"pattern.{p}.n" for p, _ in PATTERNS} <= ids
    for name in T3_COVARIATES + tuple(n for n, _ in PFS1_COX):
        assert name in BINARIES


def test_count_tables_read_the_card():
    d = design_for(CARD)
    assert d.pattern_counts() == tuple(CARD.get(f"pattern.{p}.n").value for p, _ in PATTERNS)
    sites = d.site_counts()
    assert "brain" not in sites and set(sites) == {r for r, c, _ in T2_ROWS if c.startswith("fail_")} - {"brain"}
    for row, per in sites.items():
        for (p, _), n in zip(PATTERNS, per):
            id_ = f"t2.{row}.{p}.n"
            assert n == CARD.get(id_).value, id_
    loc = d.location_counts()
    assert loc[0] == tuple(CARD.get(f"t2.{r}.of.n").value for r in ("primary_only", "metastasis_only",
                                                                      "primary_and_metastasis"))
    assert d.t1_by_group("sex") == (CARD.get("t1.sex.male.nonrt.n").value, CARD.get("t1.sex.male.rt.n").value)
    with pytest.raises(InputError, match="no number 't1.nope.yes.all.n'"):
        d.t1_count("nope", "yes", "all")


def test_a_card_with_another_cutoff_moves_the_plans_grouping(tmp_path):
    """The plan reads the age cut-off from the card: 60 instead of 50 regroups Table 3's age row."""
    card = _edited_card(tmp_path, "protocol.t3.age_cutoff", "60")
    cohort = load_cohort(ROOT / "data" / "synthetic" / "ni2019_random_seed1.csv")
    ages = cohort.data["age_years"].to_numpy(dtype=float)
    assert np.any((ages > 50) & (ages <= 60))  # the change matters for this cohort
    for c, cut in ((CARD, 50), (card, 60)):
        plan = run_plan(cohort, card=c)
        assert plan.settings.age_cutoff == cut
        data = plan.model_data("t3.uni.age")
        assert len(data) == len(ages)  # every patient has an age: all in the model
        # the model's one column is "age > cut-off" (the card's comparison level)
        assert np.array_equal(np.sort(data.iloc[:, -1].to_numpy()), np.sort((ages > cut).astype(float)))


def test_a_card_without_a_cutoff_is_a_clear_error(tmp_path):
    text = YAML.read_text(encoding="utf-8")
    start = text.index("      - id: protocol.t1.met_lesions_cutoff")
    end = text.index("      - id:", start + 10)
    path = tmp_path / "card.yaml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    card = load_study(path)
    with pytest.raises(InputError, match="protocol.t1.met_lesions_cutoff"):
        design_for(card)


def test_a_card_with_another_count_moves_the_design(tmp_path):
    """Table 2: one more OF lung failure (and its row total) in the card is one more in the design."""
    card = _edited_card(tmp_path, "t2.lung.of.n", "8", ("t2.lung.all.n", "18"))
    before, after = design_for(CARD).site_counts(), design_for(card).site_counts()
    assert after["lung"] == (before["lung"][0] + 1,) + before["lung"][1:]
    assert {k: v for k, v in after.items() if k != "lung"} == {k: v for k, v in before.items() if k != "lung"}


def test_no_published_number_is_typed_in_the_design_module():
    """The module's source holds no count or cut-off literal: only 0/1/2 codes and the NaN default."""
    src = (ROOT / "src" / "failpattern" / "study" / "design.py").read_text(encoding="utf-8")
    code = re.sub(r'"""[\s\S]*?"""', "", src)  # docstrings
    code = re.sub(r"#[^\n]*", "", code)  # comments
    code = re.sub(r'"[^"\n]*"', '""', code)  # string literals (ids, labels)
    numbers = {float(m) for m in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", code)}
    assert numbers <= {0.0, 1.0, 2.0}, sorted(numbers)


def test_design_is_shared_by_plan_and_analyses():
    """One definition: the analyses and the plan use the design module's objects, not copies."""
    from failpattern.study import plan
    from failpattern.study.analyses import _base, competing, survival, tables

    assert _base.BINARIES is BINARIES and plan.BINARIES is BINARIES
    assert competing.T3_COVARIATES is T3_COVARIATES and survival.PFS1_COX is PFS1_COX
    assert tables.T1_ROWS is T1_ROWS and tables.T2_ROWS is T2_ROWS


def test_the_random_simulator_follows_the_cards_calendar_ranges_and_sites(tmp_path):
    """The random model reads the enrolment window, the cut-off, the printed age range and Table 2's
    site counts from the card: an edited copy moves the cohorts it draws."""
    from failpattern.simulate import simulate
    from failpattern.simulate.generate import DF_SITES, OTHER_SITES, calendar_for, site_weights

    text = YAML.read_text(encoding="utf-8")
    text = text.replace('enrolment: {from: "2014-01", to: "2018-03"}', 'enrolment: {from: "2015-01", to: "2018-03"}')
    text = text.replace('data_cutoff: "2018-05-31"', 'data_cutoff: "2018-12-31"')
    path = tmp_path / "calendar.yaml"
    path.write_text(text, encoding="utf-8")
    moved = load_study(path)
    cal = calendar_for(design_for(moved))
    assert cal.origin == np.datetime64("2015-01-01") and cal.cutoff == (np.datetime64("2018-12-31") - cal.origin).astype(int)
    frame = simulate(moved, seed=4)
    alive = frame["last_followup_date"].notna()
    assert (frame.loc[alive, "last_followup_date"] == "2018-12-31").all()
    assert (frame["crizotinib_start_date"] >= "2015-01-01").all() and (frame["crizotinib_start_date"] <= "2018-03-31").all()
    # Table 2: the DF column's sites are the DF failures' weights, the rows' totals the fallback's
    card = _edited_card(tmp_path, "t2.bone.df.n", "4", ("t2.bone.all.n", "7"))
    totals, df = site_weights(design_for(card))
    base_totals, base_df = site_weights(design_for(CARD))
    assert df[DF_SITES.index("bone")] == base_df[DF_SITES.index("bone")] + 1
    assert totals[OTHER_SITES.index("bone")] == base_totals[OTHER_SITES.index("bone")] + 1


def test_no_published_number_is_typed_in_the_random_simulator():
    """generate.py holds no count or date of the paper: its numeric literals are codes, model
    constants (days per month, AJCC size limits, numerical guards) and the salvage-delay assumption."""
    src = (ROOT / "src" / "failpattern" / "simulate" / "generate.py").read_text(encoding="utf-8")
    code = re.sub(r'"""[\s\S]*?"""', "", src)
    code = re.sub(r"#[^\n]*", "", code)
    assert not re.search(r"\b20[12]\d-\d\d", code), "a date typed in the simulator"
    for literal in ("(26, 12, 14)", "[17, 3, 6, 1, 6, 4, 3]", "[2, 3, 1]", "75.0", "8.0"):
        assert literal not in code, literal
