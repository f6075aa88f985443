"""Families of VMs for the theorems in ``proofs/``: device counts and hot-plug steps symbolic.

Each role takes its sections' VMSD, phase and priority from the **source** release (the source
decides the order: :func:`ordering.smt.candidates`), and says where it registers: at machine
init, by ``-device``, or by a hot-plug step (and whether a hot-plug step may unplug and replug
it). VFIO's config load is threaded when the family migrates with multifd and
:func:`ordering.verdict.config_load_threaded` says so for the release, arch and machine type.
"""

from __future__ import annotations

from typing import NamedTuple

from ordering.engines.smt_space import Family, Role
from ordering.model.release import Release
from ordering.smt import candidates
from ordering.verdict import config_load_threaded


class Place(NamedTuple):
    """Where a role registers: stage, the count it belongs to, chained, mobile."""

    stage: int
    counter: str
    chain: bool = False
    mobile: bool = False
    slot: int = 0


COLD_VCPU = Place(0, "cold vCPUs", chain=True, slot=1)
HOT_VCPU = Place(3, "hot-plugged vCPUs", mobile=True)
COLD_PCI = Place(1, "{what} (-device)", mobile=True)
HOT_PCI = Place(3, "{what} (hot-plugged)", mobile=True)
BOARD = Place(0, "{what} (board)", chain=True, slot=8)


def roles(
    release: Release, selector: str, side: str, where: tuple[Place, ...], what: str, *, threaded: bool = False
) -> tuple[Role, ...]:
    """A role per section ``selector`` may have on ``release``, at each place in ``where``.

    >>> from ordering.sources.models import load_knowledge
    >>> r = roles(load_knowledge().release("10.2"), "apic", "first", (COLD_VCPU,), "vCPUs")
    >>> [(x.vmsd, x.priority_name, x.count) for x in r]
    [('apic', 'MIG_PRI_APIC', 'cold vCPUs')]
    """
    out: list[Role] = []
    for c in candidates(release, selector):
        for p in where:
            stage_name = ("machine init", "-device", "machine done", "hot-plug")[p.stage]
            out.append(
                Role(
                    f"{c.vmsd} ({stage_name})",
                    side,
                    c.vmsd,
                    c.phase,
                    c.priority.value,
                    c.priority.name,
                    p.stage,
                    p.counter.format(what=what),
                    chain=p.chain,
                    slot=p.slot,
                    mobile=p.mobile,
                    threaded=threaded,
                )
            )
    return tuple(out)


def _route(source: Release, destination: Release | None) -> str:
    if destination is None or destination.name == source.name:
        return f"QEMU {source.name}"
    return f"a QEMU {source.name} source to a {destination.name} destination"


def x86_vfio(
    source: Release,
    destination: Release | None = None,
    *,
    multifd: bool = False,
    machine_version: tuple[int, int] | None = None,
) -> Family:
    """q35 VMs with any number of cold and hot-plugged vCPUs, VFIO devices (cold or
    hot-plugged behind root ports) and hot-plug steps: LAPICs first, VFIO configs then."""
    threaded = multifd and config_load_threaded(source, "x86_64", machine_version)
    rs = (
        *roles(source, "apic", "first", (COLD_VCPU, HOT_VCPU), "vCPUs"),
        *roles(source, "vfio", "then", (COLD_PCI, HOT_PCI), "VFIO devices", threaded=threaded),
    )
    name = f"q35 VMs of {_route(source, destination)}" + (" with multifd" if multifd else " (no multifd)")
    if machine_version:
        name += f" (machine type {machine_version[0]}.{machine_version[1]})"
    return Family(name, rs, minimum=(("cold vCPUs", 1),))


def arm_virt(
    source: Release,
    first: str,
    then: str,
    *,
    multifd: bool = False,
    machine_version: tuple[int, int] | None = None,
) -> Family:
    """virt VMs (GICv3, ITS) with any number of PCI devices (cold or hot-plugged behind root
    ports) and hot-plug steps, for a rule between two of: gicv3, its, msi-pci."""
    threaded = multifd and config_load_threaded(source, "aarch64", machine_version)

    def side(selector: str, which: str) -> tuple[Role, ...]:
        if selector in ("gicv3", "its"):
            return roles(source, selector, which, (BOARD._replace(slot=8 if selector == "gicv3" else 9),), selector)
        return roles(source, selector, which, (COLD_PCI, HOT_PCI), "PCI devices", threaded=threaded and which == "then")

    name = f"virt VMs of {_route(source, None)}" + (" with multifd" if multifd else " (no multifd)")
    if machine_version:
        name += f" (machine type virt-{machine_version[0]}.{machine_version[1]})"
    return Family(name, (*side(first, "first"), *side(then, "then")))


def pci_viommu(source: Release, first: str, then: str) -> Family:
    """q35/virt VMs with any number of bridges and root ports, vIOMMUs and DMA devices behind
    them, cold or hot-plugged, and any hot-plug steps."""

    def side(selector: str, which: str) -> tuple[Role, ...]:
        if selector == "viommu":  # -device intel-iommu / virtio-iommu-pci, or virt's iommu=smmuv3
            return roles(source, selector, which, (COLD_PCI._replace(mobile=False), BOARD), "vIOMMUs")
        what = "bridges" if selector == "pci-bridge" else "DMA devices"
        return roles(source, selector, which, (COLD_PCI, HOT_PCI), what)

    return Family(f"PCI VMs of QEMU {source.name}", (*side(first, "first"), *side(then, "then")))
