"""Guest-state knobs: what the guest did with its devices before migration.

A failure appears only when guest state makes it real, so the simulator reads the scenario's
``[guest]`` table. Every knob has a default that describes a guest that uses its devices
normally; :attr:`GuestState.defaulted` lists the knobs that took their default.

```toml
[guest]
kvm = true            # KVM acceleration (posted interrupts, the in-kernel ITS). Default: true
                      # unless the command line says -accel tcg (the parser drops -enable-kvm).
iommu = true          # the guest enabled DMA remapping in the vIOMMU. Default: true when the
                      # VM has a vIOMMU.
x2apic = true         # LAPICs in x2APIC mode. Default: true with intel-iommu,intremap=on or
                      # maxcpus > 255 (Linux enables x2APIC when interrupt remapping exists).
msi-mode = "logical"  # MSI destination mode: "physical" or "logical". Default: "logical" in
                      # x2APIC mode (Linux x2apic_cluster), "physical" in xAPIC mode (64-bit
                      # Linux uses physical flat).
posted = true         # the host posts interrupts (VT-d PI). Default: same as kvm.
lpis = true           # ARM: the guest enabled LPIs (GICR_CTLR.EnableLPIs) and mapped devices in
                      # the ITS. Default: true when the VM has an ITS.

[guest.bus]           # secondary bus number the guest programmed into each bridge (by qdev id).
rp0 = 1               # Default: depth-first enumeration in slot order, 1, 2, 3 ...

[guest.device.nic0]   # per device (qdev id)
msi = true            # MSI/MSI-X enabled. Default: true for devices that have MSI.
msi-targets = [0]     # vCPU indexes its vectors target. Default: [0].
dma = "translated"    # "translated" (a DMA-API domain) or "identity" (iommu=pt). Default:
                      # "translated".
map-into = "vmem0"    # VFIO: one of its IOMMU mappings points into this virtio-mem device's
                      # plugged memory ("" for none). Default: the first virtio-mem device
                      # with plugged memory.
[guest.device.vmem0]
plugged = true        # virtio-mem: the guest has plugged blocks. Default: requested-size != 0.
```

``iommu_platform`` is not a guest knob: it is the ``-device`` property
(``virtio-net-pci,iommu_platform=on``), read from the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ordering.errors import ScenarioError
from ordering.model.machine import qemu_size
from ordering.model.vm import Vm
from ordering.order import Registered
from ordering.topology import PlacedDevice

_TOP = frozenset({"kvm", "iommu", "x2apic", "msi-mode", "posted", "lpis", "bus", "device"})
_DEVICE = frozenset({"msi", "msi-targets", "dma", "map-into", "plugged"})


@dataclass(frozen=True)
class DeviceGuest:
    """What the guest did with one device."""

    msi: bool
    msi_targets: tuple[int, ...]
    dma: str
    map_into: str
    plugged: bool


@dataclass(frozen=True)
class GuestState:
    """The guest's state, knobs and defaults resolved against one VM."""

    kvm: bool
    iommu: bool
    x2apic: bool
    msi_mode: str
    posted: bool
    lpis: bool
    bus: Mapping[str, int]
    devices: Mapping[str, DeviceGuest]
    cpus: tuple[int, ...]
    """vCPU indexes present on the destination (started and hot-plugged)."""
    defaulted: tuple[str, ...] = field(default=())

    def device(self, qdev_id: str) -> DeviceGuest:
        """The knobs of ``qdev_id`` (defaults for a device the table does not name)."""
        return self.devices.get(qdev_id, DeviceGuest(False, (0,), "translated", "", False))


def _truthy(value: str) -> bool:
    return value.lower() in ("on", "true", "yes", "1")


def _bool(table: Mapping[str, object], key: str, where: str) -> bool | None:
    if key not in table:
        return None
    v = table[key]
    if not isinstance(v, bool):
        raise ScenarioError(where, f"[guest] {key}: expected true or false, got {v!r}")
    return v


def default_bus_numbers(devices: tuple[PlacedDevice, ...]) -> dict[str, int]:
    """Secondary bus numbers a guest enumerating depth-first in slot order programs.

    >>> default_bus_numbers(())
    {}
    """
    bridges = [d for d in devices if d.type.provides_bus and d.is_pci]
    children: dict[str, list[PlacedDevice]] = {}
    for b in bridges:
        parent = b.bridges[-1] if b.bridges else ""
        children.setdefault(parent, []).append(b)
    out: dict[str, int] = {}

    def walk(parent: str) -> None:
        for b in sorted(children.get(parent, []), key=lambda d: (d.slot or 0, d.function or 0)):
            out[b.qdev_id] = len(out) + 1
            walk(b.qdev_id)

    walk("")
    return out


