"""Refreshing the generated blocks of a Markdown document.

Some tables in ``docs/`` are generated from code (the cohort schema, the
simulator's parameters) so that documentation and behaviour cannot drift apart.
Each block sits between ``<!-- begin NAME (LABEL) -->`` and ``<!-- end NAME -->``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def refresh_blocks(text: str, blocks: Mapping[str, Callable[[], str]], label: str) -> str:
    """``text`` with each block ``NAME`` of ``blocks`` replaced by ``blocks[NAME]()``.

    Parameters
    ----------
    text : str
        The Markdown document.
    blocks : mapping of str to callable
        Block name -> function returning the block's current content.
    label : str
        The text in parentheses after the name in the begin marker (e.g. "generated").

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If a block's begin or end marker is missing.
    """
    for name, make in blocks.items():
        begin, end = f"<!-- begin {name} ({label}) -->", f"<!-- end {name} -->"
        head, sep, rest = text.partition(begin)
        if not sep:
            raise ValueError(f"marker {begin!r} not found")
        _, sep2, tail = rest.partition(end)
        if not sep2:
            raise ValueError(f"marker {end!r} not found")
        text = f"{head}{begin}\n{make()}\n{end}{tail}"
    return text
