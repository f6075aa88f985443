"""Placement: which bus each device lands on, its address, and its qdev path.

The qdev path is what QEMU puts before ``/vmsd`` in an idstr: ``DDDD:BB:SS.F`` on the root
bus, with ``:SS.F`` appended for every bridge level (``pcibus_get_dev_path``), so it names
slots, never guest bus numbers.

Child buses of a controller (``child_bus`` in devices.toml) follow what Debian's 7.2, 10.0
and 11.1 binaries showed (tests/data/captured/*-usb, -scsi, -hda):

* a bus is named ``<controller id>.0``, or ``<type>.N`` without an id (``usb-bus``, ``scsi``,
  ``hda``; N counts the id-less buses of that type in creation order);
* a child without ``bus=`` lands on the bus QEMU finds first walking the device tree from the
  root bus, newest device first (so: the most recently created bus of its type);
* USB: a child's path is ``<controller path>/<port>``; ports are taken first free first,
  ``port=`` picks one; a hub's ports (``4.1`` ...) join the end of the free list; when a
  device would take the last free port, the controller's ``auto_hub`` is plugged there
  first (if its speeds fit the port; otherwise QEMU silently goes on without it);
* SCSI: a child's path is ``<controller path>/<channel>:<target>:<lun>``; without
  ``scsi-id`` the first target whose LUN (``lun=``, default 0) is free, with ``scsi-id`` and
  no ``lun=`` the first free LUN of that target.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import NamedTuple

from ordering.buses import Bus, check_speed, int_prop, port_list, ports, scsi_address
from ordering.errors import ScenarioError
from ordering.model.machine import BoardUsbBus, DeviceType, MachineLayout, is_off
from ordering.model.vm import DeviceSpec


class PlacedDevice(NamedTuple):
    """A device after placement: its bus, slot, qdev path and the bridges above it."""

    spec: DeviceSpec
    type: DeviceType
    qdev_id: str
    bus: str
    slot: int | None
    function: int | None
    path: str
    bridges: tuple[str, ...]
    """qdev ids of the bridges between the root bus and this device, outermost first."""
    hotplugged: bool = False
    address: str = ""
    """Its address on a child bus: a USB port (``1``, ``4.1``) or ``channel:target:lun``."""

    @property
    def is_pci(self) -> bool:
        """Whether it sits on a PCI bus."""
        return self.slot is not None

    @property
    def kind(self) -> str:
        """The device type's kind."""
        return self.type.kind


_CHILD_BUS = {
    "usb": ("usb-bus", "usb-bus"),
    "scsi": ("SCSI", "scsi"),
    "hda": ("HDA", "hda"),
    "virtio-serial": ("virtio-serial-bus", "virtio-serial-bus"),
    "ide": ("IDE", "ide"),
}
"""Bus kind → (the type QEMU names in "No 'T' bus found", the name of an id-less bus before
its ``.N``), as the real binaries print them."""


_SLOT_FUNCTION = tuple(tuple(f":{slot:02x}.{fn}" for fn in range(8)) for slot in range(32))
"""``:SS.F`` of every slot and function, the part a PCI device adds to its bus's qdev path."""

_NO_HOTPLUG = frozenset({"hda", "ide"})
"""Child-bus kinds QEMU gives no hotplug handler (captured: device_del of an hda codec)."""

_ADDR = re.compile(r"^(?:0x)?(?P<slot>[0-9a-fA-F]+)(?:\.(?:0x)?(?P<fn>[0-7]))?$")


@cache
def _addr(addr: str) -> tuple[int, int] | None:
    m = _ADDR.match(addr.strip())
    if not m:
        return None
    return int(m.group("slot"), 16), int(m.group("fn") or "0")


def parse_addr(addr: str, origin: str) -> tuple[int, int]:
    """``addr=`` as QEMU takes it: ``3``, ``0x10``, ``03.1`` → ``(slot, function)``.

    >>> parse_addr("0x10", "argv")
    (16, 0)
    >>> parse_addr("1f.2", "argv")
    (31, 2)
    """
    parsed = _addr(addr)
    if parsed is None:
        raise ScenarioError(origin, f"addr={addr!r}: expected SLOT or SLOT.FUNCTION in hex")
    if parsed[0] > 31:
        raise ScenarioError(origin, f"addr={addr!r}: slot must be 0x00..0x1f")
    return parsed


