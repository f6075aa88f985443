"""Patch strategies: edits to a QEMU tree's ``MigrationPriority`` enum and VMSDs' ``.priority``.

A drawn :class:`Patch` is plain unified-diff text against the tree (``str(patch)``), as a
reviewer would see it on qemu-devel; :meth:`Patch.apply` writes it into a copy of the tree.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from ordering.errors import InvalidArgument, SourceTreeError
from ordering.sources.cheader import HEADER, parse_priority_enum
from ordering.sources.models import load_knowledge
from ordering.sources.qemu_tree import ScannedRelease, scan_tree


@dataclass(frozen=True)
class LineEdit:
    """Lines ``line .. line+len(old)-1`` of ``file`` (1-based) replaced by ``new``."""

    file: str
    line: int
    old: tuple[str, ...]
    new: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class Patch:
    """Edits to a QEMU tree, as unified-diff text (``str(patch)``) and a summary.

    ``texts`` holds the files' text before the edits.
    """

    edits: tuple[LineEdit, ...]
    texts: Mapping[str, str] = field(repr=False, compare=False)

    @property
    def summary(self) -> str:
        """What the patch does, one clause per edit."""
        return "; ".join(e.summary for e in self.edits if e.summary) or "no change"

    def after(self) -> dict[str, str]:
        """Each edited file's text after the patch."""
        out: dict[str, str] = {}
        for file in sorted({e.file for e in self.edits}):
            lines = self.texts[file].splitlines(keepends=True)
            for e in sorted((e for e in self.edits if e.file == file), key=lambda e: -e.line):
                lines[e.line - 1 : e.line - 1 + len(e.old)] = [n + "\n" for n in e.new]
            out[file] = "".join(lines)
        return out

    @property
    def diff(self) -> str:
        """The patch as a unified diff (``a/`` and ``b/`` prefixes, three lines of context)."""
        parts: list[str] = []
        for file, text in self.after().items():
            parts.extend(
                difflib.unified_diff(
                    self.texts[file].splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"a/{file}",
                    f"b/{file}",
                )
            )
        return "".join(parts)

    def __str__(self) -> str:
        return self.diff

    def __repr__(self) -> str:
        return f"<Patch: {self.summary}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def apply(self, root: Path) -> None:
        """Write the edited files into the tree at ``root`` (a copy: this changes files).

        Raises
        ------
        SourceTreeError
            A file in ``root`` is not the text the patch was drawn against.
        """
        for file, text in self.after().items():
            path = root / file
            if path.read_text(encoding="utf-8", errors="replace") != self.texts[file]:
                raise SourceTreeError(str(path), "expected the file the patch was drawn against")
            path.write_text(text, encoding="utf-8")

    def __add__(self, other: Patch) -> Patch:
        """Both patches' edits (drawn against the same tree; overlapping edits are dropped)."""
        taken = {(e.file, ln) for e in self.edits for ln in range(e.line, e.line + max(1, len(e.old)))}
        extra = tuple(
            e for e in other.edits
            if not any((e.file, ln) in taken for ln in range(e.line, e.line + max(1, len(e.old))))
        )
        return Patch((*self.edits, *extra), {**self.texts, **other.texts})


@cache
def _scan(root: str) -> ScannedRelease:
    return scan_tree(root)


@cache
def _text(root: str, file: str) -> str:
    return (Path(root) / file).read_text(encoding="utf-8", errors="replace")


def _root(tree: str | Path) -> str:
    root = Path(tree).resolve()
    if not (root / HEADER).is_file():
        raise InvalidArgument(f"{tree}: expected a QEMU source tree holding {HEADER}")
    return str(root)


@st.composite
def _enum_edit(draw: st.DrawFn, root: str, new_levels: tuple[str, ...]) -> Patch:
    text = _text(root, HEADER)
    enum = parse_priority_enum(text, HEADER)
    lines = text.splitlines()
    levels = enum.levels
    # Positions a level may go before: any but the first (it carries "= 0"); MAX stays last.
    targets = list(levels[1:])
    movable = [lv for lv in levels[1:] if not lv.explicit and lv.name != "MIG_PRI_MAX"]
    how = draw(st.sampled_from(["add", "move"] if new_levels else ["move"]))
    before = draw(st.sampled_from(targets))
    if how == "add":
        name = draw(st.sampled_from(new_levels))
        indent = re.match(r"\s*", lines[before.line - 1]).group(0)  # type: ignore[union-attr]
        edit = LineEdit(HEADER, before.line, (), (f"{indent}{name},",), f"add {name} before {before.name}")
        return Patch((edit,), {HEADER: text})
    moving = draw(st.sampled_from([lv for lv in movable if lv.name != before.name] or movable))
    if moving.line + 1 == before.line or moving.name == before.name:
        return Patch((), {HEADER: text})
    own = lines[moving.line - 1]
    return Patch(
        (
            LineEdit(HEADER, moving.line, (own,), (), f"move {moving.name} before {before.name}"),
            LineEdit(HEADER, before.line, (), (own,), ""),
        ),
        {HEADER: text},
    )


