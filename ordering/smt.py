"""Proofs about a QEMU release with z3: does a rule hold for **every** VM, or is there a
counterexample?

A verdict of ``migorder check`` is about one VM. Here the question is universal: can *any* VM
of this release load a ``first`` section after a ``then`` section? Every section either side
can have in the release (every VMSD its kinds' devices and machines register, in every phase
the release can send it in) is paired with every section of the other side. For each pair, z3
searches for registration positions under QEMU's sort (phase, then priority higher first,
then registration order) that load ``first`` after ``then``. Registration order is left free:
``-device`` order, hot-plug and unplug/replug move it. No such pair: PROVED for every VM.
Otherwise the model is the counterexample.

The theorem is about the two sides existing in one VM. It does not use the rule's liveness
condition, so a counterexample may need a VM where the rule is live (the report says which
sections and phases it takes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import z3

from ordering.model.machine import RegistrationTemplate, version_tuple
from ordering.model.priority import PriorityLevel
from ordering.model.release import Release
from ordering.model.rule import Rule
from ordering.model.section import Phase
from ordering.verdict import CONFIG_LOAD_SIDES


@dataclass(frozen=True)
class Candidate:
    """A section one side of a rule may have in a release: its VMSD, priority and phase."""

    vmsd: str
    priority: PriorityLevel
    phase: Phase
    note: str = ""
    """When this candidate exists (``machine type > 7.2``, say), if not always."""


@dataclass(frozen=True)
class Counterexample:
    """Two sections and registration positions under which QEMU loads ``first`` too late."""

    first: Candidate
    then: Candidate
    first_registered: int
    then_registered: int

    def describe(self) -> str:
        """One line in QEMU's terms."""
        f, t = self.first, self.then
        if f.phase != t.phase:
            why = f"{f.vmsd} loads in the {f.phase} phase, {t.vmsd} in the {t.phase} phase"
        elif f.priority.value != t.priority.value:
            why = (
                f"{f.vmsd} at {f.priority.name} ({f.priority.value}) loads after {t.vmsd} at "
                f"{t.priority.name} ({t.priority.value}) in the {t.phase} phase"
            )
        else:
            why = (
                f"tie at {f.priority.name}: {t.vmsd} registered first (position "
                f"{self.then_registered} < {self.first_registered}), e.g. by -device order or a hot-plug"
            )
        notes = "; ".join(n for n in (f.note, t.note) if n)
        return why + (f" [{notes}]" if notes else "")


@dataclass(frozen=True)
class Proof:
    """The answer for one rule on one release."""

    rule: Rule
    release: str
    proved: bool
    pairs: int
    """How many (first, then) section pairs were checked."""
    counterexample: Counterexample | None = None
    assumes: str = ""
    """What the theorem assumes about the migration (empty: nothing)."""
    blocked: str = ""
    """QEMU's blocker when every VM where the rule is live is refused (the rule is vacuous)."""
    requires: str = ""
    """What a live VM must set to escape a conditional blocker (``vfio-pci x-enable-migration=on``)."""
    unknown: str = ""
    """Why z3 gave no answer (its reason, such as ``timeout``): neither proved nor refuted."""

    @property
    def outcome(self) -> str:
        """``vacuous``, ``proved``, ``counterexample`` or ``unknown``."""
        if self.unknown:
            return "unknown"
        if self.blocked or (self.proved and not self.pairs):
            return "vacuous"
        return "proved" if self.proved else "counterexample"

    def describe(self) -> str:
        """``PROVED ...`` or ``COUNTEREXAMPLE ...``."""
        head = f"{self.rule.id} on QEMU {self.release}: "
        if self.unknown:
            return head + f"UNKNOWN: z3 gave no answer ({self.unknown}) after {self.pairs} section pairs"
        if self.blocked:
            return head + f"VACUOUS: QEMU refuses to migrate every VM where it is live ({self.blocked})"
        if self.pairs == 0:
            return head + "VACUOUS: no VM of this release has both sides"
        if self.proved:
            tail = f"; assumes {self.assumes}" if self.assumes else ""
            return head + f"PROVED for every VM ({self.pairs} section pairs, any registration order{tail})"
        assert self.counterexample is not None
        needs = f" (a VM QEMU migrates needs {self.requires})" if self.requires else ""
        return head + f"COUNTEREXAMPLE: {self.counterexample.describe()}{needs}"