class Placer:
    """Places devices on buses in the order QEMU realizes them."""

    def __init__(
        self, machine: MachineLayout, devices: Mapping[str, DeviceType] | None = None
    ) -> None:
        root_used = {parse_addr(s, machine.file or machine.name)[0] for s in machine.reserved_slots}
        self._root = machine.default_bus
        self._buses: dict[str, Bus] = {
            machine.default_bus: Bus(
                machine.default_bus, machine.root_bus_kind, "0000:00", "", (), 0, root_used
            )
        }
        self._unnamed = 0
        self._devices = devices or {}
        self._provided: dict[str, list[str]] = {}
        """qdev id → the buses it brings."""
        self._idless: dict[str, int] = {}
        """Child-bus kind → id-less buses of it so far (their ``.N``)."""
        for n in range(machine.ide_buses):  # the board's own IDE/AHCI controller
            self._buses[f"ide.{n}"] = Bus(f"ide.{n}", "ide", "", "machine", (), 0, hotpluggable=False)
        if machine.ide_buses:
            self._idless["ide"] = machine.ide_buses
        self.hotplug_needs_free_port_slot0 = False
        """10.0+: a device hot-plugged onto a PCIe port whose slot 0 is taken is refused (QEMU
        exposes only slot 0 behind an upstream port, and a function 0 there hides the rest)."""
        self.slot0_refused: dict[str, str] = {}
        """Bridge device types whose bus refuses slot 0 on this machine → QEMU's words."""
        count, base, stride = machine.virtio_mmio
        self._mmio_free = [base + stride * n for n in reversed(range(count))]
        """Free virtio-mmio transports, the next one QEMU hands out first."""
        self._expander = ""
        """The type of the newest PCI expander (its root bus is QEMU's default PCI bus)."""
        self.auto_plugged: list[PlacedDevice] = []
        """Devices QEMU plugged on its own (a USB hub) while placing the last device."""

    def add_board_usb_bus(self, board: BoardUsbBus) -> None:
        """A USB bus of the board's own controller (``-machine usb=on``)."""
        bus = Bus(board.name, "usb", board.path, "machine", (), 0)
        bus.auto_hub = board.auto_hub
        bus.free_ports = port_list(board.ports, [g.count for g in board.ports], "")
        bus.port_speeds.update(bus.free_ports)
        self._buses[board.name] = bus
        self._idless["usb"] = self._idless.get("usb", 0) + 1

    def place(self, spec: DeviceSpec, dtype: DeviceType, hotplugged: bool) -> PlacedDevice:
        """Place one device; a bridge also brings its secondary bus."""
        qdev_id = spec.id
        if not qdev_id:
            qdev_id = f"{spec.driver}#{self._unnamed}"
            self._unnamed += 1
        if dtype.bus == "pci":
            return self._place_pci(spec, dtype, qdev_id, hotplugged)
        path = ""
        address = ""
        bridges: tuple[str, ...] = ()
        bus_name = ""
        if dtype.bus == "virtio-mmio":
            path = self._virtio_mmio(spec)
        elif dtype.bus in _CHILD_BUS:
            child = self._child_bus(spec, dtype)
            bus_name = child.name
            if hotplugged:
                self.check_hotplug(bus_name, spec.origin)
            bridges = child.bridges
            address, path = self._child_address(child, spec, dtype)
            child.children.append(qdev_id)
            if dtype.usb_ports:
                self._add_ports(child, dtype, spec, path.rsplit("/", 1)[-1])
        elif spec.bus:
            bus_name = spec.bus
        self._bring_buses(spec, dtype, qdev_id, path, bridges)
        return PlacedDevice(
            spec, dtype, qdev_id, bus_name, None, None, path, bridges, hotplugged,
            address if dtype.bus in _CHILD_BUS else "",
        )

    def _place_pci(self, spec: DeviceSpec, dtype: DeviceType, qdev_id: str, hotplugged: bool) -> PlacedDevice:
        """A device on a PCI bus: its slot and function, its qdev path, the bridges above it.

        The hot path of a 100k-device VM: the common case (a slot free, no expander) runs
        without a call beyond the cached address parse.
        """
        bus = self._buses.get(spec.bus or self._root)
        if bus is None:
            bus = self._pci_bus(spec)  # raises QEMU's "Bus 'X' not found"
        # A PCI expander's root bus takes only bridges, and once an expander exists QEMU's
        # default bus for a device without bus= is that root bus (captured on 7.2, 10.0, 11.1:
        # "PCI: Only PCI/PCIe bridges can be plugged into pxb-pcie", and "... into pxb" for an
        # id-less virtio-balloon after a pxb).
        expander = self._expander if not spec.bus else ("pxb-pcie" if bus.owner_driver == "pxb-pcie" else "")
        if expander and dtype.kind != "pci-bridge":
            raise ScenarioError(
                spec.origin, f"-device {spec.driver}: QEMU refuses it: 'PCI: Only PCI/PCIe bridges can be plugged into {expander}'"
            )
        if spec.addr:
            # A PCIe port's bus takes any slot: 7.2 says nothing, 10.0+ only warn ("PCI: slot N
            # is not valid for DEV, parent device only allows plugging into slot 0") for PCIe
            # devices (captured: e1000 at 05.0 and e1000e at 03.0 behind one root port).
            parsed = _addr(spec.addr)
            if parsed is None or parsed[0] > 31:
                parsed = parse_addr(spec.addr, spec.origin)  # raises, in the user's words
            slot, function = parsed
            if parsed in bus.functions or (function == 0 and slot in bus.used and not any(s == slot for s, _ in bus.functions)):
                raise ScenarioError(
                    spec.origin,
                    f"-device {spec.driver}: slot {slot:#04x} on bus {bus.name} is in use "
                    "(QEMU: 'PCI: slot N function 0 not available')",
                )
        else:
            slot, function = self._free_slot(bus, spec), 0
            parsed = (slot, 0)
        if hotplugged:
            self.check_hotplug(bus.name, spec.origin)
            if self.hotplug_needs_free_port_slot0 and bus.kind == "pcie-port" and 0 in bus.slot_drivers:
                raise ScenarioError(
                    spec.origin,
                    f"QEMU refuses it: 'PCI: slot 0 function 0 already occupied by "
                    f"{bus.slot_drivers[0]}, new func {spec.driver} cannot be exposed to guest.'",
                )
        if slot == 0 and self.slot0_refused:
            refusal = self.slot0_refused.get(bus.owner_driver)
            if refusal:
                raise ScenarioError(spec.origin, f"-device {spec.driver}: QEMU refuses it: '{refusal}'")
        bus.used.add(slot)
        bus.functions.add(parsed)
        if function == 0:
            bus.slot_drivers[slot] = spec.driver
        path = bus.path + _SLOT_FUNCTION[slot][function]
        bridges = bus.bridges
        if dtype.expander:
            path = _expander_path(spec, dtype, path)
            self._expander = dtype.name
        bus.children.append(qdev_id)
        if dtype.child_bus or dtype.provides_bus:
            self._bring_buses(spec, dtype, qdev_id, path, bridges)
        # PlacedDevice built as the tuple it is, its fields in order.
        return tuple.__new__(
            PlacedDevice, (spec, dtype, qdev_id, bus.name, slot, function, path, bridges, hotplugged, "")
        )

    def _bring_buses(
        self, spec: DeviceSpec, dtype: DeviceType, qdev_id: str, path: str, bridges: tuple[str, ...]
    ) -> None:
        """The buses a controller or bridge brings (a UHCI companion brings none of its own)."""
        if dtype.child_bus == "usb" and spec.props.get("masterbus"):
            self._companion(spec, dtype)
        elif dtype.child_bus:
            if not path:
                raise ScenarioError(spec.origin, f"-device {spec.driver}: a controller needs a PCI bus")
            self._new_child_bus(spec, dtype, qdev_id, path, bridges)
        if dtype.provides_bus:
            if not path:
                raise ScenarioError(spec.origin, f"-device {spec.driver}: a bridge needs a PCI bus")
            name = spec.id or f"{spec.driver}.{len(self._buses)}"
            first = 0 if dtype.provides_bus == "pcie-port" else dtype.first_slot
            self._buses[name] = Bus(
                name, dtype.provides_bus, path, qdev_id, (*bridges, qdev_id), first, set(),
                owner_driver=dtype.name,
                # a PCIe port's hotplug=off (pcie_cap_slot_init) takes hotplug away from its slot
                hotpluggable=not (dtype.provides_bus == "pcie-port" and is_off(spec.props.get("hotplug", ""))),
            )
            self._provided.setdefault(qdev_id, []).append(name)

    def unplug(self, qdev_id: str, placed: PlacedDevice) -> None:
        """Free the slot (or child-bus address) of an unplugged device."""
        bus = self._buses.get(placed.bus)
        if bus is not None:
            if placed.slot is not None:
                bus.used.discard(placed.slot)
                bus.functions.discard((placed.slot, placed.function or 0))
                bus.slot_drivers.pop(placed.slot, None)
            if qdev_id in bus.children:
                bus.children.remove(qdev_id)
            if bus.kind == "usb" and placed.address:
                # inferred: the freed port joins the end of the free list
                bus.free_ports.append((placed.address, bus.port_speeds[placed.address]))
            elif bus.kind == "scsi" and placed.address:
                _, target, lun = (int(x) for x in placed.address.split(":"))
                bus.scsi_used.pop((target, lun), None)
        self._buses = {k: b for k, b in self._buses.items() if b.owner != qdev_id}
        self._provided.pop(qdev_id, None)

    def _pci_bus(self, spec: DeviceSpec) -> Bus:
        name = spec.bus or next(iter(self._buses))
        bus = self._buses.get(name)
        if bus is None:
            known = ", ".join(self._buses)
            raise ScenarioError(
                spec.origin,
                f"-device {spec.driver}: Bus '{name}' not found (QEMU's words); buses so far: "
                f"{known}. A bus exists only after the -device that brings it.",
            )
        return bus

    def _virtio_mmio(self, spec: DeviceSpec) -> str:
        """The qdev path of the next free virtio-mmio transport (``virtio-mmio@<address>``)."""
        if not self._mmio_free:
            raise ScenarioError(
                spec.origin, f"-device {spec.driver}: QEMU refuses it: \"No 'virtio-bus' bus found for device '{spec.driver}'\""
            )
        return f"virtio-mmio@{self._mmio_free.pop(0):016x}"

    def _free_slot(self, bus: Bus, spec: DeviceSpec) -> int:
        # captured: a second and third device on one root port go to 01.0 and 02.0
        for slot in range(bus.first_slot, 32):
            if slot not in bus.used:
                return slot
        raise ScenarioError(
            spec.origin, f"-device {spec.driver}: no free slot on bus {bus.name} (QEMU: 'PCI: no slot/function available')"
        )

    # -- child buses (USB, SCSI, HDA) ------------------------------------------------------

    def _new_child_bus(
        self, spec: DeviceSpec, dtype: DeviceType, qdev_id: str, path: str, bridges: tuple[str, ...]
    ) -> None:
        kind = dtype.child_bus
        for k in range(dtype.child_buses):
            if spec.id:
                name = f"{spec.id}.{k}"
            else:
                n = self._idless.get(kind, 0)
                self._idless[kind] = n + 1
                name = f"{_CHILD_BUS[kind][1]}.{n}"
            bus = Bus(name, kind, path, qdev_id, (*bridges, qdev_id), 0, hotpluggable=kind not in _NO_HOTPLUG)
            bus.auto_hub = dtype.auto_hub
            bus.scsi_targets, bus.scsi_luns = dtype.scsi_targets, dtype.scsi_luns
            if kind == "usb":
                bus.free_ports = ports(dtype, spec, "")
                bus.port_speeds.update(bus.free_ports)
            self._buses[name] = bus
            self._provided.setdefault(qdev_id, []).append(name)

    def _companion(self, spec: DeviceSpec, dtype: DeviceType) -> None:
        """A UHCI given ``masterbus=`` brings no bus of its own: its ports, from ``firstport``
        on, serve low and full speed on the EHCI's bus (hw/usb/hcd-uhci.c usb_uhci_common_realize:
        usb_register_companion; captured: the EHCI must come first, else "USB bus 'usb.0' not
        found", on 7.2, 10.0 and 11.1)."""
        master = self._buses.get(spec.props["masterbus"])
        if master is None or master.kind != "usb":
            raise ScenarioError(
                spec.origin, f"-device {spec.driver}: QEMU refuses it: \"USB bus '{spec.props['masterbus']}' not found\""
            )
        first = int_prop(spec, "firstport") or 0
        count = max((g.count for g in dtype.usb_ports), default=0)
        extra = frozenset(sp for g in dtype.usb_ports for sp in g.speeds)
        for n in range(first + 1, first + count + 1):
            port = str(n)
            if port in master.port_speeds:
                master.port_speeds[port] = master.port_speeds[port] | extra
        master.free_ports = [(p, master.port_speeds.get(p, sp)) for p, sp in master.free_ports]

    def check_hotplug(self, bus_name: str, origin: str) -> None:
        """device_add onto, or device_del from, ``bus_name``: refused where QEMU has no hotplug
        handler for the bus."""
        bus = self._buses.get(bus_name)
        if bus is not None and not bus.hotpluggable:
            raise ScenarioError(origin, f"QEMU refuses it: \"Bus '{bus_name}' does not support hotplugging\"")

    def set_root_hotpluggable(self, hotpluggable: bool) -> None:
        """Whether the board's root bus takes hot-plugs (pc's with ACPI; not q35's or virt's)."""
        self._buses[self._root].hotpluggable = hotpluggable

    def _child_bus(self, spec: DeviceSpec, dtype: DeviceType) -> Bus:
        qtype = _CHILD_BUS[dtype.bus][0]
        if spec.bus:
            bus = self._buses.get(spec.bus)
            if bus is None:
                raise ScenarioError(spec.origin, f"-device {spec.driver}: Bus '{spec.bus}' not found (QEMU's words)")
            if bus.kind != dtype.bus:
                raise ScenarioError(
                    spec.origin,
                    f"-device {spec.driver}: bus {spec.bus} is a {bus.kind} bus; it needs a {qtype} bus",
                )
            return bus
        found = self._find(self._root, dtype.bus)
        if found is None:  # a bus of the board's own controller (q35's AHCI, pc's PIIX IDE)
            found = next((b for b in self._buses.values() if b.kind == dtype.bus and b.owner == "machine"), None)
        if found is None:
            raise ScenarioError(
                spec.origin, f"-device {spec.driver}: No '{qtype}' bus found for device '{spec.driver}' (QEMU's words)"
            )
        return found

    def _find(self, name: str, kind: str) -> Bus | None:
        """The first bus of ``kind`` walking down from bus ``name``, newest device first."""
        bus = self._buses[name]
        if bus.kind == kind:
            return bus
        for child in reversed(bus.children):
            for sub in self._provided.get(child, ()):
                if sub in self._buses:
                    found = self._find(sub, kind)
                    if found is not None:
                        return found
        return None

    def _child_address(self, bus: Bus, spec: DeviceSpec, dtype: DeviceType) -> tuple[str, str]:
        """(address, qdev path) of a device on a child bus."""
        if bus.kind == "usb":
            port = self._usb_port(bus, spec, dtype)
            return port, f"{bus.path}/{port}"
        if bus.kind == "scsi":
            addr = scsi_address(bus, spec, spec.id or "(null)")
            return addr, f"{bus.path}/{addr}"
        return "", ""

    def _usb_port(self, bus: Bus, spec: DeviceSpec, dtype: DeviceType) -> str:
        wanted = spec.props.get("port", "")
        if wanted:
            index = next((i for i, (p, _) in enumerate(bus.free_ports) if p == wanted), None)
            if index is None:
                raise ScenarioError(
                    spec.origin,
                    f"-device {spec.driver}: QEMU refuses it: 'usb port {wanted} (bus {bus.name}) "
                    "not found (in use?)'",
                )
        else:
            if not bus.free_ports:
                raise ScenarioError(
                    spec.origin,
                    f"-device {spec.driver}: QEMU refuses it: 'tried to attach usb device ... to a "
                    "bus with no free ports'",
                )
            if len(bus.free_ports) == 1 and bus.auto_hub and spec.driver != bus.auto_hub:
                self._auto_hub(bus, spec)
            index = 0
        port, speeds = bus.free_ports[index]
        check_speed(bus, spec, dtype, port, speeds)
        del bus.free_ports[index]
        return port

    def _auto_hub(self, bus: Bus, spec: DeviceSpec) -> None:
        hub_type = self._devices.get(bus.auto_hub)
        if hub_type is None:
            raise ScenarioError(spec.origin, f"auto_hub {bus.auto_hub!r} of bus {bus.name} is not in devices.toml")
        port, speeds = bus.free_ports[0]
        if not speeds & set(hub_type.usb_speeds):
            return  # QEMU tries the hub, it cannot attach there, and goes on without it
        hub_spec = DeviceSpec(bus.auto_hub, bus=bus.name, props={"port": port}, origin=spec.origin)
        self.auto_plugged.append(self.place(hub_spec, hub_type, hotplugged=False))

    def _add_ports(self, bus: Bus, dtype: DeviceType, spec: DeviceSpec, port: str) -> None:
        added = ports(dtype, spec, f"{port}.")
        bus.free_ports.extend(added)
        bus.port_speeds.update(added)


def _expander_path(spec: DeviceSpec, dtype: DeviceType, path: str) -> str:
    """The qdev path of the bus a PCI expander bridge provides: its own path with the root
    bus number replaced by ``bus_nr`` (pcibus_get_dev_path: the expander bus is a root bus whose
    path is its number, and the walk up still counts the expander's slot), and for a legacy
    ``pxb`` the internal pci-bridge at slot 0 (captured on 7.2, 10.0, 11.1:
    ``0000:64:02.0:00.0/pci_bridge``, ``0000:64:01.0:00.0/pcie-root-port``)."""
    number = int_prop(spec, "bus_nr") or 0
    if not 0 < number < 256:
        raise ScenarioError(spec.origin, f"-device {spec.driver}: bus_nr={number}: expected 1..255")
    domain, _, rest = path.partition(":")
    bus_path = f"{domain}:{number:02x}{rest[2:]}"
    return f"{bus_path}:00.0" if dtype.expander == "pci" else bus_path
