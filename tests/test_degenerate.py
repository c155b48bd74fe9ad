"""Degenerate but valid cohorts: every command runs, lists what it could not compute, writes its report.

The cohorts are the canonical synthetic cohort made degenerate (durations in months only, so
the loader has no dates to cross-check): every patient censored, no progression at all, one
patient, two patients, a group without events, no competing event. Each is a valid cohort
(``load_cohort`` accepts it), so no command may answer with exit code 2 (bad input) or 3
(internal error), nor print a traceback; an analysis that cannot run is listed as not run,
with a reason a clinician can read.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from failpattern import load_cohort
from failpattern._resources import synthetic_path
from failpattern.cli import main
from failpattern.cohort.schema import TIMING_COLUMNS
from failpattern.report import write_report
from failpattern.study.card import load_study
from failpattern.study.compare import compare
from failpattern.study.plan import run_plan

#: Numpy's "invalid value" / "divide by zero" on a degenerate cohort is a computation that should have been
#: skipped with a reason: an error here, not noise on the user's stderr.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

CARD = load_study("ni2019")
DATES = ["diagnosis_date", "crizotinib_start_date", "first_progression_date", "second_progression_date",
         "death_date", "last_followup_date"]
#: Columns that describe a first progression and what followed it (empty without one).
AFTER_PROGRESSION = ["failure_pattern", "pfs2_months", "pfs2_event", "fail_original_site", "fail_new_site",
                     "initial_failure_location", "fail_lung", "fail_liver", "fail_brain", "fail_bone",
                     "fail_adrenal", "fail_regional_ln", "fail_distant_ln", "fail_other",
                     "brain_progression_type", "salvage_rt_eligible", "salvage_rt_eligible_technique",
                     "salvage_rt", "salvage_rt_technique", "cbpd", "next_systemic_therapy"]


# ----------------------------------------------------------------------------- the cohorts
def _canonical(dates: bool = False) -> pd.DataFrame:
    """The canonical cohort without its exposure timings (the degenerate cases are not about them)."""
    df = pd.read_csv(synthetic_path("ni2019_exact.csv"), dtype=str, keep_default_na=False)
    df = df.drop(columns=[c.name for c in TIMING_COLUMNS if c.name in df])
    return df if dates else df.drop(columns=DATES)


def _censor(df: pd.DataFrame, rows) -> pd.DataFrame:
    """Patients ``rows`` alive and progression-free at their last follow-up."""
    df.loc[rows, AFTER_PROGRESSION] = ""
    df.loc[rows, ["pfs1_event", "os_event"]] = "0"
    return df


def all_censored() -> pd.DataFrame:
    df = _canonical()
    return _censor(df, df.index)


def no_progression() -> pd.DataFrame:
    """Deaths without progression are the only PFS1 events."""
    df = _canonical()
    died = df["os_event"] == "1"
    df.loc[:, AFTER_PROGRESSION] = ""
    df["pfs1_event"] = "0"
    df.loc[died, ["failure_pattern", "pfs1_event"]] = ["death", "1"]
    return df


def one_patient() -> pd.DataFrame:
    """The first canonical patient with a first failure before 12 months, dates included."""
    d = _canonical(dates=True)
    early = (d["failure_pattern"].isin(["OF", "DF", "ODF"]).to_numpy()
             & (pd.to_numeric(d["pfs1_months"], errors="coerce") < 12).to_numpy())
    return d.iloc[early.argmax():early.argmax() + 1].copy()


def one_censored_patient() -> pd.DataFrame:
    df = _canonical().iloc[:1].copy()
    return _censor(df, df.index)


def two_patients() -> pd.DataFrame:
    """Two canonical patients in different metastatic-organ groups (< 3, >= 3), the second censored."""
    df = _canonical()
    many = df["n_metastatic_organs"].astype(int) >= 3
    first = int(np.flatnonzero(df["pfs1_event"] == "1")[0])
    second = int(np.flatnonzero(many != many.iloc[first])[0])
    df = df.iloc[[first, second]].copy()
    return _censor(df, df.index[1:])


def group_without_events() -> pd.DataFrame:
    """No PFS1 event among non-adenocarcinomas nor among BBM patients with prior brain RT; no PFS2
    event after salvage RT."""
    df = _canonical()
    df = _censor(df, ((df["brain_mets"] == "1") & (df["prior_brain_rt"] == "1")) | (df["histology"] == "other"))
    salvage = df["failure_pattern"].isin(["OF", "DF", "ODF"]) & (df["salvage_rt"] == "1")
    df.loc[salvage, ["pfs2_event", "os_event"]] = "0"
    return df


def no_competing_event() -> pd.DataFrame:
    """Every first failure is OF; no death without progression."""
    df = _canonical()
    df = _censor(df, df["failure_pattern"] == "death")
    other = df["failure_pattern"].isin(["DF", "ODF"])
    df.loc[other, ["failure_pattern", "fail_original_site", "fail_new_site"]] = ["OF", "1", "0"]
    return df


COHORTS = {f.__name__: f for f in (all_censored, no_progression, one_patient, one_censored_patient, two_patients,
                                   group_without_events, no_competing_event)}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """Each cohort written as a CSV file: name -> (path, bytes)."""
    folder = tmp_path_factory.mktemp("cohorts")
    out = {}
    for name, build in COHORTS.items():
        path = folder / f"{name}.csv"
        build().to_csv(path, index=False)
        out[name] = (path, path.read_bytes())
    return out


@pytest.fixture(scope="module")
def plans(files) -> dict:
    """name -> (PlanResult, comparison)."""
    out = {}
    for name, (path, _) in files.items():
        plan = run_plan(load_cohort(path), card=CARD)
        out[name] = (plan, compare(plan, CARD))
    return out


def _reasons(plan, analysis: str) -> str:
    sk = plan.skipped
    return " | ".join(sk.loc[sk["analysis"] == analysis, "reason"])


def _row(comparison, id_, part="value"):
    return comparison.set_index(["id", "part"]).loc[(id_, part)]


# ----------------------------------------------------------------------------- the library
def test_the_cohorts_are_what_they_say(plans):
    counts = {name: plan.cohort.events().set_index("endpoint")["events"] for name, (plan, _) in plans.items()}
    assert counts["all_censored"].sum() == 0
    assert plans["no_progression"][0].get("progression1.n") == 0
    assert plans["no_progression"][0].get("pattern.death.n") > 0
    assert plans["one_patient"][0].cohort.n_patients == 1 and plans["two_patients"][0].cohort.n_patients == 2
    assert plans["no_competing_event"][0].get("pattern.death.n") == 0
    assert plans["no_competing_event"][0].get("pattern.df.n") == plans["no_competing_event"][0].get(
        "pattern.odf.n") == 0


def test_all_censored(plans):
    plan, comparison = plans["all_censored"]
    assert "no PFS1 events" in _reasons(plan, "pfs1.cox.multi")
    assert "no original-site failure (OF)" in _reasons(plan, "t3.multi")
    assert "no first failure" in _reasons(plan, "pattern.cif")
    assert "no patient had a first progression" in _reasons(plan, "pfs2.all")
    assert "no PFS1 events" in _reasons(plan, "pfs1.by_prior_rt")  # the log-rank test
    assert "no patients in its denominator" in _reasons(plan, "t2.brain")
    # a median not reached although follow-up runs far beyond the published 11.5 months: a disagreement
    assert np.isnan(plan.get("pfs1.median.all"))
    row = _row(comparison, "pfs1.median.all")
    assert row["verdict"] == "differs" and row["note"].startswith("median not reached")
    # a model that cannot be fitted is not a disagreement
    for id_ in ("t3.uni.age.shr", "pfs1.multi.histology.p", "pfs2.median.all"):
        row = _row(comparison, id_)
        assert row["verdict"] == "not reproducible from these data" and "not computed" in row["note"], id_


def test_no_progression(plans):
    plan, comparison = plans["no_progression"]
    assert "no patient had a first progression" in _reasons(plan, "pattern.rate")
    assert "no patient has a first progression" in _reasons(plan, "pfs1.by_pattern")
    assert "no patient with a first progression" in _reasons(plan, "response.by_pattern")
    assert plan.get("cif.of.12m") == 0 and plan.get("cif.any.12m") == 0  # deaths only: no pattern
    assert "pattern.cif" not in set(plan.skipped["analysis"])


def test_one_and_two_patients(plans):
    plan, comparison = plans["one_patient"]
    assert "no variation in histology" in _reasons(plan, "pfs1.cox.uni.histology")
    rt = int(one_patient()["any_rt"].iloc[0])
    assert f"every patient has any_rt = {rt}" in _reasons(plan, "os.by_any_rt")
    # the patient's PFS1 ends (a first failure) before 12 months: the incidence at 12 months is not
    # estimable (NA from cmprsk's timepoints), and the note says why
    pfs1 = float(one_patient()["pfs1_months"].iloc[0])
    assert one_patient()["failure_pattern"].iloc[0] in ("OF", "DF", "ODF") and pfs1 < 12
    assert np.isnan(plan.get("cif.of.12m"))
    note = plan.values.set_index("id").loc["cif.of.12m", "note"]
    assert note.startswith(f"not estimable: follow-up ends at {pfs1:.2f} months, before 12")
    plan, comparison = plans["one_censored_patient"]
    assert "no patient had a first progression" in _reasons(plan, "pfs2.all")
    assert "no first failure" in _reasons(plan, "pattern.cif")
    plan, comparison = plans["two_patients"]
    assert "Cox model not estimable: no PFS1 event in the group" in _reasons(plan, "pfs1.cox.uni.met_organs")


def test_group_without_events(plans):
    plan, comparison = plans["group_without_events"]
    reason = _reasons(plan, "pfs1.cox.uni.histology")
    assert reason.startswith("Cox model not estimable: no PFS1 event in the group 'non_adeno'")
    assert "no original-site failure (OF) in the group 'non_adeno'" in _reasons(plan, "t3.multi")
    for id_ in ("pfs1.multi.histology.p", "pfs1.multi.response.p", "t3.uni.histology.shr", "t3.multi.histology.shr"):
        assert _row(comparison, id_)["verdict"] == "not reproducible from these data", id_
    # the groups with events are still compared, the group without has its median not reached
    assert np.isfinite(plan.get("pfs1.median.bbm_no_prior_brain_rt"))
    assert np.isnan(plan.get("pfs1.median.bbm_prior_brain_rt"))
    assert np.isnan(plan.get("pfs2.median.salvage_rt")) and np.isfinite(plan.get("pfs2.salvage_rt.p"))


def test_no_competing_event(plans):
    plan, comparison = plans["no_competing_event"]
    assert "every patient with a first progression has pattern OF" in _reasons(plan, "pfs1.by_pattern")
    assert "has pattern OF" in _reasons(plan, "response.by_pattern")
    assert plan.get("cif.df.12m") == 0 and plan.get("cif.odf.24m") == 0
    assert np.isfinite(plan.get("t3.uni.age.shr")) and np.isfinite(plan.get("t3.multi.histology.shr"))


@pytest.mark.parametrize("name", list(COHORTS))
def test_nothing_judged_differing_is_uncomputed(plans, name):
    """``differs`` only for numbers computed (or a median known to lie beyond the published one)."""
    plan, comparison = plans[name]
    outside = comparison[comparison["verdict"] == "differs"]
    uncomputed = outside[~np.isfinite(outside["reproduced"].to_numpy(float))]
    assert (uncomputed["method"] == "km_median").all() and (uncomputed["part"] == "value").all()
    assert uncomputed["note"].str.startswith("median not reached: survival stays above 50% up to").all()


# ----------------------------------------------------------------------------- every command
def _commands(path, out):
    return {"analyze": ["analyze", path], "analyze_out": ["analyze", path, "--study", "ni2019", "--out", out],
            "reproduce": ["reproduce", "--cohort", path, "--out", out], "check": ["check", "--cohort", path]}


@pytest.fixture
def no_figures_for_analyze(monkeypatch, request):
    """``analyze --out`` writes its report without drawing (``reproduce`` draws every figure of the same
    cohort): drawing is most of the time of a run."""
    if request.node.callspec.params["command"] == "analyze_out":
        monkeypatch.setattr("failpattern.report.figures.save_paper_figures", lambda *a, **k: [])


@pytest.mark.parametrize("command", ["analyze", "analyze_out", "reproduce", "check"])
@pytest.mark.parametrize("name", list(COHORTS))
def test_every_command(files, plans, name, command, tmp_path, no_figures_for_analyze):
    path, before = files[name]
    out = tmp_path / "report"
    result = CliRunner().invoke(main, [str(a) for a in _commands(path, out)[command]])
    text = result.output
    assert result.exit_code in (0, 1), text[-3000:]
    assert "Traceback" not in text and "internal error" not in text
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert path.read_bytes() == before  # the input file is only read
    _, comparison = plans[name]
    disagree = bool((comparison["verdict"] == "differs").any())
    if command != "analyze":  # judged against the paper: 1 exactly when a number disagrees
        assert result.exit_code == int(disagree), text[-2000:]
    if command in ("analyze", "analyze_out"):
        assert "== Analyses not run ==" in text or plans[name][0].skipped.empty
    if command in ("analyze_out", "reproduce"):
        assert {"report.html", "report.md", "results.json"} <= {p.name for p in out.iterdir()}
        data = json.loads((out / "results.json").read_text(encoding="utf-8"))
        skipped = plans[name][0].skipped
        assert len(data["skipped"]) == len(skipped)
        md = (out / "report.md").read_text(encoding="utf-8")
        for reason in skipped["reason"]:
            assert reason.split(":")[0] in md
    if command == "reproduce":
        _figures_drawn_or_not_with_a_reason(name, data)


def _figures_drawn_or_not_with_a_reason(name: str, data: dict) -> None:
    figures = {f["name"]: f for f in data["figures"]}
    from failpattern.report.figures import FIGURE_NAMES

    assert list(figures) == list(FIGURE_NAMES)
    for f in figures.values():
        assert bool(f["files"]) != bool(f["reason"]), f  # drawn, or not drawn with a reason
    if name == "no_progression":
        assert "no first progression (OF, DF or ODF)" in figures["fig2"]["reason"]
        assert not figures["fig2"]["files"] and figures["km_pfs1"]["files"]
    if name == "all_censored":
        assert "no patient had a first progression" in figures["km_pfs2"]["reason"]
        assert figures["fig1a"]["files"] and figures["km_os"]["files"]  # curves without events are drawn
        assert "Fine-Gray" in figures["table3_multivariable"]["reason"]
    if name == "two_patients":
        assert "Cox" not in figures["fig1a"]["reason"]  # a panel's reason is its own analysis's


def test_check_in_a_process_prints_no_traceback(files):
    """The installed entry point, stderr and exit status as a shell sees them (one cohort, one command)."""
    path, before = files["all_censored"]
    proc = subprocess.run([sys.executable, "-m", "failpattern", "check", "--cohort", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]  # numbers differ (no progression at all), not a crash
    assert "Traceback" not in proc.stderr + proc.stdout and proc.stderr == ""
    assert "check FAILED" in proc.stdout and "not reproducible from these data" in proc.stdout
    assert path.read_bytes() == before
