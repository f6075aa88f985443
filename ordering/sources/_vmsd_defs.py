"""``VMStateDescription`` definitions: find them in prepared C files and read their fields.

Private to :mod:`ordering.sources.qemu_tree`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ordering.errors import SourceTreeError
from ordering.sources._c_text import (
    IDENT,
    match_close,
    prepare,
    resolve,
    split_top,
    strip_comments_keep_strings,
)
from ordering.sources._tree_model import VmsdDef
from ordering.sources.cheader import eval_priority

_VMSD_DEF = re.compile(
    r"\bVMStateDescription\s+(?:const\s+)*(?P<sym>[A-Za-z_]\w*)\s*=\s*\{"
)
_FIELDS_DEF = re.compile(r"\bVMStateField\s+(?:const\s+)*(?P<sym>[A-Za-z_]\w*)\s*\[\s*\]\s*=\s*\{")


_FUNC_START = re.compile(
    r"^[A-Za-z_][^\n;=]*?\b(?P<fn>[A-Za-z_]\w*)\s*\([^;{]*\)\s*\{", re.MULTILINE
)
_CLASS_INIT = re.compile(r"\.\s*class_init\s*=\s*(?P<fn>[A-Za-z_]\w*)\b")


@dataclass
class SourceFile:
    """A C file worth parsing: its text, the text prepared, and its VMSD initializer spans.

    Line numbers, function bodies and ``.class_init`` assignments are indexed once, on first
    use, so looking them up for each of many VMSDs in one file stays linear.
    """

    rel: str
    text: str
    prep: str
    vmsd_spans: list[tuple[str, int, int]] = field(default_factory=list)
    _newlines: list[int] | None = field(default=None, repr=False)
    _functions: list[tuple[int, int, str]] | None = field(default=None, repr=False)
    _class_inits: dict[str, list[int]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, rel: str, text: str) -> SourceFile:
        """The file at ``rel`` (relative to the tree root) with ``text``, prepared."""
        return cls(rel, text, prepare(text))

    def line(self, offset: int) -> int:
        """1-based line of ``offset``.

        Examples
        --------
        >>> SourceFile.of("x.c", "a\\nb\\nc").line(4)
        3
        """
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        return bisect.bisect_left(self._newlines, offset) + 1

    def functions(self) -> list[tuple[int, int, str]]:
        """(offset of the body's ``{``, offset of its ``}``, name) of every function, in order."""
        if self._functions is None:
            out: list[tuple[int, int, str]] = []
            for m in _FUNC_START.finditer(self.prep):
                out.append((m.end() - 1, match_close(self.prep, m.end() - 1), m.group("fn")))
            self._functions = out
        return self._functions

    def enclosing_function(self, offset: int) -> tuple[str, int, int]:
        """(name, body start, body end) of the last function whose body holds ``offset``
        (``("", 0, len(prep))`` if none)."""
        funcs = self.functions()
        i = bisect.bisect_left(funcs, (offset,))
        while i > 0:
            i -= 1
            start, end, name = funcs[i]
            if start < offset < end:
                return name, start, end
        return "", 0, len(self.prep)

    def class_inits(self) -> dict[str, list[int]]:
        """Offsets of each ``.class_init = FN`` by FN."""
        if self._class_inits is None:
            out: dict[str, list[int]] = {}
            for m in _CLASS_INIT.finditer(self.prep):
                out.setdefault(m.group("fn"), []).append(m.start())
            self._class_inits = out
        return self._class_inits

    def in_vmsd(self, offset: int) -> bool:
        """Whether ``offset`` lies inside a VMSD initializer found so far."""
        i = bisect.bisect_left(self.vmsd_spans, (offset,), key=lambda s: (s[1],))
        return any(a < offset < b for _, a, b in self.vmsd_spans[max(0, i - 1) : i + 1])


def find_vmsds(files: list[SourceFile], defines: Mapping[str, str],
               priorities: Mapping[str, int] | None = None) -> list[VmsdDef]:
    """Every ``VMStateDescription`` definition, in file order (records each file's spans).

    ``priorities`` (the enum's values by name) lets a ``.priority`` written as an expression
    (``MIG_PRI_DEFAULT + 1``) be evaluated as the enum parser evaluates enumerators.
    """
    prios = dict(priorities or {})
    vmsds: list[VmsdDef] = []
    for f in files:
        if "VMStateDescription" not in f.prep:
            continue
        for m in _VMSD_DEF.finditer(f.prep):
            d = _parse_vmsd(f, m, defines, prios)
            if d is not None:
                vmsds.append(d)
    return vmsds


def find_field_refs(files: list[SourceFile]) -> dict[tuple[str, str], set[str]]:
    """Identifiers in each ``VMStateField`` array defined apart, by (file, array symbol).

    Their VMSD references count for the VMSD using the array.
    """
    field_refs: dict[tuple[str, str], set[str]] = {}
    for f in files:
        if "VMStateField" not in f.prep:
            continue
        for m in _FIELDS_DEF.finditer(f.prep):
            end = match_close(f.prep, m.end() - 1)
            if end > 0:
                field_refs[(f.rel, m.group("sym"))] = set(IDENT.findall(f.prep[m.end():end]))
    return field_refs


def _parse_vmsd(f: SourceFile, m: re.Match[str], defines: Mapping[str, str],
                priorities: Mapping[str, int]) -> VmsdDef | None:
    open_at = m.end() - 1
    close = match_close(f.prep, open_at)
    if close < 0:
        raise SourceTreeError(
            f"{f.rel}:{f.line(m.start())}",
            f"expected '}}' closing the initializer of VMStateDescription {m.group('sym')}",
        )
    sym = m.group("sym")
    f.vmsd_spans.append((sym, open_at, close))
    line_start = f.prep.rfind("\n", 0, m.start()) + 1
    prefix = f.prep[line_start:m.start()]
    # look back over the previous line too, for "static\nconst VMStateDescription"
    prev = f.prep.rfind("\n", 0, max(line_start - 1, 0)) + 1
    static = "static" in (f.prep[prev:line_start] + prefix).split() or bool(
        re.search(r"\bstatic\b", prefix)
    )
    values: dict[str, tuple[str, int]] = {}
    for a, b in split_top(f.prep, open_at + 1, close):
        item = f.prep[a:b]
        im = re.match(r"\s*\.\s*(\w+)\s*=", item)
        if not im:
            continue
        vstart = a + im.end()
        values[im.group(1)] = (f.text[vstart:b], vstart)
    name_expr = ""
    name = ""
    if "name" in values:
        raw, off = values["name"]
        prep_raw = f.prep[off:off + len(raw)]
        # strip comments out of the raw text but keep string contents
        name_expr = strip_comments_keep_strings(raw, prep_raw).strip()
        resolved = resolve(name_expr, defines)
        name = resolved if resolved is not None else name_expr
    priority = ""
    priority_line = 0
    priority_value: int | None = None
    if "priority" in values:
        raw, off = values["priority"]
        expr = " ".join(f.prep[off:off + len(raw)].split())
        priority_value = eval_priority(expr, priorities)
        priority = expr
        if priority_value is not None and not IDENT.fullmatch(expr):
            # MIG_PRI_DEFAULT + 1: the enumerator with that value, as QEMU compares numbers
            priority = next((n for n, v in priorities.items() if v == priority_value), expr)
        priority_line = f.line(off - 1)
    early = False
    if "early_setup" in values:
        raw, off = values["early_setup"]
        early = f.prep[off:off + len(raw)].strip() not in ("false", "0", "")
    unmig = False
    if "unmigratable" in values:
        raw, off = values["unmigratable"]
        unmig = f.prep[off:off + len(raw)].strip() not in ("false", "0", "")

    def _num(key: str) -> int | None:
        if key not in values:
            return None
        raw, off = values[key]
        v = f.prep[off:off + len(raw)].strip()
        try:
            return int(v, 0)
        except ValueError:
            return None

    body_idents = set(IDENT.findall(f.prep[open_at:close]))
    return VmsdDef(
        symbol=sym,
        name=name,
        name_expr=name_expr,
        file=f.rel,
        line=f.line(m.start()),
        priority=priority,
        priority_line=priority_line,
        priority_expr=" ".join(f.prep[values["priority"][1]:values["priority"][1]
                                      + len(values["priority"][0])].split())
        if "priority" in values else "",
        priority_value=priority_value,
        early_setup=early,
        unmigratable=unmig,
        version_id=_num("version_id"),
        minimum_version_id=_num("minimum_version_id"),
        static=static,
        refs=tuple(sorted(body_idents - {sym})),
    )
