"""Read QEMU's ``MigrationPriority`` enum out of ``include/migration/vmstate.h``.

Also holds the small C text helpers the tree scanner shares: blanking comments and string
contents without moving offsets, line numbers from offsets, and ``#if 0`` removal.

The parser accepts every layout QEMU has used (``typedef enum { ... } MigrationPriority;``
and ``enum MigrationPriority { ... };``, explicit or implied values, ``/* */`` and ``//``
comments before or after the comma, comments on lines of their own, blank lines) and
raises :class:`~ordering.errors.SourceTreeError` naming ``file:line`` otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ordering.claims import claim_target, read_claim
from ordering.errors import SourceTreeError

__all__ = [
    "EnumLevel",
    "OrderClaim",
    "PriorityEnum",
    "blank_comments_and_strings",
    "blank_if0",
    "comment_text",
    "line_of",
    "parse_claims",
    "parse_priority_enum",
]

ENUM_NAME = "MigrationPriority"
HEADER = "include/migration/vmstate.h"

_TOKEN = re.compile(
    r"""
    (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<opencomment>/\*)
  | (?P<string>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
  | (?P<preproc>^[ \t]*\#(?:\\\n|[^\n])*)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<number>0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)
  | (?P<newline>\n)
  | (?P<space>[ \t\r\f\v]+)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL | re.MULTILINE,
)

_BLANK = re.compile(
    r"""/\*.*?(?:\*/|\Z)|//(?:\\\n|[^\n])*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'""",
    re.DOTALL,
)

@dataclass(frozen=True)
class EnumLevel:
    """One enumerator of ``MigrationPriority`` as written.

    Attributes
    ----------
    name : str
        The enumerator, e.g. ``"MIG_PRI_IOMMU"``.
    value : int
        Its explicit or implied value.
    comment : str
        The comment on the enumerator's own line (and its continuation lines), markers
        stripped, lines joined by one space.
    line : int
        1-based line of the enumerator in the header.
    explicit : bool
        Whether the value was written (``= N``) rather than implied.
    leading : str
        Comments on lines of their own just before the enumerator (not part of ``comment``).
    """

    name: str
    value: int
    comment: str
    line: int
    explicit: bool = False
    leading: str = ""


@dataclass(frozen=True)
class OrderClaim:
    """A "Must happen before/after X" comment read as a claim about order.

    Attributes
    ----------
    level : str
        The enumerator that carries the comment.
    relation : {"before", "after"}
        Which way the comment points.
    target : str
        The words after "before"/"after", verbatim ("PCI devices", "the ITS").
    target_level : str or None
        The enumerator the target names, when it names one ("the ITS" → MIG_PRI_GICV3_ITS;
        "PCI devices" → MIG_PRI_DEFAULT, the level ordinary devices load at).
    line : int
        Line of the enumerator.
    """

    level: str
    relation: Literal["before", "after"]
    target: str
    target_level: str | None
    line: int


@dataclass(frozen=True)
class PriorityEnum:
    """The ``MigrationPriority`` enum of one header, lowest value first as written.

    Attributes
    ----------
    levels : tuple of EnumLevel
        Enumerators in the order they are written.
    file : str
        The header's path as given to the parser.
    line : int
        Line where the enum starts.
    """

    levels: tuple[EnumLevel, ...]
    file: str
    line: int

    @property
    def names(self) -> tuple[str, ...]:
        """Enumerator names in written order."""
        return tuple(level.name for level in self.levels)

    def value(self, name: str) -> int:
        """Value of enumerator ``name`` (KeyError if absent)."""
        for level in self.levels:
            if level.name == name:
                return level.value
        raise KeyError(name)


def line_of(text: str, offset: int) -> int:
    """1-based line number of ``offset`` in ``text``.

    >>> line_of("a\\nb\\nc", 4)
    3
    """
    return text.count("\n", 0, offset) + 1


def _blank_keep_newlines(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def blank_comments_and_strings(text: str) -> str:
    """Replace comments by spaces and string/char contents by ``_``, keeping every offset.

    Newlines are kept, so line numbers and offsets in the result match ``text``. String
    literals keep their quotes so that ``.name = "x"`` still looks like a string.

    >>> blank_comments_and_strings('a /* } */ b "{;}" // x')
    'a         b "___"     '
    """

    def repl(m: re.Match[str]) -> str:
        s = m.group(0)
        if s[0] in "\"'":
            return s[0] + "_" * (len(s) - 2) + s[-1]
        return _blank_keep_newlines(s)

    return _BLANK.sub(repl, text)


_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b(.*)$", re.MULTILINE)


def blank_if0(text: str) -> str:
    """Blank the code under ``#if 0`` (up to its ``#else``/``#elif``/``#endif``).

    Expects comments already blanked. Offsets and newlines are kept.

    >>> blank_if0("a\\n#if 0\\nb\\n#else\\nc\\n#endif\\n").split("\\n")
    ['a', '#if 0', ' ', '#else', 'c', '#endif', '']
    """
    if "#" not in text or not re.search(r"#[ \t]*if[ \t]+0\b", text):
        return text
    out = list(text)
    stack: list[tuple[bool, int]] = []  # (this group is dead, offset where dead text starts)
    for m in _DIRECTIVE.finditer(text):
        kind, rest = m.group(1), m.group(2).strip()
        if kind in ("if", "ifdef", "ifndef"):
            dead = kind == "if" and rest in ("0", "(0)")
            stack.append((dead, m.end()))
        elif not stack:
            continue
        elif kind in ("else", "elif"):
            dead, start = stack[-1]
            if dead:
                for i in range(start, m.start()):
                    if out[i] != "\n":
                        out[i] = " "
            stack[-1] = (False, m.end())
        else:  # endif
            dead, start = stack.pop()
            if dead:
                for i in range(start, m.start()):
                    if out[i] != "\n":
                        out[i] = " "
    return "".join(out)


def comment_text(raw: str) -> str:
    """The words of a C comment, markers and leading ``*`` stripped, whitespace collapsed.

    >>> comment_text("/* Must happen\\n *  before IOMMU */")
    'Must happen before IOMMU'
    >>> comment_text("// sentinel")
    'sentinel'
    """
    body = raw[2:-2] if raw.startswith("/*") else raw[2:]
    lines = [re.sub(r"^\s*\*(?!/)", "", ln) for ln in body.split("\n")]
    return " ".join(" ".join(lines).split())


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    line: int
    col: int


def _tokenize(text: str, filename: str) -> list[_Tok]:
    toks: list[_Tok] = []
    line = 1
    line_start = 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "punct"
        s = m.group(0)
        if kind == "opencomment":
            raise SourceTreeError(
                f"{filename}:{line}", "expected '*/' closing this comment before end of file"
            )
        if kind not in ("space", "newline"):
            toks.append(_Tok(kind, s, line, m.start() - line_start))
        nl = s.count("\n")
        if nl:
            line += nl
            line_start = m.start() + s.rfind("\n") + 1
    return toks


def _find_enum(toks: list[_Tok]) -> tuple[int, int, int] | None:
    """(index of 'enum', index of '{', index of matching '}') of the MigrationPriority enum."""
    for i, t in enumerate(toks):
        if t.kind != "ident" or t.text != "enum":
            continue
        j = i + 1
        tag = None
        if j < len(toks) and toks[j].kind == "ident":
            tag = toks[j].text
            j += 1
        if j >= len(toks) or toks[j].text != "{":
            continue
        depth = 0
        k = j
        while k < len(toks):
            if toks[k].text == "{":
                depth += 1
            elif toks[k].text == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if k >= len(toks):
            if tag == ENUM_NAME or any(x.text.startswith("MIG_PRI_") for x in toks[j:j + 4]):
                return (i, j, -1)
            continue
        after = next((x for x in toks[k + 1:] if x.kind != "comment"), None)
        if tag == ENUM_NAME or (after is not None and after.text == ENUM_NAME):
            return (i, j, k)
    return None


def _int(tok: str) -> int:
    return int(tok.rstrip("uUlL"), 0)


def parse_priority_enum(text: str, filename: str = HEADER) -> PriorityEnum:
    """Parse the ``MigrationPriority`` enum in the text of a header.

    Parameters
    ----------
    text : str
        The header's text (``include/migration/vmstate.h``).
    filename : str
        Path used in error messages and in the result.

    Returns
    -------
    PriorityEnum
        The enumerators in written order, with values and comments.

    Raises
    ------
    SourceTreeError
        ``file:line`` when there is no such enum or it cannot be read.

    Examples
    --------
    >>> e = parse_priority_enum('''typedef enum {
    ...     MIG_PRI_DEFAULT = 0,
    ...     MIG_PRI_IOMMU,   /* Must happen before PCI devices */
    ...     MIG_PRI_MAX,
    ... } MigrationPriority;''')
    >>> [(lv.name, lv.value, lv.comment) for lv in e.levels]  # doctest: +NORMALIZE_WHITESPACE
    [('MIG_PRI_DEFAULT', 0, ''), ('MIG_PRI_IOMMU', 1, 'Must happen before PCI devices'),
     ('MIG_PRI_MAX', 2, '')]
    """
    toks = _tokenize(text, filename)
    found = _find_enum(toks)
    if found is None:
        mention = next((t for t in toks if t.text == ENUM_NAME), None)
        where = f"{filename}:{mention.line}" if mention else f"{filename}:1"
        raise SourceTreeError(
            where,
            "expected the MigrationPriority enum ('typedef enum { MIG_PRI_DEFAULT ... } "
            "MigrationPriority;' or 'enum MigrationPriority { ... };'), found none",
        )
    i_enum, i_open, i_close = found
    if i_close < 0:
        raise SourceTreeError(
            f"{filename}:{toks[i_open].line}", "expected '}' closing the MigrationPriority enum"
        )
    body = toks[i_open + 1:i_close]

    # Split the body into entries: name [= value] followed by ',' or the end.
    entries: list[tuple[_Tok, int | None, int]] = []  # (name token, explicit value, end line)
    trailing: dict[int, list[str]] = {}  # entry index -> comments on its line(s)
    leading: dict[int, list[str]] = {}  # entry index -> own-line comments before it
    pending: list[str] = []
    last_line_with_entry = -1
    k = 0
    values: dict[str, int] = {}
    while k < len(body):
        t = body[k]
        if t.kind == "comment":
            words = comment_text(t.text)
            if entries and (t.line == entries[-1][2] or (
                    t.line == last_line_with_entry + 1 and trailing.get(len(entries) - 1)
                    and t.col > entries[-1][0].col and not pending)):
                trailing.setdefault(len(entries) - 1, []).append(words)
                last_line_with_entry = t.line
            elif words:
                pending.append(words)
            k += 1
            continue
        if t.kind == "preproc":
            raise SourceTreeError(
                f"{filename}:{t.line}",
                "expected no preprocessor directive inside the MigrationPriority enum",
            )
        if t.kind != "ident":
            raise SourceTreeError(
                f"{filename}:{t.line}",
                f"expected an enumerator name in MigrationPriority, found {t.text!r}",
            )
        name_tok = t
        k += 1
        value: int | None = None
        # comments between the name and '=' / ',' belong to this entry
        while k < len(body) and body[k].kind == "comment":
            trailing.setdefault(len(entries), []).append(comment_text(body[k].text))
            k += 1
        if k < len(body) and body[k].text == "=":
            k += 1
            expr: list[_Tok] = []
            while k < len(body) and body[k].text != ",":
                if body[k].kind == "comment":
                    trailing.setdefault(len(entries), []).append(comment_text(body[k].text))
                else:
                    expr.append(body[k])
                k += 1
            value = _eval(expr, values, filename, name_tok.line)
        if k < len(body):
            if body[k].text != ",":
                raise SourceTreeError(
                    f"{filename}:{body[k].line}",
                    f"expected ',' after enumerator {name_tok.text}, found {body[k].text!r}",
                )
            end_line = body[k].line
            k += 1
        else:
            end_line = name_tok.line
        if name_tok.text in values:
            raise SourceTreeError(
                f"{filename}:{name_tok.line}",
                f"expected each MigrationPriority enumerator once, {name_tok.text} repeats",
            )
        idx = len(entries)
        if pending:
            leading[idx] = pending
            pending = []
        entries.append((name_tok, value, end_line))
        last_line_with_entry = end_line
        prev = entries[idx - 1] if idx else None
        implied = (values[prev[0].text] + 1) if prev else 0
        values[name_tok.text] = value if value is not None else implied
    if not entries:
        raise SourceTreeError(
            f"{filename}:{toks[i_open].line}", "expected at least one MIG_PRI_ enumerator"
        )
    levels = []
    for idx, (name_tok, value, _end) in enumerate(entries):
        levels.append(EnumLevel(
            name=name_tok.text,
            value=values[name_tok.text],
            comment=" ".join(p for p in trailing.get(idx, []) if p),
            line=name_tok.line,
            explicit=value is not None,
            leading=" ".join(p for p in leading.get(idx, []) if p),
        ))
    return PriorityEnum(levels=tuple(levels), file=filename, line=toks[i_enum].line)


def _eval(expr: list[_Tok], values: dict[str, int], filename: str, line: int) -> int:
    """Value of ``N``, ``-N``, ``NAME``, ``NAME + N`` or ``(…)`` of those."""
    words = [t.text for t in expr if t.text not in "()"]
    try:
        if len(words) == 1:
            w = words[0]
            return values[w] if w in values else _int(w)
        if len(words) == 2 and words[0] == "-":
            return -_int(words[1])
        if len(words) == 3 and words[1] in "+-":
            a = values[words[0]] if words[0] in values else _int(words[0])
            b = values[words[2]] if words[2] in values else _int(words[2])
            return a + b if words[1] == "+" else a - b
    except (KeyError, ValueError):
        pass
    raise SourceTreeError(
        f"{filename}:{line}",
        f"expected an integer or an earlier enumerator as value, found {' '.join(words)!r}",
    )


def eval_priority(expr: str, values: Mapping[str, int]) -> int | None:
    """Value of a ``.priority`` initializer, evaluated as enumerator values are.

    Takes ``N``, ``-N``, ``NAME``, ``NAME + N`` or ``NAME - N`` (in parentheses or not), with
    ``NAME`` an enumerator of ``values``; None for anything else.

    Examples
    --------
    >>> values = {"MIG_PRI_DEFAULT": 0, "MIG_PRI_IOMMU": 1, "MIG_PRI_MAX": 2}
    >>> eval_priority("MIG_PRI_DEFAULT + 1", values), eval_priority("(MIG_PRI_MAX)", values)
    (1, 2)
    >>> eval_priority("MIG_PRI_MAX + 1", values), eval_priority("SOME_MACRO", values)
    (3, None)
    """
    try:
        toks = [t for t in _tokenize(expr, "") if t.kind != "comment"]
        return _eval(toks, dict(values), "", 0) if 0 < len(toks) <= 8 else None
    except SourceTreeError:
        return None


def parse_claims(enum: PriorityEnum) -> tuple[OrderClaim, ...]:
    """Read "Must happen before/after X" comments as ordering claims.

    Parameters
    ----------
    enum : PriorityEnum
        A parsed enum.

    Returns
    -------
    tuple of OrderClaim
        One claim per comment that says "must happen before/after ...", in written order.

    Examples
    --------
    >>> e = parse_priority_enum('''enum MigrationPriority {
    ...   MIG_PRI_DEFAULT = 0,
    ...   MIG_PRI_GICV3_ITS, // Must happen before PCI devices
    ...   MIG_PRI_GICV3,     /* Must happen before the ITS */
    ... };''')
    >>> [(c.level, c.relation, c.target, c.target_level) for c in parse_claims(e)]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('MIG_PRI_GICV3_ITS', 'before', 'PCI devices', 'MIG_PRI_DEFAULT'),
     ('MIG_PRI_GICV3', 'before', 'the ITS', 'MIG_PRI_GICV3_ITS')]
    """
    claims: list[OrderClaim] = []
    for level in enum.levels:
        found = read_claim(level.comment) or read_claim(level.leading)
        if found is None:
            continue
        relation: Literal["before", "after"] = "before" if found[0] == "before" else "after"
        claims.append(OrderClaim(
            level=level.name,
            relation=relation,
            target=found[1],
            target_level=claim_target(found[1], enum.names),
            line=level.line,
        ))
    return tuple(claims)
