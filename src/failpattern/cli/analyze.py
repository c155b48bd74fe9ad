"""``failpattern analyze FILE``: the paper's analysis plan on a researcher's own cohort.

Why: a clinician with their own patients wants the analyses of Ni et al. 2019
on them — and first needs to know whether the file is right and which
analyses it allows. So the command loads and checks the file (on a bad file
it prints every problem — line, patient, column, value, rule — to stderr and
exits with code 2, never a traceback), says what the file supports, runs the
plan, and prints the reproduced values and the patients each analysis left
out ("Exclusions"). With ``--study`` every value is also set beside the
published number with a verdict, as ``failpattern reproduce`` does; without
it there is nothing to compare with, so no published or verdict columns.

With ``--out`` the same report folder as ``reproduce`` is written (HTML,
Markdown, JSON, figures). Without ``--out`` nothing is written: ``analyze``
stays usable as the quick check of a file, run again and again while fixing
it, without filling the folder with reports.
"""

from __future__ import annotations

from pathlib import Path

import click

from failpattern.cli.common import (
    EXIT_DISAGREE,
    Command,
    OutFolder,
    check_out_for_cli,
    PROFILES,
    changed_text,
    judge_for_cli,
    comparison_text,
    exclusions_text,
    fail,
    load_card_for_cli,
    load_cohort_for_cli,
    n_disagreeing,
    run_for_cli,
    summary_line,
    write_for_cli,
)
from failpattern.cohort.dates import DAYS_PER_MONTH
from failpattern.cohort.problems import format_problems
from failpattern.errors import InputError

__all__ = ["analyze", "summary_text"]


def _study(card: str | None) -> str | None:
    """The study card as text for the summary; a card that cannot be found is bad input."""
    if card is None:
        return None
    path = Path(card)
    if path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        if not path.is_file():
            raise InputError(f"--study: no study card file {card!r}")
        return str(path)
    from failpattern._resources import data_dir, study_path

    if not study_path(card).is_file():
        try:
            known = sorted(p.stem for p in (data_dir() / "studies").glob("*.yaml"))
        except FileNotFoundError:
            known = []
        raise InputError(f"--study: no study card named {card!r}; available: {', '.join(known) or 'none yet'}")
    return card


def _needs(missing) -> str:
    """The missing columns, a long "one of" list cut to its count and first three names."""
    parts = []
    for m in missing:
        if m.startswith("one of "):
            cols = m[len("one of "):].split(", ")
            if len(cols) > 4:
                m = f"one of {len(cols)} columns ({', '.join(cols[:3])}, ...)"
        parts.append(m)
    return ", ".join(parts)


