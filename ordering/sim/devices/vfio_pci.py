"""vfio-pci's config load: MSI/MSI-X vectors are set up in the kernel at once.

Models ``vfio_pci_load_config`` (hw/vfio/pci.c, reached from ``vfio_load_state`` in the
device's FULL section ``<path>/vfio``, commit d329f5032e17): it restores config space and
MSI/MSI-X, and ``vfio_msi(x)_enable`` → ``vfio_enable_vectors`` issues
``VFIO_DEVICE_SET_IRQS``, adding a KVM MSI route and an irq-bypass producer per vector.

* x86 with KVM and posted interrupts: ``kvm_arch_irq_bypass_add_producer`` →
  ``vmx_pi_update_irte`` asks ``kvm_intr_is_single_vcpu`` (see :mod:`.apic`); not single →
  remapped instead of posted mode, no message (commit d943cef76090).
* ARM with an ITS and KVM: the MSI route and irq bypass resolve the device's MSI through the
  in-kernel ITS; before ``kvm_arm_its_post_load`` restored its tables the ITS has no mapping for
  the device, and the kernel call fails (d329f5032e17: "an error might occur in the kernel";
  the exact errno is not confirmed).

DMA mappings are not made here: VFIO's listener exists from realize, and the vIOMMU's
post-load replays mappings into it (see :mod:`.viommu`).
"""

from __future__ import annotations

from ordering.model.rule import Consequence
from ordering.model.section import Section
from ordering.sim.devices import apic
from ordering.sim.world import Ctx, World

BEHAVIOUR = "hw/vfio/pci.c: vfio_pci_load_config → vfio_msix_enable → VFIO_DEVICE_SET_IRQS"


def applies(world: World, section: Section) -> bool:
    """A VFIO device's FULL section (the config)."""
    return section.kind == "vfio" and section.full


def post_load(ctx: Ctx, section: Section) -> None:
    """Set up the vectors: posted or remapped on x86, through the ITS on ARM."""
    w = ctx.world
    dev = w.device_of(section)
    if dev is None:
        return
    g = w.guest.device(dev.qdev_id)
    if not g.msi or not w.guest.kvm:
        return
    if w.arch == "x86_64":
        if not w.guest.posted:
            return
        for target in dict.fromkeys(g.msi_targets):
            single, needs = apic.single_vcpu(ctx, target)
            if not single and needs is not None:
                ctx.fail(
                    Consequence.DEGRADED,
                    f"[no message] kvm_intr_is_single_vcpu: the MSI of {dev.qdev_id} aimed at "
                    f"vCPU {target} (APIC id {w.order.vm.topology.apic_id(target):#x}) does not "
                    "match exactly one loaded LAPIC; the IRTE uses remapped instead of posted "
                    "mode (higher interrupt latency, more VM exits)",
                    needs,
                    f"{BEHAVIOUR} → kvm_arch_irq_bypass_add_producer → vmx_pi_update_irte → "
                    f"{apic.BEHAVIOUR}",
                    qemu_prints=False,
                )
    elif w.arch == "aarch64":
        its = w.kind("its")
        if not its:
            return
        loaded = ctx.read(its[0], "ITS device/event mapping", "restored", "no tables (reset)")
        if not loaded:
            ctx.fail(
                Consequence.ERROR,
                f"VFIO_DEVICE_SET_IRQS / KVM MSI routing of {dev.qdev_id} through an ITS whose "
                "tables are not restored fails in the kernel ('an error might occur in the "
                "kernel', commit d329f5032e17)",
                its[0],
                f"{BEHAVIOUR} → KVM irqfd/irq bypass → vgic ITS translation",
            )
