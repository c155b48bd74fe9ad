"""``failpattern reproduce``, ``check`` and ``analyze`` end to end with CliRunner."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from failpattern._resources import synthetic_path
from failpattern.cli.analyze import analyze
from failpattern.cli.common import load_cohort_for_cli
from failpattern.cli.reproduce import check, reproduce
from failpattern.report.tables import comparison_display
from failpattern.study.card import load_study

MALFORMED = Path(__file__).parent / "malformed"
VERDICT = r"(matches as printed|near|differs|contradicted by the paper|not reproducible from these data)"
PART = r"(value|ci_lower|ci_upper|range_min|range_max)"


def _run(cmd, *args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


@pytest.fixture(scope="module")
def canonical_run(tmp_path_factory):
    """One end-to-end run of ``reproduce`` on the canonical cohort (the slow part, done once)."""
    out = tmp_path_factory.mktemp("rep") / "out"
    result = _run(reproduce, "--out", out)
    return result, out


def _printed_rows(stdout: str) -> dict:
    """(id, part) -> (published and reproduced cells, verdict, baseline) of the printed table."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(rf"^(\S+)\s+{PART}\s{{2,}}(.*?)\s+{VERDICT}(?:\s+(accepted|new|changed))?$", line)
        if m and not line.startswith(("id ", "--")):
            cells = re.split(r"\s{2,}", m.group(3).strip()) if m.group(3).strip() else []
            rows[(m.group(1), m.group(2))] = (cells, m.group(4), m.group(5) or "")
    return rows


def test_reproduce_writes_every_file(canonical_run):
    result, out = canonical_run
    assert result.exit_code == 0, result.output
    assert {"report.html", "report.md", "results.json"} <= {p.name for p in out.iterdir()}
    figs = {p.name for p in (out / "figures").iterdir()}
    for name in ("fig1a", "fig1b", "fig1c", "fig1d", "fig2", "table3_univariate", "table3_multivariable",
                 "km_pfs1", "km_pfs2", "km_os"):
        assert {f"{name}.png", f"{name}.svg"} <= figs, name
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_printed_table_grouped_by_section_and_summary(canonical_run):
    result, _ = canonical_run
    out = result.stdout
    heads = re.findall(r"^== (.+) ==$", out, flags=re.MULTILINE)
    n_changed = len(re.findall(r"^  \S+: (significance|direction) ", out, flags=re.MULTILINE))
    assert n_changed > 0 and heads[0].startswith(f"{n_changed} changed conclusion(s)")  # listed first
    heads = heads[1:]
    assert heads[0].startswith("Abstract") and "Table 1" in heads and "Table 3" in heads
    assert heads.index("Table 1") < heads.index("Table 2") < heads.index("Table 3")
    assert re.search(r"^490 printed numbers: \d+ matches as printed, \d+ differs \(\d+ accepted by the baseline, 0 not\), "
                     r"\d+ contradicted by the paper, \d+ not reproducible from these data \(profile printed\)$", out,
                     flags=re.MULTILINE)
    header = next(line for line in out.splitlines() if line.startswith("id "))
    assert header.split() == ["id", "part", "published", "reproduced", "verdict", "baseline"]
    assert out.index("changed conclusion") < out.index("== Abstract")


def test_json_agrees_with_the_printed_table(canonical_run):
    result, out = canonical_run
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    printed = _printed_rows(result.stdout)
    frame = pd.DataFrame(data["comparison"]).astype({"reproduced": float, "difference": float})
    frame.attrs["baseline"] = "the shipped baseline"  # JSON keeps the column, not the frame's attrs
    shown = comparison_display(frame, load_study("ni2019")).set_index(["id", "part"])
    assert set(printed) == set(shown.index) and len(printed) == len(frame) == 490
    for key, (cells, verdict, baseline) in printed.items():
        row = shown.loc[key]
        assert verdict == row["verdict"] and baseline == row["baseline"]
        assert cells == [c for c in (row["published"], row["reproduced"]) if c], key
    counts = {v: 0 for v in data["summary"]}
    for _, verdict, _ in printed.values():
        counts[verdict] += 1
    assert counts == data["summary"]
    assert data["metadata"]["cohort"].startswith("canonical synthetic cohort")
    assert data["metadata"]["seed"] is None and data["metadata"]["profile"] == "printed"


def test_html_is_self_contained(canonical_run):
    _, out = canonical_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.IGNORECASE)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    from failpattern.report.figures import FIGURE_NAMES

    assert len(images) == len(FIGURE_NAMES)  # the canonical cohort supports every figure
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert 'id="exclusions"' in html and "Fig. 1a" in html


def test_existing_out_needs_force(canonical_run, tmp_path):
    _, out = canonical_run
    before = (out / "results.json").read_bytes()
    result = _run(reproduce, "--out", out)
    assert result.exit_code == 2 and "--force" in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""  # refused before any work
    assert (out / "results.json").read_bytes() == before


