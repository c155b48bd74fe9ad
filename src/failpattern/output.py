"""Output folders that failpattern owns: a manifest, atomic commits, and refusals that protect users' files.

Why: a reproduction toolkit is run inside folders that hold irreplaceable
files (a researcher's cohort, their notes). Three rules keep them safe, and
every command that writes a folder goes through this module:

* **A folder is failpattern's only if failpattern made it.** Each output
  folder carries :data:`MANIFEST_NAME`, listing the files failpattern wrote
  there. ``--force`` replaces only such a folder, and only when it holds
  nothing but those files; it refuses the current folder (or one holding
  it), the home folder, a filesystem root, a folder holding an input file,
  and any folder without a manifest. An existing *empty* folder is taken as
  it is (nothing in it can be lost).
* **Outputs appear whole or not at all.** A folder is built under a work
  folder beside the target (same file system, so the last step is a
  rename) and moved into place only when complete; an error while writing
  leaves the target as it was. A full or read-only disk raises
  :class:`OutputWriteError` naming the path, never a partial file.
* **One writer per target.** The work folder ``.<name>.failpattern-work``
  is created with ``mkdir`` (atomic) and holds ``owner.json`` (process id
  and start time). A second run for the same target finds it and is refused
  (:class:`OutputBusyError`); a work folder whose owner is no longer alive
  is what a killed run left, and the next run cleans it up (restoring the
  previous folder if the kill came between the two renames of a replace).

Nothing is ever deleted here that this module did not write: removal goes
through :func:`remove_written`, which unlinks the manifest's files only.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from failpattern.errors import FailpatternError, InputError

__all__ = ["MANIFEST_NAME", "TMP_PREFIX", "OutputBusyError", "OutputExistsError", "OutputManifest", "OutputRefusedError",
           "OutputWriteError", "check_target", "disk_errors", "owned_folder", "output_folder",
           "add_to_manifest", "atomic_writer", "foreign_entries", "read_manifest", "remove_written", "write_file_atomic",
           "write_manifest"]

#: The manifest file at the top of every folder failpattern writes.
MANIFEST_NAME = "failpattern-manifest.json"
SCHEMA = "failpattern-output/1"
_WORK_SUFFIX = ".failpattern-work"
#: Temporary files of :func:`write_file_atomic` start with this (a killed run's are safe to delete).
TMP_PREFIX = ".tmp-"
_OWNER = "owner.json"
_WRITER = "failpattern"  # in owner.json: a work folder failpattern made (only such a one is ever cleaned up)
#: A work folder without an owner file younger than this may be a run that is just starting.
_UNOWNED_GRACE_S = 60.0
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EIO, errno.EFBIG}


class OutputExistsError(InputError):
    """The output exists and replacing it was not asked for (``--force``)."""


class OutputRefusedError(InputError):
    """The output path is one failpattern will not write into or replace (it may hold a user's files)."""


class OutputBusyError(InputError):
    """Another failpattern run is writing the same output right now."""


class OutputWriteError(FailpatternError, OSError):
    """The disk refused a write (full, read-only, no permission); the message names the path."""

    def __str__(self) -> str:
        return str(self.strerror)


@dataclass(frozen=True)
class OutputManifest:
    """What failpattern wrote into one folder (``failpattern-manifest.json``).

    Attributes
    ----------
    kind : str
        ``"report"``, ``"study"``, ``"study-summary"``, ...
    files : tuple of str
        Paths relative to the folder, ``/``-separated; an entry ending in
        ``/`` is a sub-folder failpattern made and owns entirely.
    failpattern_version, created_utc : str
        For the record.
    """

    kind: str
    files: tuple[str, ...] = ()
    failpattern_version: str = ""
    created_utc: str = ""
    schema: str = SCHEMA
    extra: dict = field(default_factory=dict)

    def owns(self, relative: str) -> bool:
        """Whether ``relative`` (``/``-separated) is a listed file or lies in a listed sub-folder."""
        return relative in self.files or any(f.endswith("/") and relative.startswith(f) for f in self.files)


def _version() -> str:
    from failpattern._version import __version__

    return __version__


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe_relative(entry: object) -> str | None:
    """``entry`` if it is a plain relative path inside the folder (no ``..``, not absolute), else None."""
    if not isinstance(entry, str) or not entry or entry.startswith("/") or "\\" in entry:
        return None
    parts = entry.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return entry


def read_manifest(folder) -> OutputManifest | None:
    """The manifest of ``folder``, or None when it has none (or an unreadable one).

    Entries that would point outside the folder (absolute, ``..``) are
    dropped: a manifest is never a licence to touch anything else.
    """
    path = Path(folder) / MANIFEST_NAME
    try:
        if path.is_symlink() or not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("kind"), str):
        return None
    files = data.get("files", [])
    files = tuple(f for f in (files if isinstance(files, list) else []) if _safe_relative(f))
    return OutputManifest(kind=data["kind"], files=files, failpattern_version=str(data.get("failpattern_version", "")),
                          created_utc=str(data.get("created_utc", "")), extra=dict(data.get("extra") or {}))


