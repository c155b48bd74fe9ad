"""Plausibility warnings at load, --strict, and messages that help (collapsed dates and 1/2 flags,
"did you mean" for clinical names, install hints, what an analysis lacks).

Each warning is one problem per rule and column naming the count and an example row (line, patient,
value); the canonical cohort raises none; ``strict=True`` / ``--strict`` makes them errors (exit 2).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from failpattern._resources import synthetic_path
from failpattern.cli import main
from failpattern.cohort import CohortError, load_cohort
from failpattern.cohort.problems import PLAUSIBILITY, RULES, WARNING_RULES
from failpattern.cohort.schema import SYNONYMS, TIMING_COLUMNS, render_doc

CANONICAL = synthetic_path("ni2019_exact.csv")
DATES = ["diagnosis_date", "crizotinib_start_date", "first_progression_date", "second_progression_date",
         "death_date", "last_followup_date"]


def _canonical(dates: bool = False) -> pd.DataFrame:
    """The canonical cohort without its exposure timings (these cases are not about them)."""
    df = pd.read_csv(CANONICAL, dtype=str, keep_default_na=False)
    df = df.drop(columns=[c.name for c in TIMING_COLUMNS if c.name in df])
    return df if dates else df.drop(columns=DATES)


def _write(tmp_path, df: pd.DataFrame, name: str = "cohort.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _unchanged(path, digest) -> None:
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def _days(df: pd.DataFrame) -> pd.DataFrame:
    """Durations typed in days into the month columns."""
    for c in ("pfs1_months", "pfs2_months", "os_months"):
        df[c] = [f"{round(float(v) * 30.4375)}" if v else "" for v in df[c]]
    return df


def _only(problems, rule):
    found = [p for p in problems if p.rule == rule]
    assert found, f"no {rule} among {[p.rule for p in problems]}"
    return found


# ----------------------------------------------------------------------------- the warnings
def test_canonical_cohort_raises_no_warning():
    assert load_cohort(CANONICAL).warnings == ()
    assert load_cohort(CANONICAL, strict=True).warnings == ()
    assert load_cohort(synthetic_path("ni2019_random_seed1.csv"), strict=True).n_patients > 0


def test_days_typed_as_months(tmp_path):
    path, digest = _write(tmp_path, _days(_canonical()))
    cohort = load_cohort(path)
    warnings = _only(cohort.warnings, "implausible_duration")
    assert {p.column for p in warnings} == {"pfs1_months", "pfs2_months", "os_months"}  # one per column
    os_ = next(p for p in warnings if p.column == "os_months")
    assert os_.severity == "warning" and os_.line is not None and os_.patient_id
    for part in ("os_months: median", "(above 120 months)", "above 240", f"line {os_.line}",
                 f"patient {os_.patient_id}", "look like days", "must be in months"):
        assert part in os_.message
    assert os_.value.replace(",", "") in os_.message.replace(",", "")
    _unchanged(path, digest)


def test_one_duration_over_20_years(tmp_path):
    df = _canonical()
    df.loc[4, "os_months"] = "1680"  # OS of 140 years
    path, _ = _write(tmp_path, df)
    (p,) = load_cohort(path).warnings
    assert (p.rule, p.column, p.line, p.patient_id, p.value) == ("implausible_duration", "os_months", 6,
                                                                 df.loc[4, "patient_id"], "1,680")
    assert "1 value(s) above 240" in p.message and "(above 120 months)" not in p.message


def test_derived_durations_are_checked(tmp_path):
    df = _canonical(dates=True).drop(columns=["pfs1_months", "pfs2_months", "os_months"])
    df.loc[0, "diagnosis_date"] = "1874" + df.loc[0, "diagnosis_date"][4:]  # a year typo
    path, _ = _write(tmp_path, df)
    (p,) = [w for w in load_cohort(path).warnings if w.rule == "implausible_duration"]
    assert p.column == "os_months" and p.line == 2 and "computed from the dates" in p.message


def test_ages_outside_15_to_100(tmp_path):
    df = _canonical()
    df.loc[2, "age_years"] = "105"
    df.loc[7, "age_years"] = "9"
    path, _ = _write(tmp_path, df)
    (p,) = load_cohort(path).warnings
    assert (p.rule, p.column, p.line, p.value) == ("implausible_age", "age_years", 4, "105")
    assert "2 value(s) outside 15-100" in p.message and f"patient {p.patient_id}" in p.message
    df.loc[2, "age_years"] = "140"  # beyond the format's 0-120: an error already, one per cell
    path, _ = _write(tmp_path, df, "old.csv")
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    assert [p.rule for p in info.value.errors] == ["out_of_range"]


def test_events_coded_one_two_are_one_problem(tmp_path):
    df = _canonical()
    df["os_event"] = df["os_event"].map({"0": "1", "1": "2"})
    path, digest = _write(tmp_path, df)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    (p,) = info.value.problems  # not one not_binary per 2; the cross-column checks skip the column
    n_two = int((df["os_event"] == "2").sum())
    assert (p.rule, p.column, p.value, p.line) == ("not_binary", "os_event", "2",
                                                   int(df.index[df["os_event"] == "2"][0]) + 2)
    assert "coded 1/2" in p.message and f"{n_two} values are 2" in p.message
    assert "0 = censored, 1 = event" in p.message
    _unchanged(path, digest)


def test_a_single_two_stays_a_cell_problem(tmp_path):
    df = _canonical()
    df.loc[3, "os_event"] = "2"
    path, _ = _write(tmp_path, df)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    (p,) = info.value.problems
    assert (p.rule, p.line) == ("not_binary", 5) and "coded 1/2" not in p.message


def test_followup_longer_than_the_dates_span(tmp_path):
    df = _canonical(dates=True)[["patient_id", "pfs1_months", "pfs1_event", "failure_pattern", "os_months",
                                 "os_event", "diagnosis_date", "crizotinib_start_date"]].copy()
    df["last_followup_date"] = ""
    df.loc[df["os_event"] == "0", "last_followup_date"] = "2018-05-31"
    df.loc[10, "os_months"] = "400"  # days?
    path, _ = _write(tmp_path, df)
    warnings = load_cohort(path).warnings
    (p,) = [w for w in warnings if w.rule == "followup_beyond_dates"]
    assert (p.column, p.line, p.value) == ("os_months", 12, "400")
    assert "months the dates in the file span" in p.message and "1 value(s)" in p.message


def test_most_patients_censored_at_time_zero(tmp_path):
    df = _canonical()
    df["os_event"] = "0"
    df["os_months"] = "0"
    df.loc[:9, "os_months"] = "12"
    df.loc[:, ["pfs1_months", "pfs1_event", "failure_pattern"]] = ["0", "0", ""]
    after = ["pfs2_months", "pfs2_event", "fail_original_site", "fail_new_site", "initial_failure_location",
             "fail_lung", "fail_liver", "fail_brain", "fail_bone", "fail_adrenal", "fail_regional_ln",
             "fail_distant_ln", "fail_other", "brain_progression_type", "salvage_rt_eligible",
             "salvage_rt_eligible_technique", "salvage_rt", "salvage_rt_technique", "cbpd",
             "next_systemic_therapy"]
    df.loc[:, after] = ""
    df["any_rt"] = df["prior_rt"]
    path, _ = _write(tmp_path, df)
    warnings = _only(load_cohort(path).warnings, "censored_at_zero")
    by_column = {p.column: p for p in warnings}
    assert set(by_column) == {"pfs1_months", "os_months"}
    assert f"83 of {len(df)} patients are censored at time 0 on OS" in by_column["os_months"].message
    assert by_column["os_months"].line == 12


def test_few_censored_at_zero_is_fine(tmp_path):
    df = _canonical()
    censored = df.index[(df["pfs2_event"] == "0")][:3]
    df.loc[censored, "pfs2_months"] = "0"
    path, _ = _write(tmp_path, df)
    assert not [w for w in load_cohort(path).warnings if w.rule == "censored_at_zero"]


# ----------------------------------------------------------------------------- --strict
def test_strict_makes_warnings_errors(tmp_path):
    path, digest = _write(tmp_path, _days(_canonical()))
    with pytest.raises(CohortError) as info:
        load_cohort(path, strict=True)
    assert {p.rule for p in info.value.errors} == {"implausible_duration"}
    assert all(p.severity == "error" for p in info.value.problems)
    _unchanged(path, digest)


def test_cli_analyze_warns_and_strict_exits_2(tmp_path):
    path, digest = _write(tmp_path, _days(_canonical()))
    runner = CliRunner()
    ok = runner.invoke(main, ["analyze", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "implausible_duration (warning)" in ok.output and "look like days" in ok.output
    strict = runner.invoke(main, ["analyze", str(path), "--strict"])
    assert strict.exit_code == 2
    assert "implausible_duration" in strict.output and "Traceback" not in strict.output
    _unchanged(path, digest)


@pytest.mark.parametrize("command", ["reproduce", "check"])
def test_cli_reproduce_and_check_accept_strict(tmp_path, command):
    path, _ = _write(tmp_path, _days(_canonical()))
    args = [command, "--cohort", str(path), "--strict"] + (["--out", str(tmp_path / "out")]
                                                            if command == "reproduce" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "implausible_duration" in result.output
    assert not (tmp_path / "out").exists()


def test_rules_are_documented():
    for rule in PLAUSIBILITY:
        assert rule in RULES and rule in WARNING_RULES
    doc = (Path(__file__).parents[1] / "docs" / "cohort-format.md").read_text(encoding="utf-8")
    assert render_doc(doc) == doc
    assert "`implausible_duration` | warning (error with `--strict`)" in doc
    assert "## Plausibility warnings and `--strict`" in doc


# ----------------------------------------------------------------------------- messages
def test_day_first_dates_are_one_problem_per_column(tmp_path):
    df = _canonical(dates=True)
    for c in DATES:
        df[c] = [f"{v[8:]}/{v[5:7]}/{v[:4]}" if v else "" for v in df[c]]
    path, digest = _write(tmp_path, df)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    problems = info.value.problems
    assert sorted(p.column for p in problems) == sorted(DATES)  # one per column, not one per cell
    diag = next(p for p in problems if p.column == "diagnosis_date")
    v = df.loc[0, "diagnosis_date"]
    assert (diag.rule, diag.line, diag.value) == ("bad_date", 2, v)
    iso = f"{v[6:]}-{v[3:5]}-{v[:2]}"
    for part in (f"{len(df)} of {len(df)} dates are written DD/MM/YYYY", "also lines 3, 4, 5, 6, ...",
                 "expects YYYY-MM-DD", f"{v} is {iso}"):
        assert part in diag.message
    assert "ambiguous" not in str(info.value)
    _unchanged(path, digest)


def _one_bad_date(tmp_path, row: int, column: str, text: str):
    """The problem of ``column`` after one cell of the canonical cohort is replaced by ``text``."""
    df = _canonical(dates=True)
    df.loc[row, column] = text
    path, _ = _write(tmp_path, df)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    return next(p for p in info.value.problems if p.column == column)


def test_year_first_slashes_named_not_ambiguous(tmp_path):
    p = _one_bad_date(tmp_path, 0, "death_date", "2014/10/26")
    assert "YYYY/MM/DD" in p.message and "2014-10-26" in p.message and "ambiguous" not in p.message


def test_truly_ambiguous_dates_say_why(tmp_path):
    p = _one_bad_date(tmp_path, 1, "diagnosis_date", "03/04/2015")
    assert "DD/MM/YYYY or MM/DD/YYYY" in p.message and "cannot be told" in p.message


@pytest.mark.parametrize(("header", "meant"), [
    ("Date of death", "death_date"), ("Pattern of failure", "failure_pattern"), ("PFS (months)", "pfs1_months"),
    ("Age", "age_years"), ("Gender", "sex"), ("Sex/Gender", "sex"), ("ECOG PS", "ecog"),
    ("Histological type", "histology"), ("Overall survival (months)", "os_months"), ("Vital status", "os_event"),
])
def test_did_you_mean_clinical_names(tmp_path, header, meant):
    df = _canonical(dates=True).rename(columns={meant: header})
    path, _ = _write(tmp_path, df)
    try:
        problems = load_cohort(path).warnings
    except CohortError as exc:
        problems = exc.problems
    p = next(p for p in problems if p.rule == "unknown_column")
    assert f"did you mean {meant!r}?" in p.message


def test_every_column_has_synonyms():
    from failpattern.cohort.schema import COLUMNS

    assert all(SYNONYMS.get(c.name) for c in COLUMNS)


def test_install_hint_works_for_clone_and_package():
    assert "pip install pyarrow openpyxl" in RULES["missing_reader"]
    assert "pip install -e '.[io]'" in RULES["missing_reader"]


def test_missing_one_of_columns_reads_well():
    from failpattern.study.analyses._base import lacking

    text = lacking(["one of initial_failure_location, fail_lung, fail_liver, fail_brain, fail_bone"])
    assert text == ("the cohort has none of the columns initial_failure_location, fail_lung, fail_liver "
                    "(or 2 others): it needs at least one")
    assert "no column one of" not in lacking(["prior_rt", "one of a, b"])