def _available(release: Release, t: RegistrationTemplate) -> bool:
    return not (
        (t.since and release.version < version_tuple(t.since))
        or (t.until and release.version >= version_tuple(t.until))
    )


def _templates(release: Release) -> Iterator[tuple[str, str, RegistrationTemplate]]:
    """(owner kind, device type or "", template) for every registration the release has."""
    for layout in release.machines.values():
        for group in (layout.boot, layout.cpu, layout.platform, layout.late, layout.hotplug_cpu):
            for t in group:
                yield "", "", t
    for dtype in release.devices.values():
        if dtype.since and release.version < version_tuple(dtype.since):
            continue
        for t in dtype.registers:
            yield dtype.kind, dtype.name, t


def _candidate(release: Release, t: RegistrationTemplate, note: str = "") -> Candidate:
    phase = Phase.SETUP if release.is_early_setup(t.vmsd) else Phase.COMPLETE
    if t.when and not note:
        note = f"when {t.when}"
    return Candidate(t.vmsd, release.priority_of(t.vmsd), phase, note)


def candidates(release: Release, selector: str) -> list[Candidate]:
    """Every section ``selector`` (a kind or a computed selector) may have in ``release``.

    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> [(c.vmsd, c.phase.value) for c in candidates(k.release("10.0"), "virtio-mem-bitmap")]
    [('virtio-mem-device-early', 'setup'), ('virtio-mem', 'complete')]
    """
    out: dict[tuple[str, Phase], Candidate] = {}

    def add(c: Candidate) -> None:
        out.setdefault((c.vmsd, c.phase), c)

    for kind_of_owner, _device, t in _templates(release):
        if not _available(release, t) or not t.sent or not t.full:
            continue
        blocker = release.unmigratable.get(t.vmsd)
        if blocker is not None and not blocker.when:
            continue  # a VM with it never migrates: no order to judge
        if selector == "virtio-mem-bitmap":
            if t.vmsd == "virtio-mem-device-early" and release.is_early_setup(t.vmsd):
                add(_candidate(release, t, "machine types newer than 7.2"))
            elif t.vmsd == "virtio-mem":
                early = release.features.early_setup
                add(_candidate(release, t, "machine types 7.2 and older" if early else ""))
        elif selector in ("dma-pci", "msi-pci"):
            # The devices ordering.conditions.translates_at_load / sets_up_msi_at_load can pick:
            # VFIO (both), and virtio devices (with iommu_platform=on) for dma-pci.
            dtype = release.devices.get(_device)
            vfio = dtype is not None and dtype.kind == "vfio"
            virtio = dtype is not None and dtype.name.startswith("virtio-") and dtype.dma
            if (
                dtype is not None
                and dtype.bus == "pci"
                and kind_of_owner not in ("pci-bridge", "viommu")
                and (vfio or (virtio and selector == "dma-pci"))
                and t.vmsd != "PCIBUS"
                and not release.is_early_setup(t.vmsd)
            ):
                note = "with iommu_platform=on" if virtio else ""
                add(_candidate(release, t, note))
        else:
            kind = release.kinds.get(selector)
            if kind is not None and t.vmsd in kind.vmsds:
                add(_candidate(release, t))
    return sorted(out.values(), key=lambda c: (c.phase.rank, -c.priority.value, c.vmsd))


