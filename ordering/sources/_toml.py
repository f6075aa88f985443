"""Reading TOML with line numbers, so every mistake is reported as ``file:line: expected``.

``tomllib`` gives values but no positions; :class:`TomlDoc` indexes the text once and maps a
key path (``("vmsd", 3, "priority")``) back to the line it was written on.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ordering.errors import InputError, ModelError
from ordering.sources._limits import FileRefused, LimitError, place, read_text, toml_loads

KeyPath = tuple[str | int, ...]

_KEY = re.compile(r'^(?P<key>(?:"[^"]*"|\'[^\']*\'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|\'[^\']*\'|[A-Za-z0-9_-]+))*)\s*=')
_PART = re.compile(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)')


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(a or b or c for a, b, c in _PART.findall(text))


_INLINE_KEY = re.compile(r'(?:^|[{,])\s*("[^"]*"|[A-Za-z0-9_-]+)\s*=')


def _depth(line: str) -> int:
    """Brackets opened minus closed on ``line``, outside strings and comments."""
    depth = 0
    quote = ""
    for c in line:
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            break
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
    return depth


def _index(text: str) -> dict[KeyPath, int]:
    index: dict[KeyPath, int] = {}
    counters: dict[tuple[str, ...], int] = {}
    current: KeyPath = ()
    array: KeyPath | None = None  # inside a multi-line array of inline tables
    item = -1
    depth = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if array is not None:
            if line.startswith("{"):
                item += 1
                index.setdefault((*array, item), number)
                for key in _INLINE_KEY.findall(line):
                    index.setdefault((*array, item, key.strip('"')), number)
            depth += _depth(line)
            if depth <= 0:
                array = None
            continue
        if line.startswith("[["):
            end = line.find("]]")
            path = _split_key(line[2:end])
            i = counters.get(path, -1) + 1
            counters[path] = i
            current = (*path, i)
            index.setdefault(current, number)
        elif line.startswith("["):
            end = line.find("]")
            current = _split_key(line[1:end])
            index.setdefault(current, number)
        else:
            m = _KEY.match(line)
            if m:
                keypath: KeyPath = (*current, *_split_key(m.group("key")))
                index.setdefault(keypath, number)
                rest = line[m.end() :].strip()
                if rest.startswith("[") and _depth(rest) > 0:
                    array, item, depth = keypath, -1, _depth(rest)
    return index


class TomlDoc:
    """A parsed TOML file that can say on which line a value was written.

    Examples
    --------
    >>> doc = TomlDoc.from_text("x.toml", "a = 1\\n[[rule]]\\nid = 'r'\\n[[rule]]\\nid = 7\\n")
    >>> doc.where("rule", 1, "id")
    'x.toml:5'
    """

    def __init__(self, path: str, text: str, error: type[InputError] = ModelError) -> None:
        self.path = path
        self.error_type = error
        path = place(path)
        self._shown = path
        try:
            self.data: dict[str, Any] = toml_loads(text)
        except LimitError as exc:
            raise error(f"{path}:{exc.line}", f"expected {exc.expected}") from None
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
            where = f"{path}:{m.group(1)}" if m else path
            what = re.sub(r"\s*\(at line.*\)", "", str(exc)) or "invalid TOML"
            raise error(where, f"expected valid TOML ({what})") from None
        self._index = _index(text)

    @classmethod
    def from_text(cls, path: str, text: str) -> TomlDoc:
        """Parse ``text`` as if read from ``path``."""
        return cls(path, text)

    @classmethod
    def read(cls, path: Path, error: type[InputError] = ModelError) -> TomlDoc:
        """Read and parse the file at ``path`` (mistakes raise ``error``)."""
        try:
            text = read_text(path)
        except FileRefused as exc:
            raise error(place(path), f"expected a readable UTF-8 TOML file: {exc.args[0]}") from None
        return cls(str(path), text, error)

    def line(self, *path: str | int) -> int:
        """The line of the longest written prefix of ``path`` (0 when none is known)."""
        for n in range(len(path), 0, -1):
            line = self._index.get(tuple(path[:n]))
            if line is not None:
                return line
        return 0

    def where(self, *path: str | int) -> str:
        """``file:line`` for ``path``."""
        line = self.line(*path)
        return f"{self._shown}:{line}" if line else self._shown

    def error(self, path: KeyPath, expected: str) -> InputError:
        """An error (:class:`ModelError` for models files) at ``path``."""
        return self.error_type(self.where(*path), expected)


_MISSING: Any = object()


class Table:
    """Typed access to one table of a :class:`TomlDoc`, raising ``file:line`` errors."""

    def __init__(self, doc: TomlDoc, data: dict[str, Any], path: KeyPath) -> None:
        self.doc = doc
        self.data = data
        self.path = path

    def _get(self, key: str, default: Any, what: str) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise self.doc.error(self.path, f"expected key {key!r} ({what})")
        return default

    def _bad(self, key: str, what: str) -> InputError:
        got = type(self.data[key]).__name__
        return self.doc.error((*self.path, key), f"{key}: expected {what}, got {got}")

    def text(self, key: str, default: Any = _MISSING, *, choices: tuple[str, ...] = ()) -> str:
        """A string value (one of ``choices`` when given)."""
        value = self._get(key, default, "a string")
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        if choices and value not in choices:
            raise self.doc.error(
                (*self.path, key), f"{key}: expected one of {', '.join(choices)}, got {value!r}"
            )
        return value

    def flag(self, key: str, default: Any = _MISSING) -> bool:
        """A boolean value."""
        value = self._get(key, default, "true or false")
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def integer(self, key: str, default: Any = _MISSING) -> int:
        """An integer value."""
        value = self._get(key, default, "an integer")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "an integer")
        return value

    def texts(self, key: str, default: Any = _MISSING) -> tuple[str, ...]:
        """A list of strings (a single string is taken as a list of one)."""
        value = self._get(key, default, "a list of strings")
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings")
        return tuple(value)

    def table(self, key: str, *, required: bool = False) -> Table:
        """A sub-table (empty when absent and not required)."""
        value = self._get(key, _MISSING if required else {}, "a table")
        if not isinstance(value, dict):
            raise self._bad(key, "a table")
        return Table(self.doc, value, (*self.path, key))

    def tables(self, key: str, *, required: bool = False) -> Iterator[Table]:
        """An array of tables (``[[key]]`` or a list of inline tables)."""
        value = self._get(key, _MISSING if required else [], "an array of tables")
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._bad(key, "an array of tables ([[" + key + "]])")
        for i, item in enumerate(value):
            yield Table(self.doc, item, (*self.path, key, i))

    def names(self) -> list[str]:
        """The keys of this table."""
        return list(self.data)

    def reject_unknown(self, allowed: set[str] | frozenset[str]) -> None:
        """A typo'd key is an error naming the keys that exist.

        Keys ending in ``_note``, ``_notes`` or ``_source`` are documentation and always allowed.
        """
        for key in self.data:
            if key not in allowed and not key.endswith(("_note", "_notes", "_source")):
                raise self.doc.error(
                    (*self.path, key),
                    f"unknown key {key!r}; expected one of {', '.join(sorted(allowed))}",
                )

    def where(self, *more: str | int) -> str:
        """``file:line`` of this table (or of a key in it)."""
        return self.doc.where(*self.path, *more)


def root(doc: TomlDoc) -> Table:
    """The top-level table of ``doc``."""
    return Table(doc, doc.data, ())
