"""Scan a QEMU source tree into a release model: enum, priority VMSDs, registrations.

:func:`scan_tree` reads a (possibly patched) QEMU tree and finds every
``VMStateDescription`` definition with its ``.name``, ``.priority``, ``.early_setup`` and
``.unmigratable``; how each priority-bearing VMSD is registered (a section of its own, or only
nested inside another section, where its priority cannot take effect); the
``register_savevm_live`` handlers; and the release version. :func:`to_release_toml` writes
the result in the ``models/releases/<R>.toml`` schema and :func:`lint` reports priorities
that cannot take effect.

The scanner does not run the C preprocessor. It blanks comments, string contents,
``#if 0`` groups and directives (keeping offsets, so lines stay right), then matches the few
shapes QEMU uses. Names given as macros (``.name = TYPE_PCIE_PCI_BRIDGE_DEV``) are resolved
through the ``#define`` lines of the tree when they lead to a string literal.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ordering.errors import SourceTreeError
from ordering.sources.cheader import (
    HEADER,
    OrderClaim,
    PriorityEnum,
    blank_comments_and_strings,
    blank_if0,
    line_of,
    parse_claims,
    parse_priority_enum,
)

__all__ = [
    "Handler",
    "PriorityUser",
    "ScannedRelease",
    "UnmigratableUse",
    "Use",
    "VmsdDef",
    "lint",
    "release_model",
    "scan_tree",
    "to_release_toml",
]

SKIP_TOP = frozenset({"tests", "build", "roms", "subprojects", "debian"})
"""Top-level folders never scanned (plus every hidden folder, e.g. quilt's ``.pc``)."""

_NEEDLES = (b"VMStateDescription", b"register_savevm_live", b"vmsd")

_VMSD_DEF = re.compile(
    r"\bVMStateDescription\s+(?:const\s+)*(?P<sym>[A-Za-z_]\w*)\s*=\s*\{"
)
_FIELDS_DEF = re.compile(r"\bVMStateField\s+(?:const\s+)*(?P<sym>[A-Za-z_]\w*)\s*\[\s*\]\s*=\s*\{")
_DIRECTIVE_LINE = re.compile(r"^[ \t]*#(?:\\\n|[^\n])*", re.MULTILINE)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+((?:\\\n|[^\n])*)", re.MULTILINE)
_ASSIGN_VMSD = re.compile(
    r"(?P<lhs>[A-Za-z_][\w.]*(?:\s*\([^()]*\))?(?:\s*->\s*\w+)*)\s*->\s*vmsd\s*=\s*&\s*"
    r"(?P<sym>[A-Za-z_]\w*)\b"
)
_DESIGNATED_VMSD = re.compile(r"\.\s*(?P<f>legacy_vmsd|vmsd)\s*=\s*&\s*(?P<sym>[A-Za-z_]\w*)\b")
_REGISTER = re.compile(r"\b(?P<fn>vmstate_register(?:_with_alias_id|_any)?)\s*\(")
_SAVEVM_LIVE = re.compile(r"\bregister_savevm_live\s*\(")
_FUNC_START = re.compile(
    r"^[A-Za-z_][^\n;=]*?\b(?P<fn>[A-Za-z_]\w*)\s*\([^;{]*\)\s*\{", re.MULTILINE
)
_IDENT = re.compile(r"[A-Za-z_]\w*")
_STRING = re.compile(r'"((?:\\.|[^"\\\n])*)"')


@dataclass(frozen=True)
class VmsdDef:
    """One ``VMStateDescription`` definition as written.

    Attributes
    ----------
    symbol : str
        The C variable (``vtd_vmstate``).
    name : str
        The ``.name`` string, macros resolved; the expression itself when it cannot be.
    name_expr : str
        The ``.name`` initializer as written (``"iommu-intel"``, ``TYPE_PCIE_PCI_BRIDGE_DEV``).
    file : str
        Path relative to the tree root.
    line : int
        Line of the definition.
    priority : str
        ``.priority`` as written (``"MIG_PRI_IOMMU"``), ``""`` when unset.
    priority_line : int
        Line of ``.priority`` (0 when unset).
    early_setup : bool
        ``.early_setup = true``.
    unmigratable : bool
        ``.unmigratable`` set to a non-zero value.
    version_id, minimum_version_id : int or None
        As written, when they are integer literals.
    static : bool
        Whether the definition is ``static`` (visible only in its file).
    refs : tuple of str
        Identifiers in its initializer that name other VMSDs (fields, subsections).
    """

    symbol: str
    name: str
    name_expr: str
    file: str
    line: int
    priority: str = ""
    priority_line: int = 0
    early_setup: bool = False
    unmigratable: bool = False
    version_id: int | None = None
    minimum_version_id: int | None = None
    static: bool = True
    refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Use:
    """One place a VMSD symbol is used.

    ``kind`` is ``"dc"`` (``dc->vmsd = &SYM``), ``"vdc"`` (a VirtioDeviceClass's inner
    vmsd), ``"class_data"`` (``.vmsd = &SYM`` in class data), ``"legacy_vmsd"`` (CPU
    ``sysemu_ops``), ``"register"`` (``vmstate_register*``) or ``"field"`` (inside another
    VMSD). ``device`` is the QOM type whose class_init makes a ``dc``/``vdc`` use;
    ``outer`` the VMSD symbol that carries a ``field``/``vdc`` use.
    """

    kind: str
    file: str
    line: int
    detail: str = ""
    device: str = ""
    outer: str = ""


@dataclass(frozen=True)
class PriorityUser:
    """A VMSD with ``.priority`` (or ``.early_setup``) and how it reaches the stream.

    ``registration`` is ``section``, ``early_setup`` or ``nested``; a VMSD never used at all
    is reported as ``nested`` with an empty ``inside`` and ``how`` saying so.
    """

    vmsd: VmsdDef
    registration: str
    how: str
    inside: str
    uses: tuple[Use, ...]

    @property
    def takes_effect(self) -> bool:
        """Whether the VMSD's own ``.priority`` orders the stream."""
        return self.registration in ("section", "early_setup")


@dataclass(frozen=True)
class Handler:
    """A ``register_savevm_live`` call: SaveVMHandlers, no VMSD, always DEFAULT."""

    idstr: str
    idstr_expr: str
    literal: bool
    ops: str
    file: str
    line: int


@dataclass(frozen=True)
class UnmigratableUse:
    """A VMSD with ``.unmigratable = 1`` and the ``-device`` types that bring it."""

    vmsd: VmsdDef
    devices: tuple[str, ...]


@dataclass(frozen=True)
class ScannedRelease:
    """What :func:`scan_tree` found in one QEMU source tree."""

    root: str
    version: str
    package: str
    enum: PriorityEnum
    claims: tuple[OrderClaim, ...]
    vmsds: tuple[VmsdDef, ...]
    priority_users: tuple[PriorityUser, ...]
    handlers: tuple[Handler, ...]
    unmigratable: tuple[UnmigratableUse, ...]
    features: Mapping[str, tuple[bool, str]] = field(default_factory=dict)
    files_scanned: int = 0
    files_parsed: int = 0
    seconds: float = 0.0

    @property
    def release(self) -> str:
        """``"MAJOR.MINOR"`` of VERSION (``"7.2"`` for 7.2.22)."""
        parts = self.version.split(".")
        return ".".join(parts[:2])


# --------------------------------------------------------------------------- C helpers


def _prepare(text: str) -> str:
    """Comments, string contents, ``#if 0`` groups and directives blanked; offsets kept."""
    s = blank_if0(blank_comments_and_strings(text))
    return _DIRECTIVE_LINE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), s)


