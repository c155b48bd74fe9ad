"""The data shipped with failpattern: the canonical synthetic cohorts and their baselines.

Why a public module: notebooks, scripts and teaching material need the path of the
canonical cohort (``fp.load_cohort(fp.synthetic_cohort())``) without reaching into
the package's private resource helpers; where the files live differs between a clone
and an installed wheel, and this module hides that.
"""

from __future__ import annotations

from pathlib import Path

from failpattern._resources import synthetic_path
from failpattern.errors import InputError

__all__ = ["SYNTHETIC_COHORTS", "synthetic_cohort"]

#: The shipped synthetic cohorts: file name -> what it is.
SYNTHETIC_COHORTS = {
    "ni2019_exact.csv": "the canonical cohort: Ni et al. 2019's published counts exactly (simulated, not patient data)",
    "ni2019_random_seed1.csv": "a random draw from the calibrated model, seed 1 (simulated, not patient data)",
}


def synthetic_cohort(name: str = "ni2019_exact.csv") -> Path:
    """Path of a synthetic cohort shipped with failpattern.

    Parameters
    ----------
    name : str
        One of :data:`SYNTHETIC_COHORTS` (default the canonical cohort).

    Returns
    -------
    pathlib.Path
        The CSV file, in the cohort format (read it with :func:`failpattern.load_cohort`).

    Raises
    ------
    InputError
        ``name`` is not a shipped cohort.

    Examples
    --------
    >>> import failpattern as fp
    >>> fp.load_cohort(fp.synthetic_cohort()).n_patients
    93
    """
    if name not in SYNTHETIC_COHORTS:
        raise InputError(f"synthetic cohort: choose one of {', '.join(SYNTHETIC_COHORTS)}; got {name!r}")
    return synthetic_path(name)
