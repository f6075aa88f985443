"""``VMStateDescription`` definitions: find them in prepared C files and read their fields.

Private to :mod:`ordering.sources.qemu_tree`.
"""

from __future__ import annotations

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
from ordering.sources.cheader import line_of

_VMSD_DEF = re.compile(
    r"\bVMStateDescription\s+(?:const\s+)*(?P<sym>[A-Za-z_]\w*)\s*=\s*\{"
)
_FIELDS_DEF = re.compile(r"\bVMStateField\s+(?:const\s+)*(?P<sym>[A-Za-z_]\w*)\s*\[\s*\]\s*=\s*\{")


@dataclass
class SourceFile:
    """A C file worth parsing: its text, the text prepared, and its VMSD initializer spans."""

    rel: str
    text: str
    prep: str
    vmsd_spans: list[tuple[str, int, int]] = field(default_factory=list)

    @classmethod
    def of(cls, rel: str, text: str) -> SourceFile:
        """The file at ``rel`` (relative to the tree root) with ``text``, prepared."""
        return cls(rel, text, prepare(text))


def find_vmsds(files: list[SourceFile], defines: Mapping[str, str]) -> list[VmsdDef]:
    """Every ``VMStateDescription`` definition, in file order (records each file's spans)."""
    vmsds: list[VmsdDef] = []
    for f in files:
        if "VMStateDescription" not in f.prep:
            continue
        for m in _VMSD_DEF.finditer(f.prep):
            d = _parse_vmsd(f, m, defines)
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


def _parse_vmsd(f: SourceFile, m: re.Match[str], defines: Mapping[str, str]) -> VmsdDef | None:
    open_at = m.end() - 1
    close = match_close(f.prep, open_at)
    if close < 0:
        raise SourceTreeError(
            f"{f.rel}:{line_of(f.text, m.start())}",
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
    if "priority" in values:
        raw, off = values["priority"]
        words = IDENT.findall(f.prep[off:off + len(raw)])
        priority = words[-1] if words else ""
        priority_line = line_of(f.text, off - 1)
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
        line=line_of(f.text, m.start()),
        priority=priority,
        priority_line=priority_line,
        early_setup=early,
        unmigratable=unmig,
        version_id=_num("version_id"),
        minimum_version_id=_num("minimum_version_id"),
        static=static,
        refs=tuple(sorted(body_idents - {sym})),
    )
