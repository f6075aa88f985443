"""GICv3 redistributors and the ITS: restoring the ITS tables needs the redistributors.

Models ``kvm_arm_its_post_load`` (hw/intc/arm_gicv3_its_kvm.c): it writes IIDR, CBASER,
CREADR/CWRITER and BASER, then ``KVM_DEV_ARM_ITS_RESTORE_TABLES`` (group
``KVM_DEV_ARM_VGIC_GRP_CTRL`` = 4, attr 2), then CTLR, every call with ``&error_abort``. The
kernel maps the restored LPIs onto redistributors, using GICR_PROPBASER/PENDBASER and
GICR_CTLR.EnableLPIs from the ``arm_gicv3`` section (``vmstate_gicv3``, restored in KVM by
``kvm_arm_gicv3_put``); at reset they are 0. Linux's arm-vgic-its.rst: "The GICV3 must be
restored before the ITS". A failing ioctl aborts the destination. The errno is not confirmed,
and the in-kernel ITS exists only with KVM (TCG's ITS has no restore step).

A guest that never enabled LPIs (``[guest] lpis = false``) has no tables to restore.
"""

from __future__ import annotations

from ordering.model.rule import Consequence
from ordering.model.section import Section
from ordering.sim.world import Ctx, World

BEHAVIOUR = "hw/intc/arm_gicv3_its_kvm.c: kvm_arm_its_post_load → KVM_DEV_ARM_ITS_RESTORE_TABLES"


def applies(world: World, section: Section) -> bool:
    """The ITS's own section."""
    return section.kind == "its"


def post_load(ctx: Ctx, section: Section) -> None:
    """Restore the ITS tables: abort when the redistributors are still at reset."""
    w = ctx.world
    if not w.guest.kvm or not w.guest.lpis:
        return
    gic = w.kind("gicv3")
    if not gic:
        return
    loaded = ctx.read(
        gic[0],
        "GICR_PROPBASER/PENDBASER, GICR_CTLR.EnableLPIs",
        "set by the guest, EnableLPIs=1",
        "0, EnableLPIs=0 (reset)",
    )
    if not loaded:
        ctx.fail(
            Consequence.ERROR,
            "Unexpected error in kvm_device_access(): KVM_SET_DEVICE_ATTR failed: Group 4 "
            "attr 0x0000000000000002 (KVM_DEV_ARM_ITS_RESTORE_TABLES; errno not confirmed); "
            "&error_abort aborts the destination",
            gic[0],
            BEHAVIOUR,
            fatal=True,
        )
