"""Bootstrap replicate studies: resampling a cohort's patients, the plan on each resample, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from failpattern._resources import synthetic_path
from failpattern.cohort import load_cohort
from failpattern.errors import InputError
from failpattern.replicate import store
from failpattern.replicate.study import bootstrap_task, replicate_study
from failpattern.study import load_study, run_plan

CANONICAL = synthetic_path("ni2019_exact.csv")


def test_resample_repeats_patients_with_unique_ids_and_their_source_lines():
    c = load_cohort(CANONICAL)
    r = c.resample(np.array([4, 0, 4, 4]))
    ids = c.data["patient_id"].tolist()
    assert r.data["patient_id"].tolist() == [ids[4], ids[0], f"{ids[4]}#2", f"{ids[4]}#3"]
    assert r.lines == (c.lines[4], c.lines[0], c.lines[4], c.lines[4]) and r.n_patients == 4
    assert (r.data.dtypes == c.data.dtypes).all()
    pd.testing.assert_series_equal(r.data["pfs1_months"].iloc[[0, 2]].reset_index(drop=True),
                                   c.data["pfs1_months"].iloc[[4, 4]].reset_index(drop=True))
    assert c.n_patients == 93  # the source is unchanged
    for bad, match in (([93], "position 93"), ([-1], "position -1"), ([0.5], "whole-number")):
        with pytest.raises(InputError, match=match):
            c.resample(np.array(bad))


def test_a_bootstrap_replicate_is_the_plan_on_the_drawn_patients():
    rng, again = (store.replicate_rng(7, 3) for _ in range(2))
    got = bootstrap_task(rng, 3, cohort=str(CANONICAL))
    rows = again.integers(0, 93, size=93)
    want = run_plan(load_cohort(CANONICAL).resample(rows), card=load_study("ni2019")).values
    want = want.dropna(subset=["value"]).set_index("id")["value"]
    got = got.dropna(subset=["value"]).set_index("id")["value"]
    pd.testing.assert_series_equal(got.sort_index(), want.astype(float).sort_index(), check_names=False)


def test_bootstrap_study_is_seeded_says_its_generator_and_refuses_bad_requests(tmp_path):
    a = replicate_study(6, seed=5, out_dir=tmp_path / "a", workers=1, progress=False, generator="bootstrap")
    b = replicate_study(6, seed=5, out_dir=tmp_path / "b", workers=1, progress=False, generator="bootstrap",
                        cohort=CANONICAL)
    pd.testing.assert_frame_equal(a.results, b.results)
    assert a.generator == "bootstrap resamples of ni2019_exact.csv, 93 patients each"
    model = replicate_study(2, seed=5, out_dir=tmp_path / "m", workers=1, progress=False)
    assert "calibrated model" in model.generator
    # resampling the cohort leaves every count's distribution centred on the cohort's own
    n = a.table.set_index("id").loc["cohort.enrolled.n"]
    assert n["median"] == 93 and n["p05"] == n["p95"] == 93
    with pytest.raises(InputError, match="generator"):
        replicate_study(2, out_dir=tmp_path / "x", generator="jackknife", progress=False)
    with pytest.raises(InputError, match="only a bootstrap"):
        replicate_study(2, out_dir=tmp_path / "y", cohort=CANONICAL, progress=False)
    with pytest.raises(InputError, match="not a file"):
        replicate_study(2, out_dir=tmp_path / "z", generator="bootstrap", cohort=tmp_path, progress=False)


def test_cli_bootstrap_names_the_generator(tmp_path):
    from failpattern.cli import main

    r = CliRunner().invoke(main, ["study", "--replicates", "4", "--workers", "1", "--generator", "bootstrap",
                                  "--out", str(tmp_path / "s"), "--quiet"])
    assert r.exit_code == 0, r.output
    head = (tmp_path / "s" / "summary" / "summary.md").read_text(encoding="utf-8").splitlines()[0]
    assert "bootstrap resamples of ni2019_exact.csv" in head


def test_cli_cohort_needs_the_bootstrap(tmp_path):
    from failpattern.cli import main

    r = CliRunner().invoke(main, ["study", "--replicates", "2", "--cohort", str(CANONICAL), "--out",
                                  str(tmp_path / "s"), "--quiet"])
    assert r.exit_code == 2 and "--generator bootstrap" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "s").exists()
