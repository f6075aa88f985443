"""Everything migorder knows about QEMU: releases, kinds, rules, named scenarios."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ordering.errors import InvalidArgument, UnknownName
from ordering.model.machine import version_tuple
from ordering.model.release import Release
from ordering.model.rule import Kind, Rule


@dataclass(frozen=True)
class Knowledge:
    """The bundled (or a user's) QEMU model: the input every engine starts from."""

    releases: Mapping[str, Release]
    kinds: Mapping[str, Kind]
    rules: tuple[Rule, ...]
    scenarios: Mapping[str, Path]
    root: Path

    @property
    def newest(self) -> Release:
        """The newest bundled release."""
        return max(self.releases.values(), key=lambda r: r.version)

    def release(self, name: str | None) -> Release:
        """The release called ``name`` (``None``: the newest)."""
        if name is None:
            return self.newest
        if name in self.releases:
            return self.releases[name]
        try:
            wanted = version_tuple(name)
        except ValueError:
            wanted = None
        for rel in self.releases.values():
            if rel.version == wanted:
                return rel
        known = ", ".join(sorted(self.releases, key=version_tuple))
        raise UnknownName(f"no bundled QEMU release {name!r}; bundled: {known} (see `migorder releases`)")

    def rule(self, rule_id: str) -> Rule:
        """The rule with id ``rule_id``."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        known = ", ".join(r.id for r in self.rules)
        raise UnknownName(f"no rule {rule_id!r}; rules: {known} (see `migorder rules`)")

    def release_for_machine_type(self, machine_type: str) -> Release | None:
        """The release whose newest machine type is ``machine_type`` (``pc-q35-7.2`` → 7.2)."""
        for rel in sorted(self.releases.values(), key=lambda r: r.version):
            for layout in rel.machines.values():
                if machine_type in layout.aliases[:1]:
                    return rel
        return None

    def with_kind(self, kind: Kind) -> Knowledge:
        """This knowledge with one more device kind, in every release: one call.

        Sections whose VMSD ``kind.vmsds`` names belong to it, and so do the sections the
        ``-device`` types ``kind.devices`` names register (their VMSDs are added to the kind,
        except a VMSD another kind has, and a bridge's ``PCIBUS``).

        Raises
        ------
        InvalidArgument
            The name is taken, the kind names neither a VMSD nor a device type, or a device
            type is not one migorder knows.

        Examples
        --------
        >>> from ordering.model.rule import Kind
        >>> from ordering.sources.models import load_knowledge
        >>> k = load_knowledge().with_kind(Kind("nvme", "an NVMe controller", (), ("nvme",)))
        >>> k.release("10.0").kinds["nvme"].vmsds
        ('nvme',)
        """
        from ordering.conditions import SELECTORS

        if kind.name in self.kinds or kind.name in SELECTORS:
            raise InvalidArgument(f"kind {kind.name!r} exists already; pick another name")
        if not kind.vmsds and not kind.devices:
            raise InvalidArgument(f"kind {kind.name!r}: give the VMSD names or -device types it covers")
        taken = {v for other in self.kinds.values() for v in other.vmsds}
        releases: dict[str, Release] = {}
        full = kind
        for key, rel in self.releases.items():
            vmsds = list(kind.vmsds)
            for name in kind.devices:
                if name not in rel.devices:
                    known = ", ".join(sorted(rel.devices))
                    raise InvalidArgument(f"kind {kind.name!r}: unknown -device type {name!r}; known: {known}")
                for t in rel.devices[name].registers:
                    if t.vmsd not in taken and t.vmsd != "PCIBUS" and t.vmsd not in vmsds:
                        vmsds.append(t.vmsd)
            full = replace(kind, vmsds=tuple(vmsds))
            releases[key] = replace(rel, kinds={**rel.kinds, kind.name: full})
        return replace(self, releases=releases, kinds={**self.kinds, kind.name: full})

    def with_rules(self, *rules: Rule) -> Knowledge:
        """This knowledge with ``rules`` added after the bundled ones: one call.

        Raises
        ------
        InvalidArgument
            A rule's side names no kind or selector migorder knows, its condition is unknown,
            or its id is taken.

        Examples
        --------
        >>> from ordering.model.rule import Consequence, Rule
        >>> from ordering.sources.models import load_knowledge
        >>> mine = Rule("apic-first", "APICs load first", "apic", "vfio", "always",
        ...             Consequence.DEGRADED, "posted interrupts lost", "", ("my mail",))
        >>> len(load_knowledge().with_rules(mine).rules) - len(load_knowledge().rules)
        1
        >>> load_knowledge().with_rules(replace(mine, then="vfio-pci"))
        Traceback (most recent call last):
        ...
        ordering.errors.InvalidArgument: rule 'apic-first': then 'vfio-pci' is not a kind migorder knows (add it with Knowledge.with_kind); known: apic, dma-pci, gicv3, its, msi-pci, pci-bridge, vfio, vfio-container, viommu, virtio-mem, virtio-mem-bitmap
        """
        seen = {r.id for r in self.rules}
        for rule in rules:
            validate_rule(rule, self.kinds)
            if rule.id in seen:
                raise InvalidArgument(f"rule {rule.id!r}: the id is taken; pick another")
            seen.add(rule.id)
        return replace(self, rules=(*self.rules, *rules))


def validate_rule(rule: Rule, kinds: Mapping[str, Kind]) -> None:
    """Raise :class:`InvalidArgument` unless both sides and the condition of ``rule`` are known.

    A rule whose side names no kind would never be live, and so never fail: an error instead.
    """
    from ordering.conditions import CONDITIONS, SELECTORS

    for side in ("first", "then"):
        value = getattr(rule, side)
        if value not in kinds and value not in SELECTORS:
            known = ", ".join(sorted({*kinds, *SELECTORS}))
            raise InvalidArgument(
                f"rule {rule.id!r}: {side} {value!r} is not a kind migorder knows "
                f"(add it with Knowledge.with_kind); known: {known}"
            )
    if rule.condition not in CONDITIONS:
        known = ", ".join(sorted(CONDITIONS))
        raise InvalidArgument(f"rule {rule.id!r}: unknown condition {rule.condition!r}; known: {known}")
