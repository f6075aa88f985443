"""The ``migorder`` command: wiring only. Each subcommand lives in ``ordering/commands/``.

Exit codes: 0 clean, 1 findings, 2 bad input or usage. A user's mistake is one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from ordering import __version__
from ordering.errors import MigOrderError, one_line

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
    "synthesize",
    "fleet",
    "info",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


QEMU_ARGS = "takes_qemu_args"
"""A subparser default: set (by ``add_vm_arguments`` or by hand) on a subcommand that takes a
QEMU command line after ``--``. Every other subcommand leaves ``--`` to argparse, so anything
after it is an unrecognized argument, never silently dropped."""


def _split_qemu_args(parser: argparse.ArgumentParser, args_in: list[str]) -> tuple[list[str], list[str]]:
    """``args_in`` cut at the first ``--`` when the subcommand named first takes QEMU
    arguments (no subcommand means ``check``, which does); else unchanged."""
    if "--" not in args_in:
        return args_in, []
    name = args_in[0] if args_in and args_in[0] != "--" else "check"
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sub = subs[0].choices.get(name) if subs else None
    if sub is None or not sub.get_default(QEMU_ARGS):
        return args_in, []
    cut = args_in.index("--")
    return args_in[:cut], args_in[cut + 1 :]


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
    """Run ``migorder`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    The last guard: a user's mistake is one line and exit 2; so is anything unexpected
    (``migorder: internal error: ...``), and a standard output that cannot be written (a full
    disk, a closed pipe). Exit 1 only ever means findings.
    """
    try:
        code = _run(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
        return code
    except MigOrderError as exc:
        return _fail(f"error: {exc}")
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if _is_stdout_error(exc):
            _silence_stdout()
            return _fail(f"error: cannot write the output: {exc.strerror or exc}")
        return _fail(f"internal error: {type(exc).__name__}: {exc}")
    except (RecursionError, MemoryError) as exc:
        return _fail(f"internal error: {type(exc).__name__}: the input is too large or too deeply nested")
    except Exception as exc:
        return _fail(f"internal error: {type(exc).__name__}: {exc}")


def _run(args_in: list[str]) -> int:
    parser = build_parser()
    args_in, qemu_args = _split_qemu_args(parser, args_in)
    args = parser.parse_args(args_in)
    args.qemu_args = qemu_args
    if not getattr(args, "run", None):
        if args.command is None:
            args = parser.parse_args(["check"])
            args.qemu_args = qemu_args
        else:  # pragma: no cover - every subparser sets run
            parser.print_help()
            return 2
    code: int = args.run(args)
    return code


def _fail(message: str) -> int:
    with contextlib.suppress(OSError):  # stderr gone too: the exit code still tells
        print(f"migorder: {one_line(message)}", file=sys.stderr)
    return 2


def _is_stdout_error(exc: OSError) -> bool:
    """A failed write to standard output: a closed pipe (``| head``), or a full disk
    (``> /dev/full``)."""
    return isinstance(exc, BrokenPipeError) or exc.errno in (errno.ENOSPC, errno.EPIPE, errno.EDQUOT, errno.EFBIG)


def _silence_stdout() -> None:
    """Point standard output at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - no real file descriptor (tests)
        pass


def entry() -> None:  # pragma: no cover - console script shim
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
