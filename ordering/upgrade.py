"""One VM migrating between two releases: the source decides the order, the destination the rest.

QEMU's destination never re-sorts: the stream arrives in the order the **source** release sorts
it (phase, priority, registration). Everything else is the **destination**'s: whether it knows
each section (``find_se`` by idstr and instance_id), whether a rule's hazard exists there (its
sections are registered on the destination too), and the blockers its devices add.

:func:`cross` judges one VM from ``source`` to ``destination`` and says, for each verdict,
which side decided it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ordering.check import Blocker, CheckResult, blockers, check
from ordering.conditions import rule_instances
from ordering.errors import InputError, MigOrderError
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.model.vm import Vm
from ordering.order import LoadOrder, derive
from ordering.verdict import RuleVerdict, Verdict

UNKNOWN_SECTION = (
    "Unknown savevm section or instance '{idstr}' {instance}. Make sure that your current VM "
    "setup matches your saved VM setup, including any hotplugged devices"
)
"""``migration/savevm.c: qemu_loadvm_section_start_full`` (the same words as
:data:`ordering.sources.dump_vmstate.UNKNOWN_SECTION`, which reads binaries' dumps)."""

VERSIONS_UNKNOWN = (
    "unknown: the bundled models hold no VMSD version_id or minimum_version_id for {releases} "
    "(compare two binaries with `migorder dump-vmstate SRC.json DST.json`)"
)


class Side(StrEnum):
    """Which release decided a verdict."""

    SOURCE = "source"
    """The stream order: phases, priorities and registration order of the source release."""
    DESTINATION = "destination"
    """What the destination knows, which rules are live there, its blockers."""
    BOTH = "both"


@dataclass(frozen=True)
class SectionRefusal:
    """A section the source sends that the destination would refuse, in QEMU's words."""

    label: str
    idstr: str
    instance_id: int
    message: str


@dataclass(frozen=True)
class SidedBlocker:
    """A migration blocker and the release(s) whose devices add it."""

    blocker: Blocker
    side: Side


@dataclass(frozen=True)
class Crossing:
    """One VM from ``source`` to ``destination``: the check on the source's order, with the
    destination's part (rules live there, sections it refuses, its blockers)."""

    source: Release
    destination: Release
    result: CheckResult
    """Rules judged on the source's order; a rule instance not live on the destination is
    ``not-live`` here (see :attr:`sides`)."""
    sides: tuple[Side, ...]
    """For each verdict of ``result``, the side that decided it."""
    refused_command_line: str
    """Non-empty: the destination refuses to start the VM at all (QEMU's words)."""
    refusals: tuple[SectionRefusal, ...]
    blockers: tuple[SidedBlocker, ...]
    versions: str
    """Whether version_id windows could be checked (``unknown`` with why, when not)."""
    notes: tuple[str, ...] = ()
    """How the destination's command line differs from the source's."""

    @property
    def same_release(self) -> bool:
        """Whether source and destination are the same release."""
        return self.source.name == self.destination.name

    @property
    def stops_migration(self) -> bool:
        """Whether the migration cannot happen: the destination refuses the VM or a section, or
        either side has an unconditional blocker."""
        return bool(
            self.refused_command_line
            or self.refusals
            or any(not b.blocker.conditional for b in self.blockers)
        )

    @property
    def findings(self) -> bool:
        """The check's findings, or a migration that cannot happen."""
        return self.result.findings or self.stops_migration

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings."""
        return 1 if self.findings else 0


def reason(exc: MigOrderError) -> str:
    """An error's reason without where it was found (for grouping the same reason)."""
    return exc.expected if isinstance(exc, InputError) else str(exc)


def cross(knowledge: Knowledge, source: Release, destination: Release, vm: Vm) -> Crossing:
    """Judge ``vm`` migrating from ``source`` to ``destination``.

    Raises what :func:`~ordering.check.check` raises when the **source** refuses the VM.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-nodefaults -machine pc-q35-7.2 -device virtio-net-pci")
    >>> c = cross(k, k.release("7.2"), k.release("10.0"), vm)
    >>> c.refused_command_line, c.exit_code
    ('', 0)
    >>> c = cross(k, k.release("10.0"), k.release("7.2"), parse_command_line(
    ...     "-nodefaults -machine pc-q35-10.0 -device virtio-net-pci"))
    >>> c.refused_command_line.split(" (")[0]
    "QEMU 7.2 refuses -machine pc-q35-10.0: 'unsupported machine type'"

    An unversioned machine type is the source's newest, which an older destination lacks:

    >>> c = cross(k, k.release("10.2"), k.release("10.1"), parse_command_line(
    ...     "-nodefaults -machine q35 -device virtio-net-pci"))
    >>> c.refused_command_line.startswith("QEMU 10.1 refuses -machine pc-q35-10.2")
    True
    """
    result = check(knowledge, source, vm)
    versions = VERSIONS_UNKNOWN.format(releases=" and ".join(sorted({source.name, destination.name})))
    if source.name == destination.name:
        sides = tuple(Side.SOURCE for _ in result.verdicts)
        sided = tuple(SidedBlocker(b, Side.SOURCE) for b in result.blockers)
        return Crossing(source, destination, result, sides, "", (), sided, versions)
    refused = ""
    dest_order: LoadOrder | None = None
    notes: tuple[str, ...] = ()
    if vm.removed_options and not destination.features.no_hpet_no_acpi_flags:
        # The management layer starts the destination with the machine options these flags
        # stand for (libvirt writes -machine hpet=off/acpi=off for QEMU 9.0 and later).
        notes = tuple(f"the destination is started with the -machine option {o} stands for ({o} is gone in {destination.name})" for o in vm.removed_options)
        dest_vm = replace(vm, removed_options=())
    else:
        dest_vm = vm
    # The destination runs the machine type the source resolved (``q35`` → ``pc-q35-10.2``):
    # a migration keeps it, and a destination without that type refuses to start.
    dest_vm = replace(dest_vm, machine=result.order.machine_type)
    if not refused:
        try:
            dest_order = derive(destination, dest_vm)
        except MigOrderError as exc:
            refused = reason(exc)
    if dest_order is None:
        sides = tuple(Side.SOURCE for _ in result.verdicts)
        sided = tuple(SidedBlocker(b, Side.SOURCE) for b in result.blockers)
        return Crossing(source, destination, result, sides, refused, (), sided, versions, notes)
    verdicts, sides = _live_on(result, dest_order, knowledge)
    return Crossing(
        source,
        destination,
        CheckResult(
            release=result.release,
            vm=result.vm,
            order=result.order,
            verdicts=verdicts,
            kind_cycles=result.kind_cycles,
            section_cycles=result.section_cycles,
            claims=result.claims,
            blockers=result.blockers,
        ),
        sides,
        "",
        _refusals(result.order, dest_order),
        _sided_blockers(result.blockers, tuple(blockers(dest_order))),
        versions,
        notes,
    )


def _live_on(
    result: CheckResult, dest: LoadOrder, knowledge: Knowledge
) -> tuple[tuple[RuleVerdict, ...], tuple[Side, ...]]:
    """The source's verdicts, with an instance whose ``then`` section has no instance of the
    same rule on the destination turned ``not-live`` (decided by the destination)."""
    live = {
        (rule_id, inst.then.idstr, inst.then.instance_id)
        for rule_id, insts in rule_instances(knowledge.rules, dest.registered).items()
        for inst in insts
    }
    verdicts: list[RuleVerdict] = []
    sides: list[Side] = []
    for v in result.verdicts:
        if v.instance is None:
            verdicts.append(v)
            sides.append(Side.BOTH)
            continue
        key = (v.rule.id, v.instance.then.idstr, v.instance.then.instance_id)
        if key in live:
            verdicts.append(v)
            sides.append(Side.SOURCE)
        else:
            verdicts.append(v._replace(verdict=Verdict.NOT_LIVE))
            sides.append(Side.DESTINATION)
    return tuple(verdicts), tuple(sides)


def _refusals(order: LoadOrder, dest: LoadOrder) -> tuple[SectionRefusal, ...]:
    known = {(s.idstr, s.instance_id) for s in dest.registered.sections}
    out: list[SectionRefusal] = []
    seen: set[tuple[str, int]] = set()
    for step in order.steps:
        key = step.key
        if key in known or key in seen:
            continue
        seen.add(key)
        s = step.section
        out.append(
            SectionRefusal(s.label, s.idstr, s.instance_id, UNKNOWN_SECTION.format(idstr=s.idstr, instance=s.instance_id))
        )
    return tuple(out)


def _sided_blockers(source: tuple[Blocker, ...], dest: tuple[Blocker, ...]) -> tuple[SidedBlocker, ...]:
    def key(b: Blocker) -> tuple[str, str]:
        return b.device, b.message

    # The same blocker on both sides only when it is as firm on both (11.1's vIOMMU blocker
    # depends on the host device where 10.0's does not).
    dest_keys = {(key(b), b.conditional) for b in dest}
    out = [SidedBlocker(b, Side.BOTH if (key(b), b.conditional) in dest_keys else Side.SOURCE) for b in source]
    src_keys = {(key(b), b.conditional) for b in source}
    out += [SidedBlocker(b, Side.DESTINATION) for b in dest if (key(b), b.conditional) not in src_keys]
    return tuple(out)
