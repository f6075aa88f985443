"""``migorder prove [RULE ...] [--qemu R]``: does a rule hold for every VM of a release?"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ordering.commands._common import add_tree_argument, knowledge
from ordering.errors import UsageError

DEFAULT_TIMEOUT_S = 10.0
"""``ordering.smt.DEFAULT_TIMEOUT_MS`` in seconds, kept here so that ``migorder --help`` does
not import z3 (a test holds the two equal)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``prove``."""
    p = sub.add_parser(
        "prove",
        help="prove with z3 that rules hold for every VM of a release, or show a counterexample",
        description="For each rule and release, z3 searches every pair of sections the rule's two "
        "sides can have in that release (every VMSD, phase and registration order) for an order "
        "QEMU's sort would load wrongly. Exit 0 when every rule is proved, 1 on a counterexample.",
    )
    p.add_argument("rules", nargs="*", metavar="RULE", help="rule ids (default: all)")
    p.add_argument("--qemu", metavar="R", action="append",
                   help="a release, or a release file (repeatable; default: all bundled)")
    add_tree_argument(p)
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="z3's time for one pair of sections; past it the rule is UNKNOWN (exit 1), never "
        f"PROVED (default: {DEFAULT_TIMEOUT_S:g})",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run, qemu_many=True)


def run(args: argparse.Namespace) -> int:
    """Prove and print."""
    k = knowledge(args)
    rules = [k.rule(r) for r in args.rules] if args.rules else list(k.rules)
    releases = (
        [k.release(r) for r in args.qemu]
        if args.qemu
        else sorted(k.releases.values(), key=lambda r: r.version)
    )
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise UsageError(f"--timeout: expected a positive number of seconds, got {args.timeout:g}")
    from ordering.smt import prove_all  # z3: imported only when a proof is asked for

    # One release object at a time: a scanned or file 7.2 beside the bundled 7.2 is its own.
    unique = list({id(rel): rel for rel in releases}.values())
    proofs = [p for rel in unique for p in prove_all([rel], rules, timeout_ms=int(args.timeout * 1000))]
    if args.json:
        print(json.dumps([
            {
                "rule": p.rule.id,
                "release": p.release,
                "result": p.outcome,
                "unknown": p.unknown or None,
                "pairs": p.pairs,
                "counterexample": p.counterexample.describe() if p.counterexample else None,
                "assumes": p.assumes or None,
                "blocked": p.blocked or None,
                "requires": p.requires or None,
                "provenance": list(p.rule.provenance),
            }
            for p in proofs
        ], indent=2))
    else:
        for p in proofs:
            print(p.describe())
    return 0 if all(p.proved and not p.unknown for p in proofs) else 1
