"""``failpattern card``: show a study card, its consistency and its exact aggregates.

A thin layer over :func:`failpattern.study.load_study` and
:func:`failpattern.study.recompute_aggregates`. A card that breaks the schema
prints every problem on stderr and exits with status 2 (as ``failpattern analyze``
does for a bad cohort file), without a traceback.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import click

from failpattern.cli.common import Command
from failpattern.errors import FailpatternError

if TYPE_CHECKING:  # pandas is imported only when the command runs, not when it is registered
    import pandas as pd

__all__ = ["card"]


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    """Plain-text table with left-aligned, space-separated columns."""
    cells = [[_fmt(v) for v in row] for row in frame[columns].itertuples(index=False)]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def _summary(study) -> str:
    numbers = study.numbers
    meta = study.study
    out = [f"{meta.get('citation', study.name)}  (card '{study.name}', {study.path})",
           f"n = {meta.get('n')}; doi: {meta.get('doi') or 'not recorded'}",
           "software: " + "; ".join(f"{k} = {v.get('name', '')} {v.get('version', '')}".strip()
                                    for k, v in (meta.get("software") or {}).items()),
           f"{len(numbers)} numbers, {len(study.populations)} populations, {len(study.checks)} checks", "",
           "populations:"]
    out += [f"  {p.name:<30} n = {'' if p.n is None else p.n:<5} {p.description}" for p in study.populations.values()]
    out += ["", "numbers by analysis and method:", _table(study.summary(), ["analysis", "method", "numbers"]), ""]
    cons = study.consistency()
    bad = cons[cons.status == "FAIL"]
    out.append(f"consistency: {int((cons.status == 'ok').sum())} ok, {int((cons.status == 'noted').sum())} "
               f"mismatches explained by an inconsistency note, {len(bad)} unexplained")
    flagged = numbers[numbers.inconsistency.notna()]
    out += ["", f"inconsistencies recorded ({len(flagged)} numbers):"]
    out += [f"  {r.id}: {r.inconsistency}" for r in flagged.itertuples()]
    if len(bad):
        out += ["", "UNEXPLAINED MISMATCHES:", _table(bad, ["kind", "id", "printed", "expected", "detail"])]
    return "\n".join(out)


@click.command("card", cls=Command)
@click.argument("name_or_path", required=False, default="ni2019")
@click.option("--aggregates", is_flag=True, help="Recompute from the published counts and compare (exact reproduction).")
@click.option("--all", "show_all", is_flag=True, help="With --aggregates: also list percentages and sums, not only tests.")
def card(name_or_path: str, aggregates: bool, show_all: bool) -> None:
    """Show the study card NAME_OR_PATH (default: ni2019): summary, or --aggregates."""
    from failpattern.study import load_study, recompute_aggregates

    try:
        study = load_study(name_or_path)
        if not aggregates:
            click.echo(_summary(study))
            return
        agg = recompute_aggregates(study)
    except FailpatternError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    shown = (agg if show_all else agg[~agg.kind.isin(["proportion", "sum"])]).copy()
    from failpattern.study.judge import format_printed

    shown["published"] = [format_printed(r.published, int(r.decimals), r.relation) for r in shown.itertuples()]
    click.echo(_table(shown, ["id", "kind", "published", "recomputed", "pearson", "yates", "fisher", "g",
                              "n_minus_1", "matches", "verdict"]))
    counts = agg.verdict.value_counts()
    click.echo("")
    click.echo(f"{len(agg)} recomputations: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
