"""``failpattern study`` and :func:`failpattern.replicate.study.replicate_study`.

A replicate study must be the same study whatever runs it (in this process,
local processes, a Dask cluster, after an interruption), must refuse to mix
two studies in one folder, and must write its table and figures. Replicate
counts are tiny here: the statistics of the summary are tested in
``test_replicate_summary.py`` and the speed in ``benchmarks/bench_study.py``.
"""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from failpattern.cli.study import study_cmd
from failpattern.errors import InputError
from failpattern.replicate import replicate_rng
from failpattern.replicate.study import (
    format_summary,
    replicate_study,
    study_task,
    summary_markdown,
    summary_table,
)
from failpattern.study import load_study

N = 4
SEED = 11


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The study run in this process: the result every other way of running must equal."""
    return replicate_study(N, seed=SEED, out_dir=tmp_path_factory.mktemp("ref"), workers=1,
                           progress=False)


def _run(*args):
    return CliRunner().invoke(study_cmd, [str(a) for a in args], catch_exceptions=False)


def test_task_is_picklable_and_seeded_by_its_generator():
    task = functools.partial(study_task, study="ni2019")
    assert pickle.loads(pickle.dumps(task)).func is study_task
    a, b = task(replicate_rng(SEED, 0), 0), task(replicate_rng(SEED, 0), 0)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["id", "value"] and a["id"].is_unique
    assert "pfs1.median.all" in set(a["id"])


def test_summary_table_has_every_published_number_the_plan_computes(reference):
    t = reference.table
    card = load_study("ni2019")
    assert set(t["id"]) <= set(card.numbers["id"])
    assert not t["method"].isin(["protocol", "cited"]).any()
    assert (t["n"] + t["n_missing"] == N).all()
    p = t[t["is_p_value"]]
    assert len(p) > 30 and p["power"].between(0, 1).all()
    assert t.loc[~t["is_p_value"], "power"].isna().all()
    ok = t["n"] > 0
    assert (t.loc[ok, "p05"] <= t.loc[ok, "median"]).all() and (t.loc[ok, "median"] <= t.loc[ok, "p95"]).all()
    assert t["published_percentile"].dropna().between(0, 100).all()
    assert t.loc[t["id"] == "cohort.enrolled.n", "median"].item() == 93


def test_same_seed_same_study_with_processes(reference, tmp_path):
    two = replicate_study(N, seed=SEED, out_dir=tmp_path, workers=2, progress=False)
    pd.testing.assert_frame_equal(two.results, reference.results)
    pd.testing.assert_frame_equal(two.table, reference.table)


def test_dask_local_cluster_gives_the_same_study(reference, tmp_path):
    import distributed  # the test extra installs it: never skipped
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        r = _run("--replicates", N, "--seed", SEED, "--out", tmp_path, "--scheduler", cluster.scheduler_address,
                 "--quiet")
    assert r.exit_code == 0, r.output
    got = pd.read_csv(tmp_path / "summary" / "summary.csv")
    want = pd.read_csv(_csv(reference.table, tmp_path / "want.csv"))
    pd.testing.assert_frame_equal(got, want)


def _csv(table, path):
    table.to_csv(path, index=False, float_format="%.6g")
    return path


def test_command_prints_and_writes_table_and_figures(reference, tmp_path):
    r = _run("--replicates", N, "--seed", SEED, "--out", tmp_path, "--workers", 1)
    assert r.exit_code == 0, r.output
    for name in ("summary.csv", "summary.md", "study_power.png", "study_power.svg", "study_estimates.png",
                 "study_estimates.svg"):
        assert (tmp_path / "summary" / name).stat().st_size > 0, name
    assert "pfs1.median.all" in r.output and "power" in r.output and "published numbers" in r.output
    table = pd.read_csv(tmp_path / "summary" / "summary.csv")
    assert len(table) == len(reference.table)
    md = (tmp_path / "summary" / "summary.md").read_text()
    assert md.count("\n| ") == len(table) + 1  # header + one line per number


def test_interrupted_study_resumes_and_other_parameters_need_force(tmp_path):
    assert _run("--replicates", N, "--seed", 3, "--out", tmp_path, "--workers", 1, "--quiet").exit_code == 0
    first = (tmp_path / "summary" / "summary.csv").read_text()
    chunks = sorted((tmp_path / "replicates" / "chunks").iterdir())
    chunks[-1].unlink()  # as if stopped before the last chunk
    r = _run("--replicates", N, "--seed", 3, "--out", tmp_path, "--workers", 1)
    assert r.exit_code == 0 and "already on disk" in r.output
    assert (tmp_path / "summary" / "summary.csv").read_text() == first
    other = _run("--replicates", N, "--seed", 4, "--out", tmp_path, "--workers", 1, "--quiet")
    assert other.exit_code == 2 and "holds a study with other parameters (seed: 3" in other.output and "--force" in other.output
    forced = _run("--replicates", N, "--seed", 4, "--out", tmp_path, "--workers", 1, "--quiet", "--force")
    assert forced.exit_code == 0
    assert (tmp_path / "summary" / "summary.csv").read_text() != first


def test_bad_options_exit_2(tmp_path):
    assert _run("--replicates", 2, "--workers", 1, "--scheduler", "tcp://x:1", "--out", tmp_path).exit_code == 2
    assert _run("--replicates", 2, "--study", "no_such_card_xyz", "--out", tmp_path).exit_code == 2
    assert _run("--replicates", 0, "--out", tmp_path).exit_code == 2
    (tmp_path / "file").write_text("x")
    assert _run("--replicates", 2, "--out", tmp_path / "file").exit_code == 2
    with pytest.raises(InputError):
        replicate_study(2, out_dir=tmp_path / "s", n_patients=0, workers=1)


def test_text_and_markdown_tables_are_aligned(reference):
    text = format_summary(reference.table.head(8)).splitlines()
    header, rule = text[0], text[1]
    assert header.startswith("id") and set(rule) <= {"-", " "}
    starts = [i for i, c in enumerate(rule) if c == "-" and (i == 0 or rule[i - 1] == " ")]
    ends = [i for i in range(len(rule)) if rule[i] == "-" and (i + 1 == len(rule) or rule[i + 1] == " ")]
    for line in text[2:]:  # numbers end where their column ends
        assert line[ends[-1]] != " " and line[starts[1] - 2:starts[1]] == "  "
    md = summary_markdown(reference.table.head(3), title="t")
    assert md.startswith("# t") and sum(line.startswith("|---") for line in md.splitlines()) == 1


def test_summary_needs_no_comparison_only_values():
    card = load_study("ni2019")
    results = pd.DataFrame({"replicate": np.repeat([0, 1, 2], 2),
                            "id": ["pfs1.median.all", "pfs1.prior_rt.p"] * 3,
                            "value": [10.0, 0.01, 12.0, 0.2, 11.0, 0.04]})
    t = summary_table(results, card)
    assert list(t["id"]) == ["pfs1.median.all", "pfs1.prior_rt.p"] or set(t["id"]) == {
        "pfs1.median.all", "pfs1.prior_rt.p"}
    p = t.set_index("id")
    assert p.loc["pfs1.prior_rt.p", "power"] == pytest.approx(2 / 3)
    assert p.loc["pfs1.median.all", "median"] == 11.0
    assert p.loc["pfs1.median.all", "published_percentile"] == pytest.approx(200 / 3)  # 11.5: above 10 and 11
