"""``migorder scan QEMU_SRC``: read a QEMU source tree into a release model, and lint it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ordering.commands._common import knowledge
from ordering.commands._out import check_out
from ordering.errors import UsageError
from ordering.model.machine import version_tuple
from ordering.sources._limits import shown
from ordering.sources.qemu_tree import lint, release_model, scan_tree, to_release_toml


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``scan``."""
    p = sub.add_parser(
        "scan",
        help="read a QEMU source tree (perhaps patched): enum, priority VMSDs, lint",
        description="Scan a QEMU source tree: the MigrationPriority enum with its comments, every "
        "VMSD that sets a priority and how it is registered, unmigratable VMSDs. Writes a release "
        "model in the models/ format with --out. Exit 1 when lint finds a priority that cannot "
        "take effect.",
    )
    p.add_argument("tree", type=Path, metavar="QEMU_SRC", help="the top of a QEMU source tree")
    p.add_argument("--out", type=Path, metavar="FILE", help="write the release model TOML here")
    p.add_argument(
        "--machines",
        metavar="R",
        help="machine layouts to use (a models/machines folder; default: the tree's release, "
        "else the newest bundled one not newer than it)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def _machines(args: argparse.Namespace, release: str) -> str:
    if args.machines:
        return str(args.machines)
    root = knowledge(args).root / "machines"
    folders = sorted((p.name for p in root.iterdir() if p.is_dir()), key=version_tuple)
    if release in folders:
        return release
    older = [f for f in folders if version_tuple(f) <= version_tuple(release)]
    return older[-1] if older else folders[0]


def _write(out: Path, text: str) -> None:
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {shown(str(out))}: expected a writable file "
                         f"({exc.strerror or exc})") from None


def run(args: argparse.Namespace) -> int:
    """Scan, print a summary (or JSON), write the model, exit 1 on lint findings."""
    if not args.tree.is_dir():
        raise UsageError(f"{shown(str(args.tree))}: expected a QEMU source tree (a folder)")
    if args.out is not None:
        check_out(args.out)
    scanned = scan_tree(args.tree)
    for w in scanned.warnings:
        print(f"migorder: warning: {w}", file=sys.stderr)
    machines = _machines(args, scanned.release)
    findings = lint(scanned)
    if args.out is not None:
        _write(args.out, to_release_toml(scanned, machines=machines))
    if args.json:
        print(json.dumps({"model": release_model(scanned, machines=machines), "lint": findings}, indent=2, default=str))
        return 1 if findings else 0
    lines = [
        f"QEMU {scanned.version} ({scanned.package or scanned.root}): {scanned.files_parsed} of "
        f"{scanned.files_scanned} C files parsed in {scanned.seconds:.1f} s",
        "MigrationPriority:",
    ]
    for lvl in reversed(scanned.enum.levels):
        comment = f"  /* {lvl.comment} */" if lvl.comment else ""
        lines.append(f"  {lvl.value:>2} {lvl.name}{comment}")
    lines.append("VMSDs that set a priority:")
    for user in sorted(scanned.priority_users, key=lambda u: (u.vmsd.priority, u.vmsd.name)):
        inside = f" inside '{user.inside}'" if user.inside else ""
        lines.append(
            f"  {user.vmsd.priority or '(early_setup)':<20} {user.vmsd.name:<34} {user.registration}{inside}"
            f"  {user.vmsd.file}:{user.vmsd.line}"
        )
    lines.append(f"Unmigratable VMSDs: {', '.join(sorted(u.vmsd.name for u in scanned.unmigratable))}")
    if args.out is not None:
        lines.append(f"Wrote the release model to {args.out} (machines from models/machines/{machines})")
    if findings:
        lines.append("Lint:")
        lines.extend(f"  {f}" for f in findings)
    else:
        lines.append("Lint: every priority takes effect")
    print("\n".join(lines))
    return 1 if findings else 0
