"""A fleet before an upgrade: VM shapes, and each shape judged once from one release to another.

A **shape** is what decides a VM's load order and verdicts: its devices (type, id, bus, address
and the properties that change registration), machine type and options, ``-smp``, memory,
objects, globals and how many serial, parallel, audio and network backends it has. Names,
UUIDs, MACs, disk paths, sockets, chardev paths and file descriptors are not part of it, so a
fleet of 100,000 VMs built from 1,000 templates is 1,000 checks.

Pure: the readers are in :mod:`ordering.sources.fleet_inputs`, the formatting in
:mod:`ordering.report_fleet`, the processes in ``ordering/commands/fleet.py``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from ordering.errors import MigOrderError
from ordering.model.knowledge import Knowledge
from ordering.model.machine import version_tuple
from ordering.model.release import Release
from ordering.model.vm import Vm
from ordering.sources.cmdline import parse_command_line
from ordering.upgrade import Side, cross, reason
from ordering.verdict import Verdict


class FindingKind(StrEnum):
    """The groups of a fleet report, worst first."""

    NOT_UNDERSTOOD = "not-understood"
    REFUSAL = "refusal"
    BLOCKER = "blocker"
    VIOLATED = "violated"
    TIE_FRAGILE = "tie-fragile"


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a VM in one direction (``7.2→10.0``)."""

    kind: FindingKind
    group: str
    """What VMs with the same finding share (a rule id, a refusal's reason)."""
    why: str
    """One line on why it matters (the same for the whole group)."""
    detail: str
    """The line for this VM."""
    direction: str
    side: str
    """Which release decided it: ``source``, ``destination`` or ``both``."""


# Options whose value names only this VM's identity or host resources: never part of a shape.
_IDENTITY_OPTIONS = frozenset(
    {"-name", "-uuid", "-chardev", "-mon", "-qmp", "-pidfile", "-vnc", "-spice", "-add-fd",
     "-blockdev", "-fsdev", "-sandbox", "-msg", "-runas", "-chroot", "-incoming", "-D",
     "-smbios", "-fw_cfg", "-kernel", "-initrd", "-append", "-display", "-k", "-iscsi",
     "-overcommit", "-rtc", "-boot", "-L", "-trace", "-d", "-dtb"}
)
# Options whose value is one backend: only whether it is "none" matters to registration.
_BACKEND_OPTIONS = frozenset({"-serial", "-parallel", "-bios"})
# Device and object properties that name an identity or a host resource.
_IDENTITY_PROPS = (
    "mac|serial|drive|netdev|chardev|fd|fds|vhostfd|vhostfds|host|sysfsdev|wwn|bootindex|"
    "romfile|mem-path|path|file|filename|data|keyid|iv|loadparm|vendor_id|product_id|hostbus|"
    "hostaddr|hostport|device_id|uuid|share|ifname|script|downscript|sock_fd|socket|addr_str"
)
_JSON_PROP = re.compile(r'"(?:' + _IDENTITY_PROPS + r')":(?:"(?:[^"\\]|\\.)*"|[^,}\]]*),?')
_KV_PROP = re.compile(r"(?:(?<=,)|^)(?:" + _IDENTITY_PROPS + r")=[^,]*(?:,|$)")


def _scrub(value: str) -> str:
    """A ``-device``/``-object``/``-netdev``/``-drive`` value without identity properties.

    >>> _scrub('{"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0","mac":"52:54:00:00:00:01","bus":"pci.1"}')
    '{"driver":"virtio-net-pci","id":"net0","bus":"pci.1"}'
    >>> _scrub("virtio-net-pci,mac=52:54:00:00:00:01,id=net0")
    'virtio-net-pci,id=net0'
    """
    if value.startswith("{"):
        return _JSON_PROP.sub("", value)
    return _KV_PROP.sub("", value).rstrip(",")


def shape_key(argv: Sequence[str]) -> str:
    """The VM's shape as text: its arguments without identities (the binary left out).

    >>> a = shape_key(["qemu-system-x86_64", "-name", "guest=a", "-uuid", "1", "-device", "e1000e,mac=52:54:00:00:00:01"])
    >>> b = shape_key(["/usr/bin/qemu-system-x86_64", "-name", "guest=b", "-uuid", "2", "-device", "e1000e,mac=52:54:00:00:00:02"])
    >>> a == b
    True
    """
    out: list[str] = []
    i = 1 if argv and not argv[0].startswith("-") else 0
    n = len(argv)
    while i < n:
        opt = argv[i]
        norm = "-" + opt.lstrip("-") if opt.startswith("--") else opt
        value = argv[i + 1] if i + 1 < n else ""
        if norm in _IDENTITY_OPTIONS:
            out.append(norm)
            i += 2
        elif norm in _BACKEND_OPTIONS:
            out.append(f"{norm} {'none' if value == 'none' else '*'}")
            i += 2
        elif norm in ("-device", "-object", "-netdev", "-drive"):
            out.append(f"{norm} {_scrub(value)}")
            i += 2
        elif value.startswith("-") or i + 1 >= n:
            out.append(norm)  # a flag (-S, -nodefaults, -no-hpet ...)
            i += 1
        else:
            out.append(f"{norm} {value}")
            i += 2
    return "\n".join(out)


