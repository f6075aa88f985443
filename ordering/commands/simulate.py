"""``migorder simulate``: load one order on a simulated destination and show what fails.

Exit codes: 0 nothing failed, 1 a failure or a migration QEMU refuses (a blocker, a destination
that refuses the VM or a section), 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ordering.check import blockers
from ordering.commands._common import (
    add_release_arguments,
    add_vm_arguments,
    knowledge,
    resolve_releases,
    resolve_vm,
)
from ordering.errors import UsageError
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.model.vm import Vm
from ordering.order import LoadOrder, derive
from ordering.report import json_text
from ordering.sim import Trace, follow_stream, move, simulate
from ordering.verdict import vfio_config_unordered


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate``."""
    p = sub.add_parser(
        "simulate",
        help="replay a load order over device behaviours: what a destination would do",
        description="Load a VM's sections in order on a simulated destination: each load runs "
        "the device's post-load behaviour, which reads other devices' current state. Prints "
        "the failures (QEMU's wording, the section that failed, the one it needed first), then "
        "every step. Guest state comes from the scenario's [guest] table.",
    )
    add_vm_arguments(p, release_help="both releases: shorthand for --from R --to R (default: the newest bundled)")
    add_release_arguments(p, "--source-qemu")
    p.add_argument("--order-from", metavar="STREAM", type=Path, help="load the order a real migration stream shows")
    p.add_argument("--move", metavar="SECTION", action="append", default=[], help="move SECTION's load (idstr or idstr#instance) ...")
    p.add_argument("--before", metavar="SECTION", action="append", default=[], help="... to just before SECTION's load")
    p.set_defaults(run=run)


def _order(args: argparse.Namespace, k: Knowledge, source: Release) -> tuple[Vm, LoadOrder]:
    given_source = bool(args.from_release)
    given_vm = bool(getattr(args, "scenario", None) or getattr(args, "qemu_args", []))
    if args.order_from is not None:
        from ordering.sources.stream import read_stream

        stream = read_stream(args.order_from)
        if not given_vm:
            from ordering.sources.observed import observed_order

            order = observed_order(k, stream, source if given_source else None)
            return order.vm, order
        vm = resolve_vm(args, k)
        order = follow_stream(
            derive(source, vm),
            (
                (s.type.value if hasattr(s.type, "value") else str(s.type), s.idstr, s.instance_id, s.phase.value)
                for s in stream.sections
            ),
        )
        return vm, order
    vm = resolve_vm(args, k)
    return vm, derive(source, vm)


def run(args: argparse.Namespace) -> int:
    """Simulate and print."""
    if len(args.move) != len(args.before):
        raise UsageError("give each --move SECTION with a --before SECTION")
    k = knowledge(args)
    source, dest = resolve_releases(args, k)
    vm, order = _order(args, k, source)
    for a, b in zip(args.move, args.before, strict=True):
        order = move(order, a, b)
    order, moved = _multifd_worst_case(order)
    trace = simulate(dest, vm, order)
    crossing = None
    if source.name != dest.name and not args.order_from:
        from ordering.upgrade import cross

        crossing = cross(k, source, dest, vm)
    # The source decides whether the migration happens at all: say so before any failure.
    refused = blockers(order)
    if args.json:
        data = trace_dict(trace)
        data["multifd_moved"] = moved
        data["blockers"] = [
            {"device": b.device, "message": b.message, "conditional": b.conditional or None}
            for b in refused
        ]
        if crossing is not None:
            from ordering.report_upgrade import destination_dict

            data["destination"] = destination_dict(crossing)
        print(json_text(data))
    else:
        lines = [
            f"multifd: {label}'s config load replayed at the earliest point vfio_load_bufs_thread "
            "can reach (before the first FULL section): QEMU does not order it"
            for label in moved
        ] + [
            f"BLOCKED: {b.device}: {b.message}"
            + (f" (unless {b.conditional})" if b.conditional else "")
            + " — QEMU refuses this migration; the trace shows what would follow if it did not"
            for b in refused
        ]
        if crossing is not None:
            from ordering.report_upgrade import destination_lines

            lines += [
                "failures are decided by both sides: the source's order, the destination's behaviours",
                *destination_lines(crossing)[1:],
            ]
        print("\n".join([*lines, trace_text(trace)]))
    # A migration QEMU refuses (a blocker, a destination that refuses the VM or a section) is a
    # finding as in check, whatever the trace of the order it would have loaded shows.
    stopped = any(not b.conditional for b in refused) or (crossing is not None and crossing.stops_migration)
    return max(trace.exit_code, 1 if stopped else 0)


def _multifd_worst_case(order: LoadOrder) -> tuple[LoadOrder, list[str]]:
    """With multifd, move each VFIO config load QEMU does not order to the earliest point the
    load thread can reach: the worst order a destination may see."""
    unordered = vfio_config_unordered(order)
    if not unordered:
        return order, []
    first = next(
        (s for s in order.steps if s.type.value == "FULL" and s.phase.value == "complete"), None
    )
    moved: list[str] = []
    for step in list(order.steps):
        if first is None or step.section.owner not in unordered or step.type.value != "FULL":
            continue
        if step.section.section_id == first.section.section_id:
            continue
        order = move(order, step.section.label, first.section.label)
        moved.append(step.section.label)
    return order, moved


def trace_dict(trace: Trace) -> dict[str, Any]:
    """The trace as JSON-ready data: ``failures`` then ``steps``."""
    return {
        "source_release": trace.order.release.name,
        "destination_release": trace.behaviour_release,
        "vm": trace.order.vm.name,
        "aborted": trace.aborted,
        "failures": [
            {
                "class": f.consequence.value,
                "message": f.message,
                "qemu_prints": f.qemu_prints,
                "section": f.section.label,
                "needs": f.needs.label,
                "mechanism": f.mechanism,
                "fatal": f.fatal,
            }
            for f in trace.failures
        ],
        "steps": [
            {
                "index": s.index,
                "section": s.step.section.label,
                "type": s.step.type.value,
                "phase": s.step.phase.value,
                "behaviour": s.behaviour,
                "reads": [
                    {"what": r.what, "from": r.section.label, "loaded": r.loaded, "value": r.value}
                    for r in s.reads
                ],
            }
            for s in trace.steps
        ],
    }


def trace_text(trace: Trace) -> str:
    """Failures first, then the step list."""
    lines = [
        f"simulate: {trace.order.vm.name}: order of a {trace.order.release.name} source, "
        f"behaviours of a {trace.behaviour_release} destination"
    ]
    if trace.failures:
        lines.append(f"{len(trace.failures)} failure(s):")
        for f in trace.failures:
            lines.append(f"  {f.consequence.value.upper():8} {f.section.label}: {f.message}")
            lines.append(f"           needs {f.needs.label} loaded first ({f.mechanism})")
    else:
        lines.append("no failures")
    if trace.aborted:
        lines.append("the destination aborted: later sections were never loaded")
    lines.append("steps:")
    for s in trace.steps:
        st = s.step
        head = f"  {s.index:4} {st.phase.value:8} {st.type.value:5} {st.section.label}"
        lines.append(head + (f"  [{s.behaviour}]" if s.behaviour else ""))
        for r in s.reads:
            state = "loaded" if r.loaded else "NOT LOADED"
            lines.append(f"         reads {r.what} of {r.section.label} ({state}): {r.value}")
    return "\n".join(lines)