def summary_text(cohort, study: str | None = None) -> str:
    """The summary ``analyze`` prints: patients, events, columns, and the analyses supported."""
    out = [f"cohort: {cohort.source}", f"patients: {cohort.n_patients}", "", "endpoints:"]
    for row in cohort.events().itertuples(index=False):
        out.append(f"  {row.endpoint:<5} {row.events:>4} events  {row.censored:>4} censored"
                   f"  ({row.patients} patients)")
    counts = cohort.pattern_counts()
    out.append("  first failure: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    out += ["", f"columns present ({len(cohort.columns_present)}): {', '.join(cohort.columns_present)}"]
    if cohort.derived:
        out.append(f"derived by the loader: {', '.join(cohort.derived)} "
                   f"({cohort.days_per_month:g} days per month)")
    if cohort.extra_columns:
        out.append(f"columns not in the format (kept, unused): {', '.join(cohort.extra_columns)}")
    table = cohort.analyses()
    n_ok = int(table["supported"].sum())
    out += ["", f"analyses this file supports: {n_ok} of {len(table)}"]
    width = max(len(k) for k in table["analysis"])
    for row in table.itertuples(index=False):
        if row.supported:
            out.append(f"  yes  {row.analysis:<{width}}  {row.included} included, {row.excluded} excluded"
                       f"  - {row.title}")
        else:
            out.append(f"  no   {row.analysis:<{width}}  needs {_needs(cohort.missing_for(row.analysis))}"
                       f"  - {row.title}")
    if any(", ...)" in line for line in out):
        out.append("  (the full column list of each analysis: docs/cohort-format.md, section \"Analyses\")")
    excluded = [(key, e) for key, rows in cohort.excluded.items() for e in rows]
    for key, e in excluded[:50]:  # a large cohort can have millions: all are counted under Exclusions
        out.append(f"  excluded from {key}: patient {e.patient_id} (line {e.line}): {e.reason}")
    if len(excluded) > 50:
        out.append(f"  ... and {len(excluded) - 50} more (counted under Exclusions below)")
    if cohort.warnings:
        out += ["", format_problems(cohort.warnings, "warnings")]
    if study:
        out += ["", f"study card: {study} (numbers compared with the paper, as `failpattern reproduce` does)"]
    return "\n".join(out)


@click.command("analyze", cls=Command, short_help="Validate a cohort file and run the paper's analyses on it.",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--study", "study", metavar="CARD", default=None,
              help="Study card (name such as ni2019, or a .yaml path): compare every value with its published "
                   "number, as `failpattern reproduce` does.")
@click.option("--out", type=OutFolder(), default=None,
              help="Write the report folder here (report.html, report.md, results.json, figures/). "
                   "Default: print only.")
@click.option("--force", is_flag=True,
              help="Replace --out if it is a report folder failpattern wrote (only once the new report is "
                   "complete; never the current or home folder, a folder holding FILE, or a folder with "
                   "files failpattern did not write).")
@click.option("--problems-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every problem of a bad file here (the console shows the first 50).")
@click.option("--profile", "profile", type=click.Choice(PROFILES), default=PROFILES[0], show_default=True,
              help="How each number is judged (with --study): printed (as the paper rounds it) or near.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --study: accepted differences (written by failpattern check --write-baseline); only "
                   "other differences make the exit code 1.")
@click.option("--days-per-month", type=float, default=DAYS_PER_MONTH, show_default=True,
              help="Month length used when durations are derived from dates (365.25 / 12).")
@click.option("--encoding", default=None, help="Text encoding of a CSV file (default UTF-8).")
@click.option("--strict", is_flag=True,
              help="Make the cohort's plausibility warnings (durations that look like days, ages outside 15-100, "
                   "...; docs/cohort-format.md) errors: exit 2.")
def analyze(file: Path, study: str | None, out: Path | None, force: bool, problems_file: Path | None, profile: str,
            baseline: Path | None,
            days_per_month: float, encoding: str | None, strict: bool) -> None:
    """Run the Ni et al. 2019 analysis plan on your cohort FILE (.csv, .xlsx, .parquet).

    Checks the file first: on problems, lists all of them (line, patient,
    column, value, rule) on stderr and exits with code 2 (the format is in
    docs/cohort-format.md). Then prints the patients, events, columns and the
    analyses the file supports, every reproduced value by section of the paper,
    and the patients each analysis excluded. With --study, each value is set
    beside the published number with a verdict (as `failpattern reproduce`
    does for the canonical cohort). With --out, writes the report folder.
    """
    try:
        card_name = _study(study)
    except InputError as exc:
        fail(f"error: {exc}")
    if baseline is not None and card_name is None:
        fail("error: --baseline accepts differences from a paper's numbers: give --study too")
    if out is not None:
        check_out_for_cli(out, force, (file,))
    cohort, _ = load_cohort_for_cli(file, days_per_month=days_per_month, encoding=encoding,
                                    problems_file=problems_file, strict=strict)
    card = load_card_for_cli(card_name)  # the plan is the ni2019 card's unless --study names another
    click.echo(summary_text(cohort, card_name))
    plan = run_for_cli(cohort, card)
    comparison = judged = None
    click.echo("")
    if card_name is not None:
        judged = judge_for_cli(plan, card, profile, canonical=False, baseline=baseline)
        comparison = judged.comparison
        changed = changed_text(comparison)
        if changed:
            click.echo(changed + "\n")
        click.echo(comparison_text(comparison, card))
        click.echo("")
        click.echo(summary_line(judged))
    else:
        from failpattern.report.tables import text_table, values_display

        click.echo(text_table(values_display(plan.values, card), ["id", "value", "ci", "n_used", "n_excluded"],
                              right=("value", "n_used", "n_excluded")))
    if len(plan.skipped):
        click.echo("")
        click.echo("== Analyses not run ==")
        for r in plan.skipped.itertuples():
            click.echo(f"  {r.analysis}: {r.reason}")
    click.echo("")
    click.echo(exclusions_text(plan))
    if out is not None:
        path = write_for_cli(plan, comparison, out, force, cohort_label=str(file), card=card, mode="analysis",
                             profile=profile if comparison is not None else None, inputs=(file,))
        click.echo("")
        click.echo(f"report: {path / 'report.html'} (also report.md, results.json, figures/)")
    if n_disagreeing(judged):
        raise SystemExit(EXIT_DISAGREE)
