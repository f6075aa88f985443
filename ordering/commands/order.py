"""``migorder order``: the exact load order a destination sees."""

from __future__ import annotations

import argparse

from ordering.commands._common import add_vm_arguments, knowledge, resolve_release, resolve_vm
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
    add_vm_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Derive and print."""
    k = knowledge(args)
    order = derive(resolve_release(args, k), resolve_vm(args, k))
    print(json_text(order_dict(order)) if args.json else order_text(order))
    return 0
