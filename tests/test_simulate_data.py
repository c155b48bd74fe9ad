"""The canonical synthetic cohorts in data/synthetic/ regenerate byte for byte."""

from __future__ import annotations

import os

import pytest

from failpattern._resources import synthetic_path
from failpattern.cli.simulate import cohort_csv
from failpattern.cohort import load_cohort
from failpattern.simulate import simulate

CANONICAL = [("ni2019_exact.csv", "exact", 1), ("ni2019_random_seed1.csv", "random", 1)]


@pytest.mark.parametrize("name, mode, seed", CANONICAL)
def test_canonical_cohort_regenerates_byte_for_byte(name, mode, seed):
    if mode == "exact" and not os.environ.get("FAILPATTERN_SLOW_TESTS"):
        pytest.skip("exact mode (the reconstruction) takes about a minute of CPU; set FAILPATTERN_SLOW_TESTS=1 to "
                    "regenerate the file here through simulate() (.ci/run does)")
    path = synthetic_path(name)
    assert path.read_bytes() == cohort_csv(simulate(mode=mode, seed=seed)).encode("utf-8"), \
        f"regenerate with: failpattern simulate --mode {mode} --seed {seed} --out data/synthetic/{name} --force"


@pytest.mark.parametrize("name, mode, seed", CANONICAL)
def test_canonical_cohort_loads(name, mode, seed):
    cohort = load_cohort(synthetic_path(name))
    assert cohort.n_patients == 93 and not cohort.warnings


def test_readme_names_the_commands():
    text = synthetic_path("README.md").read_text(encoding="utf-8")
    for name, mode, seed in CANONICAL:
        assert f"failpattern simulate --mode {mode}" in text and f"--seed {seed} --out data/synthetic/{name}" in text