def write_manifest(folder, kind: str, files: Iterable[str] | None = None, *, extra: dict | None = None) -> Path:
    """Write ``folder``'s manifest atomically; ``files=None`` lists every file now in ``folder``.

    Returns
    -------
    pathlib.Path
        The manifest's path.
    """
    folder = Path(folder)
    if files is None:
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                       if p.is_file() and p.name != MANIFEST_NAME)
    data = {"schema": SCHEMA, "kind": kind, "failpattern_version": _version(), "created_utc": _now(),
            "files": sorted(dict.fromkeys(files)), "extra": extra or {}}
    return write_file_atomic(folder / MANIFEST_NAME, (json.dumps(data, indent=1) + "\n").encode())


def _entries(folder: Path) -> list[str]:
    """Every file (and symlink) below ``folder``, relative and ``/``-separated, the manifest excluded."""
    out = []
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            rel = Path(root, name).relative_to(folder).as_posix()
            if rel != MANIFEST_NAME:
                out.append(rel)
    return sorted(out)


def foreign_entries(folder, manifest: OutputManifest) -> list[str]:
    """Files below ``folder`` that its manifest does not list (files a user put there)."""
    return [e for e in _entries(Path(folder)) if not manifest.owns(e)]


def remove_written(folder, manifest: OutputManifest | None = None) -> list[str]:
    """Delete what failpattern wrote into ``folder`` (its manifest's files), then empty folders.

    Only regular files and symlinks the manifest lists are unlinked (a link
    is removed, never followed); sub-folders are removed only when empty; the
    folder itself only when nothing else is left.

    Returns
    -------
    list of str
        What is left (files the manifest does not list); empty when the
        folder is gone.
    """
    folder = Path(folder)
    manifest = manifest if manifest is not None else read_manifest(folder)
    if manifest is not None:
        for rel in _entries(folder):
            if manifest.owns(rel):
                (folder / rel).unlink(missing_ok=True)
        (folder / MANIFEST_NAME).unlink(missing_ok=True)
    for root, dirs, _ in sorted(os.walk(folder, topdown=False), key=lambda t: -len(t[0])):
        for d in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(root, d))
    with contextlib.suppress(OSError):
        os.rmdir(folder)
    return _entries(folder) if folder.exists() else []


