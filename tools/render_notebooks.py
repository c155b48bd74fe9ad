"""Render the teaching notebooks, with their outputs and figures, as Markdown in ``docs/notebooks/``.

Usage (from the root of a clone)::

    python tools/render_notebooks.py                 # execute every notebook, rewrite docs/notebooks/
    python tools/render_notebooks.py 03 05           # only the notebooks whose names start so
    python tools/render_notebooks.py --check         # exit 1 if a rendered page is stale or missing

The notebooks in ``notebooks/`` are stored without outputs (``tests/test_notebooks.py``), so a
reader browsing the repository would not see a single number or figure. This script executes
each ``notebooks/NN-*.ipynb`` in a fresh ``python3`` kernel with nbclient, from the
``notebooks/`` folder (as a reader would), and writes ``docs/notebooks/NN-*.md``:

- markdown cells as they are (relative links are rewritten to work from ``docs/notebooks/``);
- code cells as ```` ```python ```` blocks;
- text outputs (streams, and the ``text/plain`` form of results and displays, which is also
  how pandas DataFrames are shown) as ```` ```text ```` blocks, cut to ``MAX_LINES`` lines
  with a note when longer;
- PNG figures saved as ``docs/notebooks/img/NN-<cell>-<k>.png`` (``<cell>`` the 0-based cell
  index, ``<k>`` counting the cell's figures from 1) and linked with a relative path.

It also writes ``docs/notebooks/README.md``, an index with one line per notebook, the line taken
from the table in ``notebooks/README.md``.

The Markdown is deterministic: the same notebooks and package give the same text. Nothing time
or machine dependent is written: the clone's absolute path and the temporary folder are
replaced by placeholders, memory addresses are masked, and the run time that notebook 04
prints is masked. (The PNG bytes may change with the matplotlib version.)

``--check`` executes nothing. It exits 1 if a notebook has no rendered page, if the code of a
rendered page differs from the notebook's code cells (outputs are not compared: they depend on
the machine), or if ``docs/notebooks/README.md`` is out of date; ``tests/test_notebooks.py``
runs it. After editing a notebook, re-render it with this script.

Executing needs nbclient, nbformat and ipykernel (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUTPUT = ROOT / "docs" / "notebooks"
IMAGES = OUTPUT / "img"
COMMAND = "python tools/render_notebooks.py"
PATTERN = "[0-9][0-9]-*.ipynb"
MAX_LINES = 60
CELL_TIMEOUT = 600  # seconds per cell; the notebooks take well under a minute in all

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
_MD_LINK = re.compile(r"(\]\()([^)\s]+)(\))")
# Text that would differ from run to run; each is replaced as it is found in an output.
_VOLATILE = (
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x…"),
    (re.compile(r"(ran in )\d+(?:\.\d+)?( s\b)"), r"\1…\2"),
)


# --------------------------------------------------------------------------- reading

def notebook_paths(prefixes: list[str] | None = None) -> list[Path]:
    """The notebooks ``notebooks/NN-*.ipynb``, sorted, optionally only those named by prefix."""
    paths = sorted(NOTEBOOKS.glob(PATTERN))
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(x) for x in prefixes)]
    return paths


def page_path(notebook: Path) -> Path:
    return OUTPUT / (notebook.stem + ".md")


def read_notebook(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def descriptions() -> dict[str, str]:
    """Notebook file name -> its line in the table of ``notebooks/README.md``."""
    found = {}
    text = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        m = re.match(r"^\|\s*\[([^\]]+\.ipynb)\]\([^)]*\)\s*\|(.*)\|\s*$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


# --------------------------------------------------------------------------- executing

def execute(nb, timeout: int = CELL_TIMEOUT):
    """Run ``nb`` in place in a fresh python3 kernel from ``notebooks/``; raise on any error."""
    import ipykernel  # noqa: F401  (the kernel the notebooks run in)
    import nbclient

    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=timeout, allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}})
    # the kernel spec runs "python": make that this interpreter, which has failpattern installed
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    client.execute(env=env)
    return nb


# --------------------------------------------------------------------------- rendering

def _fence(text: str, info: str = "") -> str:
    """``text`` in a backtick fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def _source(cell) -> str:
    src = cell.source if isinstance(cell.source, str) else "".join(cell.source)
    return src.rstrip("\n")


