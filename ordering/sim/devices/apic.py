"""The local APIC as KVM sees it when VFIO asks whether an MSI has a single destination.

QEMU: the KVM APIC's post-load pushes the LAPIC registers into KVM at once
(hw/i386/kvm/apic.c: ``kvm_apic_post_load`` → ``kvm_apic_put``; commit 78d6a05d2f69). Before
that, KVM holds the reset state of ``apic_reset_common`` (hw/intc/apic_common.c): xAPIC mode,
APIC id = the initial APIC id, LDR = 0, DFR flat.

KVM: ``kvm_intr_is_single_vcpu`` (arch/x86/kvm/irq.c; ``kvm_apic_match_dest`` in
arch/x86/kvm/lapic.c) counts the LAPICs an MSI destination matches:

* physical mode: an x2APIC-mode LAPIC matches its x2APIC id; an xAPIC-mode LAPIC matches its
  8-bit id (so a reset LAPIC still matches an id below 0xff);
* logical mode: x2APIC cluster — same cluster (LDR bits 31:16) and a common bit in 15:0;
  xAPIC flat — a common bit in LDR bits 31:24. A reset LDR (0) matches nothing.

Exactly one match lets ``vmx_pi_update_irte`` post the interrupt; otherwise the IRTE stays in
remapped mode (commit d943cef76090).
"""

from __future__ import annotations

from ordering.model.section import Section
from ordering.sim.world import Ctx

BEHAVIOUR = "KVM arch/x86/kvm/irq.c: kvm_intr_is_single_vcpu (LAPIC state pushed by kvm_apic_post_load)"


def logical_id(apic_id: int, x2apic: bool, cpu: int) -> int:
    """The LDR the guest's LAPIC holds once loaded.

    >>> hex(logical_id(0x13, True, 5))
    '0x10008'
    >>> hex(logical_id(2, False, 2))
    '0x4000000'
    """
    if x2apic:
        return ((apic_id >> 4) << 16) | (1 << (apic_id & 0xF))
    return (1 << cpu) << 24 if cpu < 8 else 0


def _matches(mode: str, dest: int, lapic_x2: bool, apic_id: int, ldr: int) -> bool:
    if mode == "physical":
        return dest == apic_id if lapic_x2 else (dest <= 0xFE and dest == (apic_id & 0xFF))
    if lapic_x2:
        return (ldr >> 16) == (dest >> 16) and bool(ldr & dest & 0xFFFF)
    return bool((ldr >> 24) & (dest & 0xFF)) if dest <= 0xFF else False


def single_vcpu(ctx: Ctx, target: int) -> tuple[bool, Section | None]:
    """Whether an MSI aimed at vCPU ``target`` matches exactly one LAPIC now.

    Returns the answer and the target's ``apic`` section (None when the VM has none).
    """
    w = ctx.world
    topo = w.order.vm.topology
    g = w.guest
    t_id = topo.apic_id(target)
    if g.msi_mode == "physical":
        dest = t_id
    elif g.x2apic:
        dest = logical_id(t_id, True, target)
    else:
        dest = logical_id(t_id, False, target) >> 24  # the 8-bit MDA of xAPIC flat mode
    matches = 0
    target_section = w.apic(target)
    for cpu in g.cpus:
        section = w.apic(cpu)
        apic_id = topo.apic_id(cpu)
        loaded_text = (
            f"id {apic_id:#x}, {'x2APIC' if g.x2apic else 'xAPIC'}, "
            f"LDR {logical_id(apic_id, g.x2apic, cpu):#x}"
        )
        if section is None:
            loaded = True
        else:
            if cpu != target:
                loaded = section.section_id in ctx.loaded
            else:
                loaded = ctx.read(section, "LAPIC (id, mode, LDR)", loaded_text, f"id {apic_id:#x}, xAPIC, LDR 0x0 (reset)")
        x2 = g.x2apic if loaded else False
        ldr = logical_id(apic_id, g.x2apic, cpu) if loaded else 0
        if _matches(g.msi_mode, dest, x2, apic_id, ldr):
            matches += 1
    return matches == 1, target_section
