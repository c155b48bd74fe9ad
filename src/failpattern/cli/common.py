"""What every ``failpattern`` command shares: exit codes, error handling, the cohort/card/plan/report steps.

Why one module: each sub-command is a thin layer over the library, and the
layer is the same everywhere — load a cohort or a card and print its
problems, run the plan, compare, write an output folder — so it is written
once, here, with public names (no command imports another's private helpers).

Exit codes (every command):

==== ==================================================================
0    success; no published number differs beyond the baseline's accepted differences
1    some published number differs and the baseline does not accept it (``reproduce``,
     ``check``, ``analyze --study``)
2    bad input or a refused request: a cohort or card that breaks the format,
     an ``--out`` failpattern will not write or replace, another run writing
     the same ``--out``, a full or read-only disk, an unreachable scheduler
3    an internal error (a bug in failpattern: please report it)
130  interrupted (Ctrl-C)
141  the output pipe was closed (``| head``); nothing more is printed
==== ==================================================================

:class:`Command` turns any exception that escapes a command into one line on
stderr and the exit code above: never a traceback (set ``FAILPATTERN_DEBUG=1``
to see one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

__all__ = ["CANONICAL", "CANONICAL_BASELINE", "PROFILES", "Command", "EXIT_BAD_INPUT", "EXIT_DISAGREE",
           "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PIPE_CLOSED", "OutFolder", "baseline_text",
           "changed_text", "comparison_text", "exclusions_text", "fail", "judge_for_cli", "kind_text",
           "load_card_for_cli", "load_cohort_for_cli", "run_for_cli", "summary_line", "write_for_cli"]

EXIT_OK = 0
EXIT_DISAGREE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141
CANONICAL = "ni2019_exact.csv"
#: The canonical cohort's declared differences from the paper, shipped beside it.
CANONICAL_BASELINE = "ni2019_exact.baseline.csv"
#: The judging profiles (:data:`failpattern.study.judge.PROFILES`); the first is the default.
PROFILES = ("printed", "near")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print ``message`` on stderr and exit with ``code`` (2, bad input, by default)."""
    click.echo(message, err=True)
    raise SystemExit(code)


