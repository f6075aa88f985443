"""A release from anywhere: a release file written by ``scan --out``, or a QEMU tree.

Both end as the same :class:`~ordering.model.release.Release` the bundled models give.
A scan reads the enum, the priority VMSDs, registrations and a few release features from
source; it cannot read machine layouts, device types, migration blockers or the features
only a running binary shows. Those are borrowed from a bundled release (the tree's own, else
the newest not newer than it), and :attr:`Release.assumes` says which, so every report can
show it under "Assumes".

A tree is scanned once per content: the cache (``$XDG_CACHE_HOME/migorder`` or
``~/.cache/migorder``) is keyed by a hash of the files the scanner reads (every file holding
a VMSD, a handler or ``vmsd``, the enum header, ``migration/savevm.c`` and ``hw/vfio``).
A stat index (path, size, mtime) finds the content key without reading an unchanged tree.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import tomllib
from dataclasses import replace
from pathlib import Path

from ordering.errors import ModelError, SourceTreeError
from ordering.model.knowledge import Knowledge
from ordering.model.machine import version_tuple
from ordering.model.release import Release
from ordering.sources._limits import FileRefused, LimitError, read_text, toml_loads
from ordering.sources.models import read_release

__all__ = [
    "cache_dir",
    "machines_for",
    "read_release_file",
    "release_from_tree",
    "user_releases",
    "with_release",
]

_SCANNED_FEATURES = (
    "early_setup",
    "zero_priority_is_default",
    "switchover_start",
    "vfio_multifd_load_thread",
    "vfio_config_load_after_iter",
    "duplicate_section_check",
)
"""Features a source scan reads (:func:`ordering.sources.qemu_tree.scan_tree`)."""

CACHE_FORMAT = "1"
"""Bumped when the scanner or the release file format changes what a cached file means."""


def machines_for(k: Knowledge, release: str) -> str:
    """The bundled ``models/machines`` folder for ``release``: its own, else the newest older.

    >>> from ordering.sources.models import load_knowledge
    >>> machines_for(load_knowledge(), "10.1"), machines_for(load_knowledge(), "6.0")
    ('10.0', '7.2')
    """
    root = k.root / "machines"
    folders = sorted((p.name for p in root.iterdir() if p.is_dir()), key=version_tuple)
    if release in folders:
        return release
    older = [f for f in folders if version_tuple(f) <= version_tuple(release)]
    return older[-1] if older else folders[0]


def _nearest_bundled(k: Knowledge, version: tuple[int, int]) -> Release:
    rels = sorted(k.releases.values(), key=lambda r: r.version)
    older = [r for r in rels if r.version <= version]
    return older[-1] if older else rels[0]


def read_release_file(path: Path, k: Knowledge) -> Release:
    """A release TOML (``scan --out``, or one in the ``models/releases`` form), completed.

    Features the file does not give, blockers and unmigratable conditions come from the
    nearest bundled release; :attr:`Release.assumes` lists what was borrowed.

    Raises
    ------
    ModelError
        ``file:line`` when the file is not a release model.
    """
    if not path.is_file():
        raise ModelError(str(path), "expected a release file written by `migorder scan --out`")
    try:
        data = toml_loads(read_text(path))
    except FileRefused as exc:
        raise ModelError(str(path), f"expected a release TOML: {exc.args[0]}") from None
    except LimitError as exc:
        raise ModelError(f"{path}:{exc.line}", f"expected {exc.expected}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(str(path), f"expected a release TOML: {exc}") from None
    machines_dir = k.root / "machines"
    rel = read_release(path, machines_dir, dict(next(iter(k.releases.values())).devices), dict(k.kinds))
    given = data.get("features", {}) if isinstance(data.get("features"), dict) else {}
    donor = k.releases.get(rel.name) or _nearest_bundled(k, rel.version)
    missing = [f for f in donor.features.__dataclass_fields__ if f != "sources" and f not in given]
    flags = {f: getattr(donor.features, f) for f in missing}
    sources = {**donor.features.sources, **rel.features.sources}
    features = replace(rel.features, **flags, sources=sources)
    assumes = [
        f"the machine layouts of bundled models/machines/{data.get('machines', rel.name)} "
        f"({rel.machines_source or 'a source scan cannot read machine layouts'})",
        "device types and kinds of the bundled models (devices.toml, kinds.toml)",
    ]
    if missing:
        assumes.append(
            f"release features not read from source, borrowed from bundled {donor.name}: "
            + ", ".join(f"{f}={'on' if flags[f] else 'off'}" for f in missing)
        )
    blockers = rel.blockers or donor.blockers
    if not rel.blockers and donor.blockers:
        assumes.append(f"migration blockers of bundled {donor.name} (a scan cannot read them)")
    unmig = dict(rel.unmigratable)
    for name, u in donor.unmigratable.items():
        if name in unmig and u.when and not unmig[name].when:
            unmig[name] = replace(unmig[name], when=u.when)
    if not rel.device_properties:
        assumes.append(f"no -device property lists for {rel.name} (models/properties/{rel.name}.toml absent)")
    return replace(
        rel,
        features=features,
        blockers=blockers,
        unmigratable=unmig,
        assumes=(*rel.assumes, *assumes),
        file=str(path),
    )


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/migorder``, else ``~/.cache/migorder``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "migorder"


def _stat_key(root: Path) -> str:
    from ordering.sources.qemu_tree import tree_files

    h = hashlib.blake2b(digest_size=20)
    h.update(f"{CACHE_FORMAT}\0{root.resolve()}\0".encode())
    for p in tree_files(root):
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _content_key(root: Path) -> str:
    from ordering.sources.qemu_tree import relevant, tree_files

    h = hashlib.blake2b(digest_size=20)
    h.update(f"{CACHE_FORMAT}\0".encode())
    for p in [root / "VERSION", *tree_files(root)]:
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        data = p.read_bytes()
        if rel == "VERSION" or relevant(rel, data):
            h.update(f"{rel}\0{len(data)}\0".encode())
            h.update(data)
    return h.hexdigest()


def release_from_tree(root: Path, k: Knowledge, *, use_cache: bool = True, index: bool = True) -> Release:
    """Scan ``root`` (or take the cached scan of the same content) into a release.

    Raises
    ------
    SourceTreeError
        ``file:line`` when the tree has no VERSION or no readable enum.
    """
    from ordering.sources.qemu_tree import scan_tree, to_release_toml

    if not root.is_dir():
        raise SourceTreeError(str(root), "expected a QEMU source tree (a folder holding VERSION)")
    cache = cache_dir()
    index_file = cache / "index" / _stat_key(root) if use_cache and index else None
    key = ""
    if index_file is not None and index_file.is_file():
        key = index_file.read_text(encoding="utf-8").strip()
    if use_cache and not key:
        key = _content_key(root)
    target = cache / f"{key}.toml" if key else None
    if target is not None and target.is_file():
        rel = read_release_file(target, k)
    else:
        scanned = scan_tree(root)
        text = to_release_toml(scanned, machines=machines_for(k, scanned.release))
        with tempfile.TemporaryDirectory(prefix="migorder-") as tmp:
            path = Path(tmp) / "release.toml"
            path.write_text(text, encoding="utf-8")
            rel = read_release_file(path, k)
        if target is not None:
            _write_atomic(target, text)
    if index_file is not None and key:
        _write_atomic(index_file, key + "\n")
    return replace(rel, file=str(root), assumes=(f"the release scanned from the tree {root}", *rel.assumes))


def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a cache that cannot be written is only slower


def with_release(k: Knowledge, key: str, release: Release) -> Knowledge:
    """``k`` with ``release`` added under ``key`` (a bundled one of that key is replaced)."""
    return replace(k, releases={**k.releases, key: release})


def _looks_like_file(name: str) -> bool:
    return name.endswith(".toml") or os.sep in name or Path(name).is_file()


def _key(k: Knowledge, rel: Release, how: str) -> str:
    key = f"{rel.name}:{how}"
    n = 2
    while key in k.releases:
        key, n = f"{rel.name}:{how}{n}", n + 1
    return key


def user_releases(args: argparse.Namespace, k: Knowledge) -> Knowledge:
    """Add the releases named on a command line by file (``--qemu FILE``) or tree
    (``--qemu-tree DIR``) to ``k``, and point ``args.qemu`` (a name, or a list of names
    when the command sets ``qemu_many``) at them.

    A bundled name is left alone. The key is ``"<release>:file"`` or ``"<release>:tree"``,
    so a scanned 7.2 sits beside the bundled 7.2.
    """
    tree = getattr(args, "qemu_tree", None)
    qemu = getattr(args, "qemu", None)
    if tree is None and not qemu and not getattr(args, "source_qemu", None):
        return k
    many = isinstance(qemu, list) or bool(getattr(args, "qemu_many", False))
    names: list[str] = list(qemu) if isinstance(qemu, list) else [qemu] if qemu else []
    if tree is not None and names and not many:
        from ordering.errors import UsageError

        raise UsageError("give --qemu R or --qemu-tree DIR, not both")
    keys: list[str] = []
    for name in names:
        if name in k.releases or not _looks_like_file(name):
            keys.append(name)
            continue
        rel = read_release_file(Path(name), k)
        key = _key(k, rel, "file")
        k = with_release(k, key, rel)
        keys.append(key)
    if tree is not None:
        rel = release_from_tree(Path(tree), k)
        key = _key(k, rel, "tree")
        k = with_release(k, key, rel)
        keys.append(key)
    args.qemu = keys if many else (keys[0] if keys else qemu)
    return k
