"""The report package: atomic output folder, --force, self-contained HTML, JSON, number formats."""

from __future__ import annotations

import json
import math
import re

import pytest

from failpattern._resources import synthetic_path
from failpattern.cohort import load_cohort
from failpattern.report import OutputExistsError, write_report
from failpattern.report import figures as report_figures
from failpattern.report import markdown as report_markdown
from failpattern.report.tables import comparison_display, fmt_value, section_key
from failpattern.output import MANIFEST_NAME
from failpattern.report.write import output_folder
from failpattern.study.card import load_study
from failpattern.errors import InputError
from failpattern.study.compare import compare
from failpattern.study.plan import run_plan


@pytest.fixture(scope="module")
def card():
    return load_study("ni2019")


@pytest.fixture(scope="module")
def plan(card):
    return run_plan(load_cohort(synthetic_path("ni2019_exact.csv")), card=card)


@pytest.fixture(scope="module")
def comparison(plan, card):
    return compare(plan, card)


@pytest.fixture
def no_figures(monkeypatch):
    """Skip drawing (seconds) where a test is about files and folders only."""
    monkeypatch.setattr(report_figures, "save_paper_figures", lambda *a, **k: [])


def test_output_folder_moves_into_place_only_when_complete(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as tmp:
        (tmp / "a.txt").write_text("x")
        assert not target.exists() and tmp.parent.parent == tmp_path  # built beside the target
    assert (target / "a.txt").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left beside it


def test_output_folder_error_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), output_folder(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def _old_report(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as tmp:
        (tmp / "old.txt").write_text("old")
    return target


def test_existing_folder_refused_without_force_replaced_with_force(tmp_path):
    target = _old_report(tmp_path)
    with pytest.raises(OutputExistsError, match="--force"), output_folder(target):
        pass
    assert (target / "old.txt").exists()
    with output_folder(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST_NAME, "new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_force_error_keeps_the_old_report(tmp_path):
    target = _old_report(tmp_path)
    with pytest.raises(RuntimeError), output_folder(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST_NAME, "old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_write_report_exception_leaves_no_partial_folder(tmp_path, plan, comparison, card, no_figures,
                                                        monkeypatch):
    def broken(content):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_markdown, "render_markdown", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(plan, comparison, tmp_path / "out", card=card)
    assert list(tmp_path.iterdir()) == []


def test_write_report_files_and_json(tmp_path, plan, comparison, card, no_figures):
    out = write_report(plan, comparison, tmp_path / "out", card=card, cohort_label="canonical", seed=None)
    assert sorted(p.name for p in out.iterdir()) == ["failpattern-manifest.json", "figures", "report.html", "report.md",
                                                     "results.json"]
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(data) >= {"metadata", "summary", "comparison", "values", "skipped", "exclusions", "figures"}
    assert data["metadata"]["cohort"] == "canonical" and data["metadata"]["failpattern_version"]
    assert data["metadata"]["study_card"].startswith("ni2019")
    assert len(data["comparison"]) == len(comparison) == sum(data["summary"].values())
    by_id = {(r["id"], r["part"]): r for r in data["comparison"]}
    changed = [(r.id, r.part) for r in comparison.itertuples() if r.changed_conclusion]
    assert changed and [(r["id"], r["part"]) for r in data["changed_conclusions"]] == changed
    assert sum(k["total"] for k in data["summary_by_kind"]) == len(comparison)
    for r in comparison.itertuples():
        j = by_id[(r.id, r.part)]
        assert j["verdict"] == r.verdict
        assert (j["reproduced"] is None) == (not math.isfinite(r.reproduced))
        if j["reproduced"] is not None:
            assert j["reproduced"] == pytest.approx(r.reproduced, rel=1e-12)
    with pytest.raises(OutputExistsError):
        write_report(plan, comparison, out, card=card)
    write_report(plan, None, out, card=card, force=True)  # --force: replaced, now without comparison
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["comparison"] is None and data["summary"] is None and data["values"]
    assert "verdict" not in (out / "report.md").read_text(encoding="utf-8")


def test_exclusions_section(tmp_path, card, no_figures):
    import pandas as pd

    df = pd.read_csv(synthetic_path("ni2019_exact.csv"))
    df.loc[[0, 1], "best_response"] = None
    plan = run_plan(load_cohort(df), card=card)
    out = write_report(plan, None, tmp_path / "out", card=card)
    md = (out / "report.md").read_text(encoding="utf-8")
    section = md[md.index("## Exclusions"):]
    assert "SIM001" in section and "SIM002" in section and "best_response is empty" in section
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="exclusions"' in html and "SIM002" in html
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {e["patient_id"] for e in data["exclusions"]} == {"SIM001", "SIM002"}


def test_exclusion_rows_listed_are_capped_all_counted_and_in_results_json(tmp_path, card, no_figures,
                                                                          monkeypatch):
    """A large cohort can have millions of (patient, analysis) exclusions: report.html and report.md
    list the first EXCLUSIONS_LISTED, count all, and results.json keeps every one."""
    import pandas as pd

    from failpattern.report import content

    monkeypatch.setattr(content, "EXCLUSIONS_LISTED", 1)
    df = pd.read_csv(synthetic_path("ni2019_exact.csv"))
    df.loc[[0, 1], "best_response"] = None
    out = write_report(run_plan(load_cohort(df), card=card), None, tmp_path / "out", card=card)
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {e["patient_id"] for e in data["exclusions"]} == {"SIM001", "SIM002"}
    n = len(data["exclusions"])  # 2 patients x the analyses that use best_response
    for name, heading in (("report.md", "## Exclusions"), ("report.html", 'id="exclusions"')):
        text = (out / name).read_text(encoding="utf-8")
        section = text[text.index(heading):]
        assert f"{n} exclusions (patient × analysis)" in section, name
        assert "SIM001" in section and "SIM002" not in section, name
        assert f"The first 1 are listed; the other {n - 1} are counted above, and every one is in results.json" \
            in section, name


def test_formats():
    assert fmt_value(52.0, "count", 0) == "52"
    assert fmt_value(11.23, "km_median", 1) == "11.23"
    assert fmt_value(0.0234, "logrank_p", 3) == "0.0234"  # one decimal more than printed
    assert fmt_value(0.0234, "logrank_p") == "0.0234"
    assert fmt_value(0.00012, "logrank_p", 3) == "1.2e-04"
    assert fmt_value(-0.05, "km_median", 1, sign=True) == "-0.05"
    assert fmt_value(float("nan"), "count", 0) == ""
    assert section_key("Abstract, Results") < section_key("Results, PFS1") < section_key("Discussion") \
        < section_key("Table 1") < section_key("Table 3")


def test_display_is_in_paper_order(comparison, card):
    shown = comparison_display(comparison, card)
    sections = list(dict.fromkeys(shown["section"]))
    assert sections[0].startswith("Abstract")
    assert sections.index("Table 1") < sections.index("Table 2") < sections.index("Table 3")
    assert len(shown) == len(comparison)
    p = shown.set_index(["id", "part"]).loc[("pfs1.median.all", "value")]
    assert p["published"] == "11.5" and re.fullmatch(r"\d+\.\d\d", p["reproduced"])
    assert re.fullmatch(r"\d+\.\d", p["as_printed"])


def test_figures_drawn_from_the_plan(plan, card):
    specs = report_figures.paper_figures(plan, card, names=["fig1a", "table3_multivariable"])
    assert [s.name for s in specs] == ["fig1a", "table3_multivariable"]
    fig1a = specs[0].figure
    gids = {a.get_gid() for ax in fig1a.axes for a in ax.get_children()}
    assert {"km-curve:Prior-RT", "km-censor:Non prior-RT", "p-value"} <= gids
    assert any(ax.get_label() == "risk-table" for ax in fig1a.axes)
    forest = specs[1].figure
    assert {"forest-est:published", "forest-est:reproduced"} <= {a.get_gid() for ax in forest.axes
                                                                 for a in ax.get_children()}


def test_write_report_takes_compare_output_as_is(tmp_path, plan, card, no_figures):
    """compare() puts a DataFrame in .attrs (which breaks pandas concat); the writer must cope."""
    raw = compare(plan, card, profile="near")
    out = write_report(plan, raw, tmp_path / "out", card=card)
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["metadata"]["profile"] == "near" and len(data["comparison"]) == len(raw)
    assert "near" in data["summary"]


# ----------------------------------------------------------------------------- paper-style tables, methods, modes
def _verdict(comparison, id_: str) -> str:
    """One verdict for all of a number's judged parts: matches only if every part matches."""
    parts = comparison[comparison["id"] == id_]["verdict"]
    return "matches as printed" if (parts == "matches as printed").all() else "differs"


def test_paper_tables_follow_the_cards_layout(comparison, card):
    from failpattern.report.paper_tables import paper_tables

    tables = {t.title: t for t in paper_tables(comparison, card)}
    assert list(tables) == ["Table 1", "Table 2", "Table 3"]
    t1 = tables["Table 1"]
    assert t1.columns == ("ALL patients", "Non-RT", "RT", "p")
    rows = dict(t1.rows)
    male_rt = rows["Sex: Male"][t1.columns.index("RT")]
    assert (male_rt.ours, male_rt.paper, male_rt.verdict) == ("29 (69.0)", "29 (69.0)", "matches as printed")
    assert set(male_rt.ids) == {"t1.sex.male.rt.n", "t1.sex.male.rt.pct"}
    age = rows["Age (years): Median / Range"][0]
    assert age.paper == "50 (21–75)" and age.verdict == _verdict(comparison, "t1.age.median.all")
    # the p-value no Mann-Whitney test prints with 51 vs 42 patients (docs/simulator.md)
    age_p = rows["Age (years)"][t1.columns.index("p")]
    assert age_p.paper == "0.958" and age_p.verdict == "differs"
    t3 = tables["Table 3"]
    histology = dict(t3.rows)["Histology (non-adenocarcinoma vs adenocarcinoma)"]
    assert histology[t3.columns.index("Univariate Analysis: p")].ours == "< 0.001"  # the bound holds
    # every cell of every table is a card number located there, and each such number is in one cell
    shown = [i for t in tables.values() for _, cells in t.rows for c in cells if c for i in c.ids]
    located = [i for i, loc in zip(card.numbers["id"], card.numbers["location"])
               if re.match(r"^Table \d+ row '.*', column '.*'$", loc)]
    assert sorted(shown) == sorted(located)


def test_methods_paragraph_says_what_ran(plan):
    from failpattern.report.methods import methods_paragraph

    text = methods_paragraph(plan, seed=7, cohort_label="my file")
    assert "my file (93 patients)" in text and "seed 7" in text
    assert "N-1 chi-square" in text and "Fisher's exact test for brain metastases" in text
    assert "Breslow" in text and "Fine-Gray" in text and "SciPy" in text
    assert "No patient was left out" in text
    assert "seed" not in methods_paragraph(plan)


def test_analysis_mode_is_titled_for_the_file(tmp_path, plan, comparison, card, no_figures):
    out = write_report(plan, comparison, tmp_path / "a", card=card, cohort_label="my_cohort.csv", mode="analysis")
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# my_cohort.csv: the analysis plan of Ni et al.")
    assert "beside the published values" in md and "Reproduction of" not in md
    assert "Values beside the published ones" in html and 'href="#only-differs"' in html
    assert "## Methods" in md and "## Tables" in md and "### Table 1" in md
    with pytest.raises(InputError, match="mode"):
        write_report(plan, comparison, tmp_path / "b", card=card, mode="paper")


def test_proportional_hazards_section(plan):
    from failpattern.report.content import PH_MODEL, _ph
    from failpattern.stats import proportional_hazards_test

    data = plan.model_data(PH_MODEL)
    assert list(data.columns[:2]) == ["time", "event"] and len(data) == 93
    assert list(data.columns[2:]) == list(plan.cox[PH_MODEL].covariates)
    shown = _ph(plan)
    ref = proportional_hazards_test(data, duration="time", event="event", covariates=list(data.columns[2:]),
                                    ties="breslow").to_frame()
    assert list(shown["ph"]["covariate"]) == list(ref["covariate"]) and shown["ph"]["covariate"].iloc[-1] == "GLOBAL"
    low = [c for c, p in zip(ref["covariate"], ref["p"]) if p < 0.05 and c != "GLOBAL"]
    assert all(c in shown["ph_note"] for c in low) and "cox.zph" in shown["ph_note"]
    assert "GLOBAL" not in shown["ph_note"] and "Global test p = " in shown["ph_note"]