def shape_id(argv: Sequence[str]) -> str:
    """A short stable name for the VM's shape (12 hex digits of its key's BLAKE2b)."""
    return hashlib.blake2b(shape_key(argv).encode(), digest_size=6).hexdigest()


def nearest_release(knowledge: Knowledge, version: str) -> Release | None:
    """The newest bundled release not newer than QEMU ``version`` (``8.2.2`` → 7.2).

    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> nearest_release(k, "10.0.13").name, nearest_release(k, "9.2.0").name, nearest_release(k, "6.2.0")
    ('10.0', '7.2', None)
    """
    wanted = version_tuple(".".join(version.split(".")[:2]))
    older = [r for r in knowledge.releases.values() if r.version <= wanted]
    return max(older, key=lambda r: r.version) if older else None


_HOTPLUG_WORDS = {"apic": "vCPU", "cpu": "vCPU", "vfio": "VFIO device", "viommu": "vIOMMU", "pci-bridge": "PCI bridge"}


def _what(kind: str) -> str:
    return _HOTPLUG_WORDS.get(kind, f"{kind} device")


def _not_understood(why: str, detail: str, direction: str = "", side: str = "") -> Finding:
    return Finding(FindingKind.NOT_UNDERSTOOD, why, "migorder does not model this yet: check it by hand", detail, direction, side)