def _match_close(s: str, open_at: int, open_ch: str = "{", close_ch: str = "}") -> int:
    """Offset of the bracket closing the one at ``open_at`` (-1 if none)."""
    depth = 0
    pairs = {"{": "}", "(": ")", "[": "]"}
    del close_ch
    stack: list[str] = []
    for i in range(open_at, len(s)):
        c = s[i]
        if c in pairs:
            stack.append(pairs[c])
            depth += 1
        elif c in ")]}":
            if not stack or stack[-1] != c:
                return -1
            stack.pop()
            if not stack:
                return i
    del open_ch
    return -1


def _split_top(s: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Spans of the comma-separated items of ``s[start:end]`` at bracket depth 0."""
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


def _c_string(expr: str) -> str | None:
    """The value of one or more adjacent string literals, else None."""
    e = expr.strip()
    if not e.startswith('"'):
        return None
    parts = _STRING.findall(e)
    rest = _STRING.sub("", e).strip()
    if rest:
        return None
    return "".join(p.encode().decode("unicode_escape") if "\\" in p else p for p in parts)


def _resolve(expr: str, defines: Mapping[str, str], depth: int = 0) -> str | None:
    """Resolve a string literal or a chain of ``#define``\\ s to a string, else None."""
    lit = _c_string(expr)
    if lit is not None:
        return lit
    e = expr.strip()
    while e.startswith("(") and e.endswith(")"):
        e = e[1:-1].strip()
    if depth < 8 and re.fullmatch(r"[A-Za-z_]\w*", e) and e in defines:
        return _resolve(defines[e], defines, depth + 1)
    # "prefix" MACRO "suffix" concatenations
    if depth < 8 and '"' in e:
        out = []
        for m in re.finditer(r'"(?:\\.|[^"\\\n])*"|[A-Za-z_]\w*|\S', e):
            tok = m.group(0)
            r = _resolve(tok, defines, depth + 1)
            if r is None:
                return None
            out.append(r)
        return "".join(out)
    return None


@dataclass
class _File:
    rel: str
    text: str
    prep: str
    vmsd_spans: list[tuple[str, int, int]] = field(default_factory=list)


# --------------------------------------------------------------------------- the scan


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        top = here == root
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and not (top and d in SKIP_TOP)
        )
        for f in sorted(filenames):
            if f.endswith((".c", ".h")):
                yield here / f


