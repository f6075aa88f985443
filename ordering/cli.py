"""The ``migorder`` command: wiring only. Each subcommand lives in ``ordering/commands/``.

Exit codes: 0 clean, 1 findings, 2 bad input or usage. A user's mistake is one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ordering import __version__
from ordering.errors import MigOrderError

# Subcommand modules, in the order `migorder --help` lists them. Each defines
# `register(subparsers) -> None`, which adds its parser with `set_defaults(run=...)`,
# where `run(args: argparse.Namespace) -> int` returns the exit code.
COMMANDS = (
    "check",
    "order",
    "stream",
    "simulate",
    "explore",
    "capture",
    "scan",
    "dump_vmstate",
    "diagram",
    "timeline",
    "history",
    "prove",
    "verify",
    "fleet",
    "info",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (subcommands whose module is missing are left out)."""
    parser = _Parser(
        prog="migorder",
        description="Check the order in which QEMU loads device state during live migration.",
        epilog="A VM is a scenario name or file, or a QEMU command line after `--`.",
    )
    parser.add_argument("--version", action="version", version=f"migorder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"ordering.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ordering.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``migorder`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    qemu_args: list[str] = []
    if "--" in args_in:
        cut = args_in.index("--")
        args_in, qemu_args = args_in[:cut], args_in[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(args_in)
    args.qemu_args = qemu_args
    if not getattr(args, "run", None):
        if args.command is None:
            args_in = ["check"]
            args = parser.parse_args(args_in)
            args.qemu_args = qemu_args
        else:  # pragma: no cover - every subparser sets run
            parser.print_help()
            return 2
    try:
        code: int = args.run(args)
    except MigOrderError as exc:
        print(f"migorder: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    return code


def entry() -> None:  # pragma: no cover - console script shim
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
