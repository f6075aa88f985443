"""Stage two of :func:`ordering.order.derive`: every device on its bus, in plug order.

:func:`place` puts what :func:`ordering.refusals.refuse` accepted on buses as QEMU realizes it:
the vCPUs present at start, every ``-device`` in command-line order (a USB hub QEMU plugs on
its own comes just before the device that took the bus's last port), then the hot-plug steps
(``device_add``, vCPU hot-plug, ``device_del`` with its subtree). Addresses, qdev paths and
the bridges above each device are fixed here; QEMU's refusals that need the buses (a slot in
use, a bus without hotplug, an unknown ``device_del`` id) are raised here too.

Registration (:func:`ordering.order.register`) reads a :class:`Placed` and never places, so
the model checker can vary registration order without placing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ordering.errors import ScenarioError
from ordering.model.machine import DeviceType
from ordering.model.vm import DeviceSpec
from ordering.refusals import Accepted
from ordering.topology import PlacedDevice, Placer


class CpuPlug(NamedTuple):
    """A vCPU realized: its index and APIC id (hot-plugged, or present at start)."""

    cpu_index: int
    apic_id: int
    hotplugged: bool = False


class DevicePlug(NamedTuple):
    """One ``-device`` or ``device_add``: the devices it realizes, any QEMU plugged on its own
    for it first (a USB hub), the device itself last."""

    devices: tuple[PlacedDevice, ...]
    hotplugged: bool = False


class Unplug(NamedTuple):
    """A completed ``device_del``: the devices it takes, its subtree deepest first, itself last."""

    qdev_ids: tuple[str, ...]


Event = CpuPlug | DevicePlug | Unplug
"""One step of a VM's life after machine init, in the order QEMU performs it."""


@dataclass(frozen=True)
class Placed:
    """A VM's devices on their buses, and the order they come and go in."""

    accepted: Accepted
    cpus: tuple[CpuPlug, ...]
    """The vCPUs present at start, by index."""
    cold: tuple[PlacedDevice, ...]
    """Every ``-device``, in command-line order (a device QEMU plugged on its own for one, a
    USB hub, just before it)."""
    hotplug: tuple[Event, ...]
    """The hot-plug steps, in order."""
    devices: tuple[PlacedDevice, ...]
    """The devices present once every step has run, in plug order."""


def place(accepted: Accepted) -> Placed:
    """Place every device of an accepted VM, and its hot-plug steps, in order.

    Raises
    ------
    ScenarioError
        QEMU's refusal of a placement (a slot in use, a bus that takes no hot-plug).

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.refusals import refuse
    >>> k = load_knowledge()
    >>> vm = parse_command_line(["-machine", "q35", "-device", "pcie-root-port,id=rp1,chassis=1",
    ...                          "-device", "virtio-net-pci,bus=rp1"])
    >>> [d.path for d in place(refuse(k.release("10.2"), vm)).cold]
    ['0000:00:01.0', '0000:00:01.0:00.0']
    """
    vm = accepted.vm
    topo = vm.topology
    placer = _board_placer(accepted)
    cpus = tuple(CpuPlug(i, topo.apic_id(i)) for i in range(topo.cpus))
    placed: list[PlacedDevice] = []
    # Hot loop (100k devices): the placer and the release's type lookup bound once.
    place_one, auto, device = placer.place, placer.auto_plugged, accepted.release.device
    types: dict[str, DeviceType] = {}
    for spec in accepted.devices:
        dtype = types.get(spec.driver)
        if dtype is None:
            dtype = types[spec.driver] = device(spec.driver)
        dev = place_one(spec, dtype, False)
        if auto:
            placed.extend(auto)
            auto.clear()
        placed.append(dev)
    cold = tuple(placed)
    later: list[Event] = []
    for step in vm.hotplug:
        if step.cpu is not None:
            later.append(CpuPlug(step.cpu, topo.apic_id(step.cpu), hotplugged=True))
        elif step.device is not None:
            plug = _plug(accepted, placer, step.device, hotplugged=True)
            placed.extend(plug.devices)
            later.append(plug)
        elif step.unplug:
            victim = next((p for p in placed if p.qdev_id == step.unplug), None)
            if victim is None:
                raise ScenarioError(
                    vm.source or vm.name, f"unplug of {step.unplug!r}: no device with that id"
                )
            placer.check_hotplug(victim.bus, vm.source or vm.name)
            # device_del takes the device's subtree with it (captured: a usb-hub's keyboard)
            gone = [*_behind(victim, placed), victim]
            for dev in gone:
                placer.unplug(dev.qdev_id, dev)
                placed.remove(dev)
            later.append(Unplug(tuple(d.qdev_id for d in gone)))
    return Placed(accepted, cpus, cold, tuple(later), tuple(placed))


def _plug(accepted: Accepted, placer: Placer, spec: DeviceSpec, *, hotplugged: bool) -> DevicePlug:
    """Place one device; first any device QEMU plugged on its own for it (the USB hub chained
    on when it takes a bus's last free port)."""
    dev = placer.place(spec, accepted.release.device(spec.driver), hotplugged=hotplugged)
    out = (*placer.auto_plugged, dev)
    placer.auto_plugged.clear()
    return DevicePlug(out, hotplugged)


def _behind(device: PlacedDevice, placed: list[PlacedDevice]) -> list[PlacedDevice]:
    """The devices below ``device`` (behind a bridge, a hub, a controller's bus), deepest first:
    their qdev paths continue its path with ``:``, ``.`` or ``/``."""
    root = device.path
    if not root:
        return []
    below = [
        p
        for p in placed
        if p is not device
        and p.path[: len(root)] == root
        and p.path[len(root) : len(root) + 1] in (":", ".", "/")
    ]
    return sorted(below, key=lambda p: -len(p.path))


def _board_placer(accepted: Accepted) -> Placer:
    """A placer for this board: its own USB buses (``usb=on``) and the bridges whose slot 0 it
    refuses (``slot0_refused_on`` entries: ``virt``, or ``pc:acpi=off`` with a condition)."""
    layout, release = accepted.layout, accepted.release
    placer = Placer(layout, release.devices)
    placer.hotplug_needs_free_port_slot0 = release.features.hotplug_needs_free_port_slot0
    placer.set_root_hotpluggable(
        layout.root_bus_hotplug != "never" and accepted.holds(layout.root_bus_hotplug)
    )
    for board in layout.usb_buses:
        if accepted.holds(board.when):
            placer.add_board_usb_bus(board)
    for d in release.devices.values():
        for entry in d.slot0_refused_on:
            machine, _, when = entry.partition(":")
            if machine == layout.name and accepted.holds(when):
                placer.slot0_refused[d.name] = d.slot0_refused_text
    return placer
