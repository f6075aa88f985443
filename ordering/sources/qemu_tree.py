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

This module is the public face; the work is done in small private modules:
:mod:`~ordering.sources._c_text` (C text helpers), :mod:`~ordering.sources._vmsd_defs`
(VMSD definitions), :mod:`~ordering.sources._vmsd_uses` (uses, handlers, registration
verdicts), :mod:`~ordering.sources._tree_model` (the dataclasses) and
:mod:`ordering.sources.release_writer` (lint and the release model).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from ordering.errors import SourceTreeError
from ordering.sources._c_text import add_defines
from ordering.sources._limits import shown
from ordering.sources._tree_model import (
    Handler,
    PriorityUser,
    ScannedRelease,
    UnmigratableUse,
    Use,
    VmsdDef,
)
from ordering.sources._vmsd_defs import SourceFile, find_vmsds
from ordering.sources._vmsd_uses import classify, find_handlers, find_uses
from ordering.sources.cheader import (
    HEADER,
    PriorityEnum,
    blank_comments_and_strings,
    parse_claims,
    parse_priority_enum,
)
from ordering.sources.release_writer import lint, release_model, to_release_toml

__all__ = [
    "Handler",
    "PriorityUser",
    "ScannedRelease",
    "UnmigratableUse",
    "Use",
    "VmsdDef",
    "lint",
    "release_model",
    "relevant",
    "scan_tree",
    "to_release_toml",
    "tree_files",
]

SKIP_TOP = frozenset({"tests", "build", "roms", "subprojects", "debian"})
"""Top-level folders never scanned (plus every hidden folder, e.g. quilt's ``.pc``)."""

MAX_DEPTH = 32
"""Deepest folder scanned below the tree's top (QEMU's deepest is under 10)."""

MAX_FILE_BYTES = 16 << 20
"""Largest source file read (QEMU's largest C file is well under 1 MiB)."""

_NEEDLES = (b"VMStateDescription", b"register_savevm_live", b"vmsd")


class _Walk:
    """The ``.c``/``.h`` files under a tree and what had to be skipped, with a reason each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.warnings: list[str] = []

    def warn(self, path: Path | str, why: str) -> None:
        """Record a skipped file or folder."""
        rel = os.path.relpath(path, self.root) if isinstance(path, Path) else path
        self.warnings.append(f"{shown(rel)}: skipped: {why}")

    def files(self) -> Iterator[Path]:
        """Every ``.c`` and ``.h`` file, folders in sorted order, depth first, no recursion."""
        stack: list[tuple[Path, int]] = [(self.root, 0)]
        while stack:
            here, depth = stack.pop()
            try:
                with os.scandir(here) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self.warn(here, f"cannot list the folder ({exc.strerror or exc})")
                continue
            subdirs: list[Path] = []
            for e in entries:
                try:
                    is_dir = e.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir:
                    if e.name.startswith(".") or (depth == 0 and e.name in SKIP_TOP):
                        continue
                    if depth + 1 > MAX_DEPTH:
                        self.warn(Path(e.path), f"deeper than {MAX_DEPTH} folders")
                        continue
                    subdirs.append(Path(e.path))
                elif e.name.endswith((".c", ".h")):
                    yield Path(e.path)
            stack.extend((d, depth + 1) for d in reversed(subdirs))

    def read(self, p: Path) -> bytes | None:
        """The bytes of a regular file of at most :data:`MAX_FILE_BYTES`, else None (warned)."""
        data = read_bounded(p)
        if isinstance(data, str):
            self.warn(p, data)
            return None
        return data


def read_bounded(p: Path) -> bytes | str:
    """The bytes of ``p``, or why it cannot be read: not a regular file (after symlinks), a
    dangling or looping symlink, unreadable, or longer than :data:`MAX_FILE_BYTES`."""
    try:
        st = p.stat()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > MAX_FILE_BYTES:
        return f"longer than {MAX_FILE_BYTES} bytes"
    try:
        with p.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if len(data) > MAX_FILE_BYTES:
        return f"longer than {MAX_FILE_BYTES} bytes"
    return data


def tree_files(root: Path) -> list[Path]:
    """Every ``.c`` and ``.h`` file the scanner walks, in a stable order."""
    return list(_Walk(root).files())


def relevant(rel: str, data: bytes) -> bool:
    """Whether a file's content can change what :func:`scan_tree` finds (for cache keys)."""
    return (
        rel == HEADER
        or rel.startswith(("migration/", "hw/vfio/"))
        or any(n in data for n in _NEEDLES)
        or b"define" in data
    )


def _read(p: Path) -> str:
    data = read_bounded(p)
    return "" if isinstance(data, str) else data.decode("utf-8", errors="replace")


def _version(rootp: Path) -> str:
    """The release in ``VERSION`` (its first line, read bounded and checked)."""
    version_file = rootp / "VERSION"
    data = read_bounded(version_file)
    if isinstance(data, str):
        raise SourceTreeError(f"{version_file}:1",
                              f"expected a VERSION file at the tree's top ({data})")
    text = data[:4096].decode("utf-8", errors="replace").strip()
    version = text.split("\n", 1)[0].strip()
    if not _VERSION.fullmatch(version):
        raise SourceTreeError("VERSION:1", f"expected a version such as 7.2.0, found "
                              f"{shown(version)}")
    return version


_VERSION = re.compile(r"\d{1,4}\.\d{1,4}(?:\.\d{1,4}){0,2}(?:-rc\d{1,2})?")


def _features(root: Path, header_text: str, enum: PriorityEnum) -> dict[str, tuple[bool, str]]:
    def has(rel: str, needle: str) -> bool:
        return needle in _read(root / rel)

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
    version = _version(rootp)
    header = read_bounded(rootp / HEADER)
    if isinstance(header, str):
        raise SourceTreeError(f"{HEADER}:1", "expected the header that defines "
                              f"MigrationPriority ({header})")
    header_text = header.decode("utf-8", errors="replace")
    enum = parse_priority_enum(header_text, HEADER)

    defines: dict[str, str] = {}
    files: list[SourceFile] = []
    scanned = 0
    walk = _Walk(rootp)
    for p in walk.files():
        data = walk.read(p)
        if data is None:
            continue
        is_c = p.suffix == ".c"
        if is_c:
            scanned += 1
        if b"#" in data and b"define" in data:
            add_defines(data.decode("utf-8", errors="replace"), defines)
        if is_c and any(n in data for n in _NEEDLES):
            text = data.decode("utf-8", errors="replace")
            files.append(SourceFile.of(p.relative_to(rootp).as_posix(), text))

    vmsds = find_vmsds(files, defines, {lv.name: lv.value for lv in enum.levels})
    uses = find_uses(files, vmsds, defines)
    handlers = find_handlers(files, defines)
    users, unmig = classify(vmsds, uses)

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
        warnings=tuple(walk.warnings),
    )
