"""Read ``devices.toml`` and ``machines/<release>/<machine>.toml``: device types, machine layouts,
and the SaveStateEntry templates both register.

Every mistake is a :class:`~ordering.errors.ModelError` naming ``file:line`` and what was
expected. :mod:`ordering.sources.models` reads the rest (kinds, rules, releases) and puts them
together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ordering.model.machine import (
    REPEATS,
    BoardUsbBus,
    DeviceType,
    MachineLayout,
    RegistrationTemplate,
    UsbPortGroup,
    valid_condition,
)

if TYPE_CHECKING:  # the TOML reader is imported when a file is read: a cached start reads none
    from ordering.sources._toml import Table, TomlDoc


def open_toml(path: Path) -> tuple[TomlDoc, Table]:
    """``path`` read and parsed, with its top-level table."""
    from ordering.sources._toml import TomlDoc, root

    doc = TomlDoc.read(path)
    return doc, root(doc)


_REG_KEYS = frozenset(
    {"vmsd", "idstr", "sent", "iterable", "full", "instance", "instance_id", "first_only",
     "when", "since", "until", "of", "source", "handler", "unmigratable", "early_setup",
     "repeat", "once"}
)


def _registration(t: Table) -> RegistrationTemplate:
    t.reject_unknown(_REG_KEYS)
    iterable = t.flag("iterable", False)
    instance = t.text("instance", "auto")
    if "instance_id" in t.data:
        instance = str(t.integer("instance_id")) if instance == "auto" else instance
    if instance not in ("auto", "cpu-index", "apic-id") and not instance.isdigit():
        raise t.doc.error(
            (*t.path, "instance"), f"instance: expected auto, cpu-index, apic-id or a number, got {instance!r}"
        )
    when = _when(t)
    for key in ("since", "until"):
        value = t.text(key, "")
        if value and not all(p.isdigit() for p in value.split(".")):
            raise t.doc.error((*t.path, key), f"{key}: expected a release like '8.0', got {value!r}")
    vmsd = t.text("vmsd")
    idstr = t.text("idstr", vmsd)
    if not idstr:
        raise t.doc.error(t.path, "expected a non-empty vmsd or idstr")
    # A handler (register_savevm_live) has no VMSD: it is known by its idstr's last part.
    vmsd = vmsd or idstr.rsplit("/", 1)[-1]
    return RegistrationTemplate(
        vmsd=vmsd,
        idstr=idstr,
        sent=t.flag("sent", True),
        iterable=iterable,
        full=t.flag("full", not iterable),
        instance=instance,
        first_only=t.flag("first_only", False),
        when=when,
        since=t.text("since", ""),
        until=t.text("until", ""),
        of=t.text("of", ""),
        repeat=t.text("repeat", "", choices=("", *REPEATS)),
        once=t.flag("once", False),
        source=t.text("source", ""),
    )


_DEVICE_KEYS = frozenset(
    {"kind", "bus", "provides_bus", "first_slot", "registers", "dma", "msi", "source", "notes",
     "user_creatable",
     # documentation of what the real binary did, kept beside the facts
     "since", "captured", "needs", "refusal", "refused_on_pc", "setup_position", "slot0_refused_on",
     "slot0_refused_text", "unmigratable", "machines", "arches", "arches_source",
     # child buses (USB, SCSI, HDA) and audio
     "child_bus", "child_buses", "usb_ports", "usb_speeds", "auto_hub", "scsi_targets", "scsi_luns", "audiodev",
     "limit", "expander"}
# `machines` and `refused_on_pc` are read: a device QEMU refuses on other machines is refused.
)


def read_devices(path: Path) -> dict[str, DeviceType]:
    """``devices.toml``: ``[device."TYPE"]`` tables."""
    doc, top = open_toml(path)
    devices: dict[str, DeviceType] = {}
    table = top.table("device", required=True)
    for name in table.names():
        t = table.table(name)
        t.reject_unknown(_DEVICE_KEYS)
        devices[name] = DeviceType(
            name=name,
            kind=t.text("kind"),
            bus=t.text("bus", choices=("pci", "sysbus", "isa", "none", "cpu", "virtio-mmio", *_CHILD_BUS_KINDS)),
            provides_bus=t.text("provides_bus", "", choices=("", "pci", "pcie-port")),
            first_slot=t.integer("first_slot", 0),
            registers=tuple(_registration(r) for r in t.tables("registers")),
            dma=t.flag("dma", False),
            msi=t.flag("msi", False),
            source=t.text("source"),
            notes=t.text("notes", ""),
            since=t.text("since", ""),
            machines=t.texts("machines", ()),
            arches=t.texts("arches", ()),
            refusal=t.text("refused_on_pc", ""),
            slot0_refused_on=t.texts("slot0_refused_on", ()),
            slot0_refused_text=t.text("slot0_refused_text", ""),
            expander=t.text("expander", "", choices=("", "pci", "pcie")),
            **_limit_keys(t),
            **_child_bus_keys(t),
        )
    for name, dev in devices.items():
        if dev.auto_hub and dev.auto_hub not in devices:
            raise doc.error(("device", name, "auto_hub"), f"auto_hub: expected a device type of this file, got {dev.auto_hub!r}")
    return devices


def _when(t: Table) -> str:
    """A registration's (or board bus's) ``when`` condition, checked."""
    when = t.text("when", "")
    if not valid_condition(when):
        raise t.doc.error(
            (*t.path, "when"),
            f"when: expected conditions like 'machine>7.2' or 'gic-version=3' joined by &&, got {when!r}",
        )
    return when


def _usb_port_groups(t: Table, *, prop: bool) -> tuple[UsbPortGroup, ...]:
    """``usb_ports = [{ speeds = "low+full", count = 2 }]`` (``prop``: a device property that
    overrides the count, for a controller)."""
    groups = []
    for g in t.tables("usb_ports"):
        g.reject_unknown({"speeds", "count", "prop"} if prop else {"speeds", "count"})
        groups.append(UsbPortGroup(_speeds(g, "speeds"), g.integer("count"), g.text("prop", "")))
    return tuple(groups)


def _board_usb_bus(t: Table) -> BoardUsbBus:
    t.reject_unknown({"name", "path", "usb_ports", "auto_hub", "when", "source"})
    return BoardUsbBus(
        t.text("name"), t.text("path"), _usb_port_groups(t, prop=False), t.text("auto_hub", ""), _when(t), t.text("source", "")
    )


def _limit_keys(t: Table) -> dict[str, Any]:
    """``limit = { sections = 4, refusal = "..." }``: QEMU refuses the device once that many
    sections of its VMSD exist (the board's ports and earlier -devices alike)."""
    limit = t.table("limit")
    limit.reject_unknown({"sections", "refusal"})
    if not limit.data:
        return {}
    return {"limit": limit.integer("sections"), "limit_refusal": limit.text("refusal")}


_SPEEDS = ("low", "full", "high", "super")
_CHILD_BUS_KINDS = ("usb", "scsi", "hda", "virtio-serial", "ide")
"""Buses a controller brings and a device plugs into (ordering.topology places them)."""


def _speeds(t: Table, key: str) -> tuple[str, ...]:
    text = t.text(key, "")
    speeds = tuple(s for s in text.split("+") if s)
    if any(s not in _SPEEDS for s in speeds):
        raise t.doc.error((*t.path, key), f"{key}: expected speeds joined by '+' ({', '.join(_SPEEDS)}), got {text!r}")
    return speeds


def _child_bus_keys(t: Table) -> dict[str, Any]:
    """``child_bus``, ``usb_ports``, ``usb_speeds``, ``auto_hub``, ``scsi_*``, ``audiodev``."""
    audio = t.table("audiodev")
    audio.reject_unknown({"required_since", "refusal"})
    child_bus = t.text("child_bus", "", choices=("", *_CHILD_BUS_KINDS))
    if child_bus == "scsi" and not (t.integer("scsi_targets", 0) and t.integer("scsi_luns", 0)):
        raise t.doc.error(t.path, "a SCSI controller (child_bus = \"scsi\") needs scsi_targets and scsi_luns")
    return {
        "child_bus": child_bus,
        "child_buses": t.integer("child_buses", 1),
        "usb_ports": _usb_port_groups(t, prop=True),
        "usb_speeds": _speeds(t, "usb_speeds"),
        "auto_hub": t.text("auto_hub", ""),
        "scsi_targets": t.integer("scsi_targets", 0),
        "scsi_luns": t.integer("scsi_luns", 0),
        "audiodev": "audiodev" in t.data,
        "audiodev_required_since": audio.text("required_since", ""),
        "audiodev_refusal": audio.text("refusal", ""),
    }


_MACHINE_KEYS = frozenset(
    {"machine", "aliases", "arch", "default_bus", "root_bus_kind", "source", "reserved_slots",
     "boot", "cpu", "platform", "late", "hotplug_cpu", "options", "notes", "release",
     "apic_id", "cpus_hotpluggable", "modelled_options", "inert_options", "ide_buses", "usb_bus", "root_bus_hotplug", "virtio_mmio", "virtio_mmio_base", "virtio_mmio_stride", "max_cpus", "max_cpus_source",
     "smp_levels", "smp_levels_source"}
)


def read_machine(path: Path) -> MachineLayout:
    """``machines/<R>/<machine>.toml``."""
    _, t = open_toml(path)
    t.reject_unknown(_MACHINE_KEYS)
    options = t.table("options")
    return MachineLayout(
        name=t.text("machine"),
        aliases=t.texts("aliases"),
        arch=t.text("arch"),
        default_bus=t.text("default_bus"),
        root_bus_kind=t.text("root_bus_kind", "pci"),
        reserved_slots=t.texts("reserved_slots", ()),
        boot=tuple(_registration(r) for r in t.tables("boot")),
        cpu=tuple(_registration(r) for r in t.tables("cpu")),
        platform=tuple(_registration(r) for r in t.tables("platform")),
        late=tuple(_registration(r) for r in t.tables("late")),
        hotplug_cpu=tuple(_registration(r) for r in t.tables("hotplug_cpu")),
        options={k: str(v) for k, v in options.data.items()},
        modelled_options=frozenset(t.texts("modelled_options", ())),
        inert_options=frozenset(t.texts("inert_options", ())),
        ide_buses=t.integer("ide_buses", 0),
        max_cpus=t.integer("max_cpus", 0),
        smp_levels=t.texts("smp_levels", ()),
        virtio_mmio=tuple(t.integer(k, 0) for k in ("virtio_mmio", "virtio_mmio_base", "virtio_mmio_stride")),  # type: ignore[arg-type]
        root_bus_hotplug=t.text("root_bus_hotplug", "never"),
        usb_buses=tuple(_board_usb_bus(b) for b in t.tables("usb_bus")),
        source=t.text("source"),
        file=str(path),
    )
