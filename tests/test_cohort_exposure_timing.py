"""The optional exposure-timing columns: salvage_rt_*, cbpd_*, first_rt_* (when each treatment started).

Each rule fires with the row, column and value in its problem; months are derived from the dates like the
endpoints and cross-checked against typed months; a cohort without the columns loads as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from failpattern._resources import synthetic_path
from failpattern.cohort import CohortError, load_cohort, trusted_cohort
from failpattern.cohort import load as load_module
from failpattern.cohort.dates import DAYS_PER_MONTH
from failpattern.cohort.problems import RULES, WARNING_RULES
from failpattern.cohort.schema import (
    COLUMNS,
    SYNONYMS,
    TIMING_COLUMNS,
    TIMINGS,
    column,
    render_doc,
)

DPM = DAYS_PER_MONTH
TIMING_RULES = ("timing_without_treatment", "timing_before_time_zero", "timing_after_last_contact",
                "first_rt_vs_prior_rt", "first_rt_after_salvage_rt")
TIMING_NAMES = [c.name for c in TIMING_COLUMNS]


def _base() -> pd.DataFrame:
    """Four patients given by their dates (durations and events are derived), with the treatment flags.

    Line 2 (P1): progressed, salvage RT and CBPD, no prior RT, alive; line 3 (P2): prior RT, progressed,
    died, no salvage RT, no CBPD; line 4 (P3): censored without progression; line 5 (P4): death without
    progression.
    """
    return pd.DataFrame({
        "patient_id": ["P1", "P2", "P3", "P4"],
        "failure_pattern": ["OF", "DF", None, "death"],
        "diagnosis_date": ["2015-01-01", "2014-06-01", "2015-03-01", "2015-05-01"],
        "crizotinib_start_date": ["2015-02-01", "2014-09-01", "2015-04-01", "2015-06-01"],
        "first_progression_date": ["2015-10-01", "2015-03-01", None, None],
        "second_progression_date": ["2016-04-01", None, None, None],
        "death_date": [None, "2015-12-01", None, "2016-01-10"],
        "last_followup_date": ["2017-01-01", None, "2017-02-01", None],
        "prior_rt": [0, 1, 0, 0],
        "salvage_rt": [1, 0, None, None],
        "cbpd": [1, 0, None, None],
        "any_rt": [1, 1, 0, 0],
    })


def _timed(**cols) -> pd.DataFrame:
    """:func:`_base` with timing columns (lists of four values)."""
    df = _base()
    for name, values in cols.items():
        df[name] = values
    return df


def _valid() -> pd.DataFrame:
    return _timed(salvage_rt_date=["2015-10-20", None, None, None],
                  cbpd_date=["2015-10-01", None, None, None],
                  first_rt_date=["2015-10-20", "2014-07-15", None, None])


def _problems(df, **kw):
    with pytest.raises(CohortError) as info:
        load_cohort(df, **kw)
    return [p for p in info.value.problems if p.severity == "error"]


def _only(df, rule):
    """The single error of ``df``, which must be of ``rule``."""
    errors = _problems(df)
    assert [p.rule for p in errors] == [rule], [str(p) for p in errors]
    return errors[0]


def _days(a: str, b: str) -> float:
    return (pd.Timestamp(b) - pd.Timestamp(a)).days / DPM


# -- the schema -----------------------------------------------------------------------------------------


def test_columns_rules_and_documentation():
    assert TIMING_NAMES == ["salvage_rt_date", "salvage_rt_months", "cbpd_date", "cbpd_months",
                            "first_rt_date", "first_rt_months"]
    assert not set(TIMING_NAMES) & {c.name for c in COLUMNS}  # generated cohorts carry COLUMNS only
    for t in TIMINGS:
        assert column(t.date).kind == "date" and column(t.months).kind == "months"
        assert column(t.flag).kind == "binary" and column(t.origin).kind == "date"
        assert not column(t.months).required and not column(t.date).required
    assert "Only the first course is recorded" in column("first_rt_date").meaning
    assert "Only the first course is recorded" in column("first_rt_months").meaning
    for rule in TIMING_RULES:
        assert rule in RULES and rule not in WARNING_RULES
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "cohort-format.md").read_text(encoding="utf-8")
    assert render_doc(doc) == doc, "run: python -m failpattern.cohort docs/cohort-format.md"
    for name in TIMING_NAMES:
        assert f"| `{name}` |" in doc
    for rule in TIMING_RULES:
        assert f"| `{rule}` |" in doc
    assert "immortal-time" in doc


@pytest.mark.parametrize("name", TIMING_NAMES)
def test_synonyms_map_to_the_column(name):
    assert SYNONYMS[name]
    for header in SYNONYMS[name]:
        assert load_module._meant(header) == name, header


@pytest.mark.parametrize("header, meant", [("Date of salvage radiotherapy", "salvage_rt_date"),
                                           ("RT start date", "first_rt_date"),
                                           ("Date of first radiotherapy", "first_rt_date"),
                                           ("Time to CBPD", "cbpd_months")])
def test_clinical_header_gets_a_suggestion(header, meant):
    df = _valid()
    if meant in df:
        df = df.rename(columns={meant: header})
    else:
        df[header] = [0.0, None, None, None]
    warnings = load_cohort(df).warnings
    (p,) = [w for w in warnings if w.rule == "unknown_column"]
    assert f"did you mean {meant!r}?" in p.message


# -- absence changes nothing ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ni2019_exact.csv", "ni2019_random_seed1.csv"])
def test_shipped_cohorts_load_as_before(name, monkeypatch, tmp_path):
    # the shipped cohorts without their timing columns (generated cohorts carry them)
    source = pd.read_csv(synthetic_path(name), dtype=str, keep_default_na=False)
    path = tmp_path / name
    source.drop(columns=[c for c in TIMING_NAMES if c in source]).to_csv(path, index=False)
    plain = load_cohort(path)
    assert not set(TIMING_NAMES) & set(plain.data.columns)
    assert list(plain.data.columns) == [c.name for c in COLUMNS if c.name in plain.data.columns]
    # the quick check still stands in for the cross-column checks (no extra cost without the columns)
    monkeypatch.setattr(load_module, "_check", lambda *a, **k: pytest.fail("full checks ran"))
    again = load_cohort(path)
    pd.testing.assert_frame_equal(plain.data, again.data)
    assert (plain.derived, plain.columns_present) == (again.derived, again.columns_present)
    monkeypatch.undo()
    # empty timing columns (every timing unknown) change none of the other columns
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for t in TIMING_NAMES:
        frame[t] = ""
    timed = load_cohort(frame)
    pd.testing.assert_frame_equal(timed.data[list(plain.data.columns)], plain.data)
    assert timed.data[TIMING_NAMES].isna().all().all()
    assert [str(w) for w in timed.warnings] == [str(w) for w in plain.warnings]


# -- derivation and cross-checks ------------------------------------------------------------------------


def test_months_derived_from_the_dates():
    cohort = load_cohort(_valid())
    d = cohort.data
    assert {"salvage_rt_months", "cbpd_months", "first_rt_months"} <= set(cohort.derived)
    assert str(d["salvage_rt_date"].dtype) == "datetime64[ns]" and str(d["salvage_rt_months"].dtype) == "Float64"
    assert d["salvage_rt_months"].iat[0] == pytest.approx(_days("2015-10-01", "2015-10-20"))
    assert d["cbpd_months"].iat[0] == 0
    assert d["first_rt_months"].iat[0] == pytest.approx(_days("2015-01-01", "2015-10-20"))
    assert d["first_rt_months"].iat[1] == pytest.approx(_days("2014-06-01", "2014-07-15"))
    assert d["salvage_rt_months"].iloc[1:].isna().all()  # empty = unknown or not given
    # the format's order: the timings after the core columns, dates before months
    assert list(d.columns)[-6:] == TIMING_NAMES


def test_empty_months_cell_is_filled_from_its_date():
    df = _valid().assign(first_rt_months=[None, 1.5, None, None])
    d = load_cohort(df).data
    assert d["first_rt_months"].iat[0] == pytest.approx(_days("2015-01-01", "2015-10-20"))
    assert d["first_rt_months"].iat[1] == 1.5  # typed and agreeing with the date (1.45): kept


def test_months_that_disagree_with_the_date():
    df = _valid().assign(salvage_rt_months=[3.0, None, None, None])
    p = _only(df, "duration_date_mismatch")
    assert (p.line, p.patient_id, p.column, p.value) == (2, "P1", "salvage_rt_months", "3")
    assert "salvage_rt_date" in p.message and "first_progression_date" in p.message and "0.6" in p.message
    # within the endpoints' tolerance (max(0.5 months, 2 %)): accepted, the typed value kept
    ok = load_cohort(_valid().assign(salvage_rt_months=[1.0, None, None, None]))
    assert ok.data["salvage_rt_months"].iat[0] == 1.0


def test_months_only_cohort_loads():
    df = _timed(salvage_rt_months=[0.5, None, None, None], cbpd_months=[0.0, None, None, None],
                first_rt_months=[9.0, 1.0, None, None]).drop(columns=["first_rt_date"], errors="ignore")
    d = load_cohort(df).data
    assert d["first_rt_months"].tolist()[:2] == [9.0, 1.0]


# -- the rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag, col, value, line", [
    ("salvage_rt", "salvage_rt_date", "2015-03-20", 3),
    ("cbpd", "cbpd_date", "2015-03-01", 3),
    ("any_rt", "first_rt_date", "2015-03-10", 4),
])
def test_timing_for_an_untreated_patient(flag, col, value, line):
    df = _valid()
    df.loc[line - 2, col] = value
    p = _only(df, "timing_without_treatment")  # the only problem: the timing is not checked further
    assert (p.line, p.column, p.value) == (line, f"{col}+{flag}", value)
    assert f"{flag} = 0" in p.message and col in p.message


def test_untreated_names_every_timing_cell():
    df = _valid().assign(salvage_rt_months=[None, 0.3, None, None])
    df.loc[1, "salvage_rt_date"] = "2015-03-10"
    p = _only(df, "timing_without_treatment")
    assert p.column == "salvage_rt_date+salvage_rt_months+salvage_rt" and p.value == "2015-03-10"


def test_unknown_flag_allows_a_timing():
    df = _valid()
    df.loc[0, "salvage_rt"] = None
    load_cohort(df)
    load_cohort(_valid().drop(columns=["salvage_rt", "cbpd", "any_rt"]))


def test_timing_without_progression_is_a_detail_without_parent():
    df = _valid()
    df.loc[2, "cbpd_date"] = "2016-01-01"  # P3 never progressed (and cbpd is empty)
    p = _only(df, "detail_without_parent")
    assert (p.line, p.column, p.value) == (4, "cbpd_date", "2016-01-01")
    df.loc[2, "cbpd"] = 0  # flag 0 as well: still one problem for the cell
    assert [q.rule for q in _problems(df)] == ["detail_without_parent"]


@pytest.mark.parametrize("col, value, origin", [
    ("salvage_rt_date", "2015-09-30", "first_progression_date"),
    ("cbpd_date", "2015-09-01", "first_progression_date"),
])
def test_timing_before_first_progression(col, value, origin):
    df = _valid()
    df.loc[0, col] = value
    df.loc[0, "first_rt_date"] = None  # not after the salvage RT (first_rt_after_salvage_rt)
    p = _only(df, "timing_before_time_zero")
    assert (p.line, p.column, p.value) == (2, f"{col}+{origin}", value)
    assert "2015-10-01" in p.message


def test_first_rt_before_diagnosis():
    df = _valid()
    df.loc[1, "first_rt_date"] = "2014-05-01"
    p = _only(df, "timing_before_time_zero")
    assert (p.line, p.column, p.value) == (3, "first_rt_date+diagnosis_date", "2014-05-01")
    assert "2014-06-01" in p.message


@pytest.mark.parametrize("row, col, value, contact", [
    (0, "salvage_rt_date", "2017-01-02", "last_followup_date"),
    (0, "first_rt_date", "2015-10-20", None),  # the valid one: no problem
])
def test_timing_after_last_followup(row, col, value, contact):
    df = _valid()
    df.loc[row, col] = value
    if contact is None:
        load_cohort(df)
        return
    p = _only(df, "timing_after_last_contact")
    assert (p.line, p.column, p.value) == (2, f"{col}+{contact}", value)
    assert "2017-01-01" in p.message


def test_timing_after_death():
    df = _valid()
    df.loc[1, ["cbpd", "cbpd_date"]] = [1, "2015-12-02"]
    p = _only(df, "timing_after_last_contact")
    assert (p.line, p.column, p.value) == (3, "cbpd_date+death_date", "2015-12-02")
    df.loc[1, "cbpd_date"] = "2015-12-01"  # on the day of death: allowed
    load_cohort(df)


def test_first_rt_and_prior_rt():
    df = _valid()
    df.loc[1, "first_rt_date"] = "2014-09-02"  # prior_rt = 1, after crizotinib start 2014-09-01
    p = _only(df, "first_rt_vs_prior_rt")
    assert (p.line, p.column, p.value) == (3, "first_rt_date+crizotinib_start_date+prior_rt", "2014-09-02")
    assert "prior_rt = 1" in p.message
    df = _valid()
    df.loc[0, "first_rt_date"] = "2015-01-20"  # prior_rt = 0, before crizotinib start 2015-02-01
    p = _only(df, "first_rt_vs_prior_rt")
    assert (p.line, p.value) == (2, "2015-01-20") and "prior_rt = 0" in p.message
    for day in ("2015-02-01", "2015-10-01"):  # on or after the start with prior_rt = 0; on it with 1
        df.loc[0, "first_rt_date"] = day
        load_cohort(df)
    df = _valid()
    df.loc[1, "first_rt_date"] = "2014-09-01"
    load_cohort(df)


def test_first_rt_after_salvage_rt():
    df = _valid()
    df.loc[0, "first_rt_date"] = "2015-11-01"
    p = _only(df, "first_rt_after_salvage_rt")
    assert (p.line, p.column, p.value) == (2, "first_rt_date+salvage_rt_date", "2015-11-01")
    assert "2015-10-20" in p.message


def _months_only() -> pd.DataFrame:
    """Durations without dates: P1 progressed, PFS2 censored at 6 months; P2 PFS2 ended by an event."""
    return pd.DataFrame({
        "patient_id": ["P1", "P2"], "pfs1_months": [8.0, 6.0], "pfs1_event": [1, 1],
        "failure_pattern": ["OF", "DF"], "pfs2_months": [6.0, 9.0], "pfs2_event": [0, 1],
        "os_months": [20.0, 18.0], "os_event": [0, 1], "prior_rt": [0, 1], "salvage_rt": [1, 1],
        "cbpd": [1, 1], "any_rt": [1, 1],
    })


def test_months_beyond_a_censored_pfs2():
    df = _months_only().assign(salvage_rt_months=[6.4, 30.0])  # P2: PFS2 event, follow-up after it unknown
    load_cohort(df)  # 6.4 is within the tolerance of 6
    df = _months_only().assign(cbpd_months=[7.0, 30.0])
    p = _only(df, "timing_after_last_contact")
    assert (p.line, p.patient_id, p.column, p.value) == (2, "P1", "cbpd_months+pfs2_months+pfs2_event", "7")
    assert "pfs2_event = 0" in p.message


def test_first_rt_months_beyond_os():
    df = _months_only().assign(first_rt_months=[3.0, 19.0])
    p = _only(df, "timing_after_last_contact")
    assert (p.line, p.column, p.value) == (3, "first_rt_months+os_months", "19")
    assert "os_months is 18" in p.message


def test_months_beyond_the_last_contact_by_the_dates():
    df = _valid().drop(columns=["salvage_rt_date"]).assign(salvage_rt_months=[16.0, None, None, None])
    p = _only(df, "timing_after_last_contact")  # 2015-10-01 to 2017-01-01 is 15.0 months
    assert (p.line, p.column, p.value) == (2, "salvage_rt_months+first_progression_date+last_followup_date", "16")


@pytest.mark.parametrize("col", ["salvage_rt_months", "cbpd_months", "first_rt_months"])
def test_negative_months(col):
    df = _months_only().assign(**{col: [-1.0, None]})
    p = _only(df, "negative_time")
    assert (p.line, p.column, p.value) == (2, col, "-1")
    assert "to the treatment must be 0 or more" in p.message


def test_first_rt_months_and_prior_rt_by_the_dates():
    df = _valid().drop(columns=["first_rt_date"]).assign(first_rt_months=[0.2, 1.4, None, None])
    p = _only(df, "first_rt_vs_prior_rt")  # P1: prior_rt = 0, crizotinib started 1.0 month after diagnosis
    assert (p.line, p.column, p.value) == (2, "first_rt_months+diagnosis_date+crizotinib_start_date+prior_rt",
                                           "0.2")
    df = _valid().drop(columns=["first_rt_date"]).assign(first_rt_months=[9.0, 4.0, None, None])
    p = _only(df, "first_rt_vs_prior_rt")  # P2: prior_rt = 1, crizotinib started 3.0 months after diagnosis
    assert (p.line, p.value) == (3, "4")


def test_problems_from_a_csv_file_name_the_line(tmp_path):
    df = _valid()
    df.loc[1, "salvage_rt_date"] = "2015-04-01"
    path = tmp_path / "cohort.csv"
    df.to_csv(path, index=False)
    with pytest.raises(CohortError) as info:
        load_cohort(path)
    (p,) = info.value.problems
    assert (p.rule, p.line, p.patient_id, p.value) == ("timing_without_treatment", 3, "P2", "2015-04-01")
    assert "P2" in str(info.value) and "timing_without_treatment" in str(info.value)


# -- trusted_cohort -------------------------------------------------------------------------------------


def _with_timings(frame: pd.DataFrame) -> pd.DataFrame:
    """A simulated cohort with every timing filled consistently (dates as text, months from them)."""
    d = {c: pd.to_datetime(frame[c]) for c in ("diagnosis_date", "crizotinib_start_date",
                                                 "first_progression_date", "death_date", "last_followup_date")}
    contact = d["death_date"].fillna(d["last_followup_date"])
    fp = d["first_progression_date"]
    salvage = (frame["salvage_rt"] == 1) & fp.notna()
    s_date = (fp + pd.to_timedelta(np.minimum(14, (contact - fp).dt.days.fillna(0)), unit="D")).where(salvage)
    cbpd = (frame["cbpd"] == 1) & fp.notna()
    c_date = fp.where(cbpd)
    prior = frame["prior_rt"] == 1
    rt = frame["any_rt"] == 1
    mid = d["diagnosis_date"] + (d["crizotinib_start_date"] - d["diagnosis_date"]) / 2
    r_date = mid.dt.normalize().where(prior, s_date.where(salvage, d["crizotinib_start_date"])).where(rt)
    out = frame.copy()
    for name, when, origin in (("salvage_rt", s_date, fp), ("cbpd", c_date, fp),
                               ("first_rt", r_date, d["diagnosis_date"])):
        out[f"{name}_date"] = when.dt.strftime("%Y-%m-%d").where(when.notna(), None)
        out[f"{name}_months"] = ((when - origin).dt.days / DPM).astype(float)
    return out


def test_trusted_cohort_equals_the_loader_with_timings():
    from failpattern.simulate import simulate
    from failpattern.study import load_study

    frame = _with_timings(simulate(load_study("ni2019"), n=40, seed=np.random.default_rng(3), mode="random"))
    assert frame["salvage_rt_date"].notna().any() and frame["first_rt_date"].notna().any()
    loaded, trusted = load_cohort(frame), trusted_cohort(frame)
    pd.testing.assert_frame_equal(loaded.data, trusted.data)
    assert (loaded.columns_present, loaded.derived, loaded.lines) == \
        (trusted.columns_present, trusted.derived, trusted.lines)
    assert list(trusted.data.columns)[-6:] == TIMING_NAMES
    # columns in another order come out in the format's order, as the loader gives them
    shuffled = frame[TIMING_NAMES + [c for c in frame.columns if c not in TIMING_NAMES]]
    pd.testing.assert_frame_equal(trusted_cohort(shuffled).data, load_cohort(shuffled).data)
    assert trusted_cohort(shuffled).columns_present == load_cohort(shuffled).columns_present
