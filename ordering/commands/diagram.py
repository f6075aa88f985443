"""``migorder diagram``: a VM's must-load-before graph in priority bands (PNG, SVG, DOT, ASCII)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ordering.check import check
from ordering.commands._common import add_vm_arguments, knowledge, resolve_release, resolve_vm
from ordering.errors import UsageError
from ordering.render import FORMATS, build_diagram, format_for, render_diagram


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``diagram``."""
    p = sub.add_parser(
        "diagram",
        help="draw the dependency graph in MIG_PRI bands (png, svg, dot, ascii)",
        description="Draw a VM's must-load-before dependencies: one band per MIG_PRI level of "
        "the release (highest on top), phases side by side, devices grouped by type with "
        "counts, each rule an arrow coloured by its verdict, cycles highlighted. The format "
        "comes from --format, else from -o's suffix, else ASCII on stdout.",
    )
    add_vm_arguments(p)
    _add_output_arguments(p, FORMATS)
    p.add_argument("--group-at", type=int, default=3, metavar="N",
                   help="draw N or more sections of one type in one band as one node (default 3)")
    p.set_defaults(run=run)


def _add_output_arguments(p: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    p.add_argument("--format", choices=formats, help="output format (default: from -o, else ascii)")
    p.add_argument("-o", "--output", metavar="FILE", type=Path,
                   help="write to FILE (default: stdout; png needs a file)")


def write(data: bytes, fmt: str, output: Path | None) -> None:
    """Write ``data`` to ``output``, or text formats to stdout."""
    if output is None:
        if fmt in ("png", "svg"):
            raise UsageError(f"a {fmt} picture needs -o FILE")
        sys.stdout.write(data.decode())
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    """Render the diagram; exit 0 (a picture is not a verdict: use `check` for that)."""
    if args.group_at < 1:
        raise UsageError("--group-at must be at least 1")
    fmt = format_for(args.format, args.output, FORMATS)
    k = knowledge(args)
    result = check(k, resolve_release(args, k), resolve_vm(args, k))
    write(render_diagram(build_diagram(result, group_at=args.group_at), fmt), fmt, args.output)
    return 0
