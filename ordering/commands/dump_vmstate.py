"""``migorder dump-vmstate SRC.json [DST.json]``: sections a binary can produce, and what a
destination would refuse."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ordering.errors import UsageError
from ordering.model.machine import version_tuple
from ordering.sources._limits import shown
from ordering.sources.dump_vmstate import compare_dumps, iter_sections, read_dump


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dump-vmstate``."""
    p = sub.add_parser(
        "dump-vmstate",
        help="read QEMU's -dump-vmstate JSON; compare a source and a destination",
        description="List the sections a binary can produce (from `qemu-system-* -dump-vmstate "
        "FILE`) with version_id and minimum_version_id. Given a destination dump too, report "
        "what the destination would refuse, in QEMU's own words (exit 1 if anything).",
    )
    p.add_argument("src", type=Path, metavar="SRC.json")
    p.add_argument("dst", type=Path, metavar="DST.json", nargs="?")
    p.add_argument(
        "--dst-release",
        metavar="R",
        help="the destination's QEMU release (picks the wording of version errors; default: ≤10.1)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def _release(text: str | None) -> tuple[int, int] | None:
    """``--dst-release``: ``"10.0"`` → ``(10, 0)``."""
    if text is None:
        return None
    parts = text.split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isascii() and p.isdigit() and len(p) <= 4
                                           for p in parts):
        raise UsageError(f"--dst-release {shown(text)}: expected a QEMU release such as 7.2 or "
                         "10.0")
    return version_tuple(text)


def run(args: argparse.Namespace) -> int:
    """List or compare."""
    dst_release = _release(args.dst_release)
    src = read_dump(args.src)
    if args.dst is None:
        rows = [
            {"type": t, "vmsd": v.name, "version_id": v.version_id, "minimum_version_id": v.minimum_version_id, "depth": d}
            for t, v, d in iter_sections(src)
        ]
        if args.json:
            print(json.dumps({"machine": src.machine, "sections": rows}, indent=2))
        else:
            print(f"{src.file}: machine {src.machine}, {len(src.entries)} device types")
            for r in rows:
                pad = "  " * int(str(r["depth"]))
                print(f"  {pad}{r['vmsd']:<40} v{r['version_id']} (min {r['minimum_version_id']})  {r['type'] if not r['depth'] else ''}")
        return 0
    dst = read_dump(args.dst)
    findings = compare_dumps(src, dst, dst_release=dst_release)
    if args.json:
        print(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        print(f"{args.src} → {args.dst}: {len(findings)} finding(s)")
        for f in findings:
            print(f"  [{f.severity}] {f.message}")
            if f.detail:
                print(f"      {f.detail}")
    return 1 if any(f.severity == "error" for f in findings) else 0