def _describe(paths: list[str], limit: int = 5) -> str:
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def _check_place(target: Path, shown: str, option: str) -> None:
    """Refuse a target that exists but is not a folder (or is a link), or whose parent folder is missing."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise OutputRefusedError(f"{option}: {shown!r} exists and is not a folder; choose another path")
    if not target.parent.is_dir():
        raise InputError(f"{option}: the parent folder {str(target.parent)!r} does not exist")


def _refuse_special(target: Path, shown: str, option: str) -> Path:
    """Refuse a filesystem root, the home folder, and the current folder or one holding it; the resolved path."""
    resolved = target.resolve()
    if resolved.parent == resolved:
        raise OutputRefusedError(f"{option}: {shown!r} is a filesystem root; choose a new folder")
    if resolved == Path.home().resolve():
        raise OutputRefusedError(f"{option}: {shown!r} is your home folder; choose a new folder")
    if Path.cwd().resolve().is_relative_to(resolved):
        what = "the current folder" if Path.cwd().resolve() == resolved else "a folder holding the current folder"
        raise OutputRefusedError(f"{option}: {shown!r} is {what}; failpattern never replaces it: choose a new "
                                 "folder, e.g. --out failpattern-out")
    return resolved


def check_target(target, *, force: bool = False, inputs: Iterable = (), kind: str = "report",
                 option: str = "--out") -> None:
    """Raise unless ``target`` may be created (or, with ``force``, replaced) as a ``kind`` folder.

    Parameters
    ----------
    target : path
        The output folder.
    force : bool
        Replacing an existing folder is asked for.
    inputs : iterable of path
        Files the run reads (a cohort, a study card): never inside a folder
        that is replaced.
    kind : str
        The manifest kind a replaced folder must have.
    option : str
        How the target is named in messages.

    Raises
    ------
    OutputRefusedError
        ``target`` is a file, a link, the current folder or one holding it,
        the home folder, a filesystem root, a folder holding an input, a
        folder without a failpattern manifest, one of another kind, or one
        holding files failpattern did not write.
    OutputExistsError
        ``target`` is a non-empty folder and ``force`` is False.
    InputError
        The parent folder does not exist.
    """
    raw = Path(target)
    target = raw.absolute()
    shown = str(raw)
    _check_place(target, shown, option)
    if not target.exists():
        return
    resolved = _refuse_special(target, shown, option)
    for inp in inputs:
        if inp is not None and Path(inp).absolute().resolve().is_relative_to(resolved):
            raise OutputRefusedError(f"{option}: {shown!r} holds the input file {str(inp)!r}; "
                                     "failpattern never writes into a folder holding its input: choose another folder")
    if not any(target.iterdir()):
        return  # an empty folder: nothing in it can be lost
    if not force:
        raise OutputExistsError(f"{option}: folder {shown!r} already exists; pass --force to replace it "
                                "(only a folder failpattern wrote is replaced) or choose another path")
    manifest = read_manifest(target)
    if manifest is None:
        raise OutputRefusedError(f"{option}: {shown!r} was not written by failpattern (it has no {MANIFEST_NAME}); "
                                 "--force replaces only folders failpattern wrote: move it away or choose another path")
    if manifest.kind != kind:
        raise OutputRefusedError(f"{option}: {shown!r} holds a failpattern {manifest.kind}, not a {kind}; "
                                 "choose another path")
    foreign = foreign_entries(target, manifest)
    if foreign:
        raise OutputRefusedError(f"{option}: {shown!r} holds files failpattern did not write ({_describe(foreign)}); "
                                 "move them out or choose another path: --force never deletes them")


# ----------------------------------------------------------------------------- the work folder


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, Linux), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: dict) -> bool:
    """Whether the process that wrote ``owner`` still runs (on this host)."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or owner.get("host") != socket.gethostname():
        return owner.get("host") != socket.gethostname()  # another host's run: assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = owner.get("started")
    return started is None or _start_time(pid) in (None, started)


def _work_path(target: Path) -> Path:
    return target.parent / f".{target.name}{_WORK_SUFFIX}"


def _recover(work: Path, target: Path, option: str) -> None:
    """Clean up the work folder a killed run left: restore its previous folder, delete its new one."""
    old = work / "old"
    if old.exists():
        if not target.exists():
            os.replace(old, target)  # killed between the two renames of a replace: put the old folder back
        else:
            left = remove_written(old)
            if left:
                raise OutputRefusedError(f"{option}: a killed run left {str(old)!r} holding files failpattern did not "
                                         f"write ({_describe(left)}); move them out and run again")
    shutil.rmtree(work / "new", ignore_errors=True)  # everything in it was written by that run
    (work / _OWNER).unlink(missing_ok=True)
    os.rmdir(work)


