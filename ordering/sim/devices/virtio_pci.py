"""virtio devices with ``iommu_platform=on``: the vrings are mapped through the vIOMMU at load.

Models ``virtio_load`` → ``virtio_init_region_cache`` (hw/virtio/virtio.c): for each queue in
use it maps the descriptor, avail and used rings through ``vdev->dma_as``, which is the
vIOMMU's address space only when VIRTIO_F_IOMMU_PLATFORM is negotiated (the ``-device``
property ``iommu_platform=on``). A failure is ``virtio_error(vdev, "Cannot map desc")`` (then
"Cannot map used" / "Cannot map avail"), and the device is marked broken.

* vIOMMU not loaded: it holds no domain for the device, so a translated (DMA-API) IOVA does
  not resolve (commit 8cdcf3c1e58d: the IOMMU must come first "in case there are devices that
  will request for address translation"). An identity domain (iommu=pt) maps IOVA = GPA and
  passes. Modelling note: an IOVA that happens to be guest RAM would map the wrong memory
  silently instead; the guest knob does not distinguish that case.
* vIOMMU loaded: the translation (``vtd_do_iommu_translate`` → ``vtd_dev_to_context_entry``
  with ``pci_bus_num``; virtio-iommu and smmuv3 compute the stream id from the bus number as
  well) reads the parent bridge's secondary bus number now; a bridge not loaded yet gives bus
  0, the wrong context, and a translation fault.
"""

from __future__ import annotations

from ordering.model.machine import is_on
from ordering.model.rule import Consequence
from ordering.model.section import Section
from ordering.sim.devices import pci_bridge
from ordering.sim.world import Ctx, World

BEHAVIOUR = "hw/virtio/virtio.c: virtio_load → virtio_init_region_cache"
_VIRTIO_VMSDS = frozenset(
    {"virtio-net", "virtio-blk", "virtio-scsi", "virtio-rng", "virtio-balloon", "virtio-mem"}
)


def applies(world: World, section: Section) -> bool:
    """A virtio device's section, with iommu_platform=on, in a VM with a vIOMMU."""
    if section.vmsd not in _VIRTIO_VMSDS or world.viommu() is None:
        return False
    dev = world.device_of(section)
    return dev is not None and is_on(str(dev.spec.props.get("iommu_platform", "off")))


def post_load(ctx: Ctx, section: Section) -> None:
    """Map the rings through the vIOMMU's current state."""
    w = ctx.world
    dev = w.device_of(section)
    viommu = w.viommu()
    if dev is None or viommu is None or not w.guest.iommu:
        return
    g = w.guest.device(dev.qdev_id)
    loaded = ctx.read(
        viommu,
        "IOMMU translation (root/context tables, domains)",
        "guest's tables",
        "no domain for the device (reset)",
    )
    if not loaded:
        if g.dma == "translated":
            ctx.fail(
                Consequence.ERROR,
                "Cannot map desc",
                viommu,
                f"{BEHAVIOUR} → address_space_cache_init on vdev->dma_as",
            )
        return
    bus, bridge = pci_bridge.bus_number(ctx, dev)
    if bridge is not None and bus != pci_bridge.source_bus(w, dev):
        ctx.fail(
            Consequence.ERROR,
            "Cannot map desc",
            bridge,
            f"{BEHAVIOUR} → vtd_do_iommu_translate → vtd_dev_to_context_entry → "
            f"{pci_bridge.BEHAVIOUR}",
        )
