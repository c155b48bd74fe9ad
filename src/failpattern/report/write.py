"""Writing a report folder all at once, or not at all.

Why: a report folder is read as a whole — the HTML, the JSON and the figures
describe one run. A run that fails half-way must not leave a folder that looks
finished, and a re-run must not silently replace a folder someone has already
checked. So :func:`output_folder` builds the folder under a temporary name in
the *same* parent (same file system, so the final move is a rename), and only
when everything has been written moves it into place: with ``os.replace`` for
a new target, or, with ``force``, by first renaming the old folder aside,
moving the new one in and then deleting the old one. An exception while
writing removes the temporary folder and leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from failpattern.errors import InputError

__all__ = ["OutputExistsError", "check_target", "output_folder", "write_bytes", "write_text"]


class OutputExistsError(InputError):
    """The output folder exists and replacing it was not asked for (``--force``)."""


def check_target(target: Path, force: bool) -> None:
    """Raise unless ``target`` can be created (or, with ``force``, replaced).

    Raises
    ------
    OutputExistsError
        ``target`` exists and ``force`` is False, or it is not a folder.
    InputError
        The parent folder does not exist.
    """
    target = Path(target).absolute()
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise OutputExistsError(f"--out: {str(target)!r} exists and is not a folder; choose another path")
        if not force:
            raise OutputExistsError(f"--out: folder {str(target)!r} already exists; pass --force to replace it "
                                    "or choose another --out")
    if not target.parent.is_dir():
        raise InputError(f"--out: the parent folder {str(target.parent)!r} does not exist")


@contextlib.contextmanager
def output_folder(target, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on normal exit, move it to ``target`` atomically.

    Parameters
    ----------
    target : str or os.PathLike
        The folder to create (its parent must exist).
    force : bool
        Replace ``target`` if it exists. Without it an existing ``target``
        raises :class:`OutputExistsError` before anything is written.

    Yields
    ------
    pathlib.Path
        The temporary folder to write into (beside ``target``).

    Raises
    ------
    OutputExistsError
        ``target`` exists and ``force`` is False, or it is a file.
    InputError
        The parent folder does not exist.

    Notes
    -----
    The existence check is made again just before the move, so a folder
    created meanwhile by another process is not replaced without ``force``.
    With ``force`` the old folder is renamed aside before the new one is moved
    in; between those two renames (microseconds) the target path is absent,
    never partial.
    """
    target = Path(target).absolute()
    check_target(target, force)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual permissions
        check_target(target, force)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "previous")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` as UTF-8 (``\\n`` line ends) to ``path``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(text)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
