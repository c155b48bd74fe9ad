"""``failpattern reproduce`` and ``failpattern check``: the paper's every number, re-computed and judged.

Why: this is the main job of failpattern. One command runs the whole analysis
plan of Ni et al. 2019 on a cohort — the canonical synthetic cohort shipped
with the package unless ``--cohort`` or ``--seed`` says otherwise — and
prints, section by section of the paper, the published value beside the
reproduced one with the verdict, then writes a report folder (HTML, Markdown,
JSON, figures). ``check`` is the same run reduced to a yes/no for scripts and
CI: exit 0 when every number that has a tolerance lies inside it.

Exit codes (both commands, as every command's: :mod:`failpattern.cli.common`):
0 every judged number agrees; 1 some number is outside its tolerance (the
report is still written); 2 bad input or a refused request — a cohort file
that breaks the format (every problem is listed, aligned, on stderr), an
unknown study card, an ``--out`` failpattern will not write or replace; 3 an
internal error. Never a traceback.

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

from failpattern.cli.common import (
    EXIT_DISAGREE,
    Command,
    OutFolder,
    check_out_for_cli,
    compare_for_cli,
    comparison_text,
    exclusions_text,
    load_card_for_cli,
    load_cohort_for_cli,
    n_disagreeing,
    run_for_cli,
    summary_line,
    write_for_cli,
)

__all__ = ["check", "reproduce"]

DEFAULT_OUT = "failpattern-out"
_PROFILES = ("default", "strict", "loose")


@click.command("reproduce", cls=Command,
               short_help="Re-run every analysis of the paper beside the published numbers.",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--cohort", "cohort_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Cohort file (.csv, .xlsx, .parquet) in the cohort format. Default: the canonical "
                   "synthetic cohort shipped with failpattern.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Simulate a random cohort with this seed instead of using a file.")
@click.option("--out", type=OutFolder(), default=Path(DEFAULT_OUT),
              show_default=True, help="Report folder to create.")
@click.option("--force", is_flag=True,
              help="Replace --out if it is a report folder failpattern wrote (only once the new report is "
                   "complete; never the current or home folder, a folder holding the cohort, or a folder "
                   "with files failpattern did not write).")
@click.option("--problems-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every problem of a bad cohort file here (the console shows the first 50).")
@click.option("--profile", "--tolerance-profile", "profile", type=click.Choice(_PROFILES), default="default", show_default=True,
              help="Tolerance profile: strict (x0.5), default (x1), loose (x2) the card's tolerances.")
@click.option("--strict", is_flag=True,
              help="Make the cohort's plausibility warnings (durations that look like days, ages outside 15-100, "
                   "...; docs/cohort-format.md) errors: exit 2.")
def reproduce(cohort_file: Path | None, seed: int | None, out: Path, force: bool, problems_file: Path | None,
              profile: str, strict: bool) -> None:
    """Re-run every analysis of Ni et al. 2019 and compare each number with the paper.

    Prints, grouped by the paper's sections, each published number beside the
    reproduced one, their difference and the verdict (within tolerance,
    outside, not reproducible from these data), then a summary line. Writes
    report.html (self-contained), report.md, results.json and figures/ (PNG
    and SVG: Fig. 1a-d, Fig. 2, Table 3 forest plots, PFS1/PFS2/OS) to --out.

    Exit code 0 when every judged number agrees, 1 when some is outside its
    tolerance (the report is written either way). A cohort file that breaks
    the format: every problem is listed on stderr and the exit code is 2.
    """
    started = time.perf_counter()
    inputs = () if cohort_file is None else (cohort_file,)
    check_out_for_cli(out, force, inputs)
    cohort, label = load_cohort_for_cli(cohort_file, seed, problems_file=problems_file, strict=strict,
                                        show_warnings=True)
    card = load_card_for_cli(None)
    plan = run_for_cli(cohort, card)
    comparison = compare_for_cli(plan, card, profile)
    click.echo(f"cohort: {label} ({cohort.n_patients} patients)")
    click.echo(f"study: {card.study.get('citation', card.name)} (card {card.name})")
    click.echo("")
    click.echo(comparison_text(comparison, card))
    click.echo("")
    click.echo(summary_line(comparison))
    click.echo("")
    click.echo(exclusions_text(plan))
    path = write_for_cli(plan, comparison, out, force, cohort_label=label, card=card, seed=seed, profile=profile,
                         inputs=inputs)
    click.echo(f"report: {path / 'report.html'} (also report.md, results.json, figures/) "
               f"in {time.perf_counter() - started:.1f} s")
    if n_disagreeing(comparison):
        raise SystemExit(EXIT_DISAGREE)


@click.command("check", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--cohort", "cohort_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Cohort file; default the canonical synthetic cohort.")
@click.option("--tolerance-profile", "--profile", "profile", type=click.Choice(_PROFILES), default="default",
              show_default=True, help="Tolerance profile: strict (x0.5), default (x1), loose (x2).")
@click.option("--problems-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every problem of a bad cohort file here (the console shows the first 50).")
@click.option("--strict", is_flag=True,
              help="Make the cohort's plausibility warnings (durations that look like days, ages outside 15-100, "
                   "...; docs/cohort-format.md) errors: exit 2.")
def check(cohort_file: Path | None, profile: str, problems_file: Path | None, strict: bool) -> None:
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

    cohort, label = load_cohort_for_cli(cohort_file, None, problems_file=problems_file, strict=strict,
                                        show_warnings=True)
    card = load_card_for_cli(None)
    plan = run_for_cli(cohort, card)
    comparison = compare_for_cli(plan, card, profile)
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
        raise SystemExit(EXIT_DISAGREE)
