"""PCI bridges and root ports: the secondary bus number lives in the bridge's config space.

Models ``pci_bus_num()`` (hw/pci/pci.c, QEMU 2.12 .. 11.1): the number of a secondary bus is
the ``PCI_SECONDARY_BUS`` byte of its parent bridge's config space, which the guest programs
and the bridge's own section restores (``vmstate_pci_device`` inside e.g.
``pcie-root-port``). Before that section is loaded the byte holds its reset value, 0, so a
device behind the bridge seems to sit on bus 0. The root bus is always 0. Commit
9d6b9db19c4b gave the bridge VMSDs MIG_PRI_PCI_BUS for this reason.
"""

from __future__ import annotations

from ordering.model.section import Section
from ordering.sim.world import Ctx, World
from ordering.topology import PlacedDevice

BEHAVIOUR = "hw/pci/pci.c: pci_bus_num (PCI_SECONDARY_BUS of the parent bridge)"


def source_bus(world: World, dev: PlacedDevice) -> int:
    """The bus number ``dev`` sits on in the source guest."""
    return world.guest.bus.get(dev.bridges[-1], 0) if dev.bridges else 0


def bus_number(ctx: Ctx, dev: PlacedDevice) -> tuple[int, Section | None]:
    """``pci_bus_num(dev's bus)`` on the destination now, and the bridge section it read."""
    if not dev.bridges:
        return 0, None
    parent = dev.bridges[-1]
    section = ctx.world.state_section(parent)
    if section is None:
        return source_bus(ctx.world, dev), None
    want = ctx.world.guest.bus.get(parent, 0)
    loaded = ctx.read(section, "PCI_SECONDARY_BUS", f"{want:#04x}", "0x00 (reset)")
    return (want if loaded else 0), section


def devfn(dev: PlacedDevice) -> int:
    """``PCI_DEVFN(slot, function)``."""
    return ((dev.slot or 0) << 3) | (dev.function or 0)
