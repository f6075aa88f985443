"""``migorder timeline``: the load order as a timeline, with failures linked to their cause."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from ordering.check import CheckResult, check, check_order
from ordering.commands._common import add_vm_arguments, knowledge, resolve_release, resolve_vm
from ordering.commands.diagram import write
from ordering.errors import UsageError
from ordering.render import build_timeline, format_for, render_timeline

TIMELINE_FORMATS = ("png", "svg", "ascii")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``timeline``."""
    p = sub.add_parser(
        "timeline",
        help="draw the load order as a timeline (png, svg, ascii)",
        description="Draw the order a destination loads a VM's sections in: phases, one lane "
        "per MIG_PRI level, one bar per section (runs of one type folded into one bar with a "
        "count), and each failure the simulator sees marked at its step with a link to the "
        "section that should have come first. Without the simulator, violated rules are "
        "marked instead (the legend says so).",
    )
    add_vm_arguments(p)
    p.add_argument("--stream", metavar="FILE", type=Path,
                   help="draw the order observed in a real migration stream")
    p.add_argument("--format", choices=TIMELINE_FORMATS,
                   help="output format (default: from -o, else ascii)")
    p.add_argument("-o", "--output", metavar="FILE", type=Path, help="write to FILE")
    p.add_argument("--group-at", type=int, default=3, metavar="N",
                   help="fold a pattern repeated N or more times into one bar (default 3)")
    p.set_defaults(run=run)


def _result(args: argparse.Namespace) -> CheckResult:
    k = knowledge(args)
    if args.stream is None:
        return check(k, resolve_release(args, k), resolve_vm(args, k))
    if args.scenario or args.qemu_args:
        raise UsageError("--stream draws a stream: give no scenario or QEMU command line with it")
    if importlib.util.find_spec("ordering.sources.observed") is None:
        raise UsageError("--stream needs ordering.sources.observed, which this build lacks")
    from ordering.sources.observed import observed_order
    from ordering.sources.stream import read_stream

    release = k.release(args.qemu) if args.qemu else None
    return check_order(k, observed_order(k, read_stream(args.stream), release))


def simulate_trace(result: CheckResult) -> object | None:
    """The simulator's trace of ``result``'s order, or ``None`` when there is no simulator."""
    if importlib.util.find_spec("ordering.sim.engine") is None:
        return None
    engine = importlib.import_module("ordering.sim.engine")
    return engine.simulate(result.release, result.vm, order=result.order)  # type: ignore[no-any-return]


def run(args: argparse.Namespace) -> int:
    """Render the timeline; exit 0."""
    if args.group_at < 1:
        raise UsageError("--group-at must be at least 1")
    fmt = format_for(args.format, args.output, TIMELINE_FORMATS)
    result = _result(args)
    trace = simulate_trace(result)
    timeline = build_timeline(result.order, result=result, trace=trace, group_at=args.group_at)
    write(render_timeline(timeline, fmt), fmt, args.output)
    return 0
