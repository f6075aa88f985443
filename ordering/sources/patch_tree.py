"""Patches on a real tree: apply to a temporary copy (never the user's tree), scan the copy.

:func:`patched_release` copies what the scanner reads (and every file the patches touch),
applies the patches in order with ``git apply`` and scans the copy. A patch that does not
apply names its file and hunk; a patch that applies in reverse is already in the tree.
:class:`GitRange` reads the commits of a range in a QEMU checkout and checks its start out
(``git archive``) into a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ordering.errors import SourceTreeError, UsageError
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.sources.patch import Patch, read_patches

__all__ = ["GitRange", "WorkTree", "fact_changes", "patched_release"]


def _git(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        raise UsageError("git is needed to apply patches to a tree copy (not found on PATH)") from None


@dataclass
class WorkTree:
    """A temporary copy of a tree that patches are applied to."""

    root: Path

    def apply(self, patch: Patch) -> None:
        """Apply one patch; :class:`SourceTreeError` names the file and hunk when it does not."""
        check = _git("apply", "--check", "--whitespace=nowarn", "-", cwd=self.root, stdin=patch.diff)
        if check.returncode != 0:
            rev = _git("apply", "--check", "--reverse", "--whitespace=nowarn", "-", cwd=self.root, stdin=patch.diff)
            if rev.returncode == 0:
                raise SourceTreeError(patch.source, f"{patch.label!r} is already in the tree (it applies "
                                      "in reverse): give the tree from before it")
            raise SourceTreeError(patch.source, _why(patch, check.stderr))
        done = _git("apply", "--whitespace=nowarn", "-", cwd=self.root, stdin=patch.diff)
        if done.returncode != 0:  # pragma: no cover - --check said yes
            raise SourceTreeError(patch.source, _why(patch, done.stderr))


def _why(patch: Patch, stderr: str) -> str:
    import re

    m = re.search(r"patch failed: (\S+):(\d+)", stderr)
    if m:
        path, line = m.group(1), int(m.group(2))
        for f in patch.files:
            if f.path == path:
                for h in f.hunks:
                    if h.old_start == line or h.new_start == line:
                        return (f"{patch.label!r} does not apply to the tree: {path} hunk {h.index} "
                                f"(@@ -{h.old_start} ..., {h.where}) does not match")
        return f"{patch.label!r} does not apply to the tree: {path} near line {line} does not match"
    m = re.search(r"error: (\S+): (does not exist in index|No such file or directory|already exists in working directory)", stderr)
    if m:
        return f"{patch.label!r} does not apply to the tree: {m.group(1)}: {m.group(2)}"
    first = next((ln for ln in stderr.splitlines() if ln.strip()), "git apply refused it")
    return f"{patch.label!r} does not apply to the tree: {first.removeprefix('error: ')}"


def _copy(src: Path, dst: Path, touched: set[str]) -> None:
    """A symlink farm of what the scanner reads, with real copies of the files the patches
    touch (``git apply`` replaces those; the links to the user's files are never written)."""
    from ordering.sources.qemu_tree import tree_files

    dst.mkdir(parents=True, exist_ok=True)
    src = src.resolve()
    made: set[str] = set()

    def place(rel: str) -> str:
        parent = os.path.dirname(rel)
        if parent and parent not in made:
            os.makedirs(dst / parent, exist_ok=True)
            made.add(parent)
        return str(dst / rel)

    for p in tree_files(src):
        rel = p.relative_to(src).as_posix()
        if rel not in touched:
            os.symlink(p, place(rel))
    for rel in ("VERSION", "debian/changelog", *sorted(touched)):
        s = src / rel
        if s.is_file() and not os.path.lexists(dst / rel):
            if rel in touched:
                shutil.copyfile(s, place(rel))
            else:
                os.symlink(s, place(rel))


def _scratch() -> str | None:
    """Where the symlink farm goes: ``$TMPDIR`` when set, else ``/dev/shm`` when writable
    (thousands of links: a memory file system makes them 100x faster), else the default."""
    if os.environ.get("TMPDIR"):
        return None
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


@contextmanager
def copy_of(tree: Path, patches: list[Patch]) -> Iterator[WorkTree]:
    """A temporary copy of ``tree`` holding what the scanner and the patches need."""
    touched = {f.path for p in patches for f in p.files} | {f.old_path for p in patches for f in p.files}
    with tempfile.TemporaryDirectory(prefix="migorder-verify-", dir=_scratch()) as tmp:
        root = Path(tmp) / "tree"
        _copy(tree, root, {t for t in touched if t != "/dev/null"})
        yield WorkTree(root)


def patched_release(tree: Path, patches: list[Patch], k: Knowledge) -> Release:
    """The release scanned from a copy of ``tree`` with ``patches`` applied in order."""
    from ordering.sources.release_file import release_from_tree

    with copy_of(tree, patches) as work:
        for p in patches:
            work.apply(p)
        # Cached by content (the same patch again is a hit); no stat index for a temporary path.
        return release_from_tree(work.root, k, index=False)


def fact_changes(base: Release, after: Release) -> tuple[str, ...]:
    """What differs between two scanned releases' VMSD facts and enums, one line each."""
    out: list[str] = []
    names_b = [lv.name for lv in base.scheme.levels]
    names_a = [lv.name for lv in after.scheme.levels]
    if names_b != names_a:
        added = [n for n in names_a if n not in names_b]
        removed = [n for n in names_b if n not in names_a]
        parts = ([f"adds {', '.join(added)}"] if added else []) + ([f"removes {', '.join(removed)}"] if removed else [])
        out.append(f"include/migration/vmstate.h: enum: {', '.join(parts) or 'reorders levels'}")
    for name in sorted(set(base.vmsds) | set(after.vmsds)):
        b, a = base.vmsds.get(name), after.vmsds.get(name)
        if b == a:
            continue
        if b is None and a is not None:
            out.append(f"{a.file}: VMSD '{name}' now sets .priority {a.priority or '(unset)'} ({a.registration.value})")
        elif a is None and b is not None:
            out.append(f"{b.file}: VMSD '{name}' no longer sets a priority (was {b.priority})")
        elif a is not None and b is not None and (a.priority, a.registration) != (b.priority, b.registration):
            out.append(f"{a.file}: VMSD '{name}': .priority {b.priority or '(unset)'} -> {a.priority or '(unset)'}, "
                       f"{b.registration.value} -> {a.registration.value}")
    return tuple(out)


@dataclass(frozen=True)
class GitRange:
    """The commits of ``A..B`` (or one commit ``C``, as ``C^..C``) in a checkout."""

    repo: Path
    start: str
    commits: tuple[str, ...]

    @classmethod
    def of(cls, repo: Path, spec: str) -> GitRange:
        """Resolve ``spec`` in ``repo``."""
        if _git("rev-parse", "--git-dir", cwd=repo).returncode != 0:
            raise UsageError(f"--git {spec}: {repo} is not a git checkout (give --tree QEMU_CHECKOUT)")
        if ".." not in spec:
            spec = f"{spec}^..{spec}"
        start = spec.split("..", 1)[0] or "HEAD"
        base = _git("rev-parse", "--verify", f"{start}^{{commit}}", cwd=repo)
        listed = _git("rev-list", "--reverse", "--no-merges", spec, cwd=repo)
        if base.returncode != 0 or listed.returncode != 0:
            raise UsageError(f"--git {spec}: not a revision range of {repo}")
        commits = tuple(listed.stdout.split())
        if not commits:
            raise UsageError(f"--git {spec}: the range holds no commit")
        return cls(repo, base.stdout.strip(), commits)

    def patches(self) -> Iterator[tuple[str, Patch]]:
        """Each commit as a format-patch mail, read like a PATCH argument."""
        for c in self.commits:
            mail = _git("format-patch", "-1", "--stdout", "--no-signature", c, cwd=self.repo)
            ps, _ = read_patches(mail.stdout, f"commit {c[:12]}")
            for p in ps:
                yield c, p

    @contextmanager
    def checkout(self) -> Iterator[WorkTree]:
        """The range's start, exported into a temporary folder."""
        with tempfile.TemporaryDirectory(prefix="migorder-git-") as tmp:
            root = Path(tmp) / "tree"
            root.mkdir()
            archive = subprocess.run(["git", "archive", "--format=tar", self.start], cwd=self.repo,
                                     capture_output=True, check=False)
            if archive.returncode != 0:
                raise UsageError(f"git archive {self.start[:12]} failed: {archive.stderr.decode(errors='replace').strip()}")
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
            yield WorkTree(root)
