"""Judge every live rule instance against one load order, with the evidence.

For a ``first`` section F and a ``then`` section T, in one load order:

* different phases — the phase decides (``guaranteed`` / ``violated``, by ``phase``);
* same phase, different priorities — the priority decides (by ``priority``);
* same phase and priority — only registration order decides: ``tie-fragile`` when F happens
  to be registered first (a command-line reorder, a hot-plug or an unplug/replug breaks it),
  ``violated`` otherwise.

An instance with many firsts (every APIC before one VFIO device) is judged by its worst first:
the one that loads last.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import NamedTuple

from ordering.conditions import RuleInstance, rule_instances
from ordering.model.machine import is_on, machine_type_version
from ordering.model.release import Release
from ordering.model.rule import Rule
from ordering.model.section import Phase, Section, SectionType
from ordering.order import LoadOrder


class Verdict(StrEnum):
    """A rule's status in one VM on one release."""

    GUARANTEED = "guaranteed"
    TIE_FRAGILE = "tie-fragile"
    VIOLATED = "violated"
    NOT_LIVE = "not-live"

    @property
    def severity(self) -> int:
        """Higher is worse (violated 3, tie-fragile 2, guaranteed 1, not-live 0)."""
        return {"not-live": 0, "guaranteed": 1, "tie-fragile": 2, "violated": 3}[self.value]


class Placement(NamedTuple):
    """Where a section loads: phase, position in the load order, priority."""

    section: Section
    phase: Phase
    position: int



class Evidence(NamedTuple):
    """Why a rule instance holds or breaks: the two sections and what decided between them."""

    first: Placement
    then: Placement
    by: str
    """``phase``, ``priority``, ``registration``, ``observed order`` when a stream shows an
    order QEMU's sort would not produce, or ``concurrency`` when the load runs in a thread."""
    violating: int = 0
    """How many firsts load after ``then``."""
    total: int = 1
    """How many firsts the instance has."""

    def describe(self) -> str:
        """One line of evidence in QEMU's terms."""
        f, t = self.first.section, self.then.section
        if self.by == "phase":
            return (
                f"{f.label} loads in the {self.first.phase} phase, {t.label} in the "
                f"{self.then.phase} phase"
            )
        if self.by == "concurrency":
            return (
                f"{t.label}'s config load may come before {f.label}: with multifd device-state transfer "
                "VFIO loads its config from vfio_load_bufs_thread, unordered against the main "
                "thread's FULL sections (x-migration-load-config-after-iter holds it back only on "
                "ARM, from 10.1, for machine types newer than 10.0)"
            )
        if self.by == "observed order":
            return (
                f"in the observed order {f.label} is section #{self.first.position} and "
                f"{t.label} #{self.then.position} ({f.priority.name} vs {t.priority.name}, "
                f"{self.first.phase} vs {self.then.phase} phase)"
            )
        if self.by == "priority":
            return (
                f"{f.label} at {f.priority.name} ({f.priority.value}) vs {t.label} at "
                f"{t.priority.name} ({t.priority.value}) in the {self.then.phase} phase"
            )
        return (
            f"tie at {f.priority.name} ({f.priority.value}) in the {self.then.phase} phase: "
            f"registration order decides, section_id {f.section_id} ({f.label}) vs "
            f"{t.section_id} ({t.label})"
        )


class RuleVerdict(NamedTuple):
    """The verdict on one rule instance (or on a rule with no live instance).

    The evidence is held as its parts (the binding first, the then, the counts) and
    :attr:`evidence` assembles it: a 100k-section VM has 170k verdicts.
    """

    rule: Rule
    verdict: Verdict
    by: str
    instance: RuleInstance | None
    first: Placement | None = None
    """The binding first: the one that loads last."""
    then: Placement | None = None
    violating: int = 0
    total: int = 0

    @property
    def evidence(self) -> Evidence | None:
        """The two sections and what decided between them (None when not live)."""
        if self.first is None or self.then is None:
            return None
        return Evidence(self.first, self.then, self.by, self.violating, self.total)

    @property
    def first_label(self) -> str:
        """The first side: the binding section, or the selector when not live."""
        if self.first is not None:
            return self.first.section.label
        return self.rule.first

    @property
    def then_label(self) -> str:
        """The then side: the section, or the selector when not live."""
        if self.instance is not None:
            return self.instance.then.label
        return self.rule.then


