"""``migorder explore``: every load order a destination may see for a VM, judged and simulated.

Exit codes: 0 every rule and failure class proved (or vacuous), 1 a counterexample or an
UNKNOWN (a bound, the timeout or Ctrl-C stopped the search first: not a proof), 2 bad input.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from ordering.commands._common import (
    add_release_arguments,
    add_vm_arguments,
    knowledge,
    resolve_releases,
    resolve_vm,
)
from ordering.commands._progress import progress_bar
from ordering.errors import UsageError
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.report import json_text
from ordering.space import Outcome


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``explore``."""
    p = sub.add_parser(
        "explore",
        help="model-check every order a destination may see: reorders, hot-plug, releases, multifd",
        description="Walk the VM's order space: -device reorders that respect bus parents, "
        "hot-plug of absent vCPUs, unplug and replug, the scenario's any-order hot-plug steps, "
        "the machine types the VM may carry, the source release (and a chain of them), multifd's "
        "VFIO load thread, postcopy. One outcome per rule and per simulator failure class: "
        "PROVED (the space covered), COUNTEREXAMPLE (the shortest steps, the order as a diff "
        "from QEMU's default, the simulator's trace) or UNKNOWN (the bound reached). Exit 1 on "
        "a counterexample or an UNKNOWN.",
    )
    add_vm_arguments(p, release_help="both releases: shorthand for --from R --to R (default: the newest bundled)")
    add_release_arguments(p, "--source-qemu")
    p.add_argument("--chain", metavar="R", action="append", default=[],
                   help="an earlier source in a chain of migrations, oldest first (repeatable; a release "
                   "or a release file): the VM keeps its machine type, the stream's order comes from the last source")
    p.add_argument("--postcopy", action="store_true", help="the migration switches to postcopy")
    p.add_argument("--engine", choices=("auto", "graph", "smt", "explicit"), default="auto",
                   help="which engine answers (auto: explicit, the one that runs the simulator on each "
                   "order; graph and smt judge the rules only)")
    p.add_argument("--bound", type=int, default=2, metavar="N",
                   help="at most N moves (reorder, hot-plug, replug) from the VM as given, on each machine type it may carry (default 2)")
    p.add_argument("--max-orders", type=int, default=2000, metavar="N",
                   help="stop with UNKNOWN after N distinct orders (default 2000)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                   help="stop with UNKNOWN after this long (default 120)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Explore and print."""
    from ordering.explore import destination_verdict, engine
    from ordering.order_space import order_space
    from ordering.report_explore import explore_dict, explore_text

    if args.bound < 0 or args.max_orders < 1 or not args.timeout > 0:
        raise UsageError("--bound: expected N >= 0, --max-orders N >= 1, --timeout a positive number of seconds")
    k = knowledge(args)
    source, dest = resolve_releases(args, k)
    chain = [_chain_release(k, r) for r in args.chain]
    vm = resolve_vm(args, k)
    run_engine = engine(args.engine)
    if run_engine is None:
        raise UsageError(f"--engine {args.engine}: not available in this build yet; use --engine explicit")
    space = order_space(
        source, dest, vm, releases=list(k.releases.values()), chain=chain,
        hotplug_bound=args.bound, multifd=args.multifd, postcopy=args.postcopy,
    )
    stopped: list[bool] = []

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if stopped:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stopped.append(True)

    bar = _Bar(args.max_orders)
    previous = signal.signal(signal.SIGINT, on_sigint)
    started = time.monotonic()
    try:
        verdicts = run_engine(
            space, list(k.rules), max_states=args.max_orders, timeout=args.timeout,
            progress=bar.update,
            stop=lambda: bool(stopped),
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    seconds = time.monotonic() - started
    refusal = destination_verdict(space, verdicts[0].engine if verdicts else args.engine)
    if refusal is not None:  # the migration fails whatever the rules say
        verdicts = (refusal, *verdicts)
    if args.json:
        print(json_text(explore_dict(space, verdicts, seconds), depth=3))
    else:
        print(explore_text(space, verdicts, seconds))
    if stopped:
        print("interrupted: the outcomes above cover what was explored before Ctrl-C", file=sys.stderr)
    bad = (Outcome.COUNTEREXAMPLE, Outcome.UNKNOWN)
    return 1 if any(v.outcome in bad for v in verdicts) else 0


def _chain_release(k: Knowledge, name: str) -> Release:
    """A ``--chain`` hop: a bundled release, or a release file written by ``scan --out``."""
    if name not in k.releases and Path(name).is_file():
        from ordering.sources.release_file import read_release_file

        return read_release_file(Path(name), k)
    return k.release(name)


class _Bar:
    """A progress bar on stderr (rich) that appears once a run has taken a second; none when
    stderr is not a terminal. Refreshed by hand, at most ten times a second."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.shown = 0.0
        self.bar: Any = None

    def update(self, done: int, waiting: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.started < 1.0 or now - self.shown < 0.1:
            return
        if self.bar is None:
            self.bar = progress_bar(
                "explore", "orders", "({task.fields[waiting]} move sequences waiting)",
                transient=True,
            )
            self.task = self.bar.add_task("explore", total=self.total, waiting=0)
            self.bar.start()
        self.shown = now
        self.bar.update(self.task, completed=done, waiting=waiting)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
