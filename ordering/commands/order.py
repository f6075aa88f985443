"""``migorder order``: the exact load order a destination sees."""

from __future__ import annotations

import argparse

from ordering.commands._common import (
    add_release_arguments,
    add_vm_arguments,
    knowledge,
    resolve_releases,
    resolve_vm,
)
from ordering.order import derive
from ordering.report import json_text, order_dict, order_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``order``."""
    p = sub.add_parser(
        "order",
        help="print the load order a destination sees",
        description="Print every section in the order a destination loads it from a source of "
        "release R: phase, priority, section_id, idstr, instance_id.",
    )
    add_vm_arguments(p, release_help="both releases: shorthand for --from R --to R (default: the newest bundled)")
    add_release_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Derive and print."""
    k = knowledge(args)
    source, destination = resolve_releases(args, k)
    vm = resolve_vm(args, k)
    order = derive(source, vm)
    if source.name == destination.name:
        print(json_text(order_dict(order)) if args.json else order_text(order))
        return 0
    from ordering.report_upgrade import order_crossing_dict, order_crossing_text
    from ordering.upgrade import cross

    crossing = cross(k, source, destination, vm)
    print(json_text(order_crossing_dict(order, crossing)) if args.json else order_crossing_text(order, crossing))
    return 0
