"""``failpattern study``: how far can each published number fall in cohorts of this design?

Why: one reproduction on one cohort cannot tell a wrong published number
from an unlucky cohort. This command simulates ``--replicates`` cohorts
(random mode of the calibrated model; or, with ``--generator bootstrap``,
resamples of the shipped reconstructed cohort or of ``--cohort FILE``, whose
share of p < 0.05 is the power of each test at that cohort's effect sizes), runs the whole analysis plan on each through the replicate
engine (in parallel on local cores, or on a Dask cluster with
``--scheduler``; results stream to ``--out/replicates`` so an interrupted
study resumes where it stopped when run again with the same options) and
reports, for each published number, the median and 5th-95th percentile of
the reproduced values, the percentile of the published value and, for
p-values, the power (share of cohorts with p < 0.05). The table is printed
and written to ``--out/summary/`` as ``summary.csv`` and ``summary.md`` with
the figures ``study_power`` and ``study_estimates`` (PNG and SVG); the
``summary/`` folder appears whole or not at all.

``--out`` is a study folder failpattern made (its ``failpattern-manifest.json``
says so), a new folder or an empty one; any other folder is refused, so a
user's files are never overwritten. ``--force`` discards only what a previous
study wrote there (``replicates/`` and ``summary/``).

Exit codes: 0 success; 2 bad input or a refused request (unknown card,
``--out`` holding another study without ``--force`` or a folder failpattern
did not make, bad options, an unreachable scheduler, a full disk); 3 a
replicate failed (an internal error; the chunks done so far are kept, rerun
to resume).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from failpattern.cli.common import EXIT_BAD_INPUT, EXIT_INTERNAL, Command, OutFolder

__all__ = ["study_cmd", "DEFAULT_OUT", "STUDY_ENTRIES", "SUMMARY_DIR"]

DEFAULT_OUT = "failpattern-study"
SUMMARY_DIR = "summary"
#: What a study writes into its folder (recorded in its manifest before it starts).
STUDY_ENTRIES = ("replicates/", f"{SUMMARY_DIR}/")


@click.command("study", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--replicates", "n", type=click.IntRange(min=1), required=True,
              help="Number of simulated cohorts.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: every core). Not with --scheduler.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on a Dask cluster, e.g. tcp://host:8786.")
@click.option("--seed", type=click.IntRange(min=0), default=2019, show_default=True,
              help="Root seed: the same seed gives the same study.")
@click.option("--out", type=OutFolder(), default=DEFAULT_OUT,
              show_default=True, help="Study folder (replicates/, summary/): new, empty, or a study folder "
                                      "failpattern made.")
@click.option("--study", default="ni2019", show_default=True, help="Study card name or YAML path.")
@click.option("--force", is_flag=True,
              help="Discard a previous study in --out (its replicates/ and summary/ only; otherwise it is "
                   "resumed, or refused if it has other parameters).")
@click.option("--generator", type=click.Choice(["model", "bootstrap"]), default="model", show_default=True,
              help="model: cohorts drawn from the calibrated model; bootstrap: a cohort's patients resampled "
                   "with replacement (power at its effect sizes).")
@click.option("--cohort", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The cohort file a bootstrap resamples (default: the shipped reconstructed cohort).")
@click.option("--quiet", is_flag=True, help="No progress bar and no table (files are still written).")
def study_cmd(n, workers, scheduler, seed, out, study, force, generator, cohort, quiet):
    """Simulate cohorts, run the whole plan on each, summarise every published number."""
    if cohort is not None and generator != "bootstrap":
        click.echo("error: --cohort: only a bootstrap resamples a cohort; add --generator bootstrap", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if workers is not None and scheduler is not None:
        click.echo("error: --workers and --scheduler exclude each other (the cluster decides)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    local = scheduler is None and (workers if workers is not None else (os.cpu_count() or 1)) > 1
    if local:
        # first thing: the workers' fork server imports what they run (about a second) on another
        # core while this process imports pandas and reads the card (failpattern.replicate.workers)
        from failpattern.replicate.workers import STUDY_MODULES, start

        start(STUDY_MODULES)

    from failpattern.errors import FailpatternError
    from failpattern.output import output_folder, owned_folder
    from failpattern.replicate import ReplicateError, StudyMismatchError
    from failpattern.replicate.study import (
        format_summary,
        replicate_study,
        summary_markdown,
    )
    from failpattern.study import load_study

    try:
        card = load_study(study)
        with owned_folder(out, kind="study", entries=STUDY_ENTRIES, force=force) as folder, \
                _figure_drawers(local) as drawers:
            result = replicate_study(n, seed=seed, out_dir=folder, workers=workers, scheduler=scheduler,
                                     card=card, progress=not quiet, generator=generator, cohort=cohort)
            table = result.table
            if generator == "bootstrap":
                title = f"{card.name}: {n} {result.generator} (seed {seed})"
            else:
                title = (f"{card.name}: {n} simulated cohorts of {card.get('cohort.enrolled.n').value:g} "
                         f"patients from {result.generator} (seed {seed})")
            with output_folder(folder / SUMMARY_DIR, force=True, kind="study-summary") as tmp:
                table.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
                (tmp / "summary.md").write_text(summary_markdown(table, title=title), encoding="utf-8")
                drawers.draw(table, title, tmp)
    except ReplicateError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_INTERNAL)
    except StudyMismatchError as err:
        click.echo(f"error: --out: {str(out)!r} holds a study with other parameters ({'; '.join(err.mismatches)}); "
                   "run with the same parameters to resume it, choose another --out, or pass --force to discard "
                   "it", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except (FailpatternError, ValueError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if not quiet:
        click.echo(title)
        click.echo("pct = percentile of the published value among the replicates; power = share of "
                   "replicates with p < 0.05\n")
        click.echo(format_summary(table))
    p = table[table["is_p_value"]]
    est = table[~table["is_p_value"]]
    summary = Path(out) / SUMMARY_DIR
    click.echo(f"\n{len(table)} published numbers; {int(est['within_90'].sum())} of {len(est)} "
               f"estimates and {int(p['within_90'].sum())} of {len(p)} p-values inside the "
               f"replicates' 5%-95% range; wrote {summary}/summary.csv, summary.md, study_power.png/.svg, "
               "study_estimates.png/.svg")


# ----------------------------------------------------------------------------- figures
FIGURES = ("study_power", "study_estimates")


def _import_figures() -> None:
    """What a figure process does while the replicates run: import matplotlib and the figures."""
    import failpattern.plots._save
    import failpattern.plots.study  # noqa: F401


def _draw_figure(name: str, table, title: str, folder) -> None:
    """Draw figure ``name`` (:data:`FIGURES`) of the summary ``table`` and save it as PNG and SVG in ``folder``."""
    from failpattern.plots._save import save_figure
    from failpattern.plots.study import plot_study_estimates, plot_study_power

    fig = plot_study_power(table) if name == "study_power" else plot_study_estimates(table, title=title)
    save_figure(fig, Path(folder) / name)


class _Drawers:
    """Draws the two figures: in two processes made while the replicates run, or here.

    Why: the figures are drawn after the last replicate, when nothing else runs, and cost about
    2 s of CPU in one process (0.6 s of it importing matplotlib). With ``pool``, two processes
    forked from the workers' fork server (pandas and numpy already imported) import matplotlib
    while the workers compute, then draw one figure each at the same time. Without (one core, a
    Dask cluster, no fork server), or when a figure process died, this process draws them: only
    then, so a refused or failed study exits without paying for matplotlib.
    """

    def __init__(self, pool=None) -> None:
        self.pool, self.ready = pool, []
        if pool is not None:
            try:  # a process each (forked now; the fork server has the workers' modules)
                self.ready = [pool.submit(_import_figures) for _ in FIGURES]
            except Exception:  # no process could be made (out of memory, a broken fork server): draw here
                self.pool = None

    def draw(self, table, title: str, folder: Path) -> None:
        """Draw and save every figure in ``folder``; an error drawing one is raised here."""
        from concurrent.futures.process import BrokenProcessPool

        futures = {}
        if self.pool is not None:
            try:
                futures = {name: self.pool.submit(_draw_figure, name, table, title, str(folder)) for name in FIGURES}
            except BrokenProcessPool:
                futures = {}
        for name in FIGURES:
            try:
                if name in futures:
                    futures[name].result()
                    continue
            except BrokenProcessPool:  # the process died (killed, out of memory): draw it here
                pass
            _draw_figure(name, table, title, folder)


@contextlib.contextmanager
def _figure_drawers(parallel: bool) -> Iterator[_Drawers]:
    """:class:`_Drawers`, with its two processes when ``parallel`` and there is a fork server;
    the processes end when the block does (and with this process, even by ``kill -9``)."""
    from failpattern.replicate.workers import STUDY_MODULES, context

    ctx = context(STUDY_MODULES) if parallel else None
    if ctx is None or ctx.get_start_method() != "forkserver":
        yield _Drawers()
        return
    from concurrent.futures import ProcessPoolExecutor

    from failpattern._lifeline import die_with_parent

    pool = ProcessPoolExecutor(max_workers=len(FIGURES), mp_context=ctx, initializer=die_with_parent)
    try:
        yield _Drawers(pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