def _clean(text: str) -> str:
    """Output text without colour codes, machine paths or run-to-run noise."""
    text = _ANSI.sub("", text)
    replacements = [(str(ROOT), "<clone>"), (ROOT.as_posix(), "<clone>")]
    tmp = tempfile.gettempdir()
    replacements += [(os.path.realpath(tmp), "<tmp>"), (tmp, "<tmp>")]
    for old, new in sorted(set(replacements), key=lambda r: -len(r[0])):
        if old and old not in ("/", "."):
            text = text.replace(old, new)
    for pattern, new in _VOLATILE:
        text = pattern.sub(new, text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def _text_block(text: str) -> str | None:
    text = _clean(text)
    if not text:
        return None
    lines = text.split("\n")
    note = ""
    if len(lines) > MAX_LINES:
        note = (f"\n\n*(Output cut: {len(lines) - MAX_LINES} more lines. "
                "Run the notebook to see them all.)*")
        lines = lines[:MAX_LINES]
    return _fence("\n".join(lines), "text") + note


def _relink(markdown: str) -> str:
    """Rewrite relative links of a notebook's markdown to work from ``docs/notebooks/``."""
    def fix(m):
        target = m.group(2)
        if re.match(r"^(?:[a-z][a-z0-9+.-]*:|#|/)", target, re.I):
            return m.group(0)
        path, sep, anchor = target.partition("#")
        new = os.path.relpath(NOTEBOOKS / path, OUTPUT).replace(os.sep, "/")
        return m.group(1) + new + sep + anchor + m.group(3)

    out, inside = [], None
    for line in markdown.split("\n"):
        fence = _FENCE.match(line.strip())
        if fence and (inside is None or (line.strip().startswith(inside) and not fence.group(2).strip())):
            inside = fence.group(1) if inside is None else None
            out.append(line)
        else:
            out.append(line if inside is not None else _MD_LINK.sub(fix, line))
    return "\n".join(out)


def _outputs(cell, stem: str, index: int, images: dict[str, bytes]) -> list[str]:
    """The Markdown for a code cell's outputs; PNGs are added to ``images``."""
    blocks: list[str] = []
    stream_name, stream_text = None, []

    def flush():
        nonlocal stream_name, stream_text
        if stream_text:
            block = _text_block("".join(stream_text))
            if block:
                blocks.append(block)
        stream_name, stream_text = None, []

    k = 0
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") != stream_name:
                flush()
                stream_name = out.get("name")
            text = out.get("text", "")
            stream_text.append(text if isinstance(text, str) else "".join(text))
            continue
        flush()
        if kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            if "image/png" in data:
                k += 1
                name = f"{stem[:2]}-{index:02d}-{k}.png"
                png = data["image/png"]
                images[name] = base64.b64decode(png if isinstance(png, str) else "".join(png))
                blocks.append(f"![Output {k} of cell {index}](img/{name})")
            elif "text/plain" in data:
                text = data["text/plain"]
                block = _text_block(text if isinstance(text, str) else "".join(text))
                if block:
                    blocks.append(block)
        elif kind == "error":
            block = _text_block("\n".join(out.get("traceback", [])))
            if block:
                blocks.append(block)
    flush()
    return blocks


def render(nb, notebook: Path, *, with_outputs: bool = True) -> tuple[str, dict[str, bytes]]:
    """The Markdown page of an (executed) notebook and its images, file name -> PNG bytes."""
    rel = os.path.relpath(notebook, OUTPUT).replace(os.sep, "/")
    parts = [f"> Generated from the notebook [{notebook.name}]({rel}) by "
             f"`tools/render_notebooks.py`, with its outputs; do not edit this page, edit the "
             f"notebook and re-run `{COMMAND}`. The data are simulated, not patient data."]
    images: dict[str, bytes] = {}
    for index, cell in enumerate(nb.cells):
        source = _source(cell)
        if cell.cell_type == "markdown":
            if source.strip():
                parts.append(_relink(source))
        elif cell.cell_type == "code":
            if source.strip():
                parts.append(_fence(source, "python"))
            if with_outputs:
                parts.extend(_outputs(cell, notebook.stem, index, images))
    return "\n\n".join(parts) + "\n", images


def render_index(paths: list[Path]) -> str:
    """``docs/notebooks/README.md``: one line per rendered notebook."""
    desc = descriptions()
    lines = [
        "# The teaching notebooks, with their outputs",
        "",
        f"> Generated by `tools/render_notebooks.py` from the notebooks in "
        f"[notebooks/](../../notebooks/README.md); do not edit, re-run `{COMMAND}`.",
        "",
        "The notebooks are stored without outputs. These pages show each one as it runs, with "
        "its tables and figures. The data are simulated, not patient data.",
        "",
    ]
    for path in paths:
        line = f"- [{path.stem}]({path.stem}.md)"
        if desc.get(path.name):
            line += f": {desc[path.name]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- checking

def python_blocks(markdown: str) -> list[str]:
    """The contents of the ```python fenced blocks of a Markdown text, in order."""
    blocks, current, opener = [], None, None
    for line in markdown.split("\n"):
        if opener is None:
            m = _FENCE.match(line)
            if m:
                opener = m.group(1)
                current = [] if m.group(2).strip() == "python" else None
            continue
        m = _FENCE.match(line)
        if m and m.group(1)[0] == opener[0] and len(m.group(1)) >= len(opener) and not m.group(2).strip():
            if current is not None:
                blocks.append("\n".join(current))
            opener, current = None, None
        elif current is not None:
            current.append(line)
    return blocks


def check(paths: list[Path]) -> list[str]:
    """What is stale or missing in ``docs/notebooks/``; executes nothing."""
    problems = []
    for path in paths:
        page = page_path(path)
        if not page.exists():
            problems.append(f"{path.name} has no rendered page {page.relative_to(ROOT).as_posix()}")
            continue
        expected, _ = render(read_notebook(path), path, with_outputs=False)
        if python_blocks(page.read_text(encoding="utf-8")) != python_blocks(expected):
            problems.append(f"{page.relative_to(ROOT).as_posix()}: its code differs from "
                            f"{path.name}'s code cells")
    index = OUTPUT / "README.md"
    if not index.exists() or index.read_text(encoding="utf-8") != render_index(notebook_paths()):
        problems.append("docs/notebooks/README.md is out of date")
    return problems


# --------------------------------------------------------------------------- main

def _write(path: Path, data: bytes | str) -> bool:
    """Write ``data`` to ``path`` unless it already holds it; True if written."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if path.exists() and path.read_bytes() == raw:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", metavar="NN",
                        help="render only the notebooks whose names start with these (e.g. 03)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a rendered page is missing or its code is stale; "
                             "executes nothing")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT,
                        help=f"seconds allowed per cell (default {CELL_TIMEOUT})")
    args = parser.parse_args(argv)
    paths = notebook_paths(args.prefixes)
    if args.prefixes and not paths:
        parser.error(f"no notebook matches {args.prefixes}")

    if args.check:
        problems = check(paths)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            print(f"re-render with: {COMMAND}", file=sys.stderr)
            return 1
        print(f"docs/notebooks/ is up to date ({len(paths)} notebooks)")
        return 0

    for path in paths:
        print(f"executing {path.name} ...", flush=True)
        nb = execute(read_notebook(path), timeout=args.timeout)
        text, images = render(nb, path)
        for old in IMAGES.glob(f"{path.stem[:2]}-*.png"):
            if old.name not in images:
                old.unlink()
                print(f"  removed img/{old.name}")
        for name, png in images.items():
            _write(IMAGES / name, png)
        page = page_path(path)
        state = "wrote" if _write(page, text) else "unchanged:"
        print(f"  {state} {page.relative_to(ROOT).as_posix()} ({len(images)} figures)")
    index = OUTPUT / "README.md"
    state = "wrote" if _write(index, render_index(notebook_paths())) else "unchanged:"
    print(f"{state} docs/notebooks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
