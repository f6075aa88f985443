"""Machines and device types: what each registers, in the order QEMU registers it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class RegistrationTemplate:
    """One SaveStateEntry a machine or device registers.

    ``idstr`` is the bare VMSD name or contains ``{path}`` for the device's qdev path
    (``{path}/vfio`` → ``0000:00:02.0/vfio``). Every registration takes the next section_id,
    whether or not it is ever sent.
    """

    vmsd: str
    idstr: str
    sent: bool = True
    iterable: bool = False
    full: bool = True
    instance: str = "auto"
    """``auto`` (calculate_new_instance_id), ``cpu-index``, ``apic-id`` or a number."""
    first_only: bool = False
    when: str = ""
    since: str = ""
    until: str = ""
    of: str = ""
    repeat: str = ""
    """How many times the board registers it, from the command line (``REPEATS``)."""
    once: bool = False
    """Registered at most once per VM: by the first device whose template admits it."""
    source: str = ""


REPEATS: dict[str, str] = {
    "audiodev": "once per -audiodev (audio), none without one",
    "serial-isa": "once per -serial index 0..3 with a backend (x86 boards: serial_hds_isa_init "
    "creates an ISA serial for each of the MAX_ISA_SERIAL_PORTS indices whose serial_hd is set)",
    "serial-second": "once when -serial index 1 has a backend (virt since 9.1: a second "
    "NonSecure UART)",
    "parallel": "once per -parallel with a backend (x86 boards: parallel_hds_isa_init)",
    "pflash": "once per flash unit backed from unit 0 on (x86 boards: -drive if=pflash, "
    "-pflash, -machine pflash0=/pflash1=; pc_system_flash_map realizes a pflash_cfi01 per unit)",
    "chardev-vdagent": "once per -chardev qemu-vdagent (ui/vdagent.c vdagent_chr_init registers "
    "'vdagent' with vmstate_register_any once it can migrate)",
    "netdev-user": "once per -netdev user (net/slirp.c registers a 'slirp' handler); no other "
    "netdev type registers state",
}
"""The ``repeat`` values a registration template may take."""


@cache
def version_tuple(text: str) -> tuple[int, int]:
    """``"7.2"`` → ``(7, 2)``; ``"11.1.3"`` → ``(11, 1)``.

    >>> version_tuple("10.2.2")
    (10, 2)
    """
    parts = text.split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


_VERSIONED = re.compile(r"^(?P<prefix>.*-)(?P<ver>\d+\.\d+(?:\.\d+)?)$")


def machine_type_version(machine_type: str) -> tuple[int, int] | None:
    """The version of a versioned machine type (``pc-q35-7.2`` → ``(7, 2)``).

    >>> machine_type_version("virt-10.0")
    (10, 0)
    >>> machine_type_version("q35") is None
    True
    >>> machine_type_version("pc-q35-4.0.1")
    (4, 0)
    """
    m = _VERSIONED.match(machine_type)
    return version_tuple(m.group("ver")) if m else None


def condition_holds(
    when: str,
    *,
    release: tuple[int, int],
    machine_version: tuple[int, int] | None,
    options: dict[str, str],
) -> bool:
    """Evaluate a registration condition.

    Conditions are ``""`` (always), ``machine>7.2`` / ``machine<=7.2`` (the machine type's
    version), ``release>=8.0``, ``key=value`` / ``key!=value`` (a machine or device option),
    joined with ``&&`` or ``,``.

    >>> condition_holds("machine>7.2", release=(10, 0), machine_version=(7, 2), options={})
    False
    >>> condition_holds("gic-version=3 && its=on", release=(7, 2), machine_version=None,
    ...                 options={"gic-version": "3", "its": "on"})
    True
    """
    for clause in (c.strip() for c in when.replace("&&", ",").split(",")):
        if clause and not _clause_holds(clause, release, machine_version, options):
            return False
    return True


_CMP = re.compile(r"^(machine|release)\s*(>=|<=|>|<|==)\s*(\d+\.\d+)$")


def _clause_holds(
    clause: str,
    release: tuple[int, int],
    machine_version: tuple[int, int] | None,
    options: dict[str, str],
) -> bool:
    m = _CMP.match(clause)
    if m:
        left = release if m.group(1) == "release" else (machine_version or release)
        right = version_tuple(m.group(3))
        op = m.group(2)
        return {
            ">": left > right,
            ">=": left >= right,
            "<": left < right,
            "<=": left <= right,
            "==": left == right,
        }[op]
    if "!=" in clause:
        key, value = (s.strip() for s in clause.split("!=", 1))
        return _as_bool(options.get(key, "")) != _as_bool(value)
    if "=" in clause:
        key, value = (s.strip() for s in clause.split("=", 1))
        return _as_bool(options.get(key, "")) == _as_bool(value)
    return bool(options.get(clause, ""))


_TRUE = frozenset({"on", "yes", "true", "y"})
_FALSE = frozenset({"off", "no", "false", "n"})


def _as_bool(value: str) -> str:
    """QEMU's boolean spellings (qapi_bool_parse: on/yes/true/y, off/no/false/n) as on/off;
    any other value unchanged.

    >>> _as_bool("true"), _as_bool("n"), _as_bool("auto")
    ('on', 'off', 'auto')
    """
    low = value.lower()
    return "on" if low in _TRUE else "off" if low in _FALSE else value


def is_on(value: str) -> bool:
    """Whether a property value is one of QEMU's spellings of true."""
    return value.lower() in _TRUE


