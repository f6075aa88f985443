"""Nesting and number limits for the JSON and TOML migorder reads, with the place of a breach.

Python's :mod:`json` and :mod:`tomllib` recurse once per nested array or table, so a deeply
nested document raises :class:`RecursionError`; both turn a decimal integer of more than 4300
digits into :class:`ValueError` (``sys.int_info.default_max_str_digits``). :func:`json_loads`
and :func:`toml_loads` turn those into :class:`LimitError`, which names the line and column of
the first breach, found by a scan that runs only after the parser failed (a well-formed
document costs nothing more).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

MAX_NESTING = 64
"""Deepest nesting of arrays and objects / inline tables reported (parsers give up later)."""

MAX_DIGITS = 4300
"""Longest decimal integer read (Python's own limit for ``int(str)``)."""

MAX_TEXT_BYTES = 64 << 20
"""Longest text file read whole (TOML models and scenarios, ``-dump-vmstate`` JSON): QEMU's
dumps are about 2 MB, migorder's models far less."""


class FileRefused(ValueError):
    """A text file that is not read: ``args[0]`` says why (a FIFO, a device, too long...)."""


def read_text(path: str | os.PathLike[str], limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes.

    Never opens a FIFO, a device or a folder (a FIFO would wait for a writer, ``/dev/zero``
    never ends).

    Raises
    ------
    FileRefused
        Why the file is not read.

    Examples
    --------
    >>> read_text("/dev/zero")
    Traceback (most recent call last):
    ...
    ordering.sources._limits.FileRefused: a regular file, found a character device
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise FileRefused(f"a readable file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                 (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                 (stat.S_ISSOCK, "a socket"))
        what = next((w for test, w in kinds if test(st.st_mode)), "a special file")
        raise FileRefused(f"a regular file, found {what}")
    try:
        with Path(path).open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise FileRefused(f"a readable file ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise FileRefused(f"a file of at most {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"UTF-8 text ({exc.reason} at byte {exc.start})") from None

_LONG_NUMBER = re.compile(rf"(?<![0-9A-Za-z_.])[0-9][0-9_]{{{MAX_DIGITS},}}")


def shown(value: object, limit: int = 200) -> str:
    """``repr(value)`` (control characters escaped), cut to about ``limit`` characters.

    Examples
    --------
    >>> shown("a\\nb")
    "'a\\\\nb'"
    >>> shown("x" * 500, 10)
    "'xxxxxxxx...(502 characters)"
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}...({len(text)} characters)"


def place(path: str | os.PathLike[str]) -> str:
    """A file name as an error shows it: as is, or ``repr`` when it holds control characters.

    Examples
    --------
    >>> place("a.toml"), place("a\\nb.toml")
    ('a.toml', "'a\\\\nb.toml'")
    """
    text = os.fspath(path)
    return text if text.isprintable() else shown(text)


def cut(text: str, limit: int = 400) -> str:
    """``text`` cut to about ``limit`` characters (an error message built from nested parts).

    Examples
    --------
    >>> cut("abc", 2)
    'a...(3 characters)'
    """
    return text if len(text) <= limit else f"{text[: limit - 1]}...({len(text)} characters)"


class LimitError(ValueError):
    """A document over a limit: ``line``, ``column`` (1-based) and what was expected."""

    def __init__(self, line: int, column: int, expected: str) -> None:
        self.line = line
        self.column = column
        self.expected = expected
        super().__init__(f"line {line} column {column}: {expected}")


def _place(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _too_deep(text: str, comment: str) -> LimitError:
    """The first place ``text`` nests brackets deeper than :data:`MAX_NESTING` (strings and,
    when ``comment`` is given, comments skipped)."""
    depth = 0
    quote = ""
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'" and (c == '"' or comment):
            quote = c
        elif comment and c == comment:
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        elif c in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return LimitError(*_place(text, i),
                                  f"arrays and tables nested at most {MAX_NESTING} deep")
        elif c in "]}":
            depth -= 1
        i += 1
    return LimitError(1, 1, f"arrays and tables nested at most {MAX_NESTING} deep")


def _too_long(text: str, exc: ValueError) -> LimitError:
    m = _LONG_NUMBER.search(text)
    if m is None:
        return LimitError(1, 1, f"a document Python can read ({str(exc)[:200]})")
    return LimitError(*_place(text, m.start()), f"an integer of at most {MAX_DIGITS} digits")


def json_loads(text: str) -> Any:
    """:func:`json.loads`, with nesting and number limits.

    Raises
    ------
    json.JSONDecodeError
        Malformed JSON (as :func:`json.loads`).
    LimitError
        Nesting deeper than the parser can follow, or an integer over :data:`MAX_DIGITS` digits.

    Examples
    --------
    >>> json_loads('{"a": [1, 2]}')
    {'a': [1, 2]}
    >>> json_loads('{"a": ' + "[" * 100000 + "]" * 100000 + "}")
    Traceback (most recent call last):
    ...
    ordering.sources._limits.LimitError: line 1 column 70: arrays and tables nested at most 64 deep
    >>> json_loads('[1,\\n 2' + "0" * 5000 + "]")
    Traceback (most recent call last):
    ...
    ordering.sources._limits.LimitError: line 2 column 2: an integer of at most 4300 digits
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise _too_deep(text, "") from None
    except ValueError as exc:
        raise _too_long(text, exc) from None


def toml_loads(text: str) -> dict[str, Any]:
    """:func:`tomllib.loads`, with nesting and number limits.

    Raises
    ------
    tomllib.TOMLDecodeError
        Malformed TOML.
    LimitError
        Nesting deeper than the parser can follow, or an integer over :data:`MAX_DIGITS` digits.

    Examples
    --------
    >>> toml_loads("a = 1")
    {'a': 1}
    >>> toml_loads("x = 1\\na = " + "[" * 3000 + "]" * 3000)
    Traceback (most recent call last):
    ...
    ordering.sources._limits.LimitError: line 2 column 69: arrays and tables nested at most 64 deep
    """
    import tomllib  # imported on first use: a command reading no TOML does not pay for it

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise
    except RecursionError:
        raise _too_deep(text, "#") from None
    except ValueError as exc:
        raise _too_long(text, exc) from None
