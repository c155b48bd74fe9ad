"""``failpattern analyze``: summary on a good file; all problems on stderr and exit 2 on a bad one."""

from __future__ import annotations

from click.testing import CliRunner

from failpattern.cli.analyze import analyze

from test_cohort_malformed import HERE


def _run(*args):
    return CliRunner().invoke(analyze, [str(a) for a in args])


def test_summary_of_a_valid_file():
    result = _run(HERE / "valid_months.csv")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "patients: 8" in out
    assert "PFS1     7 events     1 censored" in out
    assert "first failure: OF 3, DF 2, ODF 1, death 1, censored 1" in out
    assert "analyses this file supports: 18 of 18" in out
    assert "pfs1_months" in out and result.stderr == ""


def test_summary_says_what_is_unsupported_and_excluded():
    result = _run(HERE / "valid_dates.csv", "--days-per-month", "30")
    assert result.exit_code == 0, result.output
    assert "no   pfs2_by_cbpd" in result.stdout and "needs cbpd" in result.stdout
    assert "derived by the loader" in result.stdout and "30 days per month" in result.stdout


def test_problems_go_to_stderr_aligned_with_exit_code_2():
    result = _run(HERE / "many_problems.csv")
    assert result.exit_code == 2
    assert result.stdout == "" and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    header = next(line for line in lines if line.strip().startswith("line"))
    for word in ("patient", "column", "value", "rule"):
        assert word in header
    rows = [line for line in lines if line.strip()[:1].isdigit()]
    assert len(rows) == 5
    col = header.index("rule")
    assert all(len(r) > col and r[col - 1] == " " for r in rows)  # the rule column is aligned
    assert {r[col:].split()[0] for r in rows} == {"not_binary", "unknown_category", "duplicate_patient_id",
                                                  "negative_time"}


def test_whole_file_problem_and_missing_file_exit_2():
    for path in (HERE / "binary_junk.csv", HERE / "cohort.json", HERE / "no_such_file.csv"):
        result = _run(path)
        assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output and result.stderr


def test_study_option(tmp_path):
    from failpattern._resources import study_path

    card = tmp_path / "mine.yaml"  # a user's own card: a valid copy of the shipped one
    card.write_text(study_path("ni2019").read_text(encoding="utf-8"), encoding="utf-8")
    ok = _run(HERE / "valid_months.csv", "--study", card)
    # a handful of patients: its counts disagree with the paper's 93, and exit code 1 says so
    assert ok.exit_code == 1 and "reproduce" in ok.stdout and " differs" in ok.stdout
    assert "Traceback" not in ok.output
    invalid = tmp_path / "broken.yaml"
    invalid.write_text("name: mine\n")
    broken = _run(HERE / "valid_months.csv", "--study", invalid)
    assert broken.exit_code == 2 and "broken.yaml" in broken.stderr
    bad = _run(HERE / "valid_months.csv", "--study", "no_such_card_xyz")
    assert bad.exit_code == 2 and "no study card named 'no_such_card_xyz'" in bad.stderr


def test_help_mentions_reproduce():
    result = _run("--help")
    assert result.exit_code == 0
    assert "reproduce" in result.output and "--study" in result.output
