"""virtio-mem: the plugged-block bitmap is the RamDiscardManager's state.

Models ``virtio_mem_rdm_is_populated`` (hw/virtio/virtio-mem.c, 6.1+): memory is populated
only where the bitmap says plugged. On the destination the bitmap starts all zero (every
block discarded) until the section carrying it is loaded (``virtio_mem_post_load_bitmap``):

* ``<path>/virtio-mem-device-early``, an early_setup section sent in the setup phase, when the
  source is 8.0+ and the machine type newer than 7.2 (commit 62f42625d4e2; hw_compat_7_2 sets
  ``x-early-migration=false``);
* otherwise ``<path>/virtio-mem``, at DEFAULT: its MIG_PRI_VIRTIO_MEM VMSD
  ``virtio-mem-device`` is nested inside it and orders nothing (commit 0fd7616e0f11).
"""

from __future__ import annotations

from ordering.model.machine import qemu_size
from ordering.model.section import Section
from ordering.sim.world import Ctx, World
from ordering.topology import PlacedDevice

BEHAVIOUR = "hw/virtio/virtio-mem.c: virtio_mem_post_load_bitmap"
EARLY = "virtio-mem-device-early"


def bitmap_section(world: World, dev: PlacedDevice) -> Section | None:
    """The section that carries ``dev``'s plugged bitmap in this order."""
    own = world.by_owner.get(dev.qdev_id, ())
    early = [s for s in own if s.vmsd == EARLY]
    if early:
        return early[0]
    main = [s for s in own if s.vmsd == "virtio-mem"]
    return main[0] if main else None


def is_populated(ctx: Ctx, dev: PlacedDevice) -> tuple[bool, Section | None]:
    """Whether ``dev``'s plugged memory is populated on the destination now."""
    section = bitmap_section(ctx.world, dev)
    plugged = ctx.world.guest.device(dev.qdev_id).plugged
    if section is None:
        return plugged, None
    loaded = ctx.read(
        section,
        "plugged bitmap (virtio_mem_rdm_is_populated)",
        "plugged" if plugged else "unplugged",
        "all discarded (reset)",
    )
    return loaded and plugged, section


def block_address(world: World, dev: PlacedDevice) -> int:
    """A modelled guest-physical address of ``dev``'s first plugged block.

    Device memory starts 1 GiB-aligned after the RAM above 4 GiB (x86, ``pc_memory_init``) or
    after RAM at 1 GiB (ARM virt); virtio-mem devices follow each other in it.
    """
    vm = world.order.vm
    ram = qemu_size(vm.memory or "128M", "m") or 0  # -m: MiB unless suffixed
    gib = 1 << 30
    if world.arch == "aarch64":
        base = 0x40000000 + ram
    else:
        lowmem = 0x80000000 if ram >= 0xB0000000 else 0xB0000000
        base = (1 << 32) + max(0, ram - min(ram, lowmem))
    base = -(-base // gib) * gib
    # An -object's size is a qdev size property: bytes unless suffixed.
    sizes = {str(o.get("id", "")): qemu_size(str(o.get("size", "0"))) or 0 for o in vm.objects}
    for other in world.order.registered.devices:
        if other.qdev_id == dev.qdev_id:
            break
        if other.kind == "virtio-mem":
            base += sizes.get(str(other.spec.props.get("memdev", "")), 0)
    return base
