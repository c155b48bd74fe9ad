"""Where the data shipped with failpattern live.

In a wheel the repository's ``data/`` folder is installed as
``failpattern/_data``; in an editable install (a clone) it is read from the
repository itself. Both give the same files.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir() -> Path:
    """The folder holding ``studies/`` and ``synthetic/``."""
    installed = _PACKAGE / "_data"
    if installed.is_dir():
        return installed
    repo = _PACKAGE.parent.parent / "data"
    if repo.is_dir():
        return repo
    raise FileNotFoundError("failpattern's data folder is missing; reinstall the package")


def study_path(name: str) -> Path:
    """Path of the study card ``name`` (e.g. ``"ni2019"``) shipped with the package."""
    return data_dir() / "studies" / f"{name}.yaml"


def synthetic_path(name: str) -> Path:
    """Path of a canonical synthetic cohort shipped with the package."""
    return data_dir() / "synthetic" / name


def exact_float_csv_options() -> dict:
    """``pandas.read_csv`` options that read every float exactly as written.

    pandas < 3 parses floats with a fast routine that can be one unit in the
    last place off (0.3 may come back as 0.2999999999999999, which splits ties);
    ``float_precision="round_trip"`` fixes that. pandas 3 parses exactly by
    default and deprecates the option.
    """
    import pandas as pd

    major = int(pd.__version__.split(".")[0])
    return {"float_precision": "round_trip"} if major < 3 else {}
