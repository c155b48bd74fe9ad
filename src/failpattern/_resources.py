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
