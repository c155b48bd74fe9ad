"""``failpattern reproduce`` and ``failpattern check``: the paper's every number, re-computed and judged.

Why: this is the main job of failpattern. One command runs the whole analysis
plan of Ni et al. 2019 on a cohort — the canonical synthetic cohort shipped
with the package unless ``--cohort`` or ``--seed`` says otherwise — and
prints, section by section of the paper, the published value beside the
reproduced one with the verdict, then writes a report folder (HTML, Markdown,
JSON, figures). ``check`` is the same run reduced to a yes/no for scripts and
CI: exit 0 when every number that has a tolerance lies inside it.

Exit codes (both commands): 0 success; 1 (``check`` only) numbers outside
their tolerance; 2 bad input — a cohort file that breaks the format (every
problem is listed, aligned, on stderr), an unknown study card, an existing
``--out`` without ``--force``. Never a traceback for bad input.

"Not reproducible from these data" (design constants, cited numbers,
quantities the cohort format has no column for, analyses the cohort cannot
support) are not failures for ``check``: they cannot be right or wrong. They
are counted in its summary line, so that a cohort that silently supports
little does not pass unnoticed.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

__all__ = ["EXIT_BAD_INPUT", "EXIT_OUTSIDE", "check", "comparison_text", "reproduce"]

EXIT_OUTSIDE = 1
EXIT_BAD_INPUT = 2
DEFAULT_OUT = "failpattern-out"
CANONICAL = "ni2019_exact.csv"
_PROFILES = ("default", "strict", "loose")


class _BadInput(Exception):
    """Raised inside the commands; turned into a message on stderr and exit code 2."""


def _fail(lines: str) -> None:
    click.echo(lines, err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def load_cohort_for_cli(cohort_file: Path | None, seed: int | None, *, days_per_month: float | None = None,
                        encoding: str | None = None):
    """(Cohort, label) for the options; prints every problem and exits 2 on a bad cohort.

    Parameters
    ----------
    cohort_file : Path or None
        A cohort file; None with ``seed`` None: the canonical synthetic cohort.
    seed : int or None
        Simulate a random cohort with this seed instead (``simulate(seed=...)``).
    """
    from failpattern.cohort import load_cohort
    from failpattern.cohort.problems import CohortError, format_problems
    from failpattern.errors import FailpatternError

    kwargs = {} if days_per_month is None else {"days_per_month": days_per_month}
    if encoding is not None:
        kwargs["encoding"] = encoding
    try:
        if cohort_file is not None and seed is not None:
            raise _BadInput("error: give either --cohort or --seed, not both")
        if seed is not None:
            from failpattern.simulate import simulate

            frame = simulate(seed=seed)
            return load_cohort(frame), f"simulated cohort (random mode, seed {seed}; not patient data)"
        if cohort_file is None:
            from failpattern._resources import synthetic_path

            path = synthetic_path(CANONICAL)
            return load_cohort(path, **kwargs), f"canonical synthetic cohort {CANONICAL} (simulated, not patient data)"
        return load_cohort(cohort_file, **kwargs), str(cohort_file)
    except CohortError as exc:
        _fail(format_problems(exc.problems, str(cohort_file or CANONICAL)) + "\nfix these in the file and run "
              "again; the format is described in docs/cohort-format.md")
    except _BadInput as exc:
        _fail(str(exc))
    except FailpatternError as exc:
        _fail(f"error: {exc}")


def load_card_for_cli(name_or_path: str | None):
    """The study card (``ni2019`` when None); prints the card's problems and exits 2 when it cannot be read."""
    from failpattern.errors import FailpatternError
    from failpattern.study.card import load_study

    try:
        return load_study(name_or_path or "ni2019")
    except FailpatternError as exc:
        _fail(f"error: --study: {exc}")


def run_for_cli(cohort, card):
    """run_plan, with library errors turned into exit 2."""
    from failpattern.errors import FailpatternError
    from failpattern.study.plan import run_plan

    try:
        return run_plan(cohort, card=card)
    except FailpatternError as exc:
        _fail(f"error: the analysis plan could not run on this cohort: {exc}")


def comparison_text(comparison, card) -> str:
    """The console table: blocks by paper section, aligned id | published | reproduced | difference | verdict."""
    from failpattern.report.tables import comparison_display, text_table

    shown = comparison_display(comparison, card)
    return text_table(shown, ["id", "published", "reproduced", "difference", "verdict"],
                      right=("published", "reproduced", "difference"))


def summary_line(comparison) -> str:
    """``422 numbers: 353 within tolerance, 16 outside, 10 contradicted by the paper, 43 not reproducible from these data (profile default)``."""
    from failpattern.study.compare import summarize

    s = summarize(comparison)
    parts = ", ".join(f"{int(r.n)} {r.verdict}" for r in s.itertuples())
    return f"{len(comparison)} numbers: {parts} (profile {comparison.attrs.get('profile', 'default')})"


def write_for_cli(plan, comparison, out: Path, force: bool, **kwargs) -> Path:
    """write_report, with an existing --out (or a missing parent) turned into exit 2."""
    from failpattern.errors import InputError
    from failpattern.report import write_report

    try:
        return write_report(plan, comparison, out, force=force, **kwargs)
    except InputError as exc:
        _fail(f"error: {exc}")