def _read(p: Path) -> str:
    return p.read_bytes().decode("utf-8", errors="replace")


def _parse_vmsd(f: _File, m: re.Match[str], defines: Mapping[str, str]) -> VmsdDef | None:
    open_at = m.end() - 1
    close = _match_close(f.prep, open_at)
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
    for a, b in _split_top(f.prep, open_at + 1, close):
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
        name_expr = _strip_comments_keep_strings(raw, prep_raw).strip()
        resolved = _resolve(name_expr, defines)
        name = resolved if resolved is not None else name_expr
    priority = ""
    priority_line = 0
    if "priority" in values:
        raw, off = values["priority"]
        words = _IDENT.findall(f.prep[off:off + len(raw)])
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

    body_idents = set(_IDENT.findall(f.prep[open_at:close]))
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


def _strip_comments_keep_strings(raw: str, prep: str) -> str:
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


def _enclosing_function(f: _File, offset: int) -> tuple[str, int, int]:
    """(name, body start, body end) of the function around ``offset`` ("" if none)."""
    best: tuple[str, int, int] = ("", 0, len(f.prep))
    for m in _FUNC_START.finditer(f.prep, 0, offset):
        end = _match_close(f.prep, m.end() - 1)
        if m.end() - 1 < offset < end:
            best = (m.group("fn"), m.end() - 1, end)
    return best


