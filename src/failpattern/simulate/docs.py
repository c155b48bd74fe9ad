"""Refresh the generated blocks of ``docs/simulator.md`` (parameter table, target ids, count rules).

Why: the documentation must show the values the simulator really uses. Run
``python -m failpattern.simulate.docs docs/simulator.md``; a test fails when the
file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from failpattern._docblocks import refresh_blocks
from failpattern.simulate.model import parameter_table
from failpattern.simulate.moments import TARGETS

__all__ = ["render", "targets_list"]


def targets_list() -> str:
    """The study-card ids the model computes, grouped by kind, as markdown."""
    counts = [i for i, t in TARGETS.items() if t.kind == "count"]
    other = [i for i, t in TARGETS.items() if t.kind != "count"]
    return ("**Counts** (expected value = mean over cohorts): " + ", ".join(f"`{i}`" for i in counts)
            + "\n\n**Medians** (expected value = median over cohorts): " + ", ".join(f"`{i}`" for i in other))


def count_rules_table() -> str:
    """The count rules of the reconstruction's skeleton
    (:func:`failpattern.simulate.reconstruct.count_rules` on the ni2019 card) as markdown."""
    from failpattern.simulate.reconstruct import count_rules
    from failpattern.study import load_study

    rows = ["| card id | count | patients counted | held |", "| --- | ---: | --- | --- |"]
    for r in count_rules(load_study("ni2019")):
        cells = " and ".join(f"`{t}`" for t in r.terms) if r.terms else "all"
        held = "yes" if r.enforced else f"no: {r.choice}"
        rows.append(f"| `{r.id}` | {r.target} | {cells} | {held} |")
    return "\n".join(rows)


BLOCKS = {"parameters": parameter_table, "targets": targets_list, "count_rules": count_rules_table}


def render(text: str) -> str:
    """``text`` with each ``<!-- begin NAME (generated) -->`` ... ``<!-- end NAME -->`` block refreshed."""
    return refresh_blocks(text, BLOCKS, "generated")


if __name__ == "__main__":  # pragma: no cover
    path = Path(sys.argv[1])
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
