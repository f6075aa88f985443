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

SUMMARIES: dict[str, tuple[str, str]] = {
    'check': ('check', "judge every rule on a VM's load order (the default command)"),
    'order': ('order', 'print the load order a destination sees'),
    'stream': ('stream', 'show the load order a real migration stream shows'),
    'simulate': ('simulate', 'replay a load order over device behaviours: what a destination would do'),
    'explore': ('explore', 'model-check every order a destination may see: reorders, hot-plug, releases, multifd'),
    'capture': ('capture', 'run QEMU paused and capture its migration stream'),
    'scan': ('scan', 'read a QEMU source tree (perhaps patched): enum, priority VMSDs, lint'),
    'dump-vmstate': ('dump_vmstate', "read QEMU's -dump-vmstate JSON; compare a source and a destination"),
    'diagram': ('diagram', 'draw the dependency graph in MIG_PRI bands (png, svg, dot, ascii)'),
    'timeline': ('timeline', 'draw the load order as a timeline (png, svg, ascii)'),
    'history': ('history', "heat map of every rule's verdict across the bundled releases (png, svg, ascii)"),
    'prove': ('prove', 'prove with z3 that rules hold for every VM of a release, or show a counterexample'),
    'verify': ('verify', 'judge a proposed MIG_PRI patch or series: BETTER, NO CHANGE, WORSE or UNJUDGED'),
    'synthesize': ('synthesize', 'find the smallest MIG_PRI change under which every rule holds for every VM (z3)'),
    'fleet': ('fleet', 'before an upgrade: which VMs of a fleet fail, degrade or cannot migrate, and why'),
    'releases': ('info', 'list the bundled QEMU releases with their priority enums'),
    'rules': ('info', 'list the bundled must-load-before rules with their sources'),
    'scenarios': ('info', 'list the bundled scenarios'),
    'devices': ('info', 'list the -device types migorder models'),
    'explain': ('info', 'explain one rule: mechanism, symptom, sources, verdict per release'),
}
"""Each subcommand's module and one-line help, so that ``migorder --help`` lists them without
importing any (a test holds this table equal to what the modules register). A module in
COMMANDS whose commands are missing here still works: ``--help`` then imports every module."""


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


def build_parser(command: str | None = None, *, lazy: bool = False) -> argparse.ArgumentParser:
    """The argument parser (subcommands whose module is missing are left out): every
    subcommand's real parser, from every module.

    ``lazy`` is how ``migorder`` itself starts: with ``command``, only the module that
    registers it is imported, so running one command does not import the others (nor
    networkx, z3 or matplotlib, which only the commands that need them import); without it
    (``migorder --help``), the subcommands are listed from :data:`SUMMARIES` and no module is
    imported.
    """
    parser = _Parser(
        prog="migorder",
        description="Check the order in which QEMU loads device state during live migration.",
        epilog="A VM is a scenario name or file, or a QEMU command line after `--`.",
    )
    parser.add_argument("--version", action="version", version=f"migorder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if lazy and command in SUMMARIES:
        if _register(sub, SUMMARIES[command][0]) and command in sub.choices:
            return parser
        return build_parser()
    if lazy and set(COMMANDS) <= {module for module, _ in SUMMARIES.values()}:
        for name, (_, summary) in SUMMARIES.items():
            sub.add_parser(name, help=summary, add_help=False)  # a name in the list; never run
        return parser
    for name in COMMANDS:
        _register(sub, name)
    return parser


def _register(sub: argparse._SubParsersAction[_Parser], name: str) -> bool:
    try:
        module = importlib.import_module(f"ordering.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"ordering.commands.{name}":
            return False
        raise
    module.register(sub)
    return True


CLOSED_PIPE = 141
"""The exit code when standard output's reader went away (128 + SIGPIPE, as a shell reports a
process that SIGPIPE ended): neither a verdict nor bad input."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``migorder`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    The last guard: a user's mistake is one line and exit 2; so is anything unexpected
    (``migorder: internal error: ...``), and a standard output that cannot be written (a full
    disk). A closed pipe (``| head``) ends quietly with 141. Exit 1 only ever means findings.
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
            if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
                # The reader is gone (``| head``): as a process killed by SIGPIPE, quietly.
                return CLOSED_PIPE
            return _fail(f"error: cannot write the output: {exc.strerror or exc}")
        return _fail(f"internal error: {type(exc).__name__}: {exc}")
    except (RecursionError, MemoryError) as exc:
        return _fail(f"internal error: {type(exc).__name__}: the input is too large or too deeply nested")
    except Exception as exc:
        return _fail(f"internal error: {type(exc).__name__}: {exc}")


def _run(args_in: list[str]) -> int:
    # no command, or a QEMU command line straight after `--`: `check`
    command = "check" if not args_in or args_in[0] == "--" else args_in[0]
    parser = build_parser(command, lazy=True)
    args_in, qemu_args = _split_qemu_args(parser, args_in)
    args = parser.parse_args(args_in or ["check"])
    args.qemu_args = qemu_args
    if not getattr(args, "run", None):  # pragma: no cover - every registered subparser sets run
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
