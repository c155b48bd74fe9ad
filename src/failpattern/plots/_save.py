"""Writing figures to disk: every format, atomically, never clobbering by accident.

A half-written PNG left by an interrupted run looks like a finished figure in a
report folder, and a re-run that silently replaces a figure someone checked by
eye loses that check. So each file is written to a temporary file in the same
folder and moved into place with :func:`os.replace` (atomic on POSIX and
Windows), and an existing file is only replaced when the caller says so.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from failpattern.errors import InputError
from failpattern.plots._style import RC

__all__ = ["save_figure"]

FORMATS = ("png", "svg", "pdf")


def save_figure(fig: Figure, stem, *, formats=("png", "svg"), dpi: int = 150,
                overwrite: bool = False) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each format, atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, e.g. from :func:`~failpattern.plots.plot_km`.
    stem : str or os.PathLike
        Path without extension, e.g. ``"figures/km_prior_rt"``; its folder must exist.
    formats : sequence of {"png", "svg", "pdf"}
        One file per format, in this order.
    dpi : int
        Resolution of raster output (PNG).
    overwrite : bool
        Replace files that exist. When False (default) and any target exists,
        nothing is written.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.

    Raises
    ------
    InputError
        ``fig`` is not a Figure, an unknown or repeated format, a bad ``dpi``,
        the folder does not exist, or a target exists and ``overwrite`` is False
        (the message names every such file).

    Notes
    -----
    Each file is saved with ``bbox_inches="tight"`` (tables drawn outside the
    axes are not cut off) into a temporary file in the target folder, then
    moved over the target with :func:`os.replace`, so a reader sees the old
    file or the new one, never a partial one. The existence check happens
    before writing; a file created by another process between the check and
    the move would be replaced. SVG text stays text, and SVG and PDF carry no
    creation date, so building and saving the same figure again gives
    identical files.
    """
    if not isinstance(fig, Figure):
        raise InputError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    if isinstance(formats, str):
        formats = (formats,)
    formats = [str(f).lower().lstrip(".") for f in formats]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats or len(set(formats)) != len(formats):
        raise InputError(f"formats: {formats!r}; give one or more distinct of "
                         f"{', '.join(FORMATS)}")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0:
        raise InputError(f"dpi: must be a positive number, got {dpi!r}")
    base = Path(stem)
    folder = base.parent
    if not folder.is_dir():
        raise InputError(f"stem: folder {str(folder)!r} does not exist")
    targets = [base.with_name(f"{base.name}.{fmt}") for fmt in formats]
    if not overwrite:
        existing = [str(p) for p in targets if p.exists()]
        if existing:
            raise InputError(f"stem: {', '.join(existing)} already exist(s); pass "
                             "overwrite=True to replace")
    umask = os.umask(0)
    os.umask(umask)
    for fmt, target in zip(formats, targets):
        _write_atomic(fig, target, fmt, dpi, 0o666 & ~umask)
    return targets


def _write_atomic(fig: Figure, target: Path, fmt: str, dpi, mode: int) -> None:
    """Save into a temporary file next to ``target``, then ``os.replace`` it."""
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                   dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
            with matplotlib.rc_context({k: RC[k] for k in ("svg.fonttype", "svg.hashsalt")}):
                fig.savefig(out, format=fmt, dpi=dpi, bbox_inches="tight",
                            pad_inches=0.08, metadata=metadata)
        os.chmod(tmp, mode)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
