"""``migorder history``: every rule's verdict across the bundled QEMU releases (a heat map)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ordering.commands._common import add_tree_argument, knowledge
from ordering.commands.diagram import write
from ordering.commands.history_vms import NOTE, reference_vm
from ordering.render import build_history, format_for, render_history

HISTORY_FORMATS = ("png", "svg", "ascii")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``history``."""
    p = sub.add_parser(
        "history",
        help="heat map of every rule's verdict across the bundled releases (png, svg, ascii)",
        description="Judge every rule on every bundled QEMU release, on a fixed reference VM "
        "per rule family (the default scenario; an ARM virt VM with GICv3, ITS and a virtio "
        "PCI device for aarch64 rules; 7.2 with its experimental VFIO migration on), and draw "
        "the verdicts as a heat map.",
    )
    p.add_argument("--format", choices=HISTORY_FORMATS,
                   help="output format (default: from -o, else ascii)")
    p.add_argument("-o", "--output", metavar="FILE", type=Path, help="write to FILE")
    p.add_argument("--qemu", metavar="R", action="append",
                   help="add a column for a release file written by `migorder scan --out` (repeatable)")
    add_tree_argument(p)
    p.add_argument("--models", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run, qemu_many=True)


def run(args: argparse.Namespace) -> int:
    """Render the heat map; exit 0."""
    fmt = format_for(args.format, args.output, HISTORY_FORMATS)
    h = build_history(knowledge(args), reference_vm, NOTE)
    write(render_history(h, fmt), fmt, args.output)
    return 0
