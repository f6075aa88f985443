"""Refuse an output path that cannot be written, before any work is done."""

from __future__ import annotations

import os
from pathlib import Path

from ordering.errors import UsageError
from ordering.sources._limits import shown


def check_out(out: Path, option: str = "--out") -> None:
    """Raise :class:`UsageError` when ``out`` is a folder, or its folder is missing or not
    writable.

    Examples
    --------
    >>> check_out(Path("/nonexistent/x.toml"))
    Traceback (most recent call last):
    ...
    ordering.errors.UsageError: --out '/nonexistent/x.toml': expected a file in an existing folder ('/nonexistent' does not exist)
    """
    if out.is_dir():
        raise UsageError(f"{option} {shown(str(out))}: expected a file to write, found a folder")
    parent = out.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {shown(str(out))}: expected a file in an existing folder "
                         f"({shown(str(parent))} does not exist)")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {shown(str(out))}: expected a file in a folder you may "
                         "write to")
