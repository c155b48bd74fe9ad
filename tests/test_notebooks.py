"""The teaching notebooks in notebooks/ run top to bottom and are stored without outputs.

Each notebook is executed in a fresh Python kernel with nbclient, from the notebooks/ folder
(so relative paths resolve as they do for a reader), with a deadline for the whole notebook
(``FAILPATTERN_NOTEBOOK_TIMEOUT`` seconds, default 120; the notebooks are written to finish
in under 60 s on a laptop). Any cell that raises fails the test, with the cell and the
traceback in the message. The .ipynb files are the source of truth, and they are kept
without outputs so that diffs show only what a person changed: the second test fails if any
code cell has outputs or an execution count.

Executing needs nbclient, nbformat and ipykernel, which the ``test`` extra installs; without
them the execution tests fail (they are never skipped).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {
    "01-kaplan-meier-and-log-rank.ipynb",
    "02-cox-models.ipynb",
    "03-competing-risks.ipynb",
    "04-reproducing-ni-2019.ipynb",
    "05-simulation-study.ipynb",
}
TIMEOUT = float(os.environ.get("FAILPATTERN_NOTEBOOK_TIMEOUT", "120"))


def test_expected_notebooks_are_present():
    missing = EXPECTED - {p.name for p in NOTEBOOKS}
    assert not missing, f"missing from {NOTEBOOK_DIR}: {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, cell in enumerate(nb["cells"])
             if cell.get("cell_type") == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (
        f"{path.name}: code cells {dirty} (0-based) have outputs or an execution count; clear "
        f"them before committing, e.g. `jupyter nbconvert --clear-output --inplace notebooks/{path.name}` "
        "or Edit > Clear Outputs of All Cells in Jupyter, then save")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_top_to_bottom(path):
    import ipykernel  # noqa: F401  (the kernel the notebooks run in)
    import nbclient
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    start = time.monotonic()
    deadline = start + TIMEOUT

    def remaining(cell) -> int:  # every cell gets what is left of the notebook's budget
        return max(1, math.ceil(deadline - time.monotonic()))

    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout_func=remaining, allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    # the kernel spec runs "python": make that this interpreter, which has failpattern installed
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    try:
        client.execute(env=env)
    except CellTimeoutError as err:
        pytest.fail(f"{path.name} did not finish within {TIMEOUT:g} s "
                    f"(FAILPATTERN_NOTEBOOK_TIMEOUT): {err}", pytrace=False)
    except CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell raised an error:\n{err}", pytrace=False)
    elapsed = time.monotonic() - start
    assert elapsed <= TIMEOUT, f"{path.name} took {elapsed:.0f} s, more than {TIMEOUT:g} s"
