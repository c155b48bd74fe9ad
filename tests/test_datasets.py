"""failpattern.synthetic_cohort: the shipped cohorts, by public name."""

import pytest

import failpattern as fp
from failpattern.datasets import SYNTHETIC_COHORTS


@pytest.mark.parametrize("name", list(SYNTHETIC_COHORTS))
def test_every_shipped_cohort_loads(name):
    path = fp.synthetic_cohort(name)
    assert path.is_file() and path.name == name
    assert fp.load_cohort(path).n_patients == 93


def test_unknown_name_says_what_exists():
    with pytest.raises(fp.InputError, match="ni2019_exact.csv"):
        fp.synthetic_cohort("ni2019.csv")