_FULL = SectionType.FULL


def placements(order: LoadOrder) -> dict[int, Placement]:
    """section_id → where its state is loaded (its FULL section; START for iterable-only)."""
    out: dict[int, Placement] = {}
    new, full = tuple.__new__, _FULL
    # Hot loop (100k steps): Placement built as the tuple it is (its fields in order).
    for i, (section, kind, phase) in enumerate(order.steps):
        if kind is full or section.section_id not in out:
            out[section.section_id] = new(Placement, (section, phase, i))
    return out


_VIOLATED, _TIE_FRAGILE, _GUARANTEED = Verdict.VIOLATED, Verdict.TIE_FRAGILE, Verdict.GUARANTEED


CONFIG_LOAD_SIDES = frozenset({"vfio", "dma-pci", "msi-pci"})
"""Rule sides that can be a VFIO device's config load (MSI/MSI-X set-up, whose routes also
depend on the vIOMMU's interrupt remapping and the bus number of the requester id)."""


def vfio_config_unordered(order: LoadOrder) -> set[str]:
    """qdev ids of VFIO devices whose config load runs in a thread, unordered against FULL
    sections: multifd on (``Vm.migration``), a release with the load thread (10.0+), the
    device's x-migration-multifd-transfer not off (hw_compat_9_2 turns it off), and
    x-migration-load-config-after-iter not holding it back (10.1+: AUTO is on only for ARM
    builds; hw_compat_10_0 turns it off)."""
    rel = order.release
    mig = order.vm.migration
    if not is_on(mig.get("multifd", "")) or not rel.features.vfio_multifd_load_thread:
        return set()
    # multifd_device_state_supported: no compression and no mapped-ram, else VFIO keeps its
    # config on the main channel, in priority order.
    if mig.get("multifd-compression", "none") != "none" or is_on(mig.get("mapped-ram", "")):
        return set()
    machine_version = machine_type_version(order.machine_type)
    arch = rel.machine(order.vm.machine)[0].arch
    out: set[str] = set()
    for dev in order.registered.devices:
        if dev.kind != "vfio":
            continue
        props = dev.spec.props
        if config_load_threaded(
            rel,
            arch,
            machine_version,
            transfer=props.get("x-migration-multifd-transfer", "auto"),
            after=props.get("x-migration-load-config-after-iter", "auto"),
        ):
            out.add(dev.qdev_id)
    return out


def config_load_threaded(
    release: Release,
    arch: str,
    machine_version: tuple[int, ...] | None,
    *,
    transfer: str = "auto",
    after: str = "auto",
) -> bool:
    """Whether, with multifd device-state transfer on, a VFIO device's config loads from
    vfio_load_bufs_thread, unordered against the main thread's FULL sections.

    It does on a release with the load thread (10.0+) unless x-migration-multifd-transfer is
    off (hw_compat_9_2 turns AUTO off) or x-migration-load-config-after-iter holds the config
    back (10.1+: AUTO is on only for ARM builds, vfio_arch_wants_loading_config_after_iter;
    hw_compat_10_0 turns it off).

    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> config_load_threaded(k.release("10.2"), "x86_64", None)
    True
    >>> config_load_threaded(k.release("10.2"), "aarch64", None)
    False
    >>> config_load_threaded(k.release("10.2"), "aarch64", (10, 0))
    True
    """
    if not release.features.vfio_multifd_load_thread:
        return False
    if transfer == "off" or (transfer == "auto" and machine_version and machine_version <= (9, 2)):
        return False
    held_back = is_on(after) or (
        after == "auto" and arch == "aarch64" and not (machine_version and machine_version <= (10, 0))
    )
    return not (release.features.vfio_config_load_after_iter and held_back)