def enum_edits(tree: str | Path, *, new_levels: Iterable[str] = ()) -> st.SearchStrategy[Patch]:
    """Edits to the tree's ``MigrationPriority``: an enumerator moved before another, or (with
    ``new_levels``) a new one added. Values follow from the position, as in C.

    Examples
    --------
    >>> from hypothesis import find
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> patch = find(enum_edits(tree, new_levels=["MIG_PRI_APIC"]), lambda p: "add" in p.summary)
    >>> patch
    <Patch: add MIG_PRI_APIC before MIG_PRI_IOMMU>
    >>> print(patch.diff.splitlines()[0])
    --- a/include/migration/vmstate.h
    """
    root = _root(tree)
    return _enum_edit(root, tuple(new_levels)).filter(lambda p: bool(p.edits))


def _name_line(lines: list[str], start: int) -> int:
    """The 1-based line of ``.name`` in the VMSD initializer starting at line ``start``."""
    for i in range(start - 1, min(start + 12, len(lines))):
        if re.search(r"\.name\s*=", lines[i]):
            return i + 1
    return start


@st.composite
def _priority_edit(draw: st.DrawFn, root: str, vmsds: tuple[str, ...], levels: tuple[str, ...]) -> Patch:
    scanned = _scan(root)
    defs = [d for d in scanned.vmsds if d.name in vmsds]
    d = draw(st.sampled_from(defs))
    text = _text(root, d.file)
    lines = text.splitlines()
    choices = [lv for lv in levels if lv != d.priority]
    if d.priority_line:
        how = draw(st.sampled_from(["set", "remove"] if choices else ["remove"]))
        old = lines[d.priority_line - 1]
        if how == "remove":
            edit = LineEdit(d.file, d.priority_line, (old,), (), f"drop .priority {d.priority} of VMSD {d.name!r}")
        else:
            level = draw(st.sampled_from(choices))
            new = re.sub(r"=\s*[A-Za-z0-9_]+", f"= {level}", old, count=1)
            edit = LineEdit(d.file, d.priority_line, (old,), (new,),
                            f"VMSD {d.name!r}: .priority {d.priority} → {level}")
        return Patch((edit,), {d.file: text})
    level = draw(st.sampled_from(choices))
    at = _name_line(lines, d.line)
    indent = re.match(r"\s*", lines[at - 1]).group(0)  # type: ignore[union-attr]
    edit = LineEdit(d.file, at + 1, (), (f"{indent}.priority = {level},",),
                    f"VMSD {d.name!r}: .priority {level} (was unset)")
    return Patch((edit,), {d.file: text})


def priority_edits(
    tree: str | Path, *, vmsds: Iterable[str] | None = None, levels: Iterable[str] = ()
) -> st.SearchStrategy[Patch]:
    """Edits to one VMSD's ``.priority``: set to another level, removed, or added.

    Parameters
    ----------
    tree : path
        A QEMU source tree (scanned once per process).
    vmsds : iterable of str, optional
        VMSD names (``.name``) to edit; default: every VMSD with a ``.priority`` and every
        VMSD a bundled kind names (``apic``, ``iommu-intel`` ...).
    levels : iterable of str
        Extra level names to set (say one :func:`enum_edits` adds), besides the tree's own.

    Examples
    --------
    >>> from hypothesis import find
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> find(priority_edits(tree, vmsds=["iommu-intel"]), lambda p: True)
    <Patch: drop .priority MIG_PRI_IOMMU of VMSD 'iommu-intel'>
    """
    root = _root(tree)
    scanned = _scan(root)
    if vmsds is None:
        kinds = {v for kind in load_knowledge().kinds.values() for v in kind.vmsds}
        names = sorted({d.name for d in scanned.vmsds if d.priority or d.name in kinds})
    else:
        names = list(vmsds)
        missing = sorted(set(names) - {d.name for d in scanned.vmsds})
        if missing:
            raise InvalidArgument(f"{tree}: no VMSD named {', '.join(missing)}")
    if not names:
        raise InvalidArgument(f"{tree}: no VMSD to edit")
    own = tuple(lv.name for lv in scanned.enum.levels if lv.name != "MIG_PRI_MAX")
    return _priority_edit(root, tuple(names), (*own, *levels))


@st.composite
def _patches(draw: st.DrawFn, tree: str, vmsds: tuple[str, ...] | None, new_levels: tuple[str, ...]) -> Patch:
    patch = Patch((), {})
    added: list[str] = []
    if draw(st.booleans()):
        enum = draw(enum_edits(tree, new_levels=new_levels))
        added = [n for n in new_levels if n in enum.summary]
        patch = patch + enum
    for _ in range(draw(st.integers(0 if patch.edits else 1, 2))):
        patch = patch + draw(priority_edits(tree, vmsds=vmsds, levels=added))
    return patch


def patches(
    tree: str | Path, *, vmsds: Iterable[str] | None = None, new_levels: Iterable[str] = ()
) -> st.SearchStrategy[Patch]:
    """A reviewer's patch: perhaps an enum edit (a level added or moved), and up to two
    ``.priority`` edits, which may use the added level. Shrinks to one ``.priority`` edit.

    Examples
    --------
    >>> from hypothesis import find
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> p = find(patches(tree, new_levels=["MIG_PRI_APIC"]), lambda p: "MIG_PRI_APIC" in p.summary
    ...          and "→ MIG_PRI_APIC" in p.summary)
    >>> p.summary
    "add MIG_PRI_APIC before MIG_PRI_IOMMU; VMSD 'iommu-intel': .priority MIG_PRI_IOMMU → MIG_PRI_APIC"
    """
    return _patches(_root(tree), None if vmsds is None else tuple(vmsds), tuple(new_levels))
