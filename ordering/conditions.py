"""When a rule is live in a VM, and on which concrete sections.

A rule names two selectors (kinds or the computed selectors below) and a condition. The
condition turns a VM's registered sections into rule *instances*: one ``then`` section and
every ``first`` section that must load before it. No instance means the rule is not live.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ordering.model.machine import is_on
from ordering.model.rule import Rule
from ordering.model.section import Section
from ordering.order import Registered
from ordering.topology import PlacedDevice

SELECTORS: dict[str, str] = {
    "dma-pci": "the sections of PCI devices whose load translates DMA through a vIOMMU: VFIO "
    "devices (their maps are replayed through it) and virtio devices with iommu_platform=on "
    "(VIRTIO_F_IOMMU_PLATFORM; without it vdev->dma_as is plain memory)",
    "msi-pci": "the sections of VFIO devices, whose config load sets up MSI/MSI-X with "
    "VFIO_DEVICE_SET_IRQS (emulated devices' MSI routes are built when the VM starts)",
    "virtio-mem-bitmap": "per virtio-mem device, the section that carries its plugged bitmap: "
    "'virtio-mem-device-early' when sent, else 'virtio-mem'",
}


class RuleInstance(NamedTuple):
    """One live instance of a rule: ``then`` and every section that must load before it."""

    rule: Rule
    firsts: tuple[Section, ...]
    then: Section
    because: str
    """Why the rule is live here; ``{owner}`` stands for the then section's device (one string
    shared by the thousands of instances of a large VM, formatted only when shown)."""

    @property
    def why(self) -> str:
        """Why the rule is live on this instance, in words."""
        return self.because.replace("{owner}", self.then.owner)


def bypasses_viommu(reg: Registered) -> bool:
    """Whether the VM's devices bypass its vIOMMU: ``-machine ...,default-bus-bypass-iommu=on``
    makes the default root complex's host bridge bypass it, for every device on it and behind
    its bridges (hw/pci/pci.c: pci_bus_bypass_iommu); migorder models no other root complex."""
    return is_on(reg.vm.machine_options.get("default-bus-bypass-iommu", ""))


def translates_at_load(dev: PlacedDevice) -> bool:
    """Whether loading ``dev`` goes through a vIOMMU: VFIO (its DMA maps are replayed through
    it) or virtio with ``iommu_platform=on`` (virtio_bus_device_plugged sets dma_as to the
    vIOMMU's address space only with VIRTIO_F_IOMMU_PLATFORM)."""
    if dev.kind == "vfio":
        return True
    # The type, not the name given: an alias (virtio-net) is resolved to its type first.
    return dev.type.name.startswith("virtio-") and is_on(dev.spec.props.get("iommu_platform", ""))


def sets_up_msi_at_load(dev: PlacedDevice) -> bool:
    """Whether loading ``dev`` sets up MSI/MSI-X in the kernel: VFIO's config load
    (vfio_pci_load_config -> VFIO_DEVICE_SET_IRQS); emulated devices' routes come at VM start."""
    return dev.kind == "vfio" and dev.type.msi


class _View:
    """Indexes of one VM's registered sections for the conditions."""

    def __init__(self, reg: Registered) -> None:
        self.reg = reg
        self.devices = {d.qdev_id: d for d in reg.devices}
        by_kind: dict[str, list[Section]] = {}
        for s in reg.sections:
            if s.sent:
                same = by_kind.get(s.kind)
                if same is None:
                    by_kind[s.kind] = [s]
                else:
                    same.append(s)
        self.by_kind = by_kind
        self._by_owner: dict[str, list[Section]] | None = None
        self.arch = reg.release.machine(reg.vm.machine)[0].arch
        self.bypass = bypasses_viommu(reg)
        self._device_sections: dict[str, list[Section]] = {}

    @property
    def by_owner(self) -> dict[str, list[Section]]:
        """The sent sections of each owner (a qdev id, ``machine``, ``cpuN``), built on first use."""
        if self._by_owner is None:
            by_owner: defaultdict[str, list[Section]] = defaultdict(list)
            for s in self.reg.sections:
                if s.sent:
                    by_owner[s.owner].append(s)
            self._by_owner = dict(by_owner)
        return self._by_owner

    def kind(self, kind: str) -> list[Section]:
        return self.by_kind.get(kind, [])

    def device_sections(self, capability: str) -> list[Section]:
        """Sections of PCI devices (bridges and vIOMMUs excluded) that ``translate`` DMA through a
        vIOMMU at load, or set up ``msi`` at load, in registration order."""
        cached = self._device_sections.get(capability)
        if cached is not None:
            return cached
        if capability == "translate" and self.bypass:
            self._device_sections[capability] = []
            return []
        test = translates_at_load if capability == "translate" else sets_up_msi_at_load
        out: list[Section] = []
        devices = self.devices
        # The test depends only on the device type and, for virtio, iommu_platform: ask it
        # once per (type, value), not once per section of a 100k-section VM.
        tested: dict[tuple[int, str], bool] = {}
        for s in self.reg.sections:
            # The device's own load: not its secondary bus, not an early_setup section
            # (virtio-mem's early section carries the bitmap, no rings).
            if not s.sent or not s.full or s.early_setup or s.vmsd == "PCIBUS":
                continue
            dev = devices.get(s.owner)
            if dev is None or dev.slot is None:
                continue  # not a device (machine, vCPU), or not on a PCI bus
            key = (id(dev.type), dev.spec.props.get("iommu_platform", ""))
            passes = tested.get(key)
            if passes is None:
                # a bridge or vIOMMU itself never passes
                passes = tested[key] = dev.type.kind not in ("pci-bridge", "viommu") and test(dev)
            if passes:
                out.append(s)
        self._device_sections[capability] = out
        return out


def _always(rule: Rule, v: _View) -> Iterable[RuleInstance]:
    firsts = tuple(v.kind(rule.first))
    if not firsts:
        return
    for then in v.kind(rule.then):
        yield RuleInstance(rule, firsts, then, f"the VM has {rule.first} and {rule.then}")


def _bridge_above_translated(rule: Rule, v: _View) -> Iterable[RuleInstance]:
    viommus = v.kind("viommu")
    if not viommus:
        return
    if v.bypass:
        return
    above: set[str] = set()
    seen: set[int] = set()
    behind: list[str] = []
    # Every DMA-capable device: vtd_post_load switches each device's address space (used by
    # its runtime DMA) from the context entry its bus number selects, translated at load or not.
    for dev in v.reg.devices:
        bridges, dtype = dev.bridges, dev.type
        if bridges and dev.slot is not None and dtype.dma and dtype.kind not in ("pci-bridge", "viommu"):
            if id(bridges) not in seen:  # a bus's devices share its tuple of bridges
                seen.add(id(bridges))
                above.update(bridges)
            behind.append(dev.qdev_id)
    firsts = tuple(s for s in v.kind("pci-bridge") if s.owner in above)
    if not firsts:
        return
    shown = ", ".join(heapq.nsmallest(4, behind)) + (f" and {len(behind) - 4} more" if len(behind) > 4 else "")
    for then in viommus:
        yield RuleInstance(
            rule, firsts, then, f"DMA devices behind bridges are translated by {then.idstr}: {shown}"
        )


def _bridge_above_this_device(rule: Rule, v: _View) -> Iterable[RuleInstance]:
    if not v.kind("viommu"):
        return
    bridge_sections: dict[str, list[Section]] = {}
    for s in v.kind("pci-bridge"):
        bridge_sections.setdefault(s.owner, []).append(s)
    # Devices behind the same bus share its tuple of bridges, and so one tuple of firsts:
    # judged once (ordering.verdict). Keyed by the tuple's id: v.devices keeps it alive.
    shared: dict[int, tuple[tuple[Section, ...], str]] = {}
    devices, new = v.devices, tuple.__new__
    for then in v.device_sections("translate"):
        bridges = devices[then.owner].bridges
        if not bridges:
            continue
        known = shared.get(id(bridges))
        if known is None:
            known = shared[id(bridges)] = (
                tuple(s for b in bridges for s in bridge_sections.get(b, [])),
                f"{{owner}} is behind {', '.join(bridges)} and DMA is translated",
            )
        if known[0]:
            yield new(RuleInstance, (rule, known[0], then, known[1]))


def _translated_by_viommu(rule: Rule, v: _View) -> Iterable[RuleInstance]:
    viommus = v.kind("viommu")
    if not viommus:
        return
    shared = tuple(viommus)
    owners = {s.owner for s in viommus}
    for then in v.device_sections("translate"):
        # One shared tuple for every device that is not itself a vIOMMU: judged once.
        firsts = shared if then.owner not in owners else tuple(s for s in viommus if s.owner != then.owner)
        if firsts:
            yield tuple.__new__(RuleInstance, (rule, firsts, then, "{owner} does DMA through the vIOMMU"))


def _vfio_maps_through_viommu(rule: Rule, v: _View) -> Iterable[RuleInstance]:
    viommus = v.kind("viommu")
    vfio = v.kind("vfio")
    if not viommus or not vfio or v.bypass:
        return
    firsts: list[Section] = []
    for dev in v.reg.devices:
        if dev.type.kind != "virtio-mem":
            continue
        own = v.by_owner.get(dev.qdev_id, [])
        early = [s for s in own if s.vmsd == "virtio-mem-device-early"]
        firsts.extend(early or [s for s in own if s.vmsd == "virtio-mem"])
    if not firsts:
        return
    for then in viommus:
        yield RuleInstance(
            rule,
            tuple(firsts),
            then,
            f"{len(vfio)} VFIO device(s) map through {then.idstr} and virtio-mem is present",
        )


def _vfio_msi_x86(rule: Rule, v: _View) -> Iterable[RuleInstance]:
    if v.arch != "x86_64":
        return
    apics = tuple(v.kind("apic"))
    if not apics:
        return
    for then in v.kind("vfio"):
        if then.full:
            yield RuleInstance(rule, apics, then, f"{then.idstr} sets up MSI/MSI-X vectors at config load")


def _msi_through_its(rule: Rule, v: _View) -> Iterable[RuleInstance]:
    if v.arch != "aarch64":
        return
    its = tuple(v.kind("its"))
    if not its:
        return
    for then in v.device_sections("msi"):
        yield RuleInstance(rule, its, then, "{owner}'s MSIs are translated by the ITS")


CONDITIONS: dict[str, Callable[[Rule, _View], Iterable[RuleInstance]]] = {
    "always": _always,
    "bridge-above-translated-device": _bridge_above_translated,
    "bridge-above-this-translated-device": _bridge_above_this_device,
    "translated-by-viommu": _translated_by_viommu,
    "vfio-maps-through-viommu": _vfio_maps_through_viommu,
    "vfio-msi-x86": _vfio_msi_x86,
    "msi-through-its": _msi_through_its,
}


def rule_instances(rules: Iterable[Rule], reg: Registered) -> dict[str, list[RuleInstance]]:
    """Every live instance of every rule in the VM ``reg`` registered (by rule id).

    A rule with an ``arch`` is live only on machines of that architecture. A rule naming a
    kind the release does not know raises :class:`~ordering.errors.InvalidArgument`: it would
    never be live, so never fail.
    """
    from ordering.model.knowledge import validate_rule

    view = _View(reg)
    out: dict[str, list[RuleInstance]] = {}
    for rule in rules:
        validate_rule(rule, reg.release.kinds)
        if rule.arch and rule.arch != view.arch:
            out[rule.id] = []
            continue
        out[rule.id] = list(CONDITIONS[rule.condition](rule, view))
    return out
