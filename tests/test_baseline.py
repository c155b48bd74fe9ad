"""Regression mode: baselines of accepted differences, ``check --baseline / --write-baseline / --json``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from failpattern._resources import synthetic_path
from failpattern.cli import main
from failpattern.errors import InputError
from failpattern.study.baseline import (
    BASELINE_COLUMNS,
    BASELINE_HEADER,
    PLACEHOLDER,
    apply_baseline,
    load_baseline,
    write_baseline,
)

SHIPPED = synthetic_path("ni2019_exact.baseline.csv")


@pytest.fixture(scope="module")
def comparison():
    from failpattern.cohort import load_cohort
    from failpattern.study import compare, load_study, run_plan

    card = load_study("ni2019")
    return compare(run_plan(load_cohort(synthetic_path("ni2019_exact.csv")), card=card), card)


def _run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_round_trip_accepts_every_difference(comparison, tmp_path):
    path = tmp_path / "b.csv"
    n = write_baseline(comparison, path, reason="known", comment="a comment")
    assert n == int((comparison["verdict"] == "differs").sum()) > 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith(BASELINE_HEADER + "\n# a comment\n" + ",".join(BASELINE_COLUMNS))
    check = apply_baseline(comparison, load_baseline(path))
    assert check.failing.empty and check.n_accepted == n and check.resolved.empty
    assert set(check.comparison.loc[check.comparison["verdict"] == "differs", "baseline"]) == {"accepted"}


def test_a_missing_entry_is_a_new_difference_and_a_moved_value_a_changed_one(comparison, tmp_path):
    path = tmp_path / "b.csv"
    write_baseline(comparison, path, reason="known")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [k for k, line in enumerate(lines) if line.endswith(",differs,known")]
    dropped, moved = rows[0], rows[1]
    drop_key, move_key = (tuple(lines[k].split(",")[:2]) for k in (dropped, moved))
    fields = lines[moved].split(",")
    was = fields[3]
    fields[3] = "123456"  # the accepted reproduced value has moved since
    lines[moved] = ",".join(fields)
    del lines[dropped]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    check = apply_baseline(comparison, load_baseline(path))
    failing = dict(zip(zip(check.failing["id"], check.failing["part"]), check.failing["baseline"]))
    assert failing == {drop_key: "new", move_key: "changed"}
    note = check.comparison.set_index(["id", "part"]).at[move_key, "baseline_note"]
    assert "123456" in note and was in note


def test_entries_that_no_longer_differ_are_resolved_not_failures(comparison, tmp_path):
    path = tmp_path / "b.csv"
    write_baseline(comparison, path, reason="known")
    with path.open("a", encoding="utf-8") as fh:
        fh.write("cohort.enrolled.n,value,93,93,differs,once differed\nno.such.id,value,1,2,differs,gone\n")
    check = apply_baseline(comparison, load_baseline(path))
    assert check.failing.empty
    assert set(zip(check.resolved["id"], check.resolved["now"])) == {
        ("cohort.enrolled.n", "matches as printed"), ("no.such.id", "not judged")}


@pytest.mark.parametrize("body, message", [
    ("id,part,published,reproduced,verdict\n", "the header must be"),
    ("id,part,published,reproduced,verdict,reason\nx,value,1,2,differs\n", "line 2: 5 fields"),
    ("id,part,published,reproduced,verdict,reason\nx,ci_low,1,2,differs,r\n", "line 2: column part: 'ci_low'"),
    ("id,part,published,reproduced,verdict,reason\nx,value,1,2,differs,\n", "line 2: column reason: empty"),
    ("id,part,published,reproduced,verdict,reason\n,value,1,2,differs,r\n", "line 2: column id: empty"),
    ("id,part,published,reproduced,verdict,reason\nx,value,1,2,differs,r\nx,value,1,2,differs,r\n",
     "line 3: x value is listed twice"),
])
def test_a_bad_baseline_names_line_column_value_and_rule(tmp_path, body, message):
    path = tmp_path / "b.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_baseline(path)


def test_write_baseline_never_replaces_a_file_it_did_not_write(comparison, tmp_path):
    mine = tmp_path / "notes.csv"
    mine.write_text("id,my,own\n1,2,3\n", encoding="utf-8")
    before = mine.read_bytes()
    with pytest.raises(InputError, match="not a baseline failpattern wrote"):
        write_baseline(comparison, mine)
    assert mine.read_bytes() == before
    ours = tmp_path / "b.csv"
    write_baseline(comparison, ours)
    write_baseline(comparison, ours)  # its own file is replaced
    assert PLACEHOLDER in ours.read_text(encoding="utf-8")


def test_the_shipped_baseline_declares_every_difference_with_a_reason(comparison):
    base = load_baseline(SHIPPED)
    check = apply_baseline(comparison, base)
    assert check.failing.empty, check.failing[["id", "part", "baseline", "baseline_note"]]
    assert check.resolved.empty  # no stale entries
    assert all(e["reason"] and e["reason"] != PLACEHOLDER for e in base.entries.values())


def test_check_passes_on_the_canonical_cohort_because_its_differences_are_declared(comparison):
    res = _run("check")
    assert res.exit_code == 0, res.output
    assert "baseline: shipped with the canonical cohort" in res.output
    assert "check passed" in res.output and "not)" in res.output
    first = res.output.index("changed conclusion")
    changed = comparison[comparison["changed_conclusion"].astype(bool)]["id"]
    assert len(changed) and first < res.output.index("kind")
    assert all(f"{i}:" in res.output[first:] for i in changed)


def test_check_fails_without_the_baseline_and_on_a_new_difference(tmp_path):
    res = _run("check", "--no-baseline")
    assert res.exit_code == 1 and "check FAILED" in res.output and "pfs1.median.all" in res.output
    trimmed = tmp_path / "b.csv"
    lines = SHIPPED.read_text(encoding="utf-8").splitlines()
    trimmed.write_text("\n".join(l for l in lines if not l.startswith("pfs1.median.all,ci_upper,")) + "\n",
                       encoding="utf-8")
    res = _run("check", "--baseline", str(trimmed))
    assert res.exit_code == 1
    assert "1 difference(s) not accepted by the baseline" in res.output
    assert "pfs1.median.all" in res.output and "new" in res.output


def test_check_write_baseline_then_pass(comparison, tmp_path):
    out = tmp_path / "accepted.csv"
    res = _run("check", "--write-baseline", str(out))
    n = int((comparison["verdict"] == "differs").sum())
    assert res.exit_code == 0 and f"wrote {n} accepted difference(s) to" in res.output
    assert _run("check", "--baseline", str(out)).exit_code == 0
    foreign = tmp_path / "data.csv"
    foreign.write_text("a,b\n1,2\n", encoding="utf-8")
    res = _run("check", "--write-baseline", str(foreign))
    assert res.exit_code == 2 and "not a baseline failpattern wrote" in res.output
    assert foreign.read_text(encoding="utf-8") == "a,b\n1,2\n"


def test_check_json_one_record_per_judged_row(comparison):
    res = _run("check", "--json")
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert doc["passed"] is True and doc["profile"] == "printed" and doc["baseline"].endswith("baseline.csv")
    assert len(doc["rows"]) == len(comparison)
    keys = {"id", "part", "published", "reproduced", "verdict", "rule", "changed_conclusion"}
    assert all(keys <= row.keys() for row in doc["rows"])
    changed = [r.id for r in comparison.itertuples() if r.changed_conclusion]
    assert changed and [r["id"] for r in doc["changed_conclusions"]] == changed
    assert list(doc).index("changed_conclusions") < list(doc).index("rows")
    assert doc["summary"]["matches as printed"] == int((comparison["verdict"] == "matches as printed").sum())
    res = _run("check", "--json", "--no-baseline")
    assert res.exit_code == 1 and json.loads(res.output)["passed"] is False


def test_profiles_on_the_command_line():
    res = _run("check", "--profile", "near", "--no-baseline")
    assert "profile near" in res.output and " near" in res.output
    res = _run("check", "--profile", "loose")
    assert res.exit_code == 2 and "printed" in res.output


def test_a_bad_baseline_file_is_exit_2_with_its_problems(tmp_path):
    bad = tmp_path / "b.csv"
    bad.write_text("id,part,published,reproduced,verdict,reason\npfs1.median.all,lower,9.8,3.0,differs,x\n",
                   encoding="utf-8")
    res = _run("check", "--baseline", str(bad))
    assert res.exit_code == 2 and "line 2: column part: 'lower'" in res.output and "Traceback" not in res.output
    res = _run("check", "--baseline", str(tmp_path / "missing.csv"))
    assert res.exit_code == 2 and "no such baseline file" in res.output
    res = _run("check", "--baseline", str(bad), "--no-baseline")
    assert res.exit_code == 2 and "either --baseline or --no-baseline" in res.output