def judge_direction(
    knowledge: Knowledge, vm: Vm, source: Release, destination: Release, *, rollback: bool = False
) -> tuple[Finding, ...]:
    """Every finding for one VM migrating from ``source`` to ``destination``.

    A device or option migorder does not model is a ``not-understood`` finding; a command
    line QEMU would refuse (on either side) a ``refusal``. On a ``rollback`` the VM runs on
    ``source`` as the management layer started it there: a flag that release no longer takes
    (``-no-hpet``) spelt as its machine option.
    """
    direction = f"{source.name}→{destination.name}"
    if rollback and vm.removed_options and not source.features.no_hpet_no_acpi_flags:
        vm = replace(vm, removed_options=())
    try:
        crossing = cross(knowledge, source, destination, vm)
    except MigOrderError as exc:
        why = reason(exc)
        if " refuses " in why:
            return (Finding(FindingKind.REFUSAL, why if f"QEMU {source.name}" in why else f"QEMU {source.name}: {why}",
                            f"QEMU {source.name} would not start this VM", f"refused by QEMU {source.name}: {why}",
                            direction, Side.SOURCE.value),)
        return (_not_understood(why, f"not understood: {exc}", direction, Side.SOURCE.value),)
    out: list[Finding] = []
    dst = destination.name
    if crossing.refused_command_line:
        refused = crossing.refused_command_line
        out.append(Finding(FindingKind.REFUSAL, refused if f"QEMU {dst}" in refused else f"QEMU {dst}: {refused}",
                           "the destination cannot even start the VM to receive it",
                           f"QEMU {dst} refuses the command line: {crossing.refused_command_line}",
                           direction, Side.DESTINATION.value))
    for r in crossing.refusals:
        tail = r.idstr.rsplit("/", 1)[-1]
        out.append(Finding(FindingKind.REFUSAL, f"QEMU {dst} does not know section '{tail}'",
                           "the destination aborts the migration: Unknown savevm section or instance",
                           r.message, direction, Side.DESTINATION.value))
    for b in crossing.blockers:
        if b.blocker.conditional:
            continue
        template = re.sub(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", "<host>", b.blocker.message)
        where = {Side.SOURCE: f"QEMU {source.name} refuses to migrate it",
                 Side.DESTINATION: f"once on QEMU {dst}, it cannot migrate on",
                 Side.BOTH: f"QEMU {source.name} refuses to migrate it, and so would {dst}"}[b.side]
        out.append(Finding(FindingKind.BLOCKER, template, where, f"{b.blocker.device}: {b.blocker.message}",
                           direction, b.side.value))
    for v, side in zip(crossing.result.verdicts, crossing.sides, strict=True):
        e = v.evidence
        if e is None or v.instance is None:
            continue
        if v.verdict is Verdict.VIOLATED:
            out.append(Finding(FindingKind.VIOLATED, v.rule.id, f"{v.rule.title}; {v.rule.consequence.value}: {v.rule.symptom}",
                               f"violated: {e.describe()}", direction, side.value))
        elif v.verdict is Verdict.TIE_FRAGILE:
            first, then = e.first.section, v.instance.then
            out.append(Finding(
                FindingKind.TIE_FRAGILE, v.rule.id,
                f"{v.rule.title}: holds only by registration order ({v.rule.consequence.value} if broken)",
                f"tie-fragile: a {_what(first.kind)} hot-plugged after {_what(then.kind)} {then.owner} would break "
                f"{v.rule.id} on this source ({source.name})",
                direction, side.value))
    return _once(out)


def _once(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    seen: set[tuple[str, str, str]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.kind.value, f.group, f.detail)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return tuple(out)


def judge_vm(
    knowledge: Knowledge,
    argv: Sequence[str],
    name: str,
    source: Release,
    destination: Release,
    *,
    both_ways: bool = False,
) -> tuple[Finding, ...]:
    """A VM's findings from ``source`` to ``destination`` (and back, with ``both_ways``).

    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> argv = ("qemu-system-x86_64 -nodefaults -machine pc-q35-10.0 -smp 2,maxcpus=4 "
    ...         "-device vfio-pci,host=0000:3b:00.0,id=hostdev0").split()
    >>> [f.detail for f in judge_vm(k, argv, "vm1", k.release("10.0"), k.release("10.2"))]
    ['tie-fragile: a vCPU hot-plugged after VFIO device hostdev0 would break apic-before-vfio on this source (10.0)']
    """
    try:
        # Every VM of the shape shares these findings: the messages name no VM.
        vm = parse_command_line(argv, where="command line", name=name, require_nodefaults=True)
    except MigOrderError as exc:
        return (_not_understood(reason(exc), f"not understood: {exc}"),)
    out = judge_direction(knowledge, vm, source, destination)
    if both_ways and source.name != destination.name:
        # Back from the destination, the VM still runs the machine type its first source
        # resolved (``q35`` on 10.0 is pc-q35-10.0 wherever it goes).
        try:
            back = replace(vm, machine=source.machine(vm.machine)[1])
        except MigOrderError:
            back = vm  # the forward direction already reports the refusal
        out += judge_direction(knowledge, back, destination, source, rollback=True)
    return out


@dataclass(frozen=True)
class FleetVm:
    """One VM of the fleet and its findings (shared with every VM of its shape)."""

    name: str
    where: str
    shape: str
    """The shape's id; ``""`` when the VM could not be read."""
    source: str
    destination: str
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings."""
        return 1 if self.findings else 0


@dataclass(frozen=True)
class Group:
    """VMs sharing one finding: how many, a few names, and why it matters."""

    kind: FindingKind
    group: str
    direction: str
    side: str
    why: str
    count: int
    examples: tuple[str, ...]


def unreadable(
    name: str, where: str, problem: str, destination: str, *, why: str = "the input could not be read as a VM"
) -> FleetVm:
    """A VM that cannot be judged (unreadable, or from a release migorder holds no model of):
    one ``not-understood`` finding, never a crash."""
    f = Finding(FindingKind.NOT_UNDERSTOOD, problem, why, f"not understood: {where}: {problem}", "", "")
    return FleetVm(name, where, "", "", destination, (f,))


def summarize(vms: Iterable[FleetVm], *, examples: int = 3) -> list[Group]:
    """The findings grouped (kind, group, direction), worst kind first, then most VMs.

    >>> f = Finding(FindingKind.TIE_FRAGILE, "apic-before-vfio", "why", "detail", "10.0→10.2", "source")
    >>> vms = [FleetVm(f"vm{i}", "", "s1", "10.0", "10.2", (f,)) for i in range(5)]
    >>> [(g.group, g.count, g.examples) for g in summarize(vms)]
    [('apic-before-vfio', 5, ('vm0', 'vm1', 'vm2'))]
    """
    first: dict[tuple[FindingKind, str, str], Finding] = {}
    count: dict[tuple[FindingKind, str, str], int] = {}
    names: dict[tuple[FindingKind, str, str], list[str]] = {}
    for vm in vms:
        for key, f in {(f.kind, f.group, f.direction): f for f in vm.findings}.items():
            if key not in first:
                first[key], count[key], names[key] = f, 0, []
            count[key] += 1
            if len(names[key]) < examples:
                names[key].append(vm.name)
    order = list(FindingKind)
    groups = [
        Group(kind, group, direction, first[key].side, first[key].why, count[key], tuple(names[key]))
        for key in first
        for kind, group, direction in (key,)
    ]
    groups.sort(key=lambda g: (order.index(g.kind), -g.count, g.direction, g.group))
    return groups