class Command(click.Command):
    """A click command whose escaping exceptions become a one-line message and a documented exit code."""

    def invoke(self, ctx: click.Context):
        from failpattern.errors import FailpatternError

        try:
            return super().invoke(ctx)
        except (SystemExit, click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:  # the reader of the output went away (``| head``): stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(EXIT_PIPE_CLOSED) from None
        except FailpatternError as exc:  # an input or output the library refused (OutputWriteError included)
            _debug()
            fail(f"error: {exc}")
        except OSError as exc:
            _debug()
            where = f" {exc.filename}" if exc.filename is not None else ""
            fail(f"error: could not read or write{where}: {exc.strerror or exc}")
        except MemoryError:
            _debug()
            fail("error: out of memory (the cohort is too large for this machine's memory)", EXIT_INTERNAL)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, not a traceback
            _debug()
            fail(f"internal error: {type(exc).__name__}: {exc}\nthis is a bug in failpattern; please report it "
                 "with the command you ran (FAILPATTERN_DEBUG=1 shows the traceback)", EXIT_INTERNAL)


def _debug() -> None:
    if os.environ.get("FAILPATTERN_DEBUG"):
        import traceback

        traceback.print_exc(file=sys.stderr)


class OutFolder(click.Path):
    """An ``--out`` folder path; an empty string is refused (it would mean the current folder)."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; name a new folder, e.g. --out failpattern-out", param, ctx)
        return super().convert(value, param, ctx)


def load_cohort_for_cli(cohort_file: Path | None, seed: int | None = None, *, days_per_month: float | None = None,
                        encoding: str | None = None, problems_file: Path | None = None, strict: bool = False,
                        show_warnings: bool = False):
    """(Cohort, label) for the options; prints every problem and exits 2 on a bad cohort.

    Parameters
    ----------
    cohort_file : Path or None
        A cohort file; None with ``seed`` None: the canonical synthetic cohort.
    seed : int or None
        Simulate a random cohort with this seed instead (``simulate(seed=...)``).
    days_per_month : float, optional
        Month length for durations derived from dates.
    encoding : str, optional
        Text encoding of a CSV file.
    problems_file : Path, optional
        Where to write every problem of ``cohort_file`` as it is found (the
        console shows the first 50 and counts the rest); a problem with the
        path itself is an error (exit 2) before the file is read.
    strict : bool
        Make the loader's plausibility warnings errors (``--strict``: exit 2).
    show_warnings : bool
        Print the cohort's warnings on stderr (``analyze`` prints them in its summary instead).
    """
    from failpattern.cohort import load_cohort
    from failpattern.cohort.problems import CohortError, format_problems

    kwargs = {} if days_per_month is None else {"days_per_month": days_per_month}
    if encoding is not None:
        kwargs["encoding"] = encoding
    if strict:
        kwargs["strict"] = True
    if cohort_file is not None and seed is not None:
        fail("error: give either --cohort or --seed, not both")
    if problems_file is not None:
        if cohort_file is None:
            fail("error: --problems-file lists the problems of a cohort file: give the file too")
        kwargs["problems_file"] = problems_file
    try:
        if seed is not None:
            from failpattern.simulate import simulate

            frame = simulate(seed=seed)
            return load_cohort(frame, strict=strict), f"simulated cohort (random mode, seed {seed}; not patient data)"
        if cohort_file is None:
            from failpattern._resources import synthetic_path

            path = synthetic_path(CANONICAL)
            return load_cohort(path, **kwargs), f"canonical synthetic cohort {CANONICAL} (simulated, not patient data)"
        cohort = load_cohort(cohort_file, **kwargs)
        if show_warnings and cohort.warnings:
            click.echo(format_problems(cohort.warnings, f"{cohort_file}: warnings") + "\n(--strict makes the "
                       "plausibility warnings errors)", err=True)
        return cohort, str(cohort_file)
    except CohortError as exc:
        listed = f"every problem listed in {problems_file}\n" if problems_file is not None else ""
        fail(format_problems(exc.problems, str(cohort_file or CANONICAL)) + f"\n{listed}fix these in the file and "
             "run again; the format is described in docs/cohort-format.md")


def load_card_for_cli(name_or_path: str | None):
    """The study card (``ni2019`` when None); prints the card's problems and exits 2 when it cannot be read."""
    from failpattern.errors import FailpatternError
    from failpattern.study.card import load_study

    try:
        return load_study(name_or_path or "ni2019")
    except FailpatternError as exc:
        fail(f"error: --study: {exc}")


def run_for_cli(cohort, card):
    """run_plan, with library errors turned into exit 2."""
    from failpattern.errors import FailpatternError
    from failpattern.study.plan import run_plan

    try:
        return run_plan(cohort, card=card)
    except FailpatternError as exc:
        fail(f"error: the analysis plan could not run on this cohort: {exc}")


def judge_for_cli(plan, card, profile: str, *, canonical: bool, baseline: Path | None = None,
                  no_baseline: bool = False):
    """The comparison of a plan with the card's numbers under ``profile``, set against a baseline.

    The baseline is ``baseline`` when given; else, for the canonical cohort judged
    against the ni2019 card, the baseline shipped beside it (unless ``no_baseline``);
    else none, and every difference is new. A baseline file that cannot be read: exit 2.

    Returns
    -------
    failpattern.study.baseline.BaselineCheck
    """
    from failpattern.errors import InputError
    from failpattern.study.baseline import apply_baseline, load_baseline
    from failpattern.study.compare import compare

    if baseline is not None and no_baseline:
        fail("error: give either --baseline or --no-baseline, not both")
    comparison = compare(plan, card, profile=profile)
    found = None
    try:
        if baseline is not None:
            found = load_baseline(baseline)
        elif canonical and not no_baseline and card.name == "ni2019":
            from failpattern._resources import synthetic_path

            found = load_baseline(synthetic_path(CANONICAL_BASELINE))
    except InputError as exc:
        fail(f"error: --baseline: {exc}")
    return apply_baseline(comparison, found)


def comparison_text(comparison, card) -> str:
    """The console table: blocks by paper section, aligned id | part | published | reproduced | verdict."""
    from failpattern.report.tables import comparison_display, text_table

    shown = comparison_display(comparison, card)
    cols = ["id", "part", "published", "reproduced", "verdict"] + (["baseline"] if "baseline" in shown else [])
    return text_table(shown, cols, right=("published", "reproduced"))


def changed_text(comparison) -> str:
    """The changed conclusions, first of everything a command prints ("" when there are none)."""
    from failpattern.study.compare import changed

    rows = changed(comparison)
    if rows.empty:
        return ""
    out = [f"== {len(rows)} changed conclusion(s): a p-value on the other side of 0.05, or a ratio on the "
           "other side of 1 =="]
    out += [f"  {r.id}: {r.changed_conclusion}" + ("" if r.verdict == "differs" else f" [{r.verdict}]")
            for r in rows.itertuples()]
    return "\n".join(out)


def kind_text(comparison) -> str:
    """Counts of each verdict by kind of number, as an aligned table."""
    from failpattern.study.compare import summarize_by_kind

    table = summarize_by_kind(comparison).astype(str)
    short = {"matches as printed": "match", "not reproducible from these data": "not reproducible",
             "contradicted by the paper": "contradicted"}
    table.columns = [short.get(c, c) for c in table.columns]
    from failpattern.report.tables import text_table

    return text_table(table, list(table.columns), group=None, right=tuple(table.columns[1:]))


def summary_line(check) -> str:
    """``490 printed numbers: 312 match as printed, 116 differ (116 accepted by the baseline, 0 new), ... (profile printed)``."""
    from failpattern.study.compare import summarize

    comparison = check.comparison
    parts = []
    for r in summarize(comparison).itertuples():
        text = f"{int(r.n)} {r.verdict}"
        if r.verdict == "differs" and check.source:
            text += f" ({check.n_accepted} accepted by the baseline, {len(check.failing)} not)"
        parts.append(text)
    return (f"{len(comparison)} printed numbers: {', '.join(parts)} "
            f"(profile {comparison.attrs.get('profile', 'printed')})")


def baseline_text(check, *, canonical: bool) -> str:
    """One line on the baseline used, and on its entries that no longer differ."""
    if not check.source:
        return "baseline: none (every difference counts)"
    where = "shipped with the canonical cohort" if canonical and check.source.endswith(CANONICAL_BASELINE) \
        else check.source
    text = f"baseline: {where} ({check.n_accepted} accepted difference(s), each with its reason)"
    if len(check.resolved):
        text += (f"; {len(check.resolved)} of its entries no longer differ (" +
                 ", ".join(f"{r.id} {r.part}" for r in check.resolved.head(5).itertuples()) +
                 (", ..." if len(check.resolved) > 5 else "") + ")")
    return text


def n_disagreeing(check) -> int:
    """How many published numbers differ without the baseline accepting them."""
    return 0 if check is None else len(check.failing)


def check_out_for_cli(out: Path, force: bool, inputs=()) -> None:
    """Refuse an ``--out`` failpattern will not write (see :func:`failpattern.output.check_target`): exit 2."""
    from failpattern.errors import InputError
    from failpattern.output import check_target

    try:
        check_target(out, force=force, inputs=inputs, kind="report")
    except InputError as exc:
        fail(f"error: {exc}")


def write_for_cli(plan, comparison, out: Path, force: bool, **kwargs) -> Path:
    """write_report, with a refused or unwritable ``--out`` turned into a message and exit 2."""
    from failpattern.errors import FailpatternError
    from failpattern.report import write_report

    try:
        return write_report(plan, comparison, out, force=force, **kwargs)
    except FailpatternError as exc:
        fail(f"error: {exc}")


def exclusions_text(plan_result, limit: int = 50) -> str:
    """The "Exclusions" block: patients left out per analysis, counted, then the first ``limit`` listed."""
    from failpattern.report.content import exclusion_counts

    frame = plan_result.exclusions_frame()
    if frame.empty:
        return "== Exclusions ==\nno patient was excluded from any analysis"
    out = ["== Exclusions ==", (f"{len(frame)} exclusion(s) (patient x analysis) in "
                                f"{frame['analysis'].nunique()} analyses:")]
    counts = exclusion_counts(frame)
    width = max(len(a) for a in counts["analysis"])
    out += [f"  {r.analysis:<{width}}  {r.excluded:>4} excluded  ({r.reasons})" for r in counts.itertuples()]
    out.append("")
    for r in frame.head(limit).itertuples():
        line = "" if r.line is None or r.line != r.line else f" (line {int(r.line)})"
        out.append(f"  excluded from {r.analysis}: patient {r.patient_id}{line}: {r.reason}")
    if len(frame) > limit:
        out.append(f"  ... and {len(frame) - limit} more (counted above; every one is in the report's "
                   "results.json)")
    return "\n".join(out)
