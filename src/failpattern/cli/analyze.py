"""``failpattern analyze FILE``: load and check a researcher's cohort, and say what it supports.

Why: before any statistics, a clinician needs to know whether the file is
right and which of the paper's analyses it allows. This command is that first
step; on a bad file it prints every problem (line, patient, column, value,
rule) to stderr and exits with code 2, never a traceback. The full analysis
arrives with ``failpattern reproduce``.
"""

from __future__ import annotations

from pathlib import Path

import click

from failpattern.cohort import load_cohort
from failpattern.cohort.dates import DAYS_PER_MONTH
from failpattern.cohort.problems import CohortError, format_problems
from failpattern.errors import InputError

__all__ = ["analyze", "summary_text"]

EXIT_BAD_INPUT = 2


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
            out.append(f"  no   {row.analysis:<{width}}  needs {row.missing}  - {row.title}")
    for key, rows in cohort.excluded.items():
        for e in rows:
            out.append(f"  excluded from {key}: patient {e.patient_id} (line {e.line}): {e.reason}")
    if cohort.warnings:
        out += ["", format_problems(cohort.warnings, "warnings")]
    if study:
        out += ["", f"study card: {study} (comparison with the paper arrives with `failpattern reproduce`)"]
    return "\n".join(out)


@click.command("analyze", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--study", "study", metavar="CARD", default=None,
              help="Study card (name such as ni2019, or a .yaml path) the cohort will be compared with.")
@click.option("--days-per-month", type=float, default=DAYS_PER_MONTH, show_default=True,
              help="Month length used when durations are derived from dates (365.25 / 12).")
@click.option("--encoding", default=None, help="Text encoding of a CSV file (default UTF-8).")
def analyze(file: Path, study: str | None, days_per_month: float, encoding: str | None) -> None:
    """Load and check a cohort FILE (.csv, .xlsx, .parquet); summarise what it supports.

    Prints the number of patients, events per endpoint, the columns found and
    which of the Ni et al. 2019 analyses the file supports, with the patients
    each one would leave out. On problems, lists all of them (line, patient,
    column, value, rule) on stderr and exits with code 2. The file format is in
    docs/cohort-format.md.

    For now this only loads and validates: the full analysis arrives with
    `failpattern reproduce`.
    """
    try:
        card = _study(study)
        cohort = load_cohort(file, days_per_month=days_per_month, encoding=encoding)
    except CohortError as exc:
        click.echo(format_problems(exc.problems, str(file)), err=True)
        click.echo("fix these in the file and run again; the format is described in "
                   "docs/cohort-format.md", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    click.echo(summary_text(cohort, card))
