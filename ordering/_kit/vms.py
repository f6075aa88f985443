"""VM strategies: q35 and arm virt VMs with the devices the rules are about, and guest state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from hypothesis import strategies as st

from ordering.errors import InvalidArgument, MigOrderError
from ordering.model.vm import HotplugStep, Vm
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge

X86_DEVICES = frozenset({"intel-iommu", "pcie-root-port", "vfio-pci", "virtio-net-pci", "virtio-mem-pci"})
"""The ``-device`` types :func:`x86_vms` can be asked to hold."""
ARM_DEVICES = frozenset({"virtio-iommu-pci", "pcie-root-port", "vfio-pci", "virtio-net-pci"})
"""The ``-device`` types :func:`arm_vms` can be asked to hold."""


def release_names() -> st.SearchStrategy[str]:
    """Names of the bundled QEMU releases, oldest first (shrinks to the oldest).

    >>> from hypothesis import find
    >>> find(release_names(), lambda r: r.startswith("10"))
    '10.0'
    """
    from ordering.model.machine import version_tuple

    return st.sampled_from(sorted(load_knowledge().releases, key=version_tuple))


def vfio_migration_on(vm: Vm) -> Vm:
    """``vm`` with VFIO migration on in every release.

    QEMU 7.2 migrates a VFIO device only with its experimental ``x-enable-migration=on``
    (a property later binaries refuse); from 8.0 ``enable-migration`` defaults to auto. The
    7.2 spelling goes in :attr:`Vm.devices_for`, so one VM serves every release.

    >>> vm = vfio_migration_on(parse_command_line("-machine q35 -device vfio-pci,host=01:00.0"))
    >>> vm.devices_for["7.2"][0].props["x-enable-migration"], "x-enable-migration" in vm.devices[0].props
    ('on', False)
    """
    on = tuple(
        replace(d, props={**d.props, "x-enable-migration": "on"}) if d.driver == "vfio-pci" else d
        for d in vm.devices
    )
    return replace(vm, devices_for={**vm.devices_for, "7.2": on})


def _check_required(devices: Iterable[str], known: frozenset[str], what: str) -> frozenset[str]:
    wanted = frozenset(devices)
    unknown = wanted - known
    if unknown:
        raise InvalidArgument(
            f"{what} cannot hold {', '.join(sorted(unknown))}; it can hold {', '.join(sorted(known))}"
        )
    return wanted


@st.composite
def _x86(draw: st.DrawFn, machines: tuple[str, ...], need: frozenset[str]) -> Vm:
    machine = draw(st.sampled_from(machines))
    args = ["-nodefaults", "-machine", machine, "-m", "4G,maxmem=20G,slots=2",
            "-object", "memory-backend-ram,id=mem0,size=4G"]
    cpus = draw(st.integers(1, 3))
    args += ["-smp", f"{cpus},maxcpus=4"]
    if "intel-iommu" in need or draw(st.booleans()):
        args += ["-device", f"intel-iommu,intremap={draw(st.sampled_from(['on', 'off']))}"]
    ports = draw(st.integers(1 if "pcie-root-port" in need else 0, 2))
    for i in range(ports):
        args += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1}"]
    buses = [f",bus=rp{i}" for i in range(ports)] + [""]
    ids: list[str] = []
    for j in range(draw(st.integers(1 if "vfio-pci" in need else 0, 2))):
        bus = draw(st.sampled_from(buses))
        if bus:
            buses.remove(bus)
        args += ["-device", f"vfio-pci,host=0000:3b:00.{j},id=nic{j}{bus}"]
        ids.append(f"nic{j}")
    if "virtio-net-pci" in need or draw(st.booleans()):
        bus = draw(st.sampled_from(buses))
        if bus:
            buses.remove(bus)
        plat = draw(st.sampled_from(["on", "off"]))
        args += ["-device", f"virtio-net-pci,iommu_platform={plat},disable-legacy=on,id=net0{bus}"]
        ids.append("net0")
    if "virtio-mem-pci" in need or draw(st.booleans()):
        bus = draw(st.sampled_from(buses))
        args += ["-device", f"virtio-mem-pci,memdev=mem0,id=vmem0,requested-size=1G{bus}"]
        ids.append("vmem0")
    vm = vfio_migration_on(parse_command_line(args))
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


def x86_vms(*, machine: str | None = None, devices: Iterable[str] = ()) -> st.SearchStrategy[Vm]:
    """q35 VMs: optional intel-iommu, root ports, VFIO, virtio-net (iommu_platform), virtio-mem.

    Parameters
    ----------
    machine : str, optional
        A q35 machine type (``"q35"``, ``"pc-q35-7.2"``); default: either.
    devices : iterable of str
        ``-device`` types every VM holds (from :data:`X86_DEVICES`).

    >>> from hypothesis import find
    >>> vm = find(x86_vms(devices=["vfio-pci"]), lambda vm: True)
    >>> [d.driver for d in vm.devices]
    ['vfio-pci']
    """
    need = _check_required(devices, X86_DEVICES, "x86_vms")
    if machine is not None and not machine.startswith(("q35", "pc-q35-")):
        raise InvalidArgument(f"x86_vms: machine {machine!r} is not a q35 machine type (q35, pc-q35-R)")
    return _x86((machine,) if machine else ("q35", "pc-q35-7.2"), need)


@st.composite
def _arm(draw: st.DrawFn, need: frozenset[str]) -> Vm:
    its = draw(st.sampled_from(["on", "off"]))
    iommu = "virtio" if "virtio-iommu-pci" in need else draw(st.sampled_from(["none", "smmuv3", "virtio"]))
    machine = f"virt,gic-version=3,its={its}" + (",iommu=smmuv3" if iommu == "smmuv3" else "")
    args = ["-nodefaults", "-machine", machine, "-smp", "2", "-m", "2G"]
    if iommu == "virtio":
        args += ["-device", "virtio-iommu-pci"]
    if "pcie-root-port" in need or draw(st.booleans()):
        args += ["-device", "pcie-root-port,id=rp0,chassis=1"]
        bus = draw(st.sampled_from([",bus=rp0", ""]))
    else:
        bus = ""
    args += ["-device", f"vfio-pci,host=0000:01:00.0,id=nic0{bus}"]
    if "virtio-net-pci" in need or draw(st.booleans()):
        args += ["-device", "virtio-net-pci,iommu_platform=on,disable-legacy=on,id=net0"]
    vm = vfio_migration_on(parse_command_line(args))
    guest = {"lpis": draw(st.booleans()), "device": {"nic0": {"msi": draw(st.booleans())}}}
    return replace(vm, guest=guest)


def arm_vms(*, devices: Iterable[str] = ()) -> st.SearchStrategy[Vm]:
    """arm virt VMs: GICv3 with or without an ITS, smmuv3 or virtio-iommu, VFIO and virtio.

    >>> from hypothesis import find
    >>> find(arm_vms(devices=["virtio-iommu-pci"]), lambda vm: True).devices[0].driver
    'virtio-iommu-pci'
    """
    return _arm(_check_required(devices, ARM_DEVICES, "arm_vms"))


def _derives(release: str, vm: Vm) -> bool:
    from ordering.order import derive

    k = load_knowledge()
    try:
        derive(k.release(release), vm)
    except MigOrderError:
        return False
    return True


def vms(
    *, machine: str | None = None, release: str | None = None, devices: Iterable[str] = ()
) -> st.SearchStrategy[Vm]:
    """VMs with guest state: q35 or arm virt, holding ``devices``, that ``release`` accepts.

    Parameters
    ----------
    machine : str, optional
        ``"q35"`` (or a ``pc-q35-R`` type) or ``"virt"``; default: either.
    release : str, optional
        A bundled release every VM must build on (QEMU would start it); default: any VM the
        strategies make, which every bundled release accepts.
    devices : iterable of str
        ``-device`` types every VM holds (``"vfio-pci"``, ``"intel-iommu"`` ...).

    Raises
    ------
    InvalidArgument
        No VM of ``machine`` can hold one of ``devices``.
    UnknownName
        ``release`` is not bundled.

    Examples
    --------
    >>> from hypothesis import find
    >>> vm = find(vms(machine="q35", release="10.0", devices=["intel-iommu", "vfio-pci"]),
    ...           lambda vm: True)
    >>> [d.driver for d in vm.devices]
    ['intel-iommu', 'vfio-pci']
    """
    wanted = frozenset(devices)
    if machine is None:
        choices = []
        if wanted <= X86_DEVICES:
            choices.append(x86_vms(devices=wanted))
        if wanted <= ARM_DEVICES:
            choices.append(arm_vms(devices=wanted))
        if not choices:
            raise InvalidArgument(
                f"vms: no machine holds all of {', '.join(sorted(wanted))}: q35 can hold "
                f"{', '.join(sorted(X86_DEVICES))}; virt can hold {', '.join(sorted(ARM_DEVICES))}"
            )
        strategy: st.SearchStrategy[Vm] = st.one_of(*choices)
    elif machine == "virt":
        strategy = arm_vms(devices=wanted)
    else:
        strategy = x86_vms(machine=machine, devices=wanted)
    if release is None:
        return strategy
    name = load_knowledge().release(release).name
    return strategy.filter(lambda vm: _derives(name, vm))