def is_off(value: str) -> bool:
    """Whether a property value is one of QEMU's spellings of false (not merely unset)."""
    return value.lower() in _FALSE


def valid_condition(when: str) -> bool:
    """Whether ``when`` is a condition :func:`condition_holds` understands."""
    for clause in (c.strip() for c in when.replace("&&", ",").split(",")):
        if not clause:
            continue
        if _CMP.match(clause) or re.match(r"^[\w.-]+\s*(!?=)\s*[\w.:-]*$", clause):
            continue
        return False
    return True


@dataclass(frozen=True)
class MachineLayout:
    """A machine's built-in registrations for one release, captured from the real binary."""

    name: str
    aliases: tuple[str, ...]
    arch: str
    default_bus: str
    root_bus_kind: str
    reserved_slots: tuple[str, ...]
    boot: tuple[RegistrationTemplate, ...]
    cpu: tuple[RegistrationTemplate, ...]
    platform: tuple[RegistrationTemplate, ...]
    late: tuple[RegistrationTemplate, ...]
    hotplug_cpu: tuple[RegistrationTemplate, ...]
    options: dict[str, str]
    source: str
    file: str = ""
    modelled_options: frozenset[str] = frozenset()
    """``-machine`` options whose effect on the sections the templates' ``when`` model."""
    inert_options: frozenset[str] = frozenset()
    """``-machine`` options captured to leave every section and section_id as they are."""
    root_bus_hotplug: str = ""
    """When the root bus takes hot-plugs (a condition; ``never`` for none: q35's and virt's
    PCIe root complex)."""
    usb_buses: tuple[BoardUsbBus, ...] = ()
    """USB buses of the board's own controllers, each present when its ``when`` holds."""
    ide_buses: int = 0
    max_cpus: int = 0
    """The machine type's ``max_cpus``: QEMU refuses a larger ``maxcpus`` (0: not known)."""
    smp_levels: tuple[str, ...] = ()
    """``-smp`` levels beyond sockets, cores and threads the machine's CPU topology has (x86:
    dies, modules; virt: clusters): another one above 1 is refused."""
    virtio_mmio: tuple[int, int, int] = (0, 0, 0)
    """The board's virtio-mmio transports: (count, base address, stride); a ``-device
    virtio-*-device`` takes the free one with the highest address."""
    """IDE buses of the built-in controller (``ide.0`` ...): q35's AHCI has 6, pc's PIIX 2."""

    @property
    def type_prefix(self) -> str:
        """``pc-q35-`` for q35: versioned machine types of this family start with it."""
        for alias in self.aliases:
            m = _VERSIONED.match(alias)
            if m:
                return m.group("prefix")
        return ""


