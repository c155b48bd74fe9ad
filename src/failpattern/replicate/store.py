"""On-disk layout of a replicate study: a manifest and one file per chunk.

Why: a replicate study (hundreds of simulated cohorts, each run through the
whole analysis plan) takes long enough to be interrupted. Results therefore
go to disk as they are computed, one file per chunk of replicates, and a
study can be resumed by computing only the chunks that are missing. Three
rules make that safe:

* **A chunk file exists only when complete.** Each one is written to a
  temporary name in the same folder, flushed, ``fsync``-ed and moved into
  place with :func:`os.replace` (atomic on POSIX and Windows). Readers only
  look at final names (``chunk-NNNNNN.<ext>``), so a crash never leaves a
  partial chunk that counts; stray temporary files are removed on the next
  run.
* **The manifest pins the study.** ``manifest.json`` records the seed, the
  number of replicates, the chunk size, the task's name and version and the
  seed scheme; a run into the same folder with other parameters is refused
  (:class:`~failpattern.errors.InputError`) instead of mixing two studies.
* **Replicate ``i`` depends only on ``(seed, i)``.** Its generator is built
  from ``np.random.SeedSequence(seed).spawn(n)[i]``, which is the same as
  ``SeedSequence(seed, spawn_key=(i,))`` (:func:`replicate_seed`), so results
  do not depend on the number of workers, the scheduler, the chunking or on
  an interruption.

Layout::

    out_dir/
        manifest.json
        chunks/chunk-000000.parquet   # replicates [0, chunk_size)
        chunks/chunk-000001.parquet   # replicates [chunk_size, 2 * chunk_size)
        ...

Chunks are Parquet when :mod:`pyarrow` is installed (the ``io`` extra) and
CSV otherwise (floats written with 17 significant digits, so values
round-trip exactly); the format is recorded in the manifest.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from failpattern._resources import exact_float_csv_options

from failpattern.errors import InputError
from failpattern.output import TMP_PREFIX, write_file_atomic

__all__ = ["Manifest", "SCHEMA", "SEED_SCHEME", "replicate_seed", "replicate_rng", "task_name", "chunk_bounds",
           "n_chunks", "chunk_path", "completed_chunks", "read_manifest", "write_manifest",
           "write_chunk", "read_chunk", "iter_chunks", "remove_temporary", "default_format"]

#: Version tag of the folder layout, stored in the manifest.
SCHEMA = "failpattern-replicates/1"

#: How replicate ``i`` gets its randomness, stored in the manifest.
SEED_SCHEME = "numpy.random.default_rng(numpy.random.SeedSequence(seed).spawn(n_replicates)[i])"

MANIFEST = "manifest.json"
CHUNKS = "chunks"
_SUFFIX = {"parquet": ".parquet", "csv": ".csv"}
#: Manifest fields that must match for a run to resume a study.
PARAMETERS = ("seed", "n_replicates", "chunk_size", "task", "task_version", "seed_scheme")


@dataclass(frozen=True)
class Manifest:
    """The parameters that define a replicate study (``manifest.json``).

    Attributes
    ----------
    seed : int
        Root seed; replicate ``i`` uses ``SeedSequence(seed).spawn(n)[i]``.
    n_replicates : int
        Number of replicates.
    chunk_size : int
        Replicates per chunk file (the last chunk may be shorter).
    task : str
        Qualified name of the per-replicate function.
    task_version : str or None
        Caller-supplied version of the task (change it when the task's
        behaviour changes, so an old folder is not silently resumed).
    format : str
        ``"parquet"`` or ``"csv"``.
    seed_scheme : str
        :data:`SEED_SCHEME`.
    schema : str
        :data:`SCHEMA`.
    numpy_version, failpattern_version : str
        Versions at creation, for the record (not checked).
    """

    seed: int
    n_replicates: int
    chunk_size: int
    task: str
    task_version: str | None
    format: str
    seed_scheme: str = SEED_SCHEME
    schema: str = SCHEMA
    numpy_version: str = np.__version__
    failpattern_version: str = ""

    @property
    def n_chunks(self) -> int:
        """Number of chunks."""
        return n_chunks(self.n_replicates, self.chunk_size)

    def mismatches(self, other: Manifest) -> list[str]:
        """``"field: here vs other"`` for every defining parameter that differs."""
        return [f"{k}: {getattr(self, k)!r} in the folder vs {getattr(other, k)!r} requested"
                for k in PARAMETERS if getattr(self, k) != getattr(other, k)]


def replicate_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of replicate ``index``.

    Equal to ``np.random.SeedSequence(seed).spawn(n)[index]`` for any
    ``n > index``, without building the ``n`` children.

    Parameters
    ----------
    seed : int
        Root seed of the study.
    index : int
        Replicate index, ``0 <= index``.

    Returns
    -------
    numpy.random.SeedSequence
    """
    return np.random.SeedSequence(seed, spawn_key=(index,))