def check_out_for_cli(out: Path, force: bool) -> None:
    """Refuse an existing --out (without --force) before any work is done: exit 2."""
    from failpattern.errors import InputError
    from failpattern.report.write import check_target

    try:
        check_target(out, force)
    except InputError as exc:
        _fail(f"error: {exc}")


def _compare(plan, card, profile):
    from failpattern.study.compare import compare

    return compare(plan, card, profile=profile)


@click.command("reproduce", short_help="Re-run every analysis of the paper beside the published numbers.",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--cohort", "cohort_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Cohort file (.csv, .xlsx, .parquet) in the cohort format. Default: the canonical "
                   "synthetic cohort shipped with failpattern.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Simulate a random cohort with this seed instead of using a file.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path(DEFAULT_OUT),
              show_default=True, help="Report folder to create.")
@click.option("--force", is_flag=True, help="Replace --out if it exists (only once the new report is complete).")
@click.option("--profile", "--tolerance-profile", "profile", type=click.Choice(_PROFILES), default="default", show_default=True,
              help="Tolerance profile: strict (x0.5), default (x1), loose (x2) the card's tolerances.")
def reproduce(cohort_file: Path | None, seed: int | None, out: Path, force: bool, profile: str) -> None:
    """Re-run every analysis of Ni et al. 2019 and compare each number with the paper.

    Prints, grouped by the paper's sections, each published number beside the
    reproduced one, their difference and the verdict (within tolerance,
    outside, not reproducible from these data), then a summary line. Writes
    report.html (self-contained), report.md, results.json and figures/ (PNG
    and SVG: Fig. 1a-d, Fig. 2, Table 3 forest plots, PFS1/PFS2/OS) to --out.

    A cohort file that breaks the format: every problem is listed on stderr
    and the exit code is 2.
    """
    started = time.perf_counter()
    check_out_for_cli(out, force)
    cohort, label = load_cohort_for_cli(cohort_file, seed)
    card = load_card_for_cli(None)
    plan = run_for_cli(cohort, card)
    comparison = _compare(plan, card, profile)
    click.echo(f"cohort: {label} ({cohort.n_patients} patients)")
    click.echo(f"study: {card.study.get('citation', card.name)} (card {card.name})")
    click.echo("")
    click.echo(comparison_text(comparison, card))
    click.echo("")
    click.echo(summary_line(comparison))
    from failpattern.cli.analyze import exclusions_text

    click.echo("")
    click.echo(exclusions_text(plan))
    path = write_for_cli(plan, comparison, out, force, cohort_label=label, card=card, seed=seed, profile=profile)
    click.echo(f"report: {path / 'report.html'} (also report.md, results.json, figures/) "
               f"in {time.perf_counter() - started:.1f} s")


@click.command("check", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--cohort", "cohort_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Cohort file; default the canonical synthetic cohort.")
@click.option("--tolerance-profile", "--profile", "profile", type=click.Choice(_PROFILES), default="default",
              show_default=True, help="Tolerance profile: strict (x0.5), default (x1), loose (x2).")
def check(cohort_file: Path | None, profile: str) -> None:
    """Exit 0 when every published number with a tolerance is reproduced within it, else 1.

    Lists the numbers outside their tolerance (id, published, reproduced,
    tolerance). Numbers "not reproducible from these data" (design constants,
    cited numbers, quantities the cohort cannot give) are not failures; they
    are counted in the summary line. Numbers "contradicted by the paper" (the
    card records published numbers that cannot hold together with them, and the
    cohort reproduces those) are listed and not failures. Bad cohort file:
    problems on stderr, exit 2.
    """
    from failpattern.report.tables import comparison_display, text_table

    cohort, label = load_cohort_for_cli(cohort_file, None)
    card = load_card_for_cli(None)
    plan = run_for_cli(cohort, card)
    comparison = _compare(plan, card, profile)
    shown = comparison_display(comparison, card)
    outside = shown[shown["verdict"] == "outside"]
    n_not = int((comparison["verdict"] == "not reproducible from these data").sum())
    n_in = int((comparison["verdict"] == "within tolerance").sum())
    contra = shown[shown["verdict"] == "contradicted by the paper"]
    click.echo(f"cohort: {label} ({cohort.n_patients} patients); profile {profile}")
    if len(contra):
        contra = contra.assign(reproduces=[", ".join(card.get(i).contradicted_by) for i in contra["id"]])
        click.echo(f"{len(contra)} number(s) the paper contradicts (the cohort reproduces the other side; "
                   "not failures):")
        click.echo(text_table(contra, ["id", "published", "reproduced", "reproduces"], group=None,
                              right=("published", "reproduced")))
    if len(outside):
        click.echo(f"{len(outside)} number(s) outside their tolerance:")
        click.echo(text_table(outside, ["id", "published", "reproduced", "tolerance"], group=None,
                              right=("published", "reproduced", "tolerance")))
    click.echo(f"check {'FAILED' if len(outside) else 'passed'}: {n_in} within tolerance, {len(outside)} outside; "
               f"{len(contra)} contradicted by the paper, "
               f"{n_not} not reproducible from these data (neither counted as failures)")
    if len(outside):
        raise SystemExit(EXIT_OUTSIDE)