def test_bad_cohort_lists_problems_exit_2(tmp_path):
    result = _run(reproduce, "--cohort", MALFORMED / "many_problems.csv", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stdout == "" and not (tmp_path / "o").exists()
    rows = [line for line in result.stderr.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 5
    assert {"not_binary", "unknown_category", "duplicate_patient_id", "negative_time"} <= set(result.stderr.split())


def test_cohort_and_seed_are_exclusive_and_seed_simulates(tmp_path):
    result = _run(reproduce, "--cohort", synthetic_path("ni2019_exact.csv"), "--seed", "1", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "either --cohort or --seed" in result.stderr
    cohort, label = load_cohort_for_cli(None, 1)
    assert cohort.n_patients == 93 and "seed 1" in label


def test_check_on_the_canonical_cohort_names_exactly_the_known_contradictions():
    # The paper contradicts itself in places (the card records where): check counts those apart
    # and does not fail on them; every difference of the canonical cohort is in its shipped baseline.
    from failpattern.simulate.reconstruct import count_rules
    from failpattern.study import load_study

    card = load_study("ni2019")
    result = _run(check, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    contradicted = {r["id"] for r in doc["rows"] if r["verdict"] == "contradicted by the paper" and r["part"] == "value"}
    # the counts the reconstruction does not hold are the sides of the paper's contradictions it left
    kept_other_side = {r.id for r in count_rules(card) if not r.enforced}
    assert kept_other_side and kept_other_side <= contradicted
    # and every contradiction claimed is one the card records
    assert all(card.get(i).contradicted_by for i in contradicted)
    assert doc["failing"] == [] and doc["summary"]["contradicted by the paper"] >= len(contradicted)
    listed = _run(check, "--no-baseline")
    assert listed.exit_code == 1
    n = int(re.search(r"== (\d+) difference\(s\) from the paper ==", listed.stdout).group(1))
    assert n == doc["summary"]["differs"]


def test_check_fails_on_a_perturbed_cohort_and_names_the_numbers(tmp_path):
    df = pd.read_csv(synthetic_path("ni2019_exact.csv"))
    df = df.drop(columns=[c for c in df.columns if c.endswith("_date")])
    shift = 0.3 * df["pfs1_months"]
    df["pfs1_months"] = (df["pfs1_months"] + shift).round(2)
    df["os_months"] = (df["os_months"] + shift).round(2)  # keep PFS1 <= OS, as the format requires
    path = tmp_path / "perturbed.csv"
    df.to_csv(path, index=False)
    result = _run(check, "--cohort", path, "--profile", "near", "--baseline",
                  synthetic_path("ni2019_exact.baseline.csv"))
    assert result.exit_code == 1, result.output
    assert "check FAILED" in result.stdout
    line = next(line for line in result.stdout.splitlines() if line.startswith("pfs1.median.all ")
                and line.split()[1] == "value")
    assert line.split()[2] == "11.5"  # id, part, published, reproduced, as printed, baseline
    assert float(line.split()[3]) > 13 and line.split()[-1] == "changed"  # the baseline accepts 11.6


def test_check_bad_cohort_exit_2():
    result = _run(check, "--cohort", MALFORMED / "many_problems.csv")
    assert result.exit_code == 2 and "Traceback" not in result.output and "negative_time" in result.stderr


def test_analyze_values_only_with_exclusions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a folder of its own: a clone may hold a failpattern-out/ from `reproduce`
    df = pd.read_csv(synthetic_path("ni2019_exact.csv"))
    df.loc[[0, 1], "best_response"] = None
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    result = _run(analyze, path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "patients: 93" in out and "== Table 1 ==" in out
    assert "verdict" not in out and "matches as printed" not in out  # nothing to compare with
    excl = out[out.index("== Exclusions =="):]
    assert re.search(r"response\s+2 excluded", excl)
    assert "excluded from response: patient SIM001 (line 2): best_response is empty" in excl
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.csv"]  # analyze writes only with --out


def test_analyze_with_study_compares(tmp_path):
    result = _run(analyze, synthetic_path("ni2019_exact.csv"), "--study", "ni2019")
    assert result.exit_code == 1, result.output  # a file of one's own: no baseline unless given
    assert re.search(r"^490 printed numbers: ", result.stdout, flags=re.MULTILINE)
    assert "matches as printed" in result.stdout and "changed conclusion" in result.stdout
    result = _run(analyze, synthetic_path("ni2019_exact.csv"), "--study", "ni2019", "--baseline",
                  synthetic_path("ni2019_exact.baseline.csv"))
    assert result.exit_code == 0, result.output
    assert "0 not)" in result.stdout
    result = _run(analyze, synthetic_path("ni2019_exact.csv"), "--baseline", synthetic_path("ni2019_exact.baseline.csv"))
    assert result.exit_code == 2 and "give --study too" in result.stderr


def test_analyze_bad_file_exit_2():
    result = _run(analyze, MALFORMED / "many_problems.csv", "--out", "never-written")
    assert result.exit_code == 2 and "Traceback" not in result.output and not Path("never-written").exists()


def test_analyze_out_writes_the_report_of_a_small_cohort(tmp_path):
    """8 patients: several models cannot be fitted; the report says so instead of failing."""
    out = tmp_path / "mine"
    result = _run(analyze, MALFORMED / "valid_months.csv", "--out", out)
    assert result.exit_code == 0, result.output
    assert "== Analyses not run ==" in result.stdout
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["comparison"] is None and data["skipped"]
    drawn = {f["name"] for f in data["figures"] if f["files"]}
    assert {"fig1a", "fig2", "km_pfs1"} <= drawn
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Analyses not run" in md and "## Exclusions" in md and "published" not in md.lower()
