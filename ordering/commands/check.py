"""``migorder check``: every rule judged on a VM's load order, with evidence."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ordering.check import CheckResult, check_order
from ordering.commands._common import (
    add_release_arguments,
    add_vm_arguments,
    knowledge,
    resolve_releases,
    resolve_vm,
)
from ordering.errors import QemuRefused, UsageError
from ordering.report import check_dict, check_text, json_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check``."""
    p = sub.add_parser(
        "check",
        help="judge every rule on a VM's load order (the default command)",
        description="Judge every must-load-before rule on the load order of a VM (a scenario, a "
        "QEMU command line after --, a real stream, or a stream captured now). Exit 0 when "
        "clean, 1 on a violated or tie-fragile rule, a cycle or a migration blocker, 2 on bad input.",
    )
    add_vm_arguments(p, release_help="both releases: shorthand for --from R --to R (default: the newest bundled)")
    add_release_arguments(p)
    p.add_argument("--stream", metavar="FILE", type=Path, help="audit the order observed in a real migration stream")
    p.add_argument(
        "--capture",
        action="store_true",
        help="start the QEMU given after -- (binary first), capture its stream, and audit it",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show symptoms and sources of guaranteed rules too")
    p.set_defaults(run=run)


def _observed(args: argparse.Namespace) -> CheckResult:
    from ordering.sources.observed import observed_order
    from ordering.sources.stream import read_stream

    k = knowledge(args)
    release = k.release(args.qemu) if args.qemu else None
    if args.capture:
        from ordering.sources.capture import capture_stream

        if not args.qemu_args:
            raise UsageError("--capture needs a QEMU command line after -- (binary first)")
        with tempfile.TemporaryDirectory(prefix="migorder-") as tmp:
            out = Path(tmp) / "capture.mig"
            captured = capture_stream(args.qemu_args, out)
            stream = read_stream(out)
        # The binary that ran decides the order, not the machine type it was given.
        if release is None and captured.release in k.releases:
            release = k.release(captured.release)
    else:
        stream = read_stream(args.stream)
    return check_order(k, observed_order(k, stream, release))


_BLOCKER_WORDS = ("blocked", "not supported", "doesn't support migration", "non-migratable")


def run(args: argparse.Namespace) -> int:
    """Check and print; the exit code says whether anything was found."""
    if args.stream is not None or args.capture:
        if args.scenario or (args.qemu_args and not args.capture):
            raise UsageError("--stream audits a stream: give no scenario or QEMU command line with it")
        try:
            result = _observed(args)
        except QemuRefused as exc:
            if not any(w in str(exc) for w in _BLOCKER_WORDS):
                raise
            # A migration blocker is a finding about the VM, as in a derived check.
            print(f"BLOCKED: QEMU refuses to migrate this VM: {exc}")
            return 1
    else:
        from ordering.report_upgrade import crossing_dict, crossing_text
        from ordering.upgrade import cross

        k = knowledge(args)
        source, destination = resolve_releases(args, k)
        vm = resolve_vm(args, k)
        if vm.guest:  # a scenario's [guest] is checked here too, not only by the simulator
            from ordering.order import derive
            from ordering.sim.guest import guest_state

            guest_state(vm, derive(source, vm).registered)
        crossing = cross(k, source, destination, vm)
        if args.json:
            print(json_text(crossing_dict(crossing)))
        else:
            print(crossing_text(crossing, verbose=args.verbose))
        return crossing.exit_code
    if args.json:
        print(json_text(check_dict(result)))
    else:
        print(check_text(result, verbose=args.verbose))
    return result.exit_code