def replicate_rng(seed: int, index: int) -> np.random.Generator:
    """The generator passed to the task for replicate ``index`` (PCG64)."""
    return np.random.default_rng(replicate_seed(seed, index))


def unwrap(task: Callable) -> Callable:
    """The function under any ``functools.partial`` layers."""
    while isinstance(task, functools.partial):
        task = task.func
    return task


def task_name(task: Callable) -> str:
    """The name recorded for ``task`` in the manifest: ``module.qualname``.

    ``functools.partial`` objects are named after the wrapped function, as
    ``functools.partial(module.qualname)``; their arguments are not part of the
    name, so pass ``task_version`` to tell two parameterisations apart.
    """
    f = unwrap(task)
    partial = f is not task
    qual = getattr(f, "__qualname__", None) or type(f).__qualname__
    name = f"{getattr(f, '__module__', None) or type(f).__module__}.{qual}"
    return f"functools.partial({name})" if partial else name


def n_chunks(n_replicates: int, chunk_size: int) -> int:
    """Number of chunks of ``chunk_size`` covering ``n_replicates``."""
    return -(-n_replicates // chunk_size)


def chunk_bounds(chunk: int, n_replicates: int, chunk_size: int) -> tuple[int, int]:
    """Replicate indices ``[start, stop)`` of chunk number ``chunk``."""
    start = chunk * chunk_size
    return start, min(start + chunk_size, n_replicates)


def default_format() -> str:
    """``"parquet"`` when pyarrow can be imported, else ``"csv"``."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "csv"
    return "parquet"


def chunk_path(out_dir: Path, chunk: int, fmt: str) -> Path:
    """Final path of chunk number ``chunk``."""
    return Path(out_dir) / CHUNKS / f"chunk-{chunk:06d}{_SUFFIX[fmt]}"


def completed_chunks(out_dir: Path, manifest: Manifest) -> set[int]:
    """Numbers of the chunks whose final file exists (complete by construction)."""
    folder = Path(out_dir) / CHUNKS
    if not folder.is_dir():
        return set()
    suffix = _SUFFIX[manifest.format]
    done = set()
    for p in folder.iterdir():
        name = p.name
        if name.startswith("chunk-") and name.endswith(suffix):
            number = name[len("chunk-"):-len(suffix)]
            if number.isdigit() and int(number) < manifest.n_chunks:
                done.add(int(number))
    return done


def remove_temporary(out_dir: Path) -> None:
    """Delete temporary files left by an interrupted write (names start with ``.tmp-``)."""
    for folder in (Path(out_dir), Path(out_dir) / CHUNKS):
        if folder.is_dir():
            for p in folder.glob(f"{TMP_PREFIX}*"):
                with contextlib.suppress(OSError):
                    p.unlink()


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` atomically (:func:`failpattern.output.write_file_atomic`), making the folder first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomic(target, data)


def write_manifest(out_dir: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` atomically."""
    text = json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n"
    _write_atomic(Path(out_dir) / MANIFEST, text.encode())


def read_manifest(out_dir: Path) -> Manifest | None:
    """The manifest of ``out_dir``, or ``None`` when there is none.

    Raises
    ------
    InputError
        If the manifest cannot be read or is not a replicate manifest.
    """
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        if raw.get("schema") != SCHEMA:
            raise ValueError(f"schema {raw.get('schema')!r}, expected {SCHEMA!r}")
        known = {k: raw[k] for k in Manifest.__dataclass_fields__ if k in raw}
        return Manifest(**known)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"out_dir: {path} is not a readable replicate manifest ({exc})") from None


