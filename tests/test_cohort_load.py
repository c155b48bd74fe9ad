"""load_cohort on valid files: canonical dtypes, derived durations, cross-checks, rows_for, immutability."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest

from failpattern.cohort import DAYS_PER_MONTH, Cohort, CohortError, load_cohort
from failpattern.errors import InputError

from test_cohort_malformed import HERE, make_binary_cases

MONTHS = HERE / "valid_months.csv"
DATES = HERE / "valid_dates.csv"
BOTH = HERE / "valid_both_semicolon.csv"


def _frame(**changes) -> pd.DataFrame:
    base = pd.DataFrame({
        "patient_id": ["A", "B", "C", "D"],
        "pfs1_months": [10.0, 5.0, 20.0, 3.0],
        "pfs1_event": [1, 1, 0, 1],
        "failure_pattern": ["OF", "DF", None, "death"],
        "pfs2_months": [4.0, 2.0, None, None],
        "pfs2_event": [1, 0, None, None],
        "os_months": [30.0, 12.0, 25.0, 6.0],
        "os_event": [1, 0, 0, 1],
    })
    for k, v in changes.items():
        base[k] = v
    return base


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_months_form_loads_with_canonical_dtypes():
    c = load_cohort(MONTHS)
    assert isinstance(c, Cohort) and c.n_patients == 8 and c.derived == () and not c.warnings
    d = c.data
    assert str(d["patient_id"].dtype) == "string"
    assert str(d["pfs1_months"].dtype) == "Float64" and str(d["pfs1_event"].dtype) == "Int64"
    assert str(d["ecog"].dtype) == "Int64" and str(d["age_years"].dtype) == "Float64"
    assert list(d["failure_pattern"].cat.categories) == ["OF", "DF", "ODF", "death"]
    assert d["failure_pattern"].isna().sum() == 1  # the censored patient
    assert c.lines == tuple(range(2, 10))
    assert c.pattern_counts().to_dict() == {"OF": 3, "DF": 2, "ODF": 1, "death": 1, "censored": 1}
    events = c.events().set_index("endpoint")
    assert events.loc["PFS1", "events"] == 7 and events.loc["PFS2", "patients"] == 6
    assert c.analyses()["supported"].all()


def test_dates_form_derives_durations():
    c = load_cohort(DATES)
    d = c.data.set_index("patient_id")
    assert set(c.derived) >= {"pfs1_months", "pfs1_event", "os_months", "os_event", "failure_pattern"}
    # D01: 2014-04-01 -> 2015-04-01 is 365 days; PFS2 2015-04-01 -> 2015-10-01 is 183 days
    assert d.loc["D01", "pfs1_months"] == pytest.approx(365 / 30.4375)
    assert d.loc["D01", "pfs2_months"] == pytest.approx(183 / 30.4375)
    assert d.loc["D01", "os_event"] == 0 and d.loc["D03", "os_event"] == 1
    # D02 censored at last follow-up, no PFS2; D04 died without progression
    assert d.loc["D02", "pfs1_event"] == 0 and pd.isna(d.loc["D02", "pfs2_months"])
    assert d.loc["D04", "failure_pattern"] == "death"
    assert d.loc["D03", "pfs2_event"] == 1  # death ends PFS2
    assert list(d["failure_pattern"].astype(object).fillna("")) == ["OF", "", "DF", "death", "ODF"]
    assert DAYS_PER_MONTH == 30.4375 == c.days_per_month


def test_days_per_month_is_used_and_checked():
    c = load_cohort(DATES, days_per_month=30.0)
    assert c.data["pfs1_months"].iloc[0] == pytest.approx(365 / 30.0)
    for bad in (0, -1, 365.25, float("nan"), "30", True):
        with pytest.raises(InputError, match="days_per_month"):
            load_cohort(DATES, days_per_month=bad)


def test_both_forms_keep_typed_values_within_tolerance():
    c = load_cohort(BOTH)
    assert c.data["pfs1_months"].tolist() == [12.0, 40.0, 7.0, 6.0]
    assert "pfs1_months" not in c.derived and "pfs2_months" in c.derived


def test_tolerance_boundary():
    dates = pd.read_csv(DATES, dtype=str, keep_default_na=False)
    exact = 365 / 30.4375  # D01
    dates["pfs1_months"] = ["", "", "", "", ""]
    dates.loc[0, "pfs1_months"] = f"{exact + 0.49:.3f}"
    for i in range(1, 5):
        dates.loc[i, "pfs1_months"] = "NA"
    # NA typed months stay missing: they are required -> reported, not silently filled from dates
    with pytest.raises(CohortError) as info:
        load_cohort(dates)
    assert {p.rule for p in info.value.problems} == {"missing_time"}
    dates = dates.iloc[:1]
    assert load_cohort(dates).data["pfs1_months"].iloc[0] == pytest.approx(exact + 0.49, abs=1e-3)
    dates.loc[0, "pfs1_months"] = f"{exact + 0.6:.3f}"
    with pytest.raises(CohortError, match="duration_date_mismatch"):
        load_cohort(dates)


@pytest.mark.parametrize("name", ["valid_months.csv", "valid_dates.csv", "many_problems.csv", "latin1.csv"])
def test_csv_input_never_modified(name, tmp_path):
    path = tmp_path / name
    shutil.copy(HERE / name, path)
    before, mtime = _sha(path), path.stat().st_mtime_ns
    try:
        load_cohort(path)
    except CohortError:
        pass
    assert _sha(path) == before and path.stat().st_mtime_ns == mtime


def test_binary_input_never_modified(tmp_path):
    _, valid = make_binary_cases.write_cases(tmp_path)
    for name in valid + ["unknown_pattern.xlsx", "negative_time.parquet"]:
        before = _sha(tmp_path / name)
        try:
            load_cohort(tmp_path / name)
        except CohortError:
            pass
        assert _sha(tmp_path / name) == before, name


def test_dataframe_input_not_mutated_and_cohort_frozen():
    frame = _frame()
    copy = frame.copy()
    c = load_cohort(frame)
    pd.testing.assert_frame_equal(frame, copy)
    assert c.source == "<DataFrame>" and c.lines == (2, 3, 4, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.source = "x"
    d = c.data
    d.loc[0, "pfs1_months"] = 999.0
    assert c.data["pfs1_months"].iloc[0] == 10.0


def test_headers_and_categories_are_normalised():
    frame = _frame(failure_pattern=["of", " Df ", None, "DEATH"]).rename(
        columns={"pfs1_months": "PFS1 Months", "os_event": " OS_Event "})
    frame["Sex"] = ["Male", "female", "FEMALE", "male"]
    d = load_cohort(frame).data
    assert d["failure_pattern"].astype(object).tolist()[:2] == ["OF", "DF"]
    assert d["sex"].astype(object).tolist() == ["male", "female", "female", "male"]
    assert "pfs1_months" in d and "os_event" in d


def test_error_is_an_input_error_with_problems():
    with pytest.raises(ValueError) as info:
        load_cohort(_frame(pfs1_event=[1, 1, 0, 7]))
    err = info.value
    assert isinstance(err, CohortError) and isinstance(err, InputError)
    (p,) = err.problems
    assert (p.rule, p.line, p.patient_id, p.column, p.value) == ("not_binary", 5, "D", "pfs1_event", "7")
    assert "1 error(s)" in str(err).splitlines()[0]


def test_unknown_columns_are_kept_with_a_warning():
    frame = _frame()
    frame["site"] = ["x", "y", None, "z"]
    c = load_cohort(frame)
    assert c.extra_columns == ("site",) and c.data["site"].tolist()[:2] == ["x", "y"]
    assert [w.rule for w in c.warnings] == ["unknown_column"]


def test_rows_for_lists_exclusions_and_population():
    frame = _frame(salvage_rt=[1, None, None, None], cbpd=[1, 0, None, None])
    c = load_cohort(frame)
    inc, exc = c.rows_for("pfs2_by_salvage_rt")
    # population = progressed (A, B); C (censored) and D (death) are not excluded, just not in it
    assert inc["patient_id"].tolist() == ["A"]
    assert [(e.patient_id, e.line) for e in exc] == [("B", 3)] and "salvage_rt is empty" in exc[0].reason
    inc, exc = c.rows_for("pfs2_by_cbpd")
    assert inc["patient_id"].tolist() == ["A", "B"] and exc == ()
    inc, exc = c.rows_for("pfs1_km")
    assert len(inc) == 4 and exc == ()
    assert c.excluded["pfs2_by_salvage_rt"] == c.rows_for("pfs2_by_salvage_rt")[1]


def test_rows_for_missing_pfs2_of_a_progressed_patient_is_an_exclusion():
    c = load_cohort(_frame(pfs2_months=[4.0, None, None, None], pfs2_event=[1, None, None, None]))
    inc, exc = c.rows_for("pfs2_km")
    assert inc["patient_id"].tolist() == ["A"]
    assert exc[0].patient_id == "B" and "pfs2_months is empty" in exc[0].reason


def test_rows_for_child_columns_and_population_flags():
    frame = _frame(brain_mets=[1, 0, None, 1], brain_mets_burden=["oligo", None, None, None],
                   prior_brain_rt=[1, 0, 0, 0])
    c = load_cohort(frame)
    inc, exc = c.rows_for("pfs1_by_prior_brain_rt")
    assert inc["patient_id"].tolist() == ["A", "D"]
    assert [e.patient_id for e in exc] == ["C"] and "brain_mets is empty" in exc[0].reason
    # burden empty is "missing" only where brain_mets = 1 (D) or unknown (C), not where it is 0 (B)
    inc, exc = c.rows_for("pfs1_km", columns=["brain_mets", "brain_mets_burden"])
    assert inc["patient_id"].tolist() == ["A", "B"]
    assert [(e.patient_id, e.reason) for e in exc] == [
        ("C", "brain_mets is empty; brain_mets_burden is empty"), ("D", "brain_mets_burden is empty")]


def test_rows_for_unsupported_analysis_says_what_is_missing():
    c = load_cohort(_frame())
    assert not c.supports("os_by_any_rt") and c.missing_for("os_by_any_rt") == ("any_rt",)
    with pytest.raises(CohortError, match="any_rt"):
        c.rows_for("os_by_any_rt")
    with pytest.raises(KeyError, match="pfs1_km"):
        c.rows_for("no_such_analysis")
    table = c.analyses().set_index("analysis")
    assert table.loc["pfs1_km", "supported"] and not table.loc["pfs2_by_cbpd", "supported"]
    assert table.loc["pfs2_km", "included"] == 2


def test_pattern_and_event_derivations():
    flags = _frame().drop(columns=["failure_pattern"])
    flags["fail_original_site"] = [1, 0, None, 0]
    flags["fail_new_site"] = [0, 1, None, 0]
    d = load_cohort(flags).data
    assert d["failure_pattern"].astype(object).fillna("").tolist() == ["OF", "DF", "", "death"]
    no_event = _frame().drop(columns=["pfs1_event"])
    d = load_cohort(no_event).data
    assert d["pfs1_event"].tolist() == [1, 1, 0, 1]


def test_excel_row_numbers_and_numeric_ids(tmp_path):
    _, valid = make_binary_cases.write_cases(tmp_path)
    c = load_cohort(tmp_path / "valid_dates.xlsx")
    assert c.data["patient_id"].tolist() == ["101", "102", "103"]
    assert c.lines == (2, 3, 4)
    np.testing.assert_allclose(c.data["pfs1_months"].to_numpy(dtype=float),
                               load_cohort(tmp_path / "valid_dates.parquet").data["pfs1_months"].to_numpy(dtype=float))


def test_blank_and_missing_spellings():
    frame = _frame(pfs2_months=[4.0, 2.0, "NA", "."], pfs2_event=[1, 0, "", "null"])
    assert load_cohort(frame).data["pfs2_months"].isna().sum() == 2


def test_native_dates_with_time_zone_and_time_of_day():
    frame = pd.DataFrame({
        "patient_id": ["A"],
        "crizotinib_start_date": pd.to_datetime(["2015-01-01 08:30"]).tz_localize("Asia/Shanghai"),
        "first_progression_date": [pd.Timestamp("2016-01-01 17:00")],
        "death_date": [pd.NaT], "last_followup_date": [pd.Timestamp("2017-01-01")],
        "diagnosis_date": [pd.Timestamp("2014-12-01")], "failure_pattern": ["OF"],
    })
    d = load_cohort(frame).data
    assert d["pfs1_months"].iloc[0] == pytest.approx(365 / 30.4375)
    assert str(d["crizotinib_start_date"].dtype) == "datetime64[ns]"


@pytest.mark.parametrize(("suffix", "module"), [(".parquet", "pyarrow"), (".xlsx", "openpyxl")])
def test_missing_optional_reader_says_how_to_install(tmp_path, monkeypatch, suffix, module):
    import importlib.util

    path = tmp_path / f"cohort{suffix}"
    path.write_bytes(b"not read: the reader is missing")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    (problem,) = info.value.problems
    assert problem.rule == "missing_reader" and problem.value == module
    # works for a package install and for a clone (where 'failpattern[io]' would fetch from PyPI)
    assert f"pip install {module} " in str(info.value) and "pip install -e '.[io]'" in str(info.value)


def _problems_of_csv(tmp_path, column, cells: dict) -> list:
    """(rule, line, value) of every problem of ``_frame()`` written to CSV with ``cells`` of
    ``column`` replaced (row index -> text)."""
    frame = _frame().astype({column: object})
    for i, text in cells.items():
        frame.loc[i, column] = text
    path = tmp_path / "cells.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    return [(p.rule, p.line, p.value) for p in info.value.problems]


def test_csv_binary_written_as_floats_loads_and_bad_values_still_fail(tmp_path):
    # a binary column exported from a floating-point column ("1.0") is 1; "2.0" and "0.5" are not
    path = tmp_path / "floats.csv"
    _frame().astype({"pfs1_event": float, "os_event": float}).to_csv(path, index=False)
    assert "1.0" in path.read_text()
    d = load_cohort(path).data
    assert d["pfs1_event"].tolist() == [1, 1, 0, 1] and str(d["pfs1_event"].dtype) == "Int64"
    assert _problems_of_csv(tmp_path, "pfs1_event", {2: "2.0", 3: "0.5"}) == [("not_binary", 4, "2.0"),
                                                                             ("not_binary", 5, "0.5")]


def test_csv_numbers_outside_a_rule_go_to_the_per_cell_rules(tmp_path):
    assert _problems_of_csv(tmp_path, "pfs1_months", {0: "-1", 1: "inf"}) == [("negative_time", 2, "-1"),
                                                                             ("not_a_number", 3, "inf")]
