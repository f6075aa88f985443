"""The destination during a load: which sections are loaded, and what behaviours read.

A device's destination state is its source state once its section is loaded, and its reset
value before. Behaviours ask :class:`Ctx` for another device's current state; every such read
is recorded in the step, with whether that device was loaded yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from ordering.conditions import bypasses_viommu
from ordering.model.release import Release
from ordering.model.rule import Consequence
from ordering.model.section import Section
from ordering.order import LoadOrder
from ordering.sim.guest import GuestState
from ordering.sim.trace import Failure, Read
from ordering.topology import PlacedDevice

BRIDGE_PCIBUS = "PCIBUS"


@dataclass(frozen=True)
class World:
    """Indexes of one VM as the destination sees it (pure lookups, no state)."""

    order: LoadOrder
    release: Release
    """The destination release (whose behaviours run)."""
    guest: GuestState
    arch: str
    devices: dict[str, PlacedDevice]
    by_owner: dict[str, tuple[Section, ...]]

    @classmethod
    def build(cls, release: Release, order: LoadOrder, guest: GuestState) -> World:
        """Index ``order``'s registered sections and devices."""
        by_owner: dict[str, list[Section]] = {}
        for s in order.registered.sections:
            if s.sent:
                by_owner.setdefault(s.owner, []).append(s)
        arch = order.release.machine(order.vm.machine)[0].arch
        return cls(
            order,
            release,
            guest,
            arch,
            {d.qdev_id: d for d in order.registered.devices},
            {k: tuple(v) for k, v in by_owner.items()},
        )

    def device_of(self, section: Section) -> PlacedDevice | None:
        """The placed device that registered ``section`` (None for machine sections)."""
        return self.devices.get(section.owner)

    def state_section(self, qdev_id: str) -> Section | None:
        """A device's own state section: FULL, not its PCIBUS, not an early_setup one."""
        for s in self.by_owner.get(qdev_id, ()):
            if s.full and s.vmsd != BRIDGE_PCIBUS and not s.early_setup:
                return s
        return None

    def kind(self, kind: str) -> tuple[Section, ...]:
        """Every sent section of ``kind``."""
        return tuple(s for ss in self.by_owner.values() for s in ss if s.kind == kind)

    def vmsd(self, name: str) -> Section | None:
        """The first sent section whose VMSD is ``name``."""
        for ss in self.by_owner.values():
            for s in ss:
                if s.vmsd == name:
                    return s
        return None

    def apic(self, cpu: int) -> Section | None:
        """The ``apic`` section of vCPU ``cpu``."""
        for s in self.by_owner.get(f"cpu{cpu}", ()):
            if s.kind == "apic":
                return s
        return None

    def viommu(self) -> Section | None:
        """The vIOMMU's section (the first, when a VM has several); None when the VM's devices
        bypass it (``default-bus-bypass-iommu=on``: ordering.conditions.bypasses_viommu)."""
        found = self.kind("viommu")
        if not found or bypasses_viommu(self.order.registered):
            return None
        return found[0]

    def translated(self, dev: PlacedDevice) -> bool:
        """Whether ``dev``'s DMA goes through the vIOMMU: a DMA-capable PCI device, unless the
        root complex bypasses the vIOMMU (hw/pci/pci.c: pci_bus_bypass_iommu)."""
        if bypasses_viommu(self.order.registered):
            return False
        return dev.is_pci and dev.type.dma and dev.kind not in ("pci-bridge", "viommu")


class Ctx:
    """The mutable run state of one simulation (private to the engine)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.loaded: set[int] = set()
        self.reads: list[Read] = []
        self.failures: list[Failure] = []
        self.current: Section | None = None

    def read(self, section: Section, what: str, loaded_value: str, reset_value: str) -> bool:
        """Read ``what`` from ``section``'s device; record it; return whether it was loaded."""
        loaded = section.section_id in self.loaded
        self.reads.append(Read(what, section, loaded, loaded_value if loaded else reset_value))
        return loaded

    def fail(
        self,
        consequence: Consequence,
        message: str,
        needs: Section,
        mechanism: str,
        *,
        qemu_prints: bool = True,
        fatal: bool = False,
    ) -> None:
        """Record a failure of the section being loaded."""
        assert self.current is not None
        self.failures.append(
            Failure(consequence, message, self.current, needs, mechanism, qemu_prints, fatal)
        )
