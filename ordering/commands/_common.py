"""What several subcommands share: how a VM and a release are named on the command line."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ordering.errors import UsageError
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.model.vm import Vm
from ordering.sources.models import load_knowledge


def add_vm_arguments(parser: argparse.ArgumentParser, *, release_help: str = "") -> None:
    """``[SCENARIO] [--qemu R] [--json]``; QEMU arguments come after ``--``."""
    parser.add_argument(
        "scenario",
        nargs="?",
        help="a bundled scenario name (see `migorder scenarios`) or a scenario TOML file; "
        "default: 'default'. Or give a QEMU command line after `--`.",
    )
    parser.add_argument(
        "--qemu",
        metavar="R",
        help=release_help or "the source QEMU release (default: the newest bundled)",
    )
    add_tree_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--multifd",
        action="store_true",
        help="the source migrates with the multifd capability (VFIO device state then loads "
        "from a thread, 10.0+); default: QEMU's default precopy without it",
    )
    parser.add_argument("--models", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    parser.set_defaults(takes_qemu_args=True)  # ordering.cli.QEMU_ARGS: the `--` is ours


def add_tree_argument(parser: argparse.ArgumentParser) -> None:
    """``--qemu-tree DIR``: a QEMU source tree scanned on the fly (``--qemu`` takes a file)."""
    parser.add_argument(
        "--qemu-tree",
        metavar="DIR",
        type=Path,
        help="a QEMU source tree, scanned on the fly (cached by content) and used as the release; "
        "--qemu also takes a release file written by `migorder scan --out`",
    )


def knowledge(args: argparse.Namespace) -> Knowledge:
    """The bundled knowledge (or ``--models DIR``), with any release file or tree the user gave.

    A ``--qemu FILE`` or ``--qemu-tree DIR`` release joins the releases under a key of its
    own, and ``args.qemu`` is set to that key, so the command finds it like a bundled one.
    """
    k = load_knowledge(getattr(args, "models", None))
    if not (getattr(args, "qemu_tree", None) or getattr(args, "qemu", None) or getattr(args, "source_qemu", None)):
        return k  # nothing to add (and release_file, with hashlib, stays unimported)
    from ordering.sources.release_file import user_releases

    return user_releases(args, k)


def resolve_vm(args: argparse.Namespace, k: Knowledge) -> Vm:
    """The VM named by ``SCENARIO`` or given after ``--`` (with ``--multifd`` applied)."""
    vm = _named_vm(args, k)
    unknown = sorted(set(vm.devices_for) - set(k.releases))
    if unknown:
        raise UsageError(
            f"{vm.source or vm.name} [release_globals]: no bundled QEMU release {unknown[0]!r}; "
            f"bundled: {', '.join(sorted(k.releases))}"
        )
    if getattr(args, "multifd", False):
        vm = replace(vm, migration={**vm.migration, "multifd": "on"})
    return vm


def _named_vm(args: argparse.Namespace, k: Knowledge) -> Vm:
    from ordering.sources.cmdline import parse_command_line  # only the commands that build a VM
    from ordering.sources.scenario import read_scenario

    qemu_args: list[str] = getattr(args, "qemu_args", [])
    scenario: str | None = getattr(args, "scenario", None)
    if qemu_args and scenario:
        raise UsageError(f"give a scenario ({scenario!r}) or a QEMU command line after --, not both")
    if qemu_args:
        return parse_command_line(qemu_args, require_nodefaults=True)
    name = scenario or "default"
    if name in k.scenarios:
        return read_scenario(k.scenarios[name])
    path = Path(name)
    try:
        exists = path.exists()
    except OSError as exc:  # a name too long to be a file, say
        raise UsageError(f"{name!r}: not a bundled scenario nor a readable file ({exc.strerror})") from None
    if path.suffix == ".toml" or exists:
        if not path.is_file():
            raise UsageError(f"{name}: no such scenario file")
        return read_scenario(path)
    known = ", ".join(sorted(k.scenarios))
    raise UsageError(f"no scenario {name!r}: bundled scenarios are {known}; or pass a TOML file")


def resolve_release(args: argparse.Namespace, k: Knowledge, attr: str = "qemu") -> Release:
    """The release named by ``--qemu`` (default: the newest bundled)."""
    return k.release(getattr(args, attr, None))


def add_release_arguments(parser: argparse.ArgumentParser, *aliases: str) -> None:
    """``--from R`` (source: decides the stream order) and ``--to R`` (destination: decides
    behaviours, blockers, which rules are live and which sections it refuses); ``--qemu R``
    stays the shorthand for both. ``aliases`` are older spellings of ``--from``."""
    parser.add_argument(
        "--from", *aliases, dest="from_release", metavar="R",
        help="the source release, whose order the stream carries (default: --qemu)",
    )
    parser.add_argument(
        "--to", dest="to_release", metavar="R",
        help="the destination release, whose behaviours, blockers and live rules apply and "
        "which refuses sections it does not know (default: --qemu)",
    )


def resolve_releases(args: argparse.Namespace, k: Knowledge) -> tuple[Release, Release]:
    """``(source, destination)`` from ``--from``/``--to``: each defaults to ``--qemu``, then to
    the other one (one release given is both sides), then to the newest bundled release.
    ``--from``/``--to`` also take a release file written by ``migorder scan --out``."""
    both = getattr(args, "qemu", None)
    given_from = getattr(args, "from_release", None)
    given_to = getattr(args, "to_release", None)
    source = given_from or both or given_to
    destination = given_to or both or given_from
    return _release(k, source), _release(k, destination)


def _release(k: Knowledge, name: str | None) -> Release:
    if name and name not in k.releases and Path(name).is_file():
        from ordering.sources.release_file import read_release_file

        return read_release_file(Path(name), k)
    return k.release(name)
