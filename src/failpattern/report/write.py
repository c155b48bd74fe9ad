"""Writing the files of a report folder.

The folder itself is made, owned and moved into place whole by
:func:`failpattern.output.output_folder` (manifest, refusals, atomic
commit); this module only writes the files inside it.
"""

from __future__ import annotations

from pathlib import Path

from failpattern.output import OutputExistsError, check_target, output_folder

__all__ = ["OutputExistsError", "check_target", "output_folder", "write_bytes", "write_text"]


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
