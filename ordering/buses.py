"""A bus as placement fills it, and the addresses QEMU hands out on a controller's child bus.

:class:`Bus` is the state :class:`ordering.topology.Placer` keeps per bus: PCI slots and
functions taken, the devices on it, a USB bus's free ports, a SCSI bus's targets and LUNs.
The functions below give a child's address as the real binaries do (captured on Debian's 7.2,
10.0 and 11.1: tests/data/captured/*-usb, -scsi); their refusals are QEMU's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ordering.errors import ScenarioError
from ordering.model.machine import DeviceType, UsbPortGroup
from ordering.model.vm import DeviceSpec


@dataclass
class Bus:
    """One bus as placement fills it: what is taken on it and what it hands out next."""

    name: str
    kind: str
    path: str
    owner: str
    bridges: tuple[str, ...]
    first_slot: int
    used: set[int] = field(default_factory=set)
    functions: set[tuple[int, int]] = field(default_factory=set)
    """PCI: (slot, function) pairs taken (a function may be filled before function 0, as
    libvirt places an EHCI at 04.7 before its UHCI companions at 04.0-04.2)."""
    children: list[str] = field(default_factory=list)
    """qdev ids of the devices on it, in plug order."""
    free_ports: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    """USB: free ports in the order QEMU hands them out, with the speeds each accepts."""
    port_speeds: dict[str, frozenset[str]] = field(default_factory=dict)
    """USB: every port the bus has had, with the speeds it accepts."""
    auto_hub: str = ""
    scsi_targets: int = 0
    scsi_luns: int = 0
    scsi_used: dict[tuple[int, int], str] = field(default_factory=dict)
    """SCSI: (target, lun) → the qdev id QEMU names in 'lun already used by'."""
    owner_driver: str = ""
    """The device type that brought the bus (a bridge's type)."""
    slot_drivers: dict[int, str] = field(default_factory=dict)
    """PCI: slot → the device type in it, for QEMU's words about an occupied slot."""
    hotpluggable: bool = True
    """Whether device_add and device_del work on it (QEMU: "Bus 'X' does not support
    hotplugging"): not q35's or virt's root complex, not an HDA or IDE bus, not a PCIe port
    with hotplug=off."""


def ports(dtype: DeviceType, spec: DeviceSpec, prefix: str) -> list[tuple[str, frozenset[str]]]:
    """The ports ``dtype`` brings, ``prefix`` + 1, 2, ... each with the speeds it accepts."""
    counts = []
    for g in dtype.usb_ports:
        value = spec.props.get(g.prop, "") if g.prop else ""
        try:
            counts.append(int(value, 0) if value else g.count)
        except ValueError:
            raise ScenarioError(spec.origin, f"-device {spec.driver}: {g.prop}={value!r}: expected a number") from None
    return port_list(dtype.usb_ports, counts, prefix)


def port_list(groups: Sequence[UsbPortGroup], counts: Sequence[int], prefix: str) -> list[tuple[str, frozenset[str]]]:
    """Ports ``prefix`` + 1, 2, ... up to the largest count, each with the speeds of the groups
    that reach it."""
    return [
        (f"{prefix}{i}", frozenset(s for g, n in zip(groups, counts, strict=True) if i <= n for s in g.speeds))
        for i in range(1, max(counts, default=0) + 1)
    ]


def check_speed(bus: Bus, spec: DeviceSpec, dtype: DeviceType, port: str, speeds: frozenset[str]) -> None:
    if dtype.usb_speeds and not speeds & set(dtype.usb_speeds):
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: QEMU refuses it: 'speed mismatch trying to attach usb device "
            f"... ({'+'.join(dtype.usb_speeds)} speed) to bus \"{bus.name}\", port \"{port}\" "
            f"({'+'.join(sorted(speeds, key=_SPEEDS.index))} speed)'",
        )


_SPEEDS = ("low", "full", "high", "super")


def int_prop(spec: DeviceSpec, key: str) -> int | None:
    value = spec.props.get(key, "")
    if not value:
        return None
    try:
        return int(value, 0)
    except ValueError:
        raise ScenarioError(spec.origin, f"-device {spec.driver}: {key}={value!r}: expected a number") from None


def scsi_address(bus: Bus, spec: DeviceSpec, name: str) -> str:
    """``channel:target:lun`` as QEMU assigns it (messages are QEMU's words)."""
    channel = int_prop(spec, "channel") or 0
    target = int_prop(spec, "scsi-id")
    lun = int_prop(spec, "lun")

    def refuse(words: str) -> ScenarioError:
        return ScenarioError(spec.origin, f"-device {spec.driver}: QEMU refuses it: '{words}'")

    if channel != 0:
        raise refuse(f"bad scsi channel id: {channel}")
    if target is not None and not 0 <= target < bus.scsi_targets:
        raise refuse(f"bad scsi device id: {target}")
    if lun is not None and not 0 <= lun < bus.scsi_luns:
        raise refuse(f"bad scsi device lun: {lun}")
    if target is None:
        lun = lun or 0
        target = next((t for t in range(bus.scsi_targets) if (t, lun) not in bus.scsi_used), None)
        if target is None:
            raise refuse("no free target")
    elif lun is None:
        lun = next((n for n in range(bus.scsi_luns) if (target, n) not in bus.scsi_used), None)
        if lun is None:
            raise refuse("no free lun")
    elif (target, lun) in bus.scsi_used:
        raise refuse(f"lun already used by '{bus.scsi_used[(target, lun)]}'")
    bus.scsi_used[(target, lun)] = name
    return f"{channel}:{target}:{lun}"
