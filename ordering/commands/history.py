"""``migorder history``: every rule's verdict across the bundled QEMU releases (a heat map)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from ordering.commands._common import knowledge
from ordering.commands.diagram import write
from ordering.model.knowledge import Knowledge
from ordering.model.rule import Rule
from ordering.model.vm import Vm
from ordering.render import build_history, format_for, render_history
from ordering.sources.cmdline import parse_command_line
from ordering.sources.scenario import read_scenario

HISTORY_FORMATS = ("png", "svg", "ascii")
ARM_REFERENCE = (
    "qemu-system-aarch64 -machine virt,gic-version=3,its=on -smp 2 -m 1G "
    "-device pcie-root-port,id=rp0,chassis=1 -device virtio-net-pci,bus=rp0,id=net0"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``history``."""
    p = sub.add_parser(
        "history",
        help="heat map of every rule's verdict across the bundled releases (png, svg, ascii)",
        description="Judge every rule on every bundled QEMU release, on a fixed reference VM "
        "per rule family (the default scenario; an ARM virt VM with GICv3, ITS and a virtio "
        "PCI device for aarch64 rules), and draw the verdicts as a heat map.",
    )
    p.add_argument("--format", choices=HISTORY_FORMATS,
                   help="output format (default: from -o, else ascii)")
    p.add_argument("-o", "--output", metavar="FILE", type=Path, help="write to FILE")
    p.add_argument("--models", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def reference_vm(k: Knowledge, rule: Rule) -> Vm:
    """The VM ``rule`` is judged on (shared with ``explain`` when that module is present)."""
    if importlib.util.find_spec("ordering.commands.history_vms") is not None:
        from ordering.commands import history_vms

        vm: Vm = history_vms.reference_vm(k, rule)
        return vm
    if rule.arch == "aarch64":
        return parse_command_line(ARM_REFERENCE, where="ARM reference VM", name="arm-reference")
    return read_scenario(k.scenarios["default"])


def run(args: argparse.Namespace) -> int:
    """Render the heat map; exit 0."""
    fmt = format_for(args.format, args.output, HISTORY_FORMATS)
    h = build_history(knowledge(args), reference_vm)
    write(render_history(h, fmt), fmt, args.output)
    return 0