def _as_values(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each categorical column of strings as the strings it holds (object)."""
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)
            and frame[c].cat.categories.dtype == object]
    if not cats:
        return frame
    return frame.assign(**{c: frame[c].astype(object) for c in cats})


def _parquet_table(frame: pd.DataFrame):
    """The Arrow table ``frame.to_parquet`` writes, a categorical column of strings as its strings.

    Why: a chunk of the replicate study repeats some 700 ids in hundreds of thousands of rows;
    handed over as a categorical (codes), it is decoded to strings inside Arrow (no Python string
    per row), and stored, and read back, exactly as the same frame with an object column."""
    import pyarrow as pa

    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)
            and frame[c].cat.categories.dtype == object]
    if not cats or not len(frame):
        return pa.Table.from_pandas(_as_values(frame), preserve_index=False)
    # the schema (and pandas metadata) of the frame with strings, from its first row
    schema = pa.Schema.from_pandas(_as_values(frame.iloc[:1]), preserve_index=False)
    columns = []
    for field in schema:
        col = frame[field.name]
        if field.name in cats:
            codes = pa.array(col.cat.codes.to_numpy(), mask=col.isna().to_numpy())
            columns.append(pa.DictionaryArray.from_arrays(codes, pa.array(col.cat.categories.to_numpy(),
                                                                          type=pa.string()))
                           .dictionary_decode())
        else:
            columns.append(pa.Array.from_pandas(col))
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata()).replace_schema_metadata(schema.metadata)


def write_chunk(out_dir: Path, chunk: int, frame: pd.DataFrame, fmt: str) -> Path:
    """Write one chunk's results atomically; return its path.

    A categorical column of strings is stored as its strings (read back as an object column,
    as the same frame with strings would be)."""
    target = chunk_path(out_dir, chunk, fmt)
    buf = io.BytesIO()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(_parquet_table(frame), buf)
    else:
        buf.write(_as_values(frame).to_csv(index=False, float_format="%.17g").encode())
    _write_atomic(target, buf.getvalue())
    return target


def read_chunk(out_dir: Path, chunk: int, fmt: str, *, categories=()) -> pd.DataFrame:
    """Read one chunk file.

    ``categories``: string columns to read as pandas categoricals. A chunk of the replicate study
    repeats each of some 700 ids once per replicate; as categories they are read without making
    a Python string per row (the values are the same).
    """
    path = chunk_path(out_dir, chunk, fmt)
    if fmt == "parquet":
        try:
            if categories:
                import pyarrow.parquet as pq

                names = set(pq.read_schema(path).names)
                return pq.read_table(path, read_dictionary=[c for c in categories if c in names]).to_pandas()
            return pd.read_parquet(path)
        except ImportError as exc:
            raise InputError(f"out_dir: chunks of {path.parent.parent} are Parquet; install "
                             f"pyarrow (the failpattern[io] extra) to read them ({exc})") from None
    frame = pd.read_csv(path, **exact_float_csv_options())
    for c in categories:
        if c in frame.columns:
            frame[c] = frame[c].astype("category")
    return frame


def iter_chunks(out_dir: Path, manifest: Manifest, *, categories=()):
    """The chunk files of a complete study, read one at a time in chunk (so replicate) order
    (:func:`read_chunk` with ``categories``): a study's results without holding them all."""
    for c in range(manifest.n_chunks):
        yield read_chunk(out_dir, c, manifest.format, categories=categories)
