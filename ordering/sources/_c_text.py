"""C text helpers for the source-tree scanner: blanking, brackets, lists and ``#define``\\ s.

Private to :mod:`ordering.sources.qemu_tree`. Nothing here runs the C preprocessor: text is
*prepared* (comments, string contents, ``#if 0`` groups and directives blanked, offsets kept,
see :func:`prepare`), then matched against the few shapes QEMU uses. The blanking itself lives
in :mod:`ordering.sources.cheader`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from ordering.sources.cheader import blank_comments_and_strings, blank_if0

IDENT = re.compile(r"[A-Za-z_]\w*")
"""A C identifier."""

_DIRECTIVE_LINE = re.compile(r"^[ \t]*#(?:\\\n|[^\n])*", re.MULTILINE)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+((?:\\\n|[^\n])*)", re.MULTILINE)
_STRING = re.compile(r'"((?:\\.|[^"\\\n])*)"')


def prepare(text: str) -> str:
    """Comments, string contents, ``#if 0`` groups and directives blanked; offsets kept."""
    s = blank_if0(blank_comments_and_strings(text))
    return _DIRECTIVE_LINE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), s)


_BRACKET = re.compile(r"[][(){}]")


def match_close(s: str, open_at: int) -> int:
    """Offset of the bracket closing the one at ``open_at`` (-1 if none).

    Examples
    --------
    >>> match_close("f(a, [b], {c}) d", 1)
    13
    >>> match_close("f(a]", 1)
    -1
    """
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack: list[str] = []
    for m in _BRACKET.finditer(s, open_at):
        c = m.group()
        if c in pairs:
            stack.append(pairs[c])
        else:
            if not stack or stack[-1] != c:
                return -1
            stack.pop()
            if not stack:
                return m.start()
    return -1


def split_top(s: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Spans of the comma-separated items of ``s[start:end]`` at bracket depth 0.

    Examples
    --------
    >>> s = "f(a, g(b, c), d)"
    >>> [s[a:b].strip() for a, b in split_top(s, 2, match_close(s, 1))]
    ['a', 'g(b, c)', 'd']
    """
    depth = 0
    item = start
    for i in range(start, end):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            yield item, i
            item = i + 1
    if s[item:end].strip():
        yield item, end


def c_string(expr: str) -> str | None:
    """The value of one or more adjacent string literals, else None."""
    e = expr.strip()
    if not e.startswith('"'):
        return None
    parts = _STRING.findall(e)
    rest = _STRING.sub("", e).strip()
    if rest:
        return None
    return "".join(p.encode().decode("unicode_escape") if "\\" in p else p for p in parts)


def resolve(expr: str, defines: Mapping[str, str], depth: int = 0) -> str | None:
    """Resolve a string literal or a chain of ``#define``\\ s to a string, else None.

    Examples
    --------
    >>> defines = {"TYPE_X": '"x-" BASE', "BASE": '"dev"'}
    >>> resolve("TYPE_X", defines), resolve("UNKNOWN", defines)
    ('x-dev', None)
    """
    lit = c_string(expr)
    if lit is not None:
        return lit
    e = expr.strip()
    while e.startswith("(") and e.endswith(")"):
        e = e[1:-1].strip()
    if depth < 8 and re.fullmatch(r"[A-Za-z_]\w*", e) and e in defines:
        return resolve(defines[e], defines, depth + 1)
    # "prefix" MACRO "suffix" concatenations
    if depth < 8 and '"' in e:
        out = []
        for m in re.finditer(r'"(?:\\.|[^"\\\n])*"|[A-Za-z_]\w*|\S', e):
            tok = m.group(0)
            r = resolve(tok, defines, depth + 1)
            if r is None:
                return None
            out.append(r)
        return "".join(out)
    return None


def strip_comments_keep_strings(raw: str, prep: str) -> str:
    """Take ``raw`` where ``prep`` is not blank or a string; drop comment text."""
    out = []
    in_str = False
    for r, p in zip(raw, prep, strict=False):
        if p == '"':
            in_str = not in_str
            out.append(r)
        elif in_str or p != " " or r in " \t\n":
            out.append(r)
    return "".join(out)


def add_defines(text: str, defines: dict[str, str]) -> None:
    """Record the ``#define NAME VALUE`` lines of ``text`` in ``defines`` (first one wins)."""
    for dm in _DEFINE.finditer(text):
        val = dm.group(2).split("//")[0].split("/*")[0].strip()
        if val and dm.group(1) not in defines:
            defines[dm.group(1)] = val