@contextlib.contextmanager
def _claim(target: Path, option: str) -> Iterator[Path]:
    """Hold the work folder of ``target`` (refusing when another live run holds it)."""
    work = _work_path(target)
    for attempt in range(2):
        try:
            os.mkdir(work)
            break
        except FileExistsError:
            owner_file = work / _OWNER
            try:
                owner = json.loads(owner_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                owner = None
            ours = isinstance(owner, dict) and owner.get("writer") == _WRITER
            busy = _alive(owner) if ours else time.time() - work.stat().st_mtime < _UNOWNED_GRACE_S
            if busy or attempt:
                who = f" (process {owner.get('pid')})" if ours else ""
                raise OutputBusyError(f"{option}: another failpattern run{who} is writing {str(target)!r} now; "
                                      "wait for it to finish or choose another path") from None
            if not ours and any(work.iterdir()):  # not a work folder failpattern can vouch for: touch nothing
                raise OutputRefusedError(f"{option}: {str(work)!r} exists and was not left by a failpattern run "
                                         "(no owner record); move it away or choose another path")
            _recover(work, target, option)
    owner = {"writer": _WRITER, "pid": os.getpid(), "started": _start_time(os.getpid()),
             "host": socket.gethostname(), "since_utc": _now()}
    try:
        (work / _OWNER).write_text(json.dumps(owner), encoding="utf-8")
        yield work
    finally:
        shutil.rmtree(work / "new", ignore_errors=True)
        (work / _OWNER).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.rmdir(work)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def disk_errors(where=None) -> Iterator[None]:
    """Turn a disk's refusal (full, read-only, no permission) into :class:`OutputWriteError` naming the path.

    Parameters
    ----------
    where : path, optional
        Named when the error itself carries no file name (a write through
        an open file handle).
    """
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as exc:
        if exc.errno not in _DISK_ERRNOS:
            raise
        path = exc.filename if exc.filename is not None else where
        shown = str(path) if path is not None else "the output folder"
        raise OutputWriteError(exc.errno, f"could not write {shown}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def output_folder(target, *, force: bool = False, inputs: Iterable = (), kind: str = "report",
                  option: str = "--out", extra: dict | None = None) -> Iterator[Path]:
    """Yield a folder to write into; on normal exit, move it to ``target`` whole.

    Parameters
    ----------
    target : str or os.PathLike
        The folder to create (its parent must exist).
    force : bool
        Replace ``target`` if it is a ``kind`` folder failpattern wrote.
    inputs : iterable of path
        Input files of the run (refused inside a replaced folder).
    kind : str
        Recorded in the manifest (and required of a replaced folder).
    option : str
        How the target is named in messages (``--out``).
    extra : dict, optional
        Recorded in the manifest.

    Yields
    ------
    pathlib.Path
        The folder to write into (inside the work folder beside ``target``).

    Raises
    ------
    OutputExistsError, OutputRefusedError, OutputBusyError, InputError
        As :func:`check_target`, checked before anything is written and
        again just before the move; another run writing ``target``.
    OutputWriteError
        The disk refused a write; ``target`` is as it was.

    Notes
    -----
    On exit the manifest is written listing every file in the folder. A new
    target is put in place with one ``rename``; an existing one (``force``)
    is renamed into the work folder first and deleted (its manifest's files
    only) after the new one is in. A run killed between those two renames
    leaves the old folder in the work folder; the next run puts it back.
    """
    target = Path(target).absolute()
    inputs = tuple(inputs)
    check_target(target, force=force, inputs=inputs, kind=kind, option=option)
    with disk_errors(target), _claim(target, option) as work:
        new = work / "new"
        new.mkdir()
        yield new
        write_manifest(new, kind, extra=extra)
        os.chmod(new, 0o777 & ~_umask())
        check_target(target, force=force, inputs=inputs, kind=kind, option=option)
        old = work / "old"
        had_old = target.exists()
        if had_old:
            os.replace(target, old)
        try:
            os.replace(new, target)
        except OSError as exc:
            if had_old:
                os.replace(old, target)
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise OutputExistsError(f"{option}: {str(target)!r} was created by someone else while this run "
                                        "was writing; nothing was replaced") from None
            raise
        if had_old:
            left = remove_written(old)
            for rel in left:  # appeared after the check: carried over, never deleted
                dest = target / rel
                if not dest.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(old / rel, dest)
            if old.exists():
                remove_written(old)


@contextlib.contextmanager
def owned_folder(target, *, kind: str, entries: Iterable[str] = (), force: bool = False,
                 option: str = "--out") -> Iterator[Path]:
    """Hold a long-lived folder failpattern writes into piece by piece (a replicate study).

    The folder is created if missing, taken if empty, resumed if it carries
    a ``kind`` manifest; with ``force`` the manifest's entries are removed
    first (never a file failpattern did not write). Another run holding the
    same folder is refused.

    Parameters
    ----------
    target : path
        The folder.
    kind : str
        Its manifest kind.
    entries : iterable of str
        What the run will write there, recorded in the manifest before it
        starts (a sub-folder as ``"name/"``), so that what a killed run
        wrote is known to be failpattern's.
    force : bool
        Discard what a previous run wrote.
    option : str
        How the folder is named in messages.

    Yields
    ------
    pathlib.Path
        The folder (absolute).

    Raises
    ------
    OutputRefusedError, OutputBusyError, InputError
        A folder failpattern did not make (not empty, no ``kind`` manifest),
        or as :func:`check_target` with ``force``; another run holding it.
    """
    raw = Path(target)
    target = raw.absolute()
    _check_place(target, str(raw), option)
    with disk_errors(target), _claim(target, option):
        if target.exists() and any(target.iterdir()):
            manifest = read_manifest(target)
            if manifest is None or manifest.kind != kind:
                found = "it has no " + MANIFEST_NAME if manifest is None else f"it holds a failpattern {manifest.kind}"
                raise OutputRefusedError(f"{option}: {str(raw)!r} is not a {kind} folder failpattern made ({found}); "
                                         "failpattern never writes into it: choose a new or empty folder")
            if force:
                _refuse_special(target, str(raw), option)  # a user's files in it are kept; only ours go
                for entry in manifest.files:
                    path = target / entry.rstrip("/")
                    if entry.endswith("/") and path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    elif path.is_file() or path.is_symlink():
                        path.unlink()
                write_manifest(target, kind, files=entries)
            elif not set(entries) <= set(manifest.files):
                write_manifest(target, kind, files=[*manifest.files, *entries], extra=manifest.extra)
        else:
            target.mkdir(exist_ok=True)
            write_manifest(target, kind, files=entries)
        yield target


def add_to_manifest(folder, entries: Iterable[str]) -> None:
    """Record more ``entries`` in ``folder``'s manifest (its kind kept)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise InputError(f"{str(folder)!r} has no {MANIFEST_NAME}")
    write_manifest(folder, manifest.kind, files=[*manifest.files, *entries], extra=manifest.extra)


@contextlib.contextmanager
def atomic_writer(path, *, mode: int | None = None) -> Iterator:
    """Yield a binary file to write ``path`` through; it appears (``fsync``, ``os.replace``) only on normal exit.

    Parameters
    ----------
    path : path
        The file to write (its folder must exist).
    mode : int, optional
        Permission bits (default: 0o666 less the umask).

    Yields
    ------
    file
        An open binary file (a temporary beside ``path``, named with
        :data:`TMP_PREFIX`).

    Raises
    ------
    OutputWriteError
        The disk refused the write; ``path`` is as it was and no temporary is left.
    """
    path = Path(path)
    with disk_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_file_atomic(path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, ``fsync`` and ``os.replace``.

    Parameters
    ----------
    path : path
        The file to write (its folder must exist).
    data : bytes
        The content.
    mode : int, optional
        Permission bits (default: 0o666 less the umask).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OutputWriteError
        The disk refused the write; ``path`` is as it was and no temporary is left.

    Notes
    -----
    The temporary file is named ``.tmp-<name>.<random>`` (:data:`TMP_PREFIX`),
    so a killed writer's leftovers are recognisable.
    """
    with atomic_writer(path, mode=mode) as fh:
        fh.write(data)
    return path
