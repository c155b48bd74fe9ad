"""The malformed corpus: each file in tests/malformed/ produces exactly the problems its manifest lists.

MANIFEST.csv has one row per expected problem (file, rule, line, column); the
binary cases (Excel, Parquet, damaged files) are written to a temporary folder
by ``make_binary_cases.py``. A file whose expected problems are all warnings
must load (``WARNING_RULES``).
"""

from __future__ import annotations

import csv
import importlib.util
from collections import defaultdict
from pathlib import Path

import pytest

from failpattern.cohort import RULES, CohortError, load_cohort
from failpattern.cohort.problems import WARNING_RULES

HERE = Path(__file__).parent / "malformed"


def _manifest(rows) -> dict[str, list[tuple[str, str, str]]]:
    out = defaultdict(list)
    for r in rows:
        out[r["file"]].append((r["rule"], r["line"], r["column"]))
    return dict(out)


with open(HERE / "MANIFEST.csv", newline="", encoding="utf-8") as _f:
    TEXT_CASES = _manifest(csv.DictReader(_f))

_spec = importlib.util.spec_from_file_location("make_binary_cases", HERE / "make_binary_cases.py")
make_binary_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_binary_cases)


@pytest.fixture(scope="module")
def binary_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("binary_cases")
    manifest, valid = make_binary_cases.write_cases(folder)
    return folder, _manifest(manifest), valid


def _problems(path):
    """``(problems, loaded)``: what the loader reports for ``path``, as (rule, line, column)."""
    try:
        cohort = load_cohort(path)
    except CohortError as exc:
        found = exc.problems
        loaded = False
    else:
        found = cohort.warnings
        loaded = True
    for p in found:  # every problem is actionable: a known rule and a message
        assert p.rule in RULES and p.message
        if p.column and "+" not in p.column and p.line and p.line > 1:
            assert p.column in p.message
    return sorted((p.rule, "" if p.line is None else str(p.line), p.column or "") for p in found), loaded


def test_corpus_is_large_and_covers_every_rule(binary_dir):
    _, binary, _ = binary_dir
    files = set(TEXT_CASES) | set(binary)
    assert len(files) >= 40
    on_disk = {p.name for p in HERE.iterdir() if p.is_file()} - {"MANIFEST.csv", "make_binary_cases.py"}
    assert set(TEXT_CASES) <= on_disk
    covered = {rule for cases in (TEXT_CASES, binary) for rows in cases.values() for rule, _, _ in rows}
    covered.add("file_not_found")  # a file that is not there cannot be in the corpus: see below
    covered.add("missing_reader")  # needs an uninstalled package: test_cohort_load.py covers it
    # the exposure-timing rules: each has its cases in test_cohort_exposure_timing.py
    covered |= {"timing_without_treatment", "timing_before_time_zero", "timing_after_last_contact",
                "first_rt_vs_prior_rt", "first_rt_after_salvage_rt"}
    assert covered == set(RULES), f"rules without a malformed case: {set(RULES) - covered}"


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CohortError) as info:
        load_cohort(tmp_path / "cohrot.csv")
    (p,) = info.value.problems
    assert p.rule == "file_not_found" and "cohrot.csv" in p.message
    with pytest.raises(CohortError, match="not_a_table"):
        load_cohort(tmp_path)


@pytest.mark.parametrize("name", sorted(TEXT_CASES))
def test_text_case(name):
    expected = sorted(TEXT_CASES[name])
    found, loaded = _problems(HERE / name)
    assert found == expected
    assert loaded == all(rule in WARNING_RULES for rule, _, _ in expected)


def test_binary_cases(binary_dir):
    folder, cases, valid = binary_dir
    assert len(cases) >= 5
    for name, expected in cases.items():
        found, loaded = _problems(folder / name)
        assert (name, found) == (name, sorted(expected))
        assert not loaded
    for name in valid:
        cohort = load_cohort(folder / name)
        assert cohort.n_patients in (3, 5) and not cohort.warnings


def test_all_problems_reported_at_once():
    with pytest.raises(CohortError) as info:
        load_cohort(HERE / "many_problems.csv")
    err = info.value
    assert len(err.errors) == 5
    text = str(err)
    # one table row per problem, each naming its line, patient, column and rule
    for p in err.problems:
        row = next(line for line in text.splitlines() if p.rule in line and f" {p.line} " in f" {line} ")
        assert p.patient_id in row and p.column in row
    assert text.count("->") == 5


def test_typo_gets_a_suggestion():
    with pytest.raises(CohortError) as info:
        load_cohort(HERE / "typo_pfs1_month.csv")
    messages = {p.rule: p.message for p in info.value.problems}
    assert "did you mean 'pfs1_months'" in messages["unknown_column"]
    assert "did you mean 'pfs1_months'" in messages["missing_column"]
    assert info.value.problems[0].severity == "warning"


def test_unknown_category_lists_allowed_values():
    with pytest.raises(CohortError) as info:
        load_cohort(HERE / "unknown_pattern.csv")
    (p,) = info.value.problems
    assert p.value == "progression" and p.patient_id == "P02"
    assert all(v in p.message for v in ("OF", "DF", "ODF", "death"))


def test_encoding_problem_names_line_and_fix():
    with pytest.raises(CohortError) as info:
        load_cohort(HERE / "latin1.csv")
    (p,) = info.value.problems
    assert p.line == 3 and p.value == "0xE9" and "cp1252" in p.message
    # and the advice works
    cohort = load_cohort(HERE / "latin1.csv", encoding="cp1252")
    assert cohort.data["patient_id"].iloc[1] == "P02-H\u00e9l\u00e8ne"