def _type_for_class_init(
    files: list[_File], fn: str, home: _File, defines: Mapping[str, str]
) -> list[str]:
    """QOM type names whose TypeInfo has ``.class_init = fn`` (home file first)."""
    pat = re.compile(r"\.\s*class_init\s*=\s*" + re.escape(fn) + r"\b")
    found: list[str] = []
    for f in [home, *(x for x in files if x is not home and fn in x.text)]:
        for m in pat.finditer(f.prep):
            # the enclosing initializer: scan back to the unmatched '{'
            depth = 0
            i = m.start()
            while i > 0:
                i -= 1
                c = f.prep[i]
                if c == "}":
                    depth += 1
                elif c == "{":
                    if depth == 0:
                        break
                    depth -= 1
            end = _match_close(f.prep, i)
            if end < 0:
                continue
            for a, b in _split_top(f.prep, i + 1, end):
                im = re.match(r"\s*\.\s*name\s*=", f.prep[a:b])
                if im:
                    expr = _strip_comments_keep_strings(
                        f.text[a + im.end():b], f.prep[a + im.end():b]
                    ).strip()
                    found.append(_resolve(expr, defines) or expr)
        if found:
            break
    return found


def _is_virtio_class(f: _File, lhs: str, fn_start: int, fn_end: int) -> bool:
    if "VIRTIO_DEVICE_CLASS" in lhs:
        return True
    var = lhs.strip()
    if not re.fullmatch(r"[A-Za-z_]\w*", var):
        return False
    decl = re.compile(r"\bVirtioDeviceClass\s*\*\s*" + re.escape(var) + r"\b")
    return bool(decl.search(f.prep, fn_start, fn_end) or decl.search(f.prep))


def _features(root: Path, header_text: str, enum: PriorityEnum) -> dict[str, tuple[bool, str]]:
    def has(rel: str, needle: str) -> bool:
        p = root / rel
        return p.is_file() and needle in _read(p)

    def any_in(folder: str, needle: str) -> bool:
        d = root / folder
        if not d.is_dir():
            return False
        return any(needle in _read(p) for p in sorted(d.glob("*.c")))

    early = "early_setup" in blank_comments_and_strings(header_text)
    zero = "MIG_PRI_UNINITIALIZED" in enum.names
    return {
        "early_setup": (early, f"scanned: {HEADER}: 'early_setup' field"
                        f" {'present' if early else 'absent'}"),
        "zero_priority_is_default": (zero, f"scanned: {HEADER}: MIG_PRI_UNINITIALIZED"
                                     f" {'present' if zero else 'absent'}"),
        "switchover_start": (
            has("migration/savevm.c", "MIG_CMD_SWITCHOVER_START"),
            "scanned: migration/savevm.c: MIG_CMD_SWITCHOVER_START",
        ),
        "vfio_multifd_load_thread": (
            any_in("hw/vfio", "vfio_load_bufs_thread"),
            "scanned: hw/vfio/*.c: vfio_load_bufs_thread",
        ),
        "vfio_config_load_after_iter": (
            any_in("hw/vfio", "x-migration-load-config-after-iter"),
            "scanned: hw/vfio/*.c: x-migration-load-config-after-iter",
        ),
        "duplicate_section_check": (
            has("migration/savevm.c", "Detected duplicate SaveStateEntry"),
            "scanned: migration/savevm.c: 'Detected duplicate SaveStateEntry'",
        ),
    }


def _package(root: Path) -> str:
    changelog = root / "debian" / "changelog"
    if changelog.is_file():
        first = _read(changelog).split("\n", 1)[0]
        m = re.match(r"(\S+) \(([^)]+)\)", first)
        if m:
            return f"Debian source package {m.group(1)} {m.group(2)}"
    return ""


