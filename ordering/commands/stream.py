"""``migorder stream FILE``: the load order a real migration stream shows, annotated."""

from __future__ import annotations

import argparse
from pathlib import Path

from ordering.commands._common import knowledge
from ordering.order import LoadOrder
from ordering.sources.observed import annotate, disagreements, observed_order
from ordering.sources.stream import Stream, read_stream


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``stream`` subcommand."""
    p = sub.add_parser(
        "stream",
        help="show the load order a real migration stream shows",
        description="Read a real QEMU migration stream (plain, .xz or .gz) and print every "
        "section in the order the destination loads it, with its VMSD, priority, phase and "
        "kind. The priorities are the source release's: --qemu, else the release named by the "
        "stream's machine type.",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the migration stream")
    p.add_argument("--qemu", metavar="R", help="the source QEMU release (default: from the "
                   "stream's machine type)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--models", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def stream_json(stream: Stream, order: LoadOrder) -> dict[str, object]:
    """The object ``migorder stream --json`` prints.

    ``sections`` has the shape of ``migorder order --json`` (plus ``type``, the section type,
    and ``device``, the ``-device`` type matched); ``commands`` lists COMMAND sections.
    """
    return {
        "file": stream.path,
        "machine": order.machine_type,
        "machine_type": order.machine_type,
        "release": order.release.name,
        "sections": [a.as_json() for a in annotate(order)],
        "commands": [
            {"cmd": c.cmd, "name": c.name, "offset": c.offset, "before_section": c.before_section,
             "phase": c.phase.value}
            for c in stream.commands
        ],
        "disagreements": [d.describe() for d in disagreements(order)],
    }


def render_text(stream: Stream, order: LoadOrder) -> str:
    """The text table ``migorder stream`` prints."""
    rows = annotate(order)
    head = (f"{stream.path}: machine {order.machine_type}, priorities of QEMU "
            f"{order.release.name}, {len(rows)} sections ({len(order.full)} FULL)")
    table = [("#", "type", "phase", "id", "section", "vmsd", "priority", "kind", "device")]
    for a in rows:
        label = a.idstr if a.instance_id == 0 else f"{a.idstr}#{a.instance_id}"
        pri = a.priority.removeprefix("MIG_PRI_")
        table.append((str(a.position), a.type, a.phase, str(a.section_id), label, a.vmsd, pri,
                      a.kind, a.device or "-"))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [head]
    cmds = {c.before_section: c for c in stream.commands}
    for n, r in enumerate(table):
        if n > 0 and n - 1 in cmds:
            c = cmds[n - 1]
            lines.append(f"  -- COMMAND {c.name} ({c.cmd}) at byte {c.offset}")
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    for d in disagreements(order):
        lines.append(f"warning: {d.describe()} (wrong --qemu, or the model is wrong about it)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Read, annotate and print; 0 on success (reader errors exit 2 with the byte offset)."""
    k = knowledge(args)
    stream = read_stream(args.file)
    release = k.release(args.qemu) if args.qemu else None
    order = observed_order(k, stream, release)
    if args.json:
        from ordering._json_text import json_text

        print(json_text(stream_json(stream, order)))
    else:
        print(render_text(stream, order))
    return 0
