"""Release-file strategies: a release TOML (``migorder scan --out``'s form) with edits, loaded
once per text (a release file read per example would miss hypothesis's deadline)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from ordering.errors import InvalidArgument
from ordering.model.release import Release
from ordering.sources.models import load_knowledge


@cache
def _read_text(text: str, name: str) -> Release:
    from ordering.sources.release_file import read_release_file

    with tempfile.TemporaryDirectory(prefix="migorder-kit-") as tmp:
        path = Path(tmp) / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        return read_release_file(path, load_knowledge())


@cache
def _read_path(path: str, mtime_ns: int, size: int) -> Release:
    from ordering.sources.release_file import read_release_file

    return read_release_file(Path(path), load_knowledge())


def load_release(name_or_path: str | os.PathLike[str]) -> Release:
    """A bundled release by name, or a release file (``scan --out``), read once per process
    and file content (cached by path, size and mtime).

    >>> load_release("10.2").name
    '10.2'
    """
    text = os.fspath(name_or_path)
    k = load_knowledge()
    if text in k.releases:
        return k.release(text)
    path = Path(text)
    if not path.is_file():
        return k.release(text)  # a version such as "10.2.0", or UnknownName listing the bundled
    st_ = path.stat()
    return _read_path(str(path.resolve()), st_.st_mtime_ns, st_.st_size)


@dataclass(frozen=True)
class ReleaseFile:
    """A release TOML drawn by :func:`release_files`: its text and what was edited."""

    text: str
    summary: str
    base: str

    def release(self) -> Release:
        """The release the text describes (read once per text)."""
        return _read_text(self.text, self.base)

    def write(self, path: Path) -> Path:
        """Write the text to ``path`` (for ``migorder --qemu FILE``); return ``path``."""
        path.write_text(self.text, encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return f"<ReleaseFile {self.base}: {self.summary}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


_BLOCK = re.compile(r"^\[\[(\w+)\]\]\n(?:(?!\[).*\n?)*", re.MULTILINE)


def _blocks(text: str, kind: str) -> list[re.Match[str]]:
    return [m for m in _BLOCK.finditer(text) if m.group(1) == kind]


def _field(block: str, key: str) -> str:
    m = re.search(rf'^{key} = "?([^"\n]*)"?$', block, re.MULTILINE)
    return m.group(1) if m else ""


def _base_text(base: str) -> tuple[str, str]:
    k = load_knowledge()
    if base in k.releases:
        return (k.root / "releases" / f"{k.release(base).name}.toml").read_text(encoding="utf-8"), base
    path = Path(base)
    if path.is_file():
        return path.read_text(encoding="utf-8"), load_release(path).name
    return _base_text(k.release(base).name)


def _with_level(text: str, name: str, before: str) -> str:
    """``text`` with level ``name`` inserted just below ``before`` (values renumbered)."""
    blocks = _blocks(text, "priority")
    values = {_field(m.group(0), "name"): int(_field(m.group(0), "value")) for m in blocks}
    at = values[before]
    out = text
    for m in reversed(blocks):
        v = int(_field(m.group(0), "value"))
        if v >= at:
            new = re.sub(r"^value = \d+$", f"value = {v + 1}", m.group(0), count=1, flags=re.MULTILINE)
            out = out[: m.start()] + new + out[m.end() :]
    here = next(m for m in _blocks(out, "priority") if _field(m.group(0), "name") == before)
    block = f'[[priority]]\nname = "{name}"\nvalue = {at}\ncomment = ""\nsource = "proposed"\n\n'
    return out[: here.start()] + block + out[here.start() :]


def _with_priority(text: str, vmsd: str, level: str) -> tuple[str, str]:
    for m in _blocks(text, "vmsd"):
        block = m.group(0)
        if _field(block, "name") == vmsd:
            old = _field(block, "priority")
            new = re.sub(r'^priority = "[^"]*"$', f'priority = "{level}"', block, count=1, flags=re.MULTILINE)
            if _field(block, "registration") not in ("section", "early_setup"):
                new = re.sub(r'^registration = "[^"]*"$', 'registration = "section"', new, count=1,
                             flags=re.MULTILINE)
            return text[: m.start()] + new + text[m.end() :], f"VMSD {vmsd!r}: priority {old or 'unset'} → {level}"
    block = (f'[[vmsd]]\nname = "{vmsd}"\nsymbol = ""\nfile = ""\npriority = "{level}"\n'
             f'registration = "section"\nhow = "proposed"\ninside = ""\nsource = "proposed"\n\n')
    vm_blocks = _blocks(text, "vmsd")
    at = vm_blocks[0].start() if vm_blocks else len(text)
    return text[:at] + block + text[at:], f"VMSD {vmsd!r}: priority unset → {level}"


@st.composite
def _release_files(draw: st.DrawFn, base: str, vmsds: tuple[str, ...], new_levels: tuple[str, ...]) -> ReleaseFile:
    text, name = _base_text(base)
    levels = [_field(m.group(0), "name") for m in _blocks(text, "priority")]
    levels = [lv for lv in levels if lv not in ("MIG_PRI_MAX", "MIG_PRI_UNINITIALIZED")]
    done: list[str] = []
    add: bool = draw(st.booleans()) if new_levels else False
    if add:
        new = draw(st.sampled_from(list(new_levels)))
        below = draw(st.sampled_from(levels[1:] or levels))
        text = _with_level(text, new, below)
        done.append(f"add {new} below {below}")
        levels.append(new)
    free = list(vmsds)
    for _ in range(draw(st.integers(0 if done else 1, min(2, len(free))))):
        vmsd = draw(st.sampled_from(free))
        free.remove(vmsd)
        now = [_field(m.group(0), "priority") for m in _blocks(text, "vmsd") if _field(m.group(0), "name") == vmsd]
        choices = [lv for lv in levels if lv not in now[:1]]
        text, what = _with_priority(text, vmsd, draw(st.sampled_from(choices)))
        done.append(what)
    return ReleaseFile(text, "; ".join(done), name)


def release_files(
    base: str = "10.2", *, vmsds: Iterable[str] | None = None, new_levels: Iterable[str] = ()
) -> st.SearchStrategy[ReleaseFile]:
    """Release files: ``base`` (a bundled release or a ``scan --out`` file) with a level added
    (from ``new_levels``) and up to two distinct VMSDs' priorities set. Shrinks to one VMSD set to the
    lowest level.

    Parameters
    ----------
    base : str
        A bundled release name or a release file's path.
    vmsds : iterable of str, optional
        VMSD names whose priority may change (default: those the bundled kinds name).
    new_levels : iterable of str
        Level names that may be added to the enum.

    Examples
    --------
    >>> from hypothesis import find
    >>> f = find(release_files("10.0", vmsds=["apic"], new_levels=["MIG_PRI_APIC"]),
    ...          lambda f: "add" in f.summary and "→ MIG_PRI_APIC" in f.summary)
    >>> f
    <ReleaseFile 10.0: add MIG_PRI_APIC below MIG_PRI_IOMMU; VMSD 'apic': priority unset → MIG_PRI_APIC>
    >>> rel = f.release()
    >>> rel.priority_of("apic").name, rel.priority_of("apic").value > rel.scheme.default.value
    ('MIG_PRI_APIC', True)
    """
    if vmsds is None:
        names = tuple(sorted({v for kind in load_knowledge().kinds.values() for v in kind.vmsds}))
    else:
        names = tuple(vmsds)
    if not names:
        raise InvalidArgument("release_files: give at least one VMSD name")
    _base_text(base)  # fail now on an unknown base, not in the first example
    return _release_files(base, names, tuple(new_levels))
