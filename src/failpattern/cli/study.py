"""``failpattern study``: how far can each published number fall in cohorts of this design?

Why: one reproduction on one cohort cannot tell a wrong published number
from an unlucky cohort. This command simulates ``--replicates`` cohorts
(random mode), runs the whole analysis plan on each through the replicate
engine (in parallel on local cores, or on a Dask cluster with
``--scheduler``; results stream to ``--out/replicates`` so an interrupted
study resumes where it stopped when run again with the same options) and
reports, for each published number, the median and 5th-95th percentile of
the reproduced values, the percentile of the published value and, for
p-values, the power (share of cohorts with p < 0.05). The table is printed
and written as ``summary.csv`` and ``summary.md``; the figures
``study_power`` and ``study_estimates`` (PNG and SVG) go beside them.

Exit codes: 0 success; 2 bad input (unknown card, ``--out`` holding another
study without ``--force``, bad options); 1 a replicate failed (the chunks
done so far are kept; rerun to resume).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

__all__ = ["study_cmd", "DEFAULT_OUT"]

DEFAULT_OUT = "failpattern-study"
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
_OUTPUTS = ("summary.csv", "summary.md", "study_power.png", "study_power.svg", "study_estimates.png",
            "study_estimates.svg")


def _clear(out: Path) -> None:
    """Remove a previous study's files from ``out`` (only files this command writes)."""
    from failpattern.replicate.store import MANIFEST
    from failpattern.replicate.study import REPLICATES_DIR

    reps = out / REPLICATES_DIR
    if reps.is_dir():
        if (reps / MANIFEST).is_file():
            shutil.rmtree(reps)
        elif any(reps.iterdir()):
            raise click.UsageError(f"{reps} exists but is not a replicate study folder; not removing it")
    for name in _OUTPUTS:
        (out / name).unlink(missing_ok=True)


@click.command("study", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--replicates", "n", type=click.IntRange(min=1), required=True,
              help="Number of simulated cohorts.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: every core). Not with --scheduler.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on a Dask cluster, e.g. tcp://host:8786.")
@click.option("--seed", type=click.IntRange(min=0), default=2019, show_default=True,
              help="Root seed: the same seed gives the same study.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT,
              show_default=True, help="Study folder (replicates, summary, figures).")
@click.option("--study", default="ni2019", show_default=True, help="Study card name or YAML path.")
@click.option("--force", is_flag=True,
              help="Discard a previous study in --out (otherwise it is resumed, or refused if it "
                   "has other parameters).")
@click.option("--quiet", is_flag=True, help="No progress bar and no table (files are still written).")
def study_cmd(n, workers, scheduler, seed, out, study, force, quiet):
    """Simulate cohorts, run the whole plan on each, summarise every published number."""
    from failpattern.errors import FailpatternError, InputError
    from failpattern.plots import save_figure
    from failpattern.plots.study import plot_study_estimates, plot_study_power
    from failpattern.replicate import ReplicateError
    from failpattern.replicate.study import format_summary, replicate_study, summary_markdown
    from failpattern.study import load_study

    if workers is not None and scheduler is not None:
        click.echo("error: --workers and --scheduler exclude each other (the cluster decides)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    try:
        card = load_study(study)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out: {out} is a file, not a folder")
        if force and out.is_dir():
            _clear(out)
        out.mkdir(parents=True, exist_ok=True)
        result = replicate_study(n, seed=seed, out_dir=out, workers=workers, scheduler=scheduler,
                                 card=card, progress=not quiet)
    except ReplicateError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_FAILED)
    except (FailpatternError, ValueError, click.UsageError) as err:
        msg = str(err)
        if "holds a different replicate study" in msg:
            msg += " (or pass --force to discard it)"
        click.echo(f"error: {msg}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    table = result.table
    title = (f"{card.name}: {n} simulated cohorts of {card.get('cohort.enrolled.n').value:g} "
             f"patients (seed {seed})")
    table.to_csv(out / "summary.csv", index=False, float_format="%.6g")
    (out / "summary.md").write_text(summary_markdown(table, title=title), encoding="utf-8")
    save_figure(plot_study_power(table), out / "study_power", overwrite=True)
    save_figure(plot_study_estimates(table, title=title), out / "study_estimates", overwrite=True)
    if not quiet:
        click.echo(title)
        click.echo("pct = percentile of the published value among the replicates; power = share of "
                   "replicates with p < 0.05\n")
        click.echo(format_summary(table))
    p = table[table["is_p_value"]]
    est = table[~table["is_p_value"]]
    click.echo(f"\n{len(table)} published numbers; {int(est['within_90'].sum())} of {len(est)} "
               f"estimates and {int(p['within_90'].sum())} of {len(p)} p-values inside the "
               f"replicates' 5%-95% range; wrote {out}/summary.csv, summary.md, study_power.png/.svg, "
               "study_estimates.png/.svg")
