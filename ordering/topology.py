"""PCI placement: which bus each device lands on, its slot, and its qdev path.

The qdev path is what QEMU puts before ``/vmsd`` in an idstr: ``DDDD:BB:SS.F`` on the root
bus, with ``:SS.F`` appended for every bridge level (``pcibus_get_dev_path``), so it names
slots, never guest bus numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

from ordering.errors import ScenarioError
from ordering.model.machine import DeviceType, MachineLayout
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

    @property
    def is_pci(self) -> bool:
        """Whether it sits on a PCI bus."""
        return self.slot is not None

    @property
    def kind(self) -> str:
        """The device type's kind."""
        return self.type.kind


@dataclass
class _Bus:
    name: str
    kind: str
    path: str
    owner: str
    bridges: tuple[str, ...]
    first_slot: int
    used: set[int] = field(default_factory=set)


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

    def __init__(self, machine: MachineLayout) -> None:
        root_used = {parse_addr(s, machine.file or machine.name)[0] for s in machine.reserved_slots}
        self._buses: dict[str, _Bus] = {
            machine.default_bus: _Bus(
                machine.default_bus, machine.root_bus_kind, "0000:00", "", (), 0, root_used
            )
        }
        self._unnamed = 0

    def place(self, spec: DeviceSpec, dtype: DeviceType, *, hotplugged: bool) -> PlacedDevice:
        """Place one device; a bridge also brings its secondary bus."""
        qdev_id = spec.id or f"{spec.driver}#{self._unnamed}"
        if not spec.id:
            self._unnamed += 1
        slot: int | None = None
        function: int | None = None
        path = ""
        bridges: tuple[str, ...] = ()
        bus_name = ""
        if dtype.bus == "pci":
            bus = self._pci_bus(spec)
            bus_name = bus.name
            if spec.addr:
                slot, function = parse_addr(spec.addr, spec.origin)
                if bus.kind == "pcie-port" and slot != 0:
                    raise ScenarioError(
                        spec.origin,
                        f"-device {spec.driver}: bus {bus.name} is a PCIe port and takes only "
                        "slot 0 (QEMU: 'PCI: slot N is not valid for DEVICE, parent device only "
                        "allows plugging into slot 0')",
                    )
                if slot in bus.used and function == 0:
                    raise ScenarioError(
                        spec.origin,
                        f"-device {spec.driver}: slot {slot:#04x} on bus {bus.name} is in use "
                        "(QEMU: 'PCI: slot N function 0 not available')",
                    )
            else:
                slot, function = self._free_slot(bus, spec), 0
            bus.used.add(slot)
            path = f"{bus.path}:{slot:02x}.{function}"
            bridges = bus.bridges
        elif spec.bus:
            bus_name = spec.bus
        if dtype.provides_bus:
            if not path:
                raise ScenarioError(spec.origin, f"-device {spec.driver}: a bridge needs a PCI bus")
            name = spec.id or f"{spec.driver}.{len(self._buses)}"
            first = 0 if dtype.provides_bus == "pcie-port" else dtype.first_slot
            self._buses[name] = _Bus(
                name, dtype.provides_bus, path, qdev_id, (*bridges, qdev_id), first, set()
            )
        return PlacedDevice(
            spec, dtype, qdev_id, bus_name, slot, function, path, bridges, hotplugged
        )

    def unplug(self, qdev_id: str, placed: PlacedDevice) -> None:
        """Free the slot of an unplugged device."""
        bus = self._buses.get(placed.bus)
        if bus is not None and placed.slot is not None:
            bus.used.discard(placed.slot)
        self._buses = {k: b for k, b in self._buses.items() if b.owner != qdev_id}

    def _pci_bus(self, spec: DeviceSpec) -> _Bus:
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

    def _free_slot(self, bus: _Bus, spec: DeviceSpec) -> int:
        last = 0 if bus.kind == "pcie-port" else 31
        for slot in range(bus.first_slot, last + 1):
            if slot not in bus.used:
                return slot
        raise ScenarioError(
            spec.origin, f"-device {spec.driver}: no free slot on bus {bus.name} (QEMU: 'PCI: no slot/function available')"
        )
