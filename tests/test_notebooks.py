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
    "06-immortal-time-bias.ipynb",
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


# ------------------------------------------------------------------ rendered copies, public API

ROOT = NOTEBOOK_DIR.parent


def test_rendered_copies_are_up_to_date():
    """docs/notebooks/ has a page for every notebook, with the notebook's current code.

    ``tools/render_notebooks.py --check`` executes nothing and compares code only (outputs
    depend on the machine). After editing a notebook, re-render with
    ``python tools/render_notebooks.py``.
    """
    import subprocess

    run = subprocess.run([sys.executable, str(ROOT / "tools" / "render_notebooks.py"), "--check"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(source: str) -> list[str]:
    """Private failpattern names a code cell imports or reaches through attributes."""
    import ast

    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    tree = ast.parse("\n".join(lines))
    roots = set()  # local names bound to failpattern modules or objects
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "failpattern":
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"import {alias.name}")
                    roots.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "failpattern":
            for alias in node.names:
                parts = [*node.module.split("."), alias.name]
                if any(_private(part) for part in parts):
                    found.append(f"from {node.module} import {alias.name}")
                roots.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            chain.reverse()
            if isinstance(base, ast.Name) and base.id in roots and any(map(_private, chain)):
                first = next(i for i, part in enumerate(chain) if _private(part))
                found.append(".".join([base.id, *chain[:first + 1]]))  # up to the private part
    return sorted(set(found))


def test_private_use_detector():
    code = ("%matplotlib inline\nimport failpattern as fp\nfrom failpattern._resources import x\n"
            "from failpattern.plots import plot_km\nimport failpattern.stats._km\n"
            "fp.stats._cox.fit()\nplot_km._cache\nfp.__version__\npd.DataFrame()._data\n")
    assert _private_uses(code) == [
        "fp.stats._cox", "from failpattern._resources import x", "import failpattern.stats._km",
        "plot_km._cache"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_use_only_the_public_api(path):
    """No code cell imports or reaches a private failpattern name (one starting with "_")."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") == "code":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            found += [f"cell {i}: {use}" for use in _private_uses(source)]
    assert not found, (f"{path.name} uses private failpattern names; use the public API "
                       "(failpattern.__all__ and the sub-packages' __all__):\n  " + "\n  ".join(found))
