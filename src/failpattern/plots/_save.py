"""Writing figures to disk: every format, atomically, never clobbering by accident.

A half-written PNG left by an interrupted run looks like a finished figure in a
report folder, and a re-run that silently replaces a figure someone checked by
eye loses that check. So each file is written to a temporary file in the same
folder and moved into place with :func:`os.replace` (atomic on POSIX and
Windows), and an existing file is only replaced when the caller says so.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import matplotlib.image
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from failpattern.errors import InputError
from failpattern.output import atomic_writer
from failpattern.plots._style import RC

__all__ = ["save_figure"]

FORMATS = ("png", "svg", "pdf")
PAD_INCHES = 0.08  # white margin around the tight bounding box


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
    The figure is laid out and rendered at ``dpi`` once, its tight bounding
    box (tables drawn outside the axes are not cut off) measured from that
    render and padded by 0.08 inch; the PNG is cut from that render, and every
    other format is drawn once with the same layout and box. This is
    ``savefig(bbox_inches="tight")`` up to a sub-pixel shift of the PNG,
    without its second draw per file. The figure's layout engine is restored
    afterwards. Each file is written into a temporary file in the target
    folder, then moved over the target with :func:`os.replace`, so a reader
    sees the old file or the new one, never a partial one. The existence
    check happens before writing; a file created by another process between
    the check and the move would be replaced. SVG text stays text, and SVG
    and PDF carry no creation date, so building and saving the same figure
    again gives identical files.
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
    with _drawn_once(fig, dpi, raster="png" in formats) as (bbox, pixels):
        for fmt, target in zip(formats, targets):
            _write_atomic(fig, target, fmt, dpi, bbox, pixels if fmt == "png" else None,
                          0o666 & ~umask)
    return targets


@contextmanager
def _drawn_once(fig: Figure, dpi, raster: bool):
    """Lay the figure out, measure its tight bounding box, and (``raster``) render it, once.

    With a layout engine or ``bbox_inches="tight"``, ``savefig`` draws the figure once
    more before every save to lay it out and measure it. Here the layout is solved and
    the figure rendered at ``dpi`` by one Agg draw, the box measured with the text
    sizes that draw cached, and the PNG cut from that render (:func:`_crop`); inside
    the context the layout engine is off, so saving another format is one draw.

    Yields
    ------
    bbox : matplotlib.transforms.Bbox
        The tight bounding box in inches, padded by :data:`PAD_INCHES`.
    pixels : numpy.ndarray or None
        RGBA rows of the PNG, or None when it must be drawn by ``savefig`` (no
        ``raster``, something drawn outside the figure, or savefig colours set in rcParams).
    """
    figure_dpi, canvas = fig.dpi, fig.canvas
    fig.dpi = dpi  # text is measured at the raster resolution, as savefig(dpi=dpi) would
    try:
        if raster:
            agg = FigureCanvasAgg(fig)  # attaches itself to fig; the old canvas is put back below
            agg.draw()  # runs the layout engine (e.g. constrained layout), then renders
            tight = fig.get_tightbbox(agg.get_renderer())
            pixels = _crop(fig, np.asarray(agg.buffer_rgba()), tight, dpi)
        else:
            fig.draw_without_rendering()
            tight, pixels = fig.get_tightbbox(), None
    finally:
        fig.dpi = figure_dpi
        fig.set_canvas(canvas)
    engine = fig.get_layout_engine()
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)  # no engine: positions stay as just solved
    try:
        yield tight.padded(PAD_INCHES), pixels
    finally:
        if engine is not None:
            fig.set_layout_engine(engine)


def _crop(fig: Figure, rendered: np.ndarray, tight: Bbox, dpi) -> np.ndarray | None:
    """The PNG's pixels cut from the whole-figure render: ``savefig(bbox_inches=...)`` with
    the tight box padded by :data:`PAD_INCHES`, up to a sub-pixel shift.

    The padding outside the figure is its face colour, as savefig paints it. None when
    something is drawn outside the figure (the render does not hold it) or rcParams give
    savefig its own colours.
    """
    rc = matplotlib.rcParams
    width, height = fig.get_size_inches()
    auto = all(isinstance(rc[k], str) and rc[k] == "auto" for k in ("savefig.facecolor", "savefig.edgecolor"))
    if (rc["savefig.transparent"] or not auto
            or tight.x0 < 0 or tight.y0 < 0 or tight.x1 > width or tight.y1 > height):
        return None
    box = tight.padded(PAD_INCHES)
    rows, cols = int(box.height * dpi), int(box.width * dpi)  # as savefig sizes its canvas
    top, left = round(rendered.shape[0] - box.y1 * dpi), round(box.x0 * dpi)
    out = np.empty((rows, cols, 4), dtype=np.uint8)
    out[...] = np.round(np.asarray(to_rgba(fig.get_facecolor())) * 255)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + rows, rendered.shape[0]), min(left + cols, rendered.shape[1])
    out[r0 - top:r1 - top, c0 - left:c1 - left] = rendered[r0:r1, c0:c1]
    return out


def _write_png(out, pixels: np.ndarray, dpi) -> None:
    """RGBA rows to PNG, as ``savefig`` writes its canvas (same writer, same metadata)."""
    matplotlib.image.imsave(out, pixels, format="png", origin="upper", dpi=dpi)


def _write_atomic(fig: Figure, target: Path, fmt: str, dpi, bbox: Bbox, pixels, mode: int) -> None:
    """Write one format through :func:`failpattern.output.atomic_writer` (``pixels``: a PNG's
    RGBA rows, written as they are)."""
    with atomic_writer(target, mode=mode) as out:
        if pixels is not None:
            _write_png(out, pixels, dpi)
        else:
            metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
            with matplotlib.rc_context({k: RC[k] for k in ("svg.fonttype", "svg.hashsalt")}):
                fig.savefig(out, format=fmt, dpi=dpi, bbox_inches=bbox, metadata=metadata)
