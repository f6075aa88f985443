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
import time
from collections.abc import Iterator
from pathlib import Path

from ordering.errors import SourceTreeError
from ordering.sources._c_text import add_defines
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

_NEEDLES = (b"VMStateDescription", b"register_savevm_live", b"vmsd")


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


def tree_files(root: Path) -> list[Path]:
    """Every ``.c`` and ``.h`` file the scanner walks, in a stable order."""
    return list(_walk(root))


def relevant(rel: str, data: bytes) -> bool:
    """Whether a file's content can change what :func:`scan_tree` finds (for cache keys)."""
    return (
        rel == HEADER
        or rel.startswith(("migration/", "hw/vfio/"))
        or any(n in data for n in _NEEDLES)
        or b"define" in data
    )


def _read(p: Path) -> str:
    return p.read_bytes().decode("utf-8", errors="replace")


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
    files: list[SourceFile] = []
    scanned = 0
    for p in _walk(rootp):
        data = p.read_bytes()
        is_c = p.suffix == ".c"
        if is_c:
            scanned += 1
        if b"#" in data and b"define" in data:
            add_defines(data.decode("utf-8", errors="replace"), defines)
        if is_c and any(n in data for n in _NEEDLES):
            text = data.decode("utf-8", errors="replace")
            files.append(SourceFile.of(p.relative_to(rootp).as_posix(), text))

    vmsds = find_vmsds(files, defines)
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
    )
