"""``failpattern simulate`` and ``failpattern calibrate``: synthetic cohorts from the command line.

Why: a clinician or a teacher wants a cohort file in the paper's format without
writing Python, and a methodologist wants to see how close the calibrated model
comes to each published number. Both commands are thin layers over
:mod:`failpattern.simulate`; bad input is a message on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from failpattern.cli.common import EXIT_BAD_INPUT, Command
from failpattern.errors import FailpatternError, InputError

__all__ = ["calibrate_cmd", "cohort_csv", "simulate_cmd", "write_atomic"]


def cohort_csv(df) -> str:
    """The CSV text of a cohort (UTF-8, ``\\n`` line ends, empty cells empty): byte-stable."""
    return df.to_csv(index=False, lineterminator="\n")


def write_atomic(path: Path, text: str, force: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (:func:`failpattern.output.write_file_atomic`).

    Raises
    ------
    InputError
        If ``path`` exists and ``force`` is false, or its folder does not exist.
    OutputWriteError
        The disk refused the write (``path`` is as it was).
    """
    from failpattern.output import write_file_atomic

    path = Path(path)
    if path.exists() and not force:
        raise InputError(f"--out: {path} exists; pass --force to overwrite it")
    if path.exists() and not path.is_file():
        raise InputError(f"--out: {path} is not a file")
    if not path.parent.is_dir():
        raise InputError(f"--out: folder {path.parent} does not exist")
    write_file_atomic(path, text.encode("utf-8"))


class _SearchBar:
    """The reconstruction's progress on stderr: search steps, and the printed numbers met so far."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar = enabled, None

    def __call__(self, state) -> None:
        from failpattern.replicate.progress import Progress

        if self.bar is None:
            self.bar = Progress(state.steps, enabled=self.enabled, unit="search steps")
        self.bar.update(state.step - self.bar.done, note=f"{state.targets_met}/{state.n_targets} targets met")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(EXIT_BAD_INPUT)


@click.command("simulate", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--mode", type=click.Choice(["random", "exact"]), default="random", show_default=True,
              help="random: a draw from the calibrated model; exact: the study's patients reconstructed "
                   "(the published counts exactly, the printed numbers searched for; about a minute).")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Random seed.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Patients (the study's size, 93, by default; exact mode needs it).")
@click.option("--study", default="ni2019", show_default=True, help="Study card name or YAML path.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV file to write (stdout if omitted).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar (exact mode).")
def simulate_cmd(mode, seed, n, study, out, force, quiet):
    """Write a simulated cohort in the cohort format (CSV)."""
    from failpattern.simulate import simulate

    try:
        if out is not None and out.exists() and not force:
            raise InputError(f"--out: {out} exists; pass --force to overwrite it")
        bar = _SearchBar(enabled=mode == "exact" and not quiet)
        df = simulate(study, n=n, seed=seed, mode=mode, progress=bar if mode == "exact" else None)
        bar.close()
        text = cohort_csv(df)
        if out is None:
            click.echo(text, nl=False)
        else:
            write_atomic(out, text, force=force)
            click.echo(f"wrote {len(df)} patients ({mode}, seed {seed}) to {out}", err=True)
    except (FailpatternError, ValueError) as err:
        _fail(err)


@click.command("calibrate", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--replicates", type=click.IntRange(min=2), default=1000, show_default=True,
              help="Simulated cohorts per evaluation.")
@click.option("--seed", type=click.IntRange(min=0), default=20190314, show_default=True,
              help="Seed of the common random numbers.")
@click.option("--study", default="ni2019", show_default=True, help="Study card name or YAML path.")
@click.option("--fit/--no-fit", default=True, show_default=True,
              help="Re-fit the parameters (--no-fit: evaluate the shipped defaults).")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Passes over the parameter blocks.")
@click.option("--failing", is_flag=True, help="Show only the targets outside tolerance.")
def calibrate_cmd(replicates, seed, study, fit, rounds, failing):
    """Fit the simulator to a study card; print each target beside the model's expected value."""
    from failpattern.simulate import DEFAULT_PARAMS, calibrate, target_table
    from failpattern.study import load_study

    try:
        card = load_study(study)
        if fit:
            res = calibrate(card, replicates=replicates, seed=seed, rounds=rounds)
            table, params = res.table, res.params
        else:
            table, params = target_table(DEFAULT_PARAMS, card, replicates=replicates, seed=seed + 1), DEFAULT_PARAMS
    except (FailpatternError, ValueError, KeyError) as err:
        _fail(err)
        return
    click.echo(format_table(table[~table["within"]] if failing else table))
    ok = int(table["within"].sum())
    contra = int((table["contradicted"] != "").sum()) if "contradicted" in table else 0
    click.echo(f"\n{ok} of {len(table)} targets within tolerance, {contra} contradicted by the paper "
               f"({replicates} cohorts, seed {seed}).")
    if fit:
        click.echo("\nfitted parameters:")
        for k, v in params.as_dict().items():
            click.echo(f"  {k} = {v!r}")


def format_table(table) -> str:
    """Aligned text of a target table (a target the paper contradicts, and whose
    contradicting numbers are within tolerance, is marked so instead of NO)."""
    lines = [f"{'id':<40} {'method':<17} {'published':>9} {'model':>9} {'diff':>8}  ok"]
    for r in table.itertuples(index=False):
        follows = getattr(r, "contradicted", "")
        ok = f"contradicted by the paper (model follows {follows})" if follows else ("yes" if r.within else "NO")
        lines.append(f"{r.id:<40} {r.method:<17} {r.published:>9.3g} {r.model:>9.3f} {r.difference:>+8.3f}"
                     f"  {ok}")
    return "\n".join(lines)
