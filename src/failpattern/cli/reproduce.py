"""``failpattern reproduce`` and ``failpattern check``: the paper's every number, re-computed and judged.

Why: this is the main job of failpattern. One command runs the whole analysis
plan of Ni et al. 2019 on a cohort — the canonical synthetic cohort shipped
with the package unless ``--cohort`` or ``--seed`` says otherwise — and
prints, section by section of the paper, every printed number (point values,
confidence limits, range ends) beside the reproduced one with its verdict at
the paper's printed precision, the changed conclusions first, then writes a
report folder (HTML, Markdown, JSON, figures). ``check`` is the same run
reduced to what a pipeline needs: exit 0 unless a number differs that the
baseline does not accept; ``--json`` for machines.

**Baselines.** A baseline file declares accepted differences, each with its
reason (:mod:`failpattern.study.baseline`); ``--baseline FILE`` uses one,
``check --write-baseline FILE`` writes one. The canonical cohort ships with
its own: it differs from the paper in known places (listed, with reasons, in
``data/synthetic/ni2019_exact.baseline.csv``), and ``check`` on it passes
because those differences are declared, not because they are hidden.
``--no-baseline`` judges without one.

Exit codes (both commands, as every command's: :mod:`failpattern.cli.common`):
0 no number differs beyond the baseline; 1 some number differs and the
baseline does not accept it (the report is still written); 2 bad input or a
refused request — a cohort file that breaks the format (every problem is
listed, aligned, on stderr), an unknown study card, a bad baseline file, an
``--out`` failpattern will not write or replace; 3 an internal error. Never a
traceback.

"Not reproducible from these data" (design constants, cited numbers,
quantities the cohort format has no column for, analyses the cohort cannot
support) and "contradicted by the paper" are not failures: they cannot be
right or wrong. They are counted in the summary line, so that a cohort that
silently supports little does not pass unnoticed.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from failpattern.cli.common import (
    EXIT_DISAGREE,
    PROFILES,
    fail,
    Command,
    OutFolder,
    baseline_text,
    changed_text,
    check_out_for_cli,
    comparison_text,
    exclusions_text,
    judge_for_cli,
    kind_text,
    load_card_for_cli,
    load_cohort_for_cli,
    n_disagreeing,
    run_for_cli,
    summary_line,
    write_for_cli,
)

__all__ = ["check", "reproduce"]

DEFAULT_OUT = "failpattern-out"
_PROFILE_HELP = ("How a number is judged: printed (the reproduced value, rounded as the paper rounds, equals "
                 "the printed one) or near (within what a reader would accept as the same finding; "
                 "docs/judging.md).")
_BASELINE_HELP = ("Accepted differences (id, part, reason; written by check --write-baseline): only other "
                  "differences fail. Default: the shipped baseline for the canonical cohort, none otherwise.")


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
@click.option("--profile", "profile", type=click.Choice(PROFILES), default=PROFILES[0], show_default=True,
              help=_PROFILE_HELP)
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_BASELINE_HELP)
@click.option("--no-baseline", is_flag=True, help="Judge without a baseline: every difference fails.")
@click.option("--strict", is_flag=True,
              help="Make the cohort's plausibility warnings (durations that look like days, ages outside 15-100, "
                   "...; docs/cohort-format.md) errors: exit 2.")
def reproduce(cohort_file: Path | None, seed: int | None, out: Path, force: bool, problems_file: Path | None,
              profile: str, baseline: Path | None, no_baseline: bool, strict: bool) -> None:
    """Re-run every analysis of Ni et al. 2019 and compare each printed number with the paper.

    Prints the changed conclusions first (a p-value on the other side of 0.05,
    a ratio on the other side of 1), then, grouped by the paper's sections,
    every printed number — point values, confidence limits, range ends — beside
    the reproduced one with its verdict (matches as printed, differs,
    contradicted by the paper, not reproducible from these data), counts by
    kind of number and a summary line. Writes report.html (self-contained),
    report.md, results.json and figures/ (PNG and SVG) to --out.

    Exit code 0 when no number differs beyond the baseline, 1 when one does
    (the report is written either way). A cohort file that breaks the format:
    every problem is listed on stderr and the exit code is 2.
    """
    started = time.perf_counter()
    inputs = () if cohort_file is None else (cohort_file,)
    check_out_for_cli(out, force, inputs)
    cohort, label = load_cohort_for_cli(cohort_file, seed, problems_file=problems_file, strict=strict,
                                        show_warnings=True)
    card = load_card_for_cli(None)
    plan = run_for_cli(cohort, card)
    canonical = cohort_file is None and seed is None
    judged = judge_for_cli(plan, card, profile, canonical=canonical, baseline=baseline, no_baseline=no_baseline)
    comparison = judged.comparison
    click.echo(f"cohort: {label} ({cohort.n_patients} patients)")
    click.echo(f"study: {card.study.get('citation', card.name)} (card {card.name})")
    click.echo(baseline_text(judged, canonical=canonical))
    changed = changed_text(comparison)
    if changed:
        click.echo("")
        click.echo(changed)
    click.echo("")
    click.echo(comparison_text(comparison, card))
    click.echo("")
    click.echo(kind_text(comparison))
    click.echo("")
    click.echo(summary_line(judged))
    click.echo("")
    click.echo(exclusions_text(plan))
    path = write_for_cli(plan, comparison, out, force, cohort_label=label, card=card, seed=seed, profile=profile,
                         mode="reproduction", inputs=inputs)
    click.echo(f"report: {path / 'report.html'} (also report.md, results.json, figures/) "
               f"in {time.perf_counter() - started:.1f} s")
    if n_disagreeing(judged):
        raise SystemExit(EXIT_DISAGREE)


@click.command("check", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--cohort", "cohort_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Cohort file; default the canonical synthetic cohort.")
@click.option("--profile", "profile", type=click.Choice(PROFILES), default=PROFILES[0], show_default=True,
              help=_PROFILE_HELP)
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_BASELINE_HELP)
@click.option("--no-baseline", is_flag=True, help="Judge without a baseline: every difference fails.")
@click.option("--write-baseline", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write today's differences to this file as a baseline (each with a placeholder reason to "
                   "edit) and exit 0.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document (summary, changed conclusions, new differences, one record per "
                   "judged row) instead of text.")
@click.option("--problems-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every problem of a bad cohort file here (the console shows the first 50).")
@click.option("--strict", is_flag=True,
              help="Make the cohort's plausibility warnings (durations that look like days, ages outside 15-100, "
                   "...; docs/cohort-format.md) errors: exit 2.")
def check(cohort_file: Path | None, profile: str, baseline: Path | None, no_baseline: bool,
          write_baseline: Path | None, as_json: bool, problems_file: Path | None, strict: bool) -> None:
    """Exit 0 unless a published number differs and the baseline does not accept it; else 1.

    Lists the changed conclusions first, then the differences the baseline
    does not accept (id, part, published, reproduced), the counts by kind of
    number and a summary line. Numbers "not reproducible from these data" and
    "contradicted by the paper" are not failures; they are counted. With
    --write-baseline, writes today's differences as a baseline and exits 0.
    With --json, prints one JSON document instead. Bad cohort file: problems on
    stderr, exit 2.
    """
    from failpattern.report.tables import comparison_display, text_table

    cohort, label = load_cohort_for_cli(cohort_file, None, problems_file=problems_file, strict=strict,
                                        show_warnings=not as_json)
    card = load_card_for_cli(None)
    plan = run_for_cli(cohort, card)
    canonical = cohort_file is None
    if write_baseline is not None:
        _write_baseline(plan, card, profile, write_baseline, label)
        return
    judged = judge_for_cli(plan, card, profile, canonical=canonical, baseline=baseline, no_baseline=no_baseline)
    failing = judged.failing
    if as_json:
        from failpattern.report.results_json import check_json

        click.echo(check_json(judged, cohort=label, patients=cohort.n_patients, study=card.name))
        if len(failing):
            raise SystemExit(EXIT_DISAGREE)
        return
    click.echo(f"cohort: {label} ({cohort.n_patients} patients); profile {profile}")
    click.echo(baseline_text(judged, canonical=canonical))
    changed = changed_text(judged.comparison)
    if changed:
        click.echo(changed)
    if len(failing):
        shown = comparison_display(failing, card)
        what = "not accepted by the baseline" if judged.source else "from the paper"
        click.echo(f"== {len(failing)} difference(s) {what} ==")
        cols = ["id", "part", "published", "reproduced", "as_printed"] + (["baseline"] if "baseline" in shown else [])
        click.echo(text_table(shown, cols, group=None, right=("published", "reproduced", "as_printed")))
    click.echo(kind_text(judged.comparison))
    click.echo(f"check {'FAILED' if len(failing) else 'passed'}: {summary_line(judged)}")
    if len(failing):
        raise SystemExit(EXIT_DISAGREE)


def _write_baseline(plan, card, profile: str, path: Path, label: str) -> None:
    from failpattern.errors import InputError
    from failpattern.study.baseline import write_baseline
    from failpattern.study.compare import compare

    comparison = compare(plan, card, profile=profile)
    try:
        n = write_baseline(comparison, path, comment=f"cohort: {label}\nstudy card: {card.name}; profile {profile}")
    except InputError as exc:
        fail(f"error: --write-baseline: {exc}")
    click.echo(f"wrote {n} accepted difference(s) to {path}; give each a reason in its last column, then "
               f"run: failpattern check --baseline {path}")