@dataclass(frozen=True)
class DeviceType:
    """A ``-device`` type: where it plugs, what bus it brings, what it registers."""

    name: str
    kind: str
    bus: str
    provides_bus: str
    first_slot: int
    registers: tuple[RegistrationTemplate, ...]
    dma: bool
    msi: bool
    source: str
    notes: str = ""
    since: str = ""
    """The first release that has it; older releases refuse it."""
    machines: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    """The targets whose binary has the type (``x86_64``); empty: every modelled one."""
    """Machines that accept it (a sysbus device such as intel-iommu); empty: any."""
    refusal: str = ""
    """QEMU's words when another machine refuses it."""
    child_bus: str = ""
    child_buses: int = 1
    """How many buses of ``child_bus`` it brings (an AHCI controller: one per port)."""
    """``usb`` | ``scsi`` | ``hda``: the non-PCI bus it brings (a USB/SCSI/HDA controller)."""
    usb_ports: tuple[UsbPortGroup, ...] = ()
    """The ports of the USB bus it brings (a controller) or extends (a hub)."""
    usb_speeds: tuple[str, ...] = ()
    """Speeds a USB device attaches at (``full``, ``high``, ``super``)."""
    auto_hub: str = ""
    """Device type QEMU chains on when a device takes the last free port of the bus it brings."""
    scsi_targets: int = 0
    """Number of SCSI target ids (scsi-id 0 .. n-1) of the bus it brings."""
    scsi_luns: int = 0
    """Number of LUNs per target of the bus it brings."""
    audiodev: bool = False
    """Takes ``audiodev=ID``, which must name an ``-audiodev``."""
    audiodev_required_since: str = ""
    """From this release on, QEMU refuses it without ``audiodev=``."""
    audiodev_refusal: str = ""
    slot0_refused_on: tuple[str, ...] = ()
    """Machines (``virt``, or ``pc:acpi=off`` with a condition) where QEMU refuses a device in
    slot 0 of this bridge's bus: the SHPC hotplug controller takes only slots 1-31."""
    slot0_refused_text: str = ""
    limit: int = 0
    """QEMU refuses the device when this many sections of its first VMSD already exist."""
    limit_refusal: str = ""
    expander: str = ""
    """``pci`` | ``pcie``: a PCI expander bridge (pxb, pxb-pcie): the bus it provides is a new
    root bus numbered ``bus_nr`` (a legacy pxb's devices sit behind its internal bridge)."""
    """QEMU's words for that refusal."""


@dataclass(frozen=True)
class BoardUsbBus:
    """A USB bus the board itself brings (``-machine usb=on``): its controller's section is a
    machine entry; devices plug into the bus as into a ``-device`` controller's."""

    name: str
    path: str
    ports: tuple[UsbPortGroup, ...]
    auto_hub: str
    when: str
    source: str = ""


@dataclass(frozen=True)
class UsbPortGroup:
    """Ports 1..count of a USB bus that accept ``speeds``; ``prop`` overrides ``count``."""

    speeds: tuple[str, ...]
    count: int
    prop: str = ""


_SIZE = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)(\.[0-9]+)?([BbKkMmGgTtPpEe]?)")
_UNITS = {"": 0, "b": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}


def qemu_size(text: str, default_unit: str = "") -> int | None:
    """A size as QEMU reads it (``4G``, ``512M``, ``1.5G``, ``1024``), in bytes; ``None`` when
    QEMU refuses it: no number, a fraction without a unit, an exponent, or 2^64 or more.

    >>> qemu_size("4G"), qemu_size("1.5K"), qemu_size("128", "m")
    (4294967296, 1536, 134217728)
    >>> qemu_size("zz"), qemu_size("1e400G"), qemu_size("1.5"), qemu_size("16E")
    (None, None, None, None)
    """
    m = _SIZE.fullmatch(text.strip())
    if not m or (m.group(2) and (not m.group(3) or m.group(1).lower().startswith("0x"))):
        return None
    unit = _UNITS[(m.group(3) or default_unit).lower()]
    whole = int(m.group(1), 0) if m.group(1).lower().startswith("0x") else int(m.group(1))
    frac = m.group(2) or ""
    value = (whole << unit) + (int(frac[1:]) << unit) // 10 ** (len(frac) - 1) if frac else whole << unit
    return value if value < 1 << 64 else None