def judge(
    order: LoadOrder,
    rules: Iterable[Rule],
    instances: dict[str, list[RuleInstance]] | None = None,
) -> list[RuleVerdict]:
    """Every live instance of ``rules`` in ``order``, judged; one ``not-live`` entry per rule
    with no instance.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order import derive
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-machine q35 -device intel-iommu -device pcie-root-port,id=rp1"
    ...                         " -device virtio-net-pci,bus=rp1,iommu_platform=on,disable-legacy=on")
    >>> v = [v for v in judge(derive(k.release("7.2"), vm), k.rules) if v.rule.id == "pci-bus-before-viommu"][0]
    >>> v.verdict.value, v.by
    ('guaranteed', 'priority')
    """
    where = placements(order)
    rules = list(rules)
    found = instances if instances is not None else rule_instances(rules, order.registered)
    unordered = vfio_config_unordered(order)
    out: list[RuleVerdict] = []
    groups: dict[int, tuple[Placement, int, Phase, int, int, tuple[int, ...]] | None] = {}
    new, where_get = tuple.__new__, where.get
    for rule in rules:
        live = found.get(rule.id, [])
        if not live:
            out.append(RuleVerdict(rule, Verdict.NOT_LIVE, "", None))
            continue
        append = out.append
        for inst in live:
            # Instances share their tuple of firsts (every APIC before each VFIO device), and
            # `found` keeps every tuple alive, so its id is a safe key here.
            firsts = inst.firsts
            key = id(firsts)
            if key in groups:
                group = groups[key]
            else:
                group = groups[key] = _group(where, firsts)
            then_section = inst.then
            then = where_get(then_section.section_id)
            if then is None or group is None:
                continue
            # The group's worst first decides (inline: 170k instances in a 100k-section VM): by
            # phase, else priority, else registration order.
            worst, position, phase, priority, section_id, positions = group
            late = position > then[2]
            if phase != then[1]:
                by = "phase"
                model_says_late = phase.rank > then[1].rank
            elif priority != then_section.priority.value:
                by = "priority"
                model_says_late = priority < then_section.priority.value
            else:
                by = "registration"
                model_says_late = section_id > then_section.section_id
            if late != model_says_late:
                by = "observed order"  # an order QEMU's sort would not produce
            if late:
                verdict = _VIOLATED
                violating = len(positions) - bisect_right(positions, then[2])
            else:
                verdict = _TIE_FRAGILE if by == "registration" else _GUARANTEED
                violating = 0
            if unordered and then_section.kind == "vfio" and then_section.owner in unordered:
                verdict, by, violating = _VIOLATED, "concurrency", len(positions)
            # RuleVerdict built as the tuple it is, its fields in order.
            append(new(RuleVerdict, (rule, verdict, by, inst, worst, then, violating, len(positions))))
    return out


def _group(
    where: dict[int, Placement], firsts: Sequence[Section]
) -> tuple[Placement, int, Phase, int, int, tuple[int, ...]] | None:
    """What judging against ``firsts`` needs, computed once per shared tuple: the worst first
    (the one that loads last), its position, phase, priority value and section_id, and every
    first's position, sorted (None when none of them loads)."""
    placed = [where[s.section_id] for s in firsts if s.section_id in where]
    if not placed:
        return None
    w = max(placed, key=lambda p: p.position)
    return w, w.position, w.phase, w.section.priority.value, w.section.section_id, tuple(sorted(p.position for p in placed))


def worst(verdicts: Iterable[RuleVerdict]) -> Verdict:
    """The worst verdict among ``verdicts`` (not-live when there is none)."""
    return max((v.verdict for v in verdicts), key=lambda v: v.severity, default=Verdict.NOT_LIVE)
