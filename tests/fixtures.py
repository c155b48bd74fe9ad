"""Reading the R reference fixtures in ``tests/reference/``.

A fixture is long-format CSV (``case, quantity, i, value``) written by the R
script of the same name; see ``tests/reference/README.md``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from failpattern._resources import exact_float_csv_options

REFERENCE = Path(__file__).parent / "reference"


@cache
def _fixture(name: str) -> dict[tuple[str, str], np.ndarray]:
    frame = pd.read_csv(REFERENCE / f"{name}.csv", comment="#", na_values=["NA"],
                        keep_default_na=False, **exact_float_csv_options())
    out = {}
    for (case, quantity), rows in frame.groupby(["case", "quantity"], sort=False):
        out[(case, quantity)] = rows.sort_values("i")["value"].to_numpy(dtype=float)
    return out


def reference(name: str, case: str, quantity: str) -> np.ndarray:
    """Values R computed for ``quantity`` in ``case`` of fixture ``name``."""
    table = _fixture(name)
    if (case, quantity) not in table:
        raise KeyError(f"fixture {name}.csv has no ({case!r}, {quantity!r})")
    return table[(case, quantity)]


def cases(name: str) -> list[str]:
    return sorted({c for c, _ in _fixture(name)})


@cache
def dataset(name: str) -> pd.DataFrame:
    """A public dataset exported by ``tests/reference/datasets.R``."""
    return pd.read_csv(REFERENCE / "datasets" / f"{name}.csv", **exact_float_csv_options())
