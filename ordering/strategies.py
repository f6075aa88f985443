"""Public hypothesis strategies: VMs, load orders and rule bases for your own property tests.

The same strategies drive migorder's own cross-validation of rules and device behaviours.
Use them to test a rule you are proposing, or a QEMU change, against many VMs and orders:

>>> from hypothesis import given
>>> from ordering import strategies as ms
>>> from ordering.order import derive
>>> from ordering.sources.models import load_knowledge
>>> k = load_knowledge()
>>> @given(ms.vms(), ms.release_names())
... def test_the_vm_always_derives(vm, release):
...     assert derive(k.release(release), vm).steps
>>> test_the_vm_always_derives()

Strategies
----------
``vms()``, ``x86_vms()``, ``arm_vms()``
    VMs (q35 or arm virt) with vIOMMUs, root ports, VFIO, virtio and virtio-mem devices in
    random command-line order, hot-plugged vCPUs, and simulator guest state (``Vm.guest``).
``release_names()``
    Names of the bundled QEMU releases.
``reorderings(order)``
    A derived order unchanged, with one FULL section moved, or with the FULL sections
    permuted: what an observed or rewritten stream may show.
``rule_bases(kinds)``
    Extra must-load-before rules between kinds, to property-test cycle detection and the
    verdict engine with rules of your own.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from ordering.model.rule import Consequence, Rule
from ordering.model.section import LoadStep, SectionType
from ordering.model.vm import HotplugStep, Vm
from ordering.order import LoadOrder
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge

__all__ = ["arm_vms", "release_names", "reorderings", "rule_bases", "vms", "x86_vms"]


def release_names() -> st.SearchStrategy[str]:
    """Names of the bundled QEMU releases (``"7.2"`` ... ``"11.1"``)."""
    return st.sampled_from(sorted(load_knowledge().releases))

def _vfio_migration_on_7_2(vm: Vm) -> Vm:
    """VFIO migration on in every release: 7.2 needs its experimental ``x-enable-migration=on``
    (a property later binaries refuse); from 8.0 ``enable-migration`` defaults to auto."""
    on = tuple(
        replace(d, props={**d.props, "x-enable-migration": "on"}) if d.driver == "vfio-pci" else d
        for d in vm.devices
    )
    return replace(vm, devices_for={"7.2": on})


@st.composite
def x86_vms(draw: st.DrawFn) -> Vm:
    """q35 VMs: optional intel-iommu, root ports, VFIO, virtio (iommu_platform), virtio-mem."""
    args = ["-nodefaults", "-machine", draw(st.sampled_from(["q35", "pc-q35-7.2"])), "-m", "4G,maxmem=20G,slots=2",
            "-object", "memory-backend-ram,id=mem0,size=4G"]
    cpus = draw(st.integers(1, 3))
    args += ["-smp", f"{cpus},maxcpus=4"]
    iommu = draw(st.booleans())
    if iommu:
        args += ["-device", f"intel-iommu,intremap={draw(st.sampled_from(['on', 'off']))}"]
    ports = draw(st.integers(0, 2))
    for i in range(ports):
        args += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1}"]
    buses = [f",bus=rp{i}" for i in range(ports)] + [""]
    ids: list[str] = []
    for j in range(draw(st.integers(0, 2))):
        bus = draw(st.sampled_from(buses))
        if bus:
            buses.remove(bus)
        args += ["-device", f"vfio-pci,host=0000:3b:00.{j},id=nic{j}{bus}"]
        ids.append(f"nic{j}")
    if draw(st.booleans()):
        bus = draw(st.sampled_from(buses))
        if bus:
            buses.remove(bus)
        plat = draw(st.sampled_from(["on", "off"]))
        args += ["-device", f"virtio-net-pci,iommu_platform={plat},disable-legacy=on,id=net0{bus}"]
        ids.append("net0")
    if draw(st.booleans()):
        bus = draw(st.sampled_from(buses))
        args += ["-device", f"virtio-mem-pci,memdev=mem0,id=vmem0,requested-size=1G{bus}"]
        ids.append("vmem0")
    vm = _vfio_migration_on_7_2(parse_command_line(args))
    hot = tuple(HotplugStep(cpu=c) for c in range(cpus, cpus + draw(st.integers(0, 1))))
    all_cpus = list(range(cpus + len(hot)))
    guest: dict[str, object] = {
        "x2apic": draw(st.booleans()),
        "msi-mode": draw(st.sampled_from(["physical", "logical"])),
        "device": {
            i: {
                "msi-targets": draw(st.lists(st.sampled_from(all_cpus), min_size=1, max_size=2)),
                "dma": draw(st.sampled_from(["translated", "identity"])),
            }
            for i in ids
            if i != "vmem0"
        },
    }
    if draw(st.booleans()):
        guest["iommu"] = draw(st.booleans())
    return replace(vm, hotplug=hot, guest=guest)


@st.composite
def arm_vms(draw: st.DrawFn) -> Vm:
    """virt VMs: GICv3 with or without an ITS, smmuv3 or virtio-iommu, VFIO and virtio."""
    its = draw(st.sampled_from(["on", "off"]))
    iommu = draw(st.sampled_from(["none", "smmuv3", "virtio"]))
    machine = f"virt,gic-version=3,its={its}" + (",iommu=smmuv3" if iommu == "smmuv3" else "")
    args = ["-nodefaults", "-machine", machine, "-smp", "2", "-m", "2G"]
    if iommu == "virtio":
        args += ["-device", "virtio-iommu-pci"]
    if draw(st.booleans()):
        args += ["-device", "pcie-root-port,id=rp0,chassis=1"]
        bus = draw(st.sampled_from([",bus=rp0", ""]))
    else:
        bus = ""
    args += ["-device", f"vfio-pci,host=0000:01:00.0,id=nic0{bus}"]
    if draw(st.booleans()):
        args += ["-device", "virtio-net-pci,iommu_platform=on,disable-legacy=on,id=net0"]
    vm = _vfio_migration_on_7_2(parse_command_line(args))
    guest = {"lpis": draw(st.booleans()), "device": {"nic0": {"msi": draw(st.booleans())}}}
    return replace(vm, guest=guest)


def vms() -> st.SearchStrategy[Vm]:
    """x86 or ARM VMs with guest state."""
    return st.one_of(x86_vms(), arm_vms())


@st.composite
def reorderings(draw: st.DrawFn, order: LoadOrder) -> LoadOrder:
    """A derived order, one FULL section moved elsewhere, or the FULL sections permuted."""
    full = [i for i, s in enumerate(order.steps) if s.type is SectionType.FULL]
    how = draw(st.sampled_from(["derived", "move", "permute"]))
    steps = list(order.steps)
    if how == "move" and len(full) > 1:
        a = draw(st.sampled_from(full))
        step = steps.pop(a)
        b = draw(st.integers(0, len(steps)))
        phase = steps[b].phase if b < len(steps) else steps[-1].phase
        steps.insert(b, LoadStep(step.section, step.type, phase))
    elif how == "permute":
        perm = draw(st.permutations([steps[i] for i in full]))
        for i, s in zip(full, perm, strict=True):
            steps[i] = LoadStep(s.section, s.type, steps[i].phase)
    return replace(order, steps=tuple(steps))


@st.composite
def rule_bases(draw: st.DrawFn, kinds: tuple[str, ...] = ("viommu", "pci-bridge", "apic", "vfio", "virtio-mem", "gicv3", "its")) -> tuple[Rule, ...]:
    """One to three extra rules ``first → then`` between ``kinds``, live whenever both exist."""
    count = draw(st.integers(1, 3))
    out: list[Rule] = []
    for i in range(count):
        first = draw(st.sampled_from(kinds))
        then = draw(st.sampled_from([k for k in kinds if k != first]))
        out.append(
            Rule(
                id=f"proposed-{i}",
                title=f"{first} before {then} (proposed)",
                first=first,
                then=then,
                condition="always",
                consequence=draw(st.sampled_from(list(Consequence))),
                symptom="(proposed rule)",
                mechanism="",
                provenance=("ordering.strategies.rule_bases",),
            )
        )
    return tuple(out)