def scan_tree(root: str | os.PathLike[str]) -> ScannedRelease:
    """Scan a QEMU source tree.

    Parameters
    ----------
    root : path
        The top of the tree (the folder holding ``VERSION``).

    Returns
    -------
    ScannedRelease
        Enum, VMSDs, priority users with their registration, handlers, unmigratable VMSDs.

    Raises
    ------
    SourceTreeError
        ``file:line`` when VERSION or the enum is missing or malformed, or an initializer
        cannot be read.

    Examples
    --------
    >>> from pathlib import Path
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> scanned = scan_tree(tree)
    >>> [(u.vmsd.name, u.registration) for u in scanned.priority_users]
    [('iommu-intel', 'section'), ('virtio-mem-device', 'nested')]
    """
    t0 = time.perf_counter()
    rootp = Path(root)
    version_file = rootp / "VERSION"
    if not version_file.is_file():
        raise SourceTreeError(f"{version_file}:1", "expected a VERSION file at the tree's top")
    version = _read(version_file).strip().split("\n", 1)[0].strip()
    if not re.fullmatch(r"\d+\.\d+(?:\.\d+)*(?:-rc\d+)?", version):
        raise SourceTreeError("VERSION:1", f"expected a version such as 7.2.0, found {version!r}")
    header_path = rootp / HEADER
    if not header_path.is_file():
        raise SourceTreeError(f"{HEADER}:1", "expected the header that defines MigrationPriority")
    header_text = _read(header_path)
    enum = parse_priority_enum(header_text, HEADER)

    defines: dict[str, str] = {}
    files: list[_File] = []
    scanned = 0
    for p in _walk(rootp):
        data = p.read_bytes()
        is_c = p.suffix == ".c"
        if is_c:
            scanned += 1
        if b"#" in data and b"define" in data:
            text = data.decode("utf-8", errors="replace")
            for dm in _DEFINE.finditer(text):
                val = dm.group(2).split("//")[0].split("/*")[0].strip()
                if val and dm.group(1) not in defines:
                    defines[dm.group(1)] = val
        if is_c and any(n in data for n in _NEEDLES):
            text = data.decode("utf-8", errors="replace")
            files.append(_File(p.relative_to(rootp).as_posix(), text, _prepare(text)))

    vmsds: list[VmsdDef] = []
    for f in files:
        if "VMStateDescription" not in f.prep:
            continue
        for m in _VMSD_DEF.finditer(f.prep):
            d = _parse_vmsd(f, m, defines)
            if d is not None:
                vmsds.append(d)

    by_symbol: dict[str, list[VmsdDef]] = {}
    for d in vmsds:
        by_symbol.setdefault(d.symbol, []).append(d)

    def lookup(sym: str, f: _File) -> VmsdDef | None:
        cands = by_symbol.get(sym, [])
        for d in cands:
            if d.file == f.rel:
                return d
        for d in cands:
            if not d.static:
                return d
        return cands[0] if len(cands) == 1 else None

    # VMStateField arrays defined apart: their VMSD references count for the VMSD using them
    field_refs: dict[tuple[str, str], set[str]] = {}
    for f in files:
        if "VMStateField" not in f.prep:
            continue
        for m in _FIELDS_DEF.finditer(f.prep):
            end = _match_close(f.prep, m.end() - 1)
            if end > 0:
                field_refs[(f.rel, m.group("sym"))] = set(_IDENT.findall(f.prep[m.end():end]))

    interesting = {d.symbol for d in vmsds if d.priority or d.early_setup or d.unmigratable}
    uses: dict[tuple[str, str], list[Use]] = {}  # (file, symbol) of the VMSD -> uses

    def add(sym: str, f: _File, use: Use) -> None:
        d = lookup(sym, f)
        if d is not None:
            uses.setdefault((d.file, d.symbol), []).append(use)

    # nested uses: a VMSD body (or its separate fields array) naming an interesting VMSD
    for d in vmsds:
        refs = set(d.refs)
        for r in list(refs):
            refs |= field_refs.get((d.file, r), set())
        for r in sorted(refs & interesting):
            home = next(f for f in files if f.rel == d.file)
            add(r, home, Use("field", d.file, d.line, f"inside VMSD '{d.name}'", outer=d.symbol))

    handlers: list[Handler] = []
    for f in files:
        has_sym = [s for s in interesting if s in f.prep]
        if has_sym:
            for m in _ASSIGN_VMSD.finditer(f.prep):
                sym = m.group("sym")
                if sym not in interesting:
                    continue
                fn, fs, fe = _enclosing_function(f, m.start())
                lhs = m.group("lhs")
                devs = _type_for_class_init(files, fn, f, defines) if fn else []
                dev = devs[0] if devs else ""
                line = line_of(f.text, m.start())
                if _is_virtio_class(f, lhs, fs, fe):
                    outer = ""
                    for om in _ASSIGN_VMSD.finditer(f.prep, fs, fe):
                        if not _is_virtio_class(f, om.group("lhs"), fs, fe):
                            outer = om.group("sym")
                    add(sym, f, Use("vdc", f.rel, line, f"{lhs.strip()}->vmsd in {fn}",
                                    device=dev, outer=outer))
                else:
                    add(sym, f, Use("dc", f.rel, line, f"{lhs.strip()}->vmsd in {fn}",
                                    device=dev))
            for m in _DESIGNATED_VMSD.finditer(f.prep):
                sym = m.group("sym")
                if sym not in interesting or any(a < m.start() < b for _, a, b in f.vmsd_spans):
                    continue
                kind = "legacy_vmsd" if m.group("f") == "legacy_vmsd" else "class_data"
                add(sym, f, Use(kind, f.rel, line_of(f.text, m.start()), f".{m.group('f')}"))
            for m in _REGISTER.finditer(f.prep):
                close = _match_close(f.prep, m.end() - 1)
                if close < 0:
                    continue
                for a, b in _split_top(f.prep, m.end(), close):
                    arg = f.prep[a:b].strip().lstrip("&").strip()
                    if arg in interesting:
                        add(arg, f, Use("register", f.rel, line_of(f.text, m.start()),
                                        m.group("fn")))
        if "register_savevm_live" in f.prep:
            for m in _SAVEVM_LIVE.finditer(f.prep):
                before = f.prep[:m.start()].rstrip()
                word = re.search(r"(\w+)$", before)
                if word and word.group(1) not in ("else", "return", "do"):
                    continue  # a declaration or definition, not a call
                close = _match_close(f.prep, m.end() - 1)
                if close < 0:
                    continue
                args = list(_split_top(f.prep, m.end(), close))
                if not args:
                    continue
                a, b = args[0]
                expr = _strip_comments_keep_strings(f.text[a:b], f.prep[a:b]).strip()
                resolved = _resolve(expr, defines)
                ops = ""
                if len(args) >= 4:
                    oa, ob = args[3]
                    ops = f.prep[oa:ob].strip().lstrip("&").strip()
                handlers.append(Handler(
                    idstr=resolved if resolved is not None else expr,
                    idstr_expr=expr,
                    literal=resolved is not None,
                    ops=ops,
                    file=f.rel,
                    line=line_of(f.text, m.start()),
                ))

    name_of = {(d.file, d.symbol): d.name for d in vmsds}
    sym_file = {d.symbol: d.file for d in vmsds}

    def outer_name(use: Use) -> str:
        if not use.outer:
            return ""
        return name_of.get((use.file, use.outer)) or name_of.get(
            (sym_file.get(use.outer, ""), use.outer), use.outer
        )

    users: list[PriorityUser] = []
    unmig: list[UnmigratableUse] = []
    for d in vmsds:
        us = tuple(uses.get((d.file, d.symbol), []))
        if d.unmigratable:
            types = tuple(dict.fromkeys(u.device for u in us if u.kind == "dc" and u.device))
            unmig.append(UnmigratableUse(d, types))
        if not (d.priority or d.early_setup):
            continue
        section = [u for u in us if u.kind in ("dc", "class_data", "legacy_vmsd", "register")]
        nested = [u for u in us if u.kind in ("vdc", "field")]
        if section:
            u = section[0]
            registration = "early_setup" if d.early_setup else "section"
            if u.kind == "dc":
                owner = u.device or f"the device whose {u.detail.split(' in ')[-1]} sets it"
                how = (f"dc->vmsd of {owner} ({u.file}:{u.line}), registered by "
                       "device_set_realized")
            elif u.kind == "register":
                how = f"{u.detail}() at {u.file}:{u.line}"
            elif u.kind == "legacy_vmsd":
                how = f"sysemu_ops .legacy_vmsd ({u.file}:{u.line}), registered by vmstate_register"
            else:
                how = f"class data .vmsd ({u.file}:{u.line}), assigned to dc->vmsd in class_init"
            inside = ""
        elif nested:
            u = nested[0]
            registration = "nested"
            inside = outer_name(u)
            if u.kind == "vdc":
                how = (f"vdc->vmsd of {u.device or '?'} (VirtioDeviceClass, {u.file}:{u.line}), "
                       f"saved by VMSTATE_VIRTIO_DEVICE inside '{inside}'")
            else:
                how = f"referenced inside VMSD '{inside}' ({u.file}:{u.line})"
        else:
            registration = "nested"
            inside = ""
            how = "never registered: no dc->vmsd, vmstate_register or use inside another VMSD"
        users.append(PriorityUser(d, registration, how, inside, us))

    return ScannedRelease(
        root=str(rootp),
        version=version,
        package=_package(rootp),
        enum=enum,
        claims=parse_claims(enum),
        vmsds=tuple(vmsds),
        priority_users=tuple(users),
        handlers=tuple(handlers),
        unmigratable=tuple(unmig),
        features=_features(rootp, header_text, enum),
        files_scanned=scanned,
        files_parsed=len(files),
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- lint


def lint(scanned: ScannedRelease) -> list[str]:
    """Findings about priorities that cannot take effect or are not in the enum.

    Parameters
    ----------
    scanned : ScannedRelease
        A result of :func:`scan_tree`.

    Returns
    -------
    list of str
        ``"FILE:LINE: ..."`` lines, in file order.

    Examples
    --------
    >>> from pathlib import Path
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> for finding in lint(scan_tree(tree)):
    ...     print(finding)  # doctest: +NORMALIZE_WHITESPACE
    hw/virtio/virtio-mem.c:12: priority MIG_PRI_VIRTIO_MEM on VMSD 'virtio-mem-device' cannot
    take effect: it is never registered as a section of its own (only inside 'virtio-mem')
    """
    out: list[tuple[str, int, str]] = []
    names = set(scanned.enum.names)
    for u in scanned.priority_users:
        d = u.vmsd
        line = d.priority_line or d.line
        if d.priority and d.priority not in names:
            out.append((d.file, line, f"priority {d.priority} on VMSD '{d.name}' is not an "
                        f"enumerator of MigrationPriority in {HEADER}"))
        if d.priority and not u.takes_effect:
            why = f"only inside '{u.inside}'" if u.inside else "nor used inside any other"
            out.append((d.file, line, f"priority {d.priority} on VMSD '{d.name}' cannot take "
                        f"effect: it is never registered as a section of its own ({why})"))
    values = {lv.name: lv.value for lv in scanned.enum.levels}
    for c in scanned.claims:
        if c.target_level is None or c.level not in values:
            continue
        mine, theirs = values[c.level], values[c.target_level]
        wrong = mine <= theirs if c.relation == "before" else mine >= theirs
        if wrong:
            out.append((scanned.enum.file, c.line, f"{c.level} ({mine}) says it must happen "
                        f"{c.relation} {c.target} but {c.target_level} is {theirs}: numerically "
                        "higher priorities load earlier"))
    return [f"{f}:{ln}: {msg}" for f, ln, msg in sorted(out)]


# --------------------------------------------------------------------------- TOML


def _q(s: str) -> str:
    """A TOML basic string."""
    esc = s.replace("\\", "\\\\").replace('"', '\\"')
    esc = "".join(c if c >= " " or c == "\t" else f"\\u{ord(c):04x}" for c in esc)
    return f'"{esc}"'


def release_model(scanned: ScannedRelease, *, machines: str | None = None) -> dict[str, object]:
    """The release model as a dict in the ``models/releases/<R>.toml`` shape.

    ``machines`` names the ``models/machines/<M>`` folder to borrow layouts from (a scan
    cannot capture them); the default is the scanned release itself.

    Examples
    --------
    >>> from pathlib import Path
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> model = release_model(scan_tree(tree))
    >>> model["release"], [p["name"] for p in model["priority"]]  # type: ignore[index]
    ('7.2', ['MIG_PRI_DEFAULT', 'MIG_PRI_IOMMU', 'MIG_PRI_VIRTIO_MEM', 'MIG_PRI_MAX'])
    """
    rel = scanned.release
    major, minor = (int(x) for x in rel.split(".")[:2])
    source = scanned.package or f"scanned source tree, VERSION {scanned.version}"
    features: dict[str, object] = {}
    for key, (value, src) in scanned.features.items():
        features[key] = value
        features[f"{key}_source"] = src
    vmsd: list[dict[str, object]] = []
    for u in scanned.priority_users:
        d = u.vmsd
        vmsd.append({
            "name": d.name,
            "symbol": d.symbol,
            "file": d.file,
            "priority": d.priority,
            "registration": u.registration,
            "how": u.how,
            "inside": u.inside,
            "source": f"scanned: {d.file}:{d.line}: {d.symbol}",
        })
    for h in scanned.handlers:
        if not h.literal:
            continue
        vmsd.append({
            "name": h.idstr,
            "symbol": h.ops,
            "file": h.file,
            "priority": "",
            "registration": "handler",
            "how": f"register_savevm_live at {h.file}:{h.line}",
            "inside": "",
            "source": f"scanned: {h.file}:{h.line}: register_savevm_live",
        })
    unmig = [{
        "name": x.vmsd.name,
        "symbol": x.vmsd.symbol,
        "file": x.vmsd.file,
        "device": x.devices[0] if x.devices else "",
        "source": f"scanned: {x.vmsd.file}:{x.vmsd.line}: {x.vmsd.symbol}",
    } for x in scanned.unmigratable]
    return {
        "release": rel,
        "version": [major, minor],
        "source": source,
        "machines": machines or rel,
        "machines_source": (
            "inferred: a source scan does not capture machine layouts"
            + (f"; borrowed from {machines}" if machines and machines != rel else "")
        ),
        "features": features,
        "priority": [{
            "name": lv.name,
            "value": lv.value,
            "comment": lv.comment,
            "source": f"{HEADER}:{lv.line}: MigrationPriority",
        } for lv in scanned.enum.levels],
        "vmsd": vmsd,
        "unmigratable": unmig,
    }


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _q(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def to_release_toml(scanned: ScannedRelease, *, machines: str | None = None) -> str:
    """The release model as TOML text, in the ``models/releases/<R>.toml`` schema.

    Parameters
    ----------
    scanned : ScannedRelease
        A result of :func:`scan_tree`.
    machines : str, optional
        The ``models/machines/<M>`` folder to name (default: the scanned release).

    Returns
    -------
    str
        TOML that ``tomllib`` reads back into :func:`release_model`'s dict.

    Examples
    --------
    >>> import tomllib
    >>> from pathlib import Path
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> scanned = scan_tree(tree)
    >>> tomllib.loads(to_release_toml(scanned)) == release_model(scanned)
    True
    """
    model = release_model(scanned, machines=machines)
    lines = [f"# Generated by migorder scan from {scanned.package or scanned.root}",
             f"# QEMU VERSION {scanned.version}", ""]
    tables: list[tuple[str, object]] = []
    for key, v in model.items():
        if isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict)):
            tables.append((key, v))
        else:
            lines.append(f"{key} = {_value(v)}")
    for key, v in tables:
        if isinstance(v, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{k} = {_value(x)}" for k, x in v.items()]
        else:
            assert isinstance(v, list)
            for row in v:
                lines += ["", f"[[{key}]]"]
                lines += [f"{k} = {_value(x)}" for k, x in row.items()]
    return "\n".join(lines) + "\n"
