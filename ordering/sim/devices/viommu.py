"""The vIOMMU's post-load: context lookups by bus number, then the replay to VFIO.

intel-iommu — ``vtd_post_load`` (hw/i386/intel_iommu.c) calls
``vtd_switch_address_space_all``: per device, ``vtd_dev_to_context_entry(s, pci_bus_num(bus),
devfn)`` decides its address space (commit 8cdcf3c1e58d). With DMA remapping on, switching
to the IOMMU region makes VFIO's listener (``vfio_listener_region_add``) replay every mapping
(``memory_region_iommu_replay`` → ``vfio_iommu_map_notify``), which translates each target
and refuses one that a RamDiscardManager reports discarded ("iommu map to discarded memory
(e.g., unplugged via virtio-mem): %" HWADDR_PRIx, the translated address; commit
0fd7616e0f11).

virtio-iommu — ``virtio_iommu_post_load`` (hw/virtio/virtio-iommu.c) rebuilds its endpoints
(``reconstruct_endpoints``: the endpoint id is the BDF, found through ``pci_bus_num``) and
switches address spaces, with the same replay to VFIO.

smmuv3 — ``vmstate_smmuv3`` (hw/arm/smmuv3.c) has no post-load walk: stream ids are
computed at translation time, and the SMMUv3 refuses MAP notifiers, so there is no replay to
VFIO. Its load reads nothing.

Only a VFIO device that migrates (it registered its ``<path>/vfio`` section) counts: without
one, QEMU blocks the migration and nothing is loaded.

A guest that never enabled remapping (``[guest] iommu = false``) leaves DMAR off:
``vtd_switch_address_space`` then looks nothing up.
"""

from __future__ import annotations

from ordering.model.rule import Consequence
from ordering.model.section import Section
from ordering.sim.devices import pci_bridge, virtio_mem
from ordering.sim.world import Ctx, World

POST_LOAD = {
    "iommu-intel": "hw/i386/intel_iommu.c: vtd_post_load → vtd_switch_address_space_all",
    "virtio-iommu": "hw/virtio/virtio-iommu.c: virtio_iommu_post_load → reconstruct_endpoints",
    "smmuv3": "hw/arm/smmuv3.c: vmstate_smmuv3 (no post_load walk)",
}
BEHAVIOUR = "vIOMMU post_load"


def applies(world: World, section: Section) -> bool:
    """The vIOMMU's own section."""
    return section.kind == "viommu" and section.vmsd in POST_LOAD


def behaviour(section: Section) -> str:
    """The function modelled for this vIOMMU."""
    return POST_LOAD[section.vmsd]


def xlat_function(world: World) -> str:
    """Where the destination release refuses a discarded target (DOSSIER §4.3)."""
    v = world.release.version
    if v < (8, 0):
        return "hw/vfio/common.c: vfio_iommu_map_notify → vfio_get_xlat_addr"
    if v < (10, 1):
        return "hw/vfio/common.c: vfio_iommu_map_notify → system/memory.c: memory_get_xlat_addr"
    return "hw/vfio/listener.c: vfio_iommu_map_notify → system/memory.c: memory_translate_iotlb"


def post_load(ctx: Ctx, section: Section) -> None:
    """Look every translated device up by (bus number, devfn), then replay to VFIO."""
    w = ctx.world
    if section.vmsd == "smmuv3" or not w.guest.iommu:
        return
    mech = behaviour(section)
    for dev in w.order.registered.devices:
        if not w.translated(dev) or dev.qdev_id == section.owner:
            continue
        bus, bridge = pci_bridge.bus_number(ctx, dev)
        want = pci_bridge.source_bus(w, dev)
        if bridge is not None and bus != want:
            fn = pci_bridge.devfn(dev)
            what = (
                f"vtd_dev_to_context_entry(bus {bus:#04x}, devfn {fn:#04x}) reads the context "
                f"entry of bus {bus} instead of bus {want}"
                if section.vmsd == "iommu-intel"
                else f"reconstruct_endpoints looks endpoint {want:02x}:{fn >> 3:02x}.{fn & 7} "
                f"up on bus {bus}"
            )
            ctx.fail(
                Consequence.SILENT,
                f"[no message] {what}: {dev.qdev_id}'s DMA address space is set up from the "
                "wrong entry (DMA faults or goes to the wrong place after migration)",
                bridge,
                f"{mech} → {pci_bridge.BEHAVIOUR}",
                qemu_prints=False,
            )
            continue
        g = w.guest.device(dev.qdev_id)
        if dev.kind != "vfio" or g.dma != "translated" or not g.map_into:
            continue
        if not any(s.kind == "vfio" for s in w.by_owner.get(dev.qdev_id, ())):
            continue  # not migratable (7.2 without x-enable-migration=on): QEMU blocks migration
        vmem = w.devices[g.map_into]
        populated, bitmap = virtio_mem.is_populated(ctx, vmem)
        if not populated and bitmap is not None:
            addr = virtio_mem.block_address(w, vmem)
            ctx.fail(
                Consequence.ERROR,
                f"iommu map to discarded memory (e.g., unplugged via virtio-mem): {addr:x}",
                bitmap,
                f"{mech} → {xlat_function(w)}",
            )
