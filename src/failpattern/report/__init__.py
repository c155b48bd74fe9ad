"""Reports of a reproduction: one folder with ``report.html``, ``report.md``, ``results.json``, ``figures/``.

Why: the result of ``failpattern reproduce`` (or ``analyze``) must be
something a reader can open, check and archive: every number beside the
published one, the paper's figures redrawn from the same fits, what was not
run and which patients were left out. :func:`write_report` writes it all
into a temporary folder beside the target and moves it into place only when
complete (:mod:`failpattern.report.write`), so a report folder is never
partial and never replaced by accident.

Modules: :mod:`~failpattern.report.figures` (the paper's figures),
:mod:`~failpattern.report.tables` (number formats and section order shared by
console and report), :mod:`~failpattern.report.markdown`,
:mod:`~failpattern.report.html`, :mod:`~failpattern.report.results_json`,
:mod:`~failpattern.report.write`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from failpattern.report.write import OutputExistsError, output_folder

__all__ = ["REPORT_FILES", "OutputExistsError", "report_metadata", "write_report"]

#: Files at the top of a report folder (plus ``figures/``).
REPORT_FILES = ("report.html", "report.md", "results.json")


def report_metadata(*, cohort_label: str, card=None, seed=None, profile: str | None = None,
                    patients: int | None = None) -> dict:
    """The metadata block of a report: version, cohort, seed, study card, profile, time."""
    from failpattern._version import __version__

    meta = {"failpattern_version": __version__, "cohort": cohort_label, "seed": seed,
            "study_card": None if card is None else f"{card.name} ({card.study.get('citation', '')})".strip(),
            "profile": profile, "patients": patients,
            "generated_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return meta


def _patients(plan_result) -> int | None:
    """Patients in the cohort the plan ran on."""
    return int(plan_result.cohort.n_patients)


def _baseline_label(source: str | None) -> str | None:
    """The baseline file as a report names it: the shipped one by its name, not by where it is installed."""
    from pathlib import Path

    from failpattern._resources import synthetic_path

    shipped = synthetic_path("ni2019_exact.baseline.csv")
    if source and Path(source).resolve() == shipped.resolve():
        return f"shipped with the canonical cohort: {shipped.name}"
    return source


def write_report(plan_result, comparison, out_dir, *, force: bool = False, cohort_label: str = "cohort",
                 card=None, seed=None, profile: str | None = None, title: str | None = None,
                 formats=("png", "svg"), jobs: int | None = None, inputs=(), mode: str | None = None) -> Path:
    """Write the report folder ``out_dir`` atomically.

    Parameters
    ----------
    plan_result : PlanResult
        From :func:`~failpattern.study.plan.run_plan`.
    comparison : pandas.DataFrame or None
        From :func:`~failpattern.study.compare.compare`; None to report the
        reproduced values only (no published column, no verdicts).
    out_dir : str or os.PathLike
        The folder to create. Its parent must exist.
    force : bool
        Replace an existing ``out_dir`` (only once the new one is complete,
        and only a report folder failpattern wrote: see
        :func:`failpattern.output.check_target`).
    cohort_label : str
        How the cohort is named in the report (a file path, "canonical
        synthetic cohort ...").
    card : StudyCard, optional
        Gives printed decimals, section names and Table 3 labels; with a
        ``comparison``, the published SHRs of the forest plots. Default: the
        ``ni2019`` card.
    seed : int, optional
        Recorded in the metadata (simulated cohorts).
    profile : str, optional
        The tolerance profile of ``comparison`` (recorded).
    title : str, optional
        Report title.
    formats : sequence of str
        Figure formats; PNG is always written (the HTML inlines it).
    jobs : int, optional
        Processes drawing the figures (default 2 where the system can fork;
        see :func:`~failpattern.report.figures.save_paper_figures`).
    inputs : sequence of path
        Files the run read (the cohort file): a folder holding one is never
        replaced.
    mode : {"reproduction", "analysis"}, optional
        ``"reproduction"``: the paper's numbers re-computed (``failpattern
        reproduce``); ``"analysis"``: a researcher's own cohort, its values set
        beside the published ones (``failpattern analyze``), titled for the file.
        Default: reproduction with a comparison, analysis without.

    Returns
    -------
    pathlib.Path
        ``out_dir`` (absolute).

    Raises
    ------
    OutputExistsError
        ``out_dir`` exists and ``force`` is False (nothing is written).
    OutputRefusedError
        ``out_dir`` is a folder failpattern will not replace (the current or
        home folder, a root, one holding an input, one it did not write).
    OutputBusyError
        Another run is writing ``out_dir``.
    OutputWriteError
        The disk refused a write (``out_dir`` is as it was).
    InputError
        The parent folder of ``out_dir`` does not exist.
    """
    from failpattern.report.content import build_content
    from failpattern.report.figures import save_paper_figures
    from failpattern.report.html import render_html
    from failpattern.report.markdown import render_markdown
    from failpattern.report.results_json import results_json
    from failpattern.report.write import write_text

    if card is None:
        from failpattern.study.card import load_study

        card = load_study("ni2019")
    formats = tuple(dict.fromkeys(("png", *formats)))
    if profile is None and comparison is not None:
        profile = comparison.attrs.get("profile")
    meta = report_metadata(cohort_label=cohort_label, card=card if comparison is not None else None, seed=seed,
                           profile=profile, patients=_patients(plan_result))
    if comparison is not None:
        meta["baseline"] = _baseline_label(comparison.attrs.get("baseline") or None)  # the accepted differences
    if mode is None:
        mode = "reproduction" if comparison is not None else "analysis"
    if mode not in ("reproduction", "analysis"):
        from failpattern.errors import InputError

        raise InputError(f"mode: choose reproduction or analysis; got {mode!r}")
    if title is None:
        citation = card.study.get("citation", card.name)
        if mode == "reproduction":
            title = f"Reproduction of {citation}"
        elif comparison is not None:
            title = f"{cohort_label}: the analysis plan of {citation}, beside the published values"
        else:
            title = f"{cohort_label}: the analysis plan of {citation}"
    target = Path(out_dir)
    with output_folder(target, force=force, inputs=inputs, kind="report") as tmp:
        content = build_content(plan_result, comparison, card, meta, title, mode=mode, seed=seed,
                                cohort_label=cohort_label)
        fig_dir = tmp / "figures"
        fig_dir.mkdir()
        content.figures.extend(save_paper_figures(plan_result, card, fig_dir, published=comparison is not None,
                                                  formats=formats, jobs=jobs))
        write_text(tmp / "report.md", render_markdown(content))
        write_text(tmp / "report.html", render_html(content))
        write_text(tmp / "results.json", results_json(plan_result, comparison, meta, content.figures))
    return target.absolute()