def _loads_after(first: Candidate, then: Candidate) -> tuple[z3.Solver, z3.ArithRef, z3.ArithRef]:
    reg_first, reg_then = z3.Ints("registered_first registered_then")
    pf, pt = z3.IntVal(first.phase.rank), z3.IntVal(then.phase.rank)
    qf, qt = z3.IntVal(first.priority.value), z3.IntVal(then.priority.value)
    solver = z3.Solver()
    solver.add(reg_first >= 0, reg_then >= 0, reg_first != reg_then)
    # QEMU's sort key: phase, then priority (higher first), then registration order.
    solver.add(
        z3.Or(
            pf > pt,
            z3.And(pf == pt, qf < qt),
            z3.And(pf == pt, qf == qt, reg_first > reg_then),
        )
    )
    return solver, reg_first, reg_then


LIVE_NEEDS: dict[str, tuple[str, str]] = {
    "vfio-maps-through-viommu": ("vfio-pci", "viommu"),
}
"""Conditions that are live only in VMs with a ``-device`` type and a kind together; a release
that always blocks that combination makes the rule vacuous there."""


DEFAULT_TIMEOUT_MS = 10_000
"""z3's time for one pair of sections; past it the answer is UNKNOWN, never PROVED."""


def prove(release: Release, rule: Rule, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Proof:
    """Whether ``rule`` holds on every VM of ``release`` (or a counterexample).

    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> prove(k.release("10.2"), k.rule("apic-before-vfio")).proved
    True
    >>> print(prove(k.release("10.0"), k.rule("apic-before-vfio")).describe())  # doctest: +ELLIPSIS
    apic-before-vfio on QEMU 10.0: COUNTEREXAMPLE: tie at MIG_PRI_DEFAULT: vfio registered first ...
    """
    needs = LIVE_NEEDS.get(rule.condition)
    requires: list[str] = []
    if needs is not None:
        device, kind = needs
        for b in release.blockers:
            if b.device != device or (b.with_kind and b.with_kind != kind):
                continue
            if not b.when and not b.conditional:
                return Proof(rule, release.name, True, 0, blocked=b.message.replace("{name}", device))
            if b.when.count("!=") == 1 and "," not in b.when:
                requires.append(f"{device} {b.when.replace('!=', '=')}")
            elif b.conditional:
                requires.append(b.conditional)
    firsts = candidates(release, rule.first)
    thens = candidates(release, rule.then)
    pairs = 0
    for f in firsts:
        for t in thens:
            if f.vmsd == t.vmsd:
                continue
            pairs += 1
            solver, reg_first, reg_then = _loads_after(f, t)
            solver.set("timeout", max(1, timeout_ms))
            answer = solver.check()
            if answer == z3.unknown:
                reason = solver.reason_unknown() or "unknown"
                return Proof(rule, release.name, False, pairs, unknown=reason, requires="; ".join(requires))
            if answer == z3.sat:
                model = solver.model()
                return Proof(
                    rule,
                    release.name,
                    False,
                    pairs,
                    Counterexample(
                        f, t, model.eval(reg_first).as_long(), model.eval(reg_then).as_long()
                    ),
                    requires="; ".join(requires),
                )
    assumes = ""
    if rule.then in CONFIG_LOAD_SIDES and release.features.vfio_multifd_load_thread:
        assumes = (
            "no multifd device-state transfer (with it VFIO's config loads from a thread, "
            "unordered; migorder check --multifd)"
        )
    return Proof(rule, release.name, True, pairs, assumes=assumes)


def prove_all(
    releases: Iterable[Release], rules: Iterable[Rule], *, timeout_ms: int = DEFAULT_TIMEOUT_MS
) -> list[Proof]:
    """:func:`prove` for every rule on every release (each release once, in the order given)."""
    rules = list(rules)
    seen: dict[str, Release] = {}
    for rel in releases:
        seen.setdefault(rel.name, rel)
    return [prove(rel, rule, timeout_ms=timeout_ms) for rel in seen.values() for rule in rules]