def guest_state(vm: Vm, registered: Registered) -> GuestState:
    """Resolve ``vm.guest`` against the devices the VM registered.

    Raises
    ------
    ScenarioError
        An unknown knob, a wrong type, or a knob naming a device the VM does not have.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order import derive
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-machine q35 -device intel-iommu,intremap=on"
    ...                         " -device pcie-root-port,id=rp0 -device vfio-pci,id=nic0,bus=rp0")
    >>> g = guest_state(vm, derive(k.release("10.2"), vm).registered)
    >>> g.x2apic, g.msi_mode, dict(g.bus), g.device("nic0").msi_targets
    (True, 'logical', {'rp0': 1}, (0,))
    """
    where = f"{vm.guest_source or vm.source or vm.name} [guest]"
    raw = dict(vm.guest)
    unknown = sorted(set(raw) - _TOP)
    if unknown:
        raise ScenarioError(where, f"unknown knob(s) {', '.join(unknown)}; known: {', '.join(sorted(_TOP))}")
    defaulted: list[str] = []
    devices = {d.qdev_id: d for d in registered.devices}
    kinds = {s.kind for s in registered.sections if s.sent}
    has_viommu = "viommu" in kinds
    has_its = "its" in kinds

    def pick(key: str, default: bool) -> bool:
        v = _bool(raw, key, where)
        if v is None:
            defaulted.append(key)
            return default
        return v

    kvm = pick("kvm", vm.machine_options.get("accel", "kvm") != "tcg")
    iommu = pick("iommu", has_viommu)
    intremap = any(
        d.spec.driver == "intel-iommu" and _truthy(str(d.spec.props.get("intremap", "off")))
        for d in registered.devices
    )
    x2apic = pick("x2apic", intremap or vm.topology.maxcpus > 255)
    mode = raw.get("msi-mode")
    if mode is None:
        defaulted.append("msi-mode")
        mode = "logical" if x2apic else "physical"
    if mode not in ("physical", "logical"):
        raise ScenarioError(where, f"msi-mode: expected 'physical' or 'logical', got {mode!r}")
    posted = pick("posted", kvm)
    lpis = pick("lpis", has_its)

    bus = default_bus_numbers(registered.devices)
    given_bus = raw.get("bus", {})
    if not isinstance(given_bus, Mapping):
        raise ScenarioError(where, "bus: expected a table of bridge id = bus number")
    if not given_bus:
        defaulted.append("bus")
    for k, v in given_bus.items():
        if k not in bus:
            raise ScenarioError(where, f"bus.{k}: no bridge with that id; bridges: {', '.join(bus) or 'none'}")
        if not isinstance(v, int) or not 0 < v < 256:
            raise ScenarioError(where, f"bus.{k}: expected a bus number 1..255, got {v!r}")
        bus[k] = v

    cpus = tuple(range(vm.topology.cpus)) + tuple(h.cpu for h in vm.hotplug if h.cpu is not None)
    given_dev = raw.get("device", {})
    if not isinstance(given_dev, Mapping):
        raise ScenarioError(where, "device: expected [guest.device.<qdev id>] tables")
    for k in given_dev:
        if k not in devices:
            raise ScenarioError(where, f"device.{k}: the VM has no device with that id; ids: {', '.join(devices)}")
    vmem_plugged = []
    out: dict[str, DeviceGuest] = {}
    for qid, dev in devices.items():
        t = given_dev.get(qid, {})
        if not isinstance(t, Mapping):
            raise ScenarioError(where, f"device.{qid}: expected a table")
        bad = sorted(set(t) - _DEVICE)
        if bad:
            raise ScenarioError(where, f"device.{qid}: unknown knob(s) {', '.join(bad)}; known: {', '.join(sorted(_DEVICE))}")
        msi = _bool(t, "msi", f"{where} device.{qid}")
        targets = t.get("msi-targets", [0])
        if not isinstance(targets, list) or not all(isinstance(c, int) for c in targets):
            raise ScenarioError(where, f"device.{qid}.msi-targets: expected a list of vCPU indexes")
        for c in targets:
            if c not in cpus:
                raise ScenarioError(where, f"device.{qid}.msi-targets: vCPU {c} does not exist (vCPUs: {list(cpus)})")
        dma = t.get("dma", "translated")
        if dma not in ("translated", "identity"):
            raise ScenarioError(where, f"device.{qid}.dma: expected 'translated' or 'identity', got {dma!r}")
        plugged = _bool(t, "plugged", f"{where} device.{qid}")
        if plugged is None:
            requested = str(dev.spec.props.get("requested-size", "1"))
            size = qemu_size(requested)  # a qdev size property: bytes unless suffixed
            if dev.kind == "virtio-mem" and size is None:
                raise ScenarioError(where, f"{qid}: requested-size={requested!r}: expected a size "
                                    "as QEMU reads it (4G, 512M, 1073741824)")
            plugged = dev.kind == "virtio-mem" and size != 0
        if dev.kind == "virtio-mem" and plugged:
            vmem_plugged.append(qid)
        map_into = t.get("map-into")
        if map_into is not None and (not isinstance(map_into, str) or (map_into and map_into not in devices)):
            raise ScenarioError(where, f"device.{qid}.map-into: expected a virtio-mem device id or ''")
        out[qid] = DeviceGuest(
            msi=dev.type.msi if msi is None else msi,
            msi_targets=tuple(targets),
            dma=str(dma),
            map_into=map_into if isinstance(map_into, str) else "\0default",
            plugged=bool(plugged),
        )
    first_vmem = vmem_plugged[0] if vmem_plugged else ""
    for qid, g in out.items():
        if g.map_into == "\0default":
            into = first_vmem if devices[qid].kind == "vfio" else ""
            out[qid] = DeviceGuest(g.msi, g.msi_targets, g.dma, into, g.plugged)
        elif g.map_into and devices[g.map_into].kind != "virtio-mem":
            raise ScenarioError(where, f"device.{qid}.map-into: {g.map_into} is not a virtio-mem device")
    return GuestState(
        kvm=kvm,
        iommu=iommu,
        x2apic=x2apic,
        msi_mode=str(mode),
        posted=posted,
        lpis=lpis,
        bus=bus,
        devices=out,
        cpus=cpus,
        defaulted=tuple(defaulted),
    )
