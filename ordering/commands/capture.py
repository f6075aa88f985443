"""``migorder capture -- QEMU ARGS``: capture a real migration stream from a QEMU binary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ordering.commands._common import knowledge
from ordering.commands._out import check_out
from ordering.errors import UsageError
from ordering.sources._limits import LimitError, json_loads, shown
from ordering.sources.capture import capture_stream
from ordering.sources.observed import observed_order
from ordering.sources.stream import read_stream

DEFAULT_OUT = Path("migorder-capture.mig")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``capture`` subcommand."""
    p = sub.add_parser(
        "capture",
        help="run QEMU paused and capture its migration stream",
        description="Start the QEMU binary given after `--` paused (-S, a QMP socket added), "
        "optionally hot-plug devices, migrate to a file with `exec:cat > FILE`, stop QEMU, and "
        "print where the stream went and its load order in one line. When QEMU refuses (a "
        "migration blocker, a bad -device), its own reason is printed and the exit code is 2.",
        epilog="example: migorder capture --out vm.mig -- qemu-system-x86_64 -nodefaults "
        "-display none -accel tcg -machine q35 -m 128 -device intel-iommu",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="FILE",
                   help=f"where to write the stream (default: {DEFAULT_OUT})")
    p.add_argument("--hotplug", action="append", default=[], metavar="JSON",
                   help='a QMP device_add argument object to apply before migrating, e.g. '
                   '\'{"driver": "e1000e", "bus": "rp1"}\' (repeatable, in order)')
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds before QEMU is killed (default: 60)")
    p.add_argument("--qemu", metavar="R", help="the release to annotate with (default: the "
                   "binary's own, from query-version)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--models", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run, takes_qemu_args=True)


def _hotplug(texts: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for text in texts:
        try:
            value = json_loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--hotplug {shown(text)}: expected a JSON object ({exc.msg})") from None
        except LimitError as exc:
            raise UsageError(f"--hotplug {shown(text)}: expected a JSON object with "
                             f"{exc.expected}") from None
        if not isinstance(value, dict):
            raise UsageError(f"--hotplug {text!r}: expected a JSON object such as "
                             '{"driver": "e1000e"}')
        out.append(value)
    return out


def run(args: argparse.Namespace) -> int:
    """Capture, read back, print a one-line summary (or JSON); 0 on success."""
    qemu_args: list[str] = getattr(args, "qemu_args", [])
    if not qemu_args:
        raise UsageError("give the QEMU binary and its arguments after --, e.g. "
                         "`migorder capture -- qemu-system-x86_64 -machine q35 -m 128`")
    hotplug = _hotplug(args.hotplug)
    check_out(args.out)
    result = capture_stream(qemu_args, args.out, timeout=args.timeout, hotplug=hotplug)
    k = knowledge(args)
    stream = read_stream(result.out)
    name = args.qemu or result.release
    release = k.release(name) if (args.qemu or name in k.releases) else None
    order = observed_order(k, stream, release)
    full = [s.section.label for s in order.full]
    if args.json:
        print(json.dumps({
            "file": str(result.out),
            "qemu": ".".join(map(str, result.version)),
            "package": result.package,
            "argv": list(result.argv),
            "seconds": round(result.seconds, 3),
            "size": result.size,
            "machine": order.machine_type,
            "release": order.release.name,
            "order": full,
        }, indent=1))
    else:
        print(f"wrote {result.out} ({result.size} bytes) from QEMU "
              f"{'.'.join(map(str, result.version))}, machine {order.machine_type}: "
              f"{len(full)} FULL sections: " + ", ".join(full))
    return 0
