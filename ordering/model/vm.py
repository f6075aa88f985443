"""A VM as the user describes it: machine, vCPUs, devices in command-line order, hot-plugs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class DeviceSpec:
    """One ``-device`` (or ``device_add``) as given, before any bus or slot is assigned."""

    driver: str
    id: str = ""
    bus: str = ""
    addr: str = ""
    props: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""
    """Where it was given (``scenario.toml:12`` or ``argv[7]``), for error messages."""


@dataclass(frozen=True)
class Topology:
    """``-smp``: vCPUs present at start, the maximum, and the topology that makes APIC ids."""

    cpus: int = 1
    maxcpus: int = 1
    sockets: int = 1
    dies: int = 1
    cores: int = 1
    threads: int = 1
    modules: int = 1
    """x86's modules (between dies and cores; ``-smp ...,modules=`` from 9.1)."""

    def apic_id(self, index: int) -> int:
        """The initial APIC id of vCPU ``index`` (x86 packs each level into a power of two).

        >>> Topology(cpus=6, maxcpus=6, sockets=2, cores=3).apic_id(3)
        4
        >>> [Topology(cpus=6, maxcpus=6, cores=3, modules=2).apic_id(i) for i in range(6)]
        [0, 1, 2, 4, 5, 6]
        """
        thread = index % self.threads
        core = (index // self.threads) % self.cores
        module = (index // (self.threads * self.cores)) % self.modules
        die = (index // (self.threads * self.cores * self.modules)) % self.dies
        socket = index // (self.threads * self.cores * self.modules * self.dies)
        tw, cw, mw, dw = self._widths
        return ((((socket << dw | die) << mw | module) << cw | core) << tw) | thread

    @cached_property
    def _widths(self) -> tuple[int, int, int, int]:
        """Bits of the thread, core, module and die fields: ceil(log2(count)) each."""
        return tuple(max(0, (n - 1).bit_length()) for n in (self.threads, self.cores, self.modules, self.dies))  # type: ignore[return-value]


@dataclass(frozen=True)
class HotplugStep:
    """A vCPU or a device plugged after start; it registers after everything before it."""

    cpu: int | None = None
    device: DeviceSpec | None = None
    unplug: str = ""
    """The qdev id of a device unplugged at this step (its sections go away)."""
    any_order: bool = field(default=False, repr=False)
    """The scenario marks this step ``any-order``: the marked steps may run in any order
    among themselves (``migorder explore`` tries them all)."""


NEWER_OPTIONS: Mapping[str, tuple[int, int]] = {"-run-with": (8, 1)}
"""Options that register nothing, with the first release that has them. ``-run-with`` came in
8.1 (docs/about/deprecated.rst: "-async-teardown (since 8.1): use -run-with async-teardown=on");
captured: 7.2 refuses it ('-run-with: invalid option'), and ``-run-with async-teardown=on``
changes no section on 10.0 or 11.1 (libvirt's async-teardown form)."""

NEWER_VALUES: Mapping[tuple[str, str], tuple[str, tuple[int, int]]] = {
    ("-audiodev", "pipewire"): ("driver", (8, 1)),
    ("-object", "acpi-generic-initiator"): ("qom-type", (9, 0)),
}
"""(option, value) → the QAPI parameter that takes it and the first release that has it.
qapi/audio.json AudiodevPipewireOptions and qapi/qom.json AcpiGenericInitiatorProperties say
"Since: 8.1" and "Since: 9.0"; captured: 7.2 refuses both ("Parameter 'driver' does not
accept value 'pipewire'", "Parameter 'qom-type' does not accept value
'acpi-generic-initiator'"); neither registers a section."""


@dataclass(frozen=True)
class Vm:
    """A VM: what QEMU is started with on the source, plus what is hot-plugged later.

    ``guest`` holds guest-state knobs for the simulator (MSI targets, IOMMU mappings ...).
    """

    name: str
    machine: str
    machine_options: Mapping[str, str]
    topology: Topology
    devices: tuple[DeviceSpec, ...]
    hotplug: tuple[HotplugStep, ...] = ()
    memory: str = ""
    objects: tuple[Mapping[str, str], ...] = ()
    guest: Mapping[str, object] = field(default_factory=dict)
    migration: Mapping[str, str] = field(default_factory=dict)
    """Migration capabilities the source sets (``multifd = "on"``); QEMU's defaults otherwise."""
    audiodevs: tuple[str, ...] = ()
    """ids of the ``-audiodev`` backends (each registers an ``audio`` entry at start)."""
    serials: tuple[str, ...] = ()
    """Every ``-serial`` backend in order, ``none`` included: ``none`` keeps its index empty
    (vl.c serial_parse), and the board creates a UART for each index that has a backend."""
    parallels: tuple[str, ...] = ()
    """The ``-parallel`` backends other than ``none`` (vl.c parallel_parse skips it)."""
    drives: tuple[str, ...] = ()
    """The ``if=`` of every ``-drive`` (``""`` when not given: the board's default)."""
    netdevs: tuple[str, ...] = ()
    """The type of every ``-netdev`` in order (``user`` registers a ``slirp`` handler)."""
    firmware: str = ""
    """``-bios FILE``: firmware is loaded (virt then replaces its GPIO keys with an ACPI GED)."""
    devices_for: Mapping[str, tuple[DeviceSpec, ...]] = field(default_factory=dict)
    """Release name → the devices as started on that release, where a scenario's
    ``[release_globals]`` adjust them (7.2 spells VFIO migration ``x-enable-migration``)."""
    removed_options: tuple[str, ...] = ()
    """Legacy options given that later releases refuse (``-no-hpet``: gone in 9.0)."""
    newer_options: tuple[str, ...] = ()
    newer_values: tuple[tuple[str, str], ...] = ()
    """(option, value) pairs given that older releases refuse (:data:`NEWER_VALUES`)."""
    """Options given that register nothing but older releases refuse (:data:`NEWER_OPTIONS`)."""
    guest_source: str = ""
    """``file:line`` of a scenario's ``[guest]`` table, for errors about it."""
    smp_zero: tuple[str, ...] = ()
    """``-smp`` parameters given as 0 (read as omitted; releases with ``smp_zero_refused``
    refuse them)."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """hypothesis's falsifying examples show the VM as a short command line (and its
        hot-plugs and guest state), not every field."""
        t = self.topology
        parts = [f"-machine {self.machine}" + "".join(f",{k}={v}" for k, v in self.machine_options.items()),
                 f"-smp {t.cpus},maxcpus={t.maxcpus}"]
        for d in self.devices:
            opts = "".join(f",{k}={v}" for k, v in (("id", d.id), ("bus", d.bus), ("addr", d.addr)) if v)
            parts.append(f"-device {d.driver}{opts}" + "".join(f",{k}={v}" for k, v in d.props.items()))
        for h in self.hotplug:
            if h.cpu is not None:
                parts.append(f"[hot-plug vCPU {h.cpu}]")
            elif h.device is not None:
                parts.append(f"[hot-plug {h.device.driver}{',id=' + h.device.id if h.device.id else ''}]")
            elif h.unplug:
                parts.append(f"[unplug {h.unplug}]")
        if self.migration:
            parts.append("migration " + ",".join(f"{k}={v}" for k, v in self.migration.items()))
        guest = f", guest={dict(self.guest)!r}" if self.guest else ""
        p.text(f"Vm({self.name!r}: {' '.join(parts)}{guest})")

    def serial_ports(self, first: int, last: int) -> int:
        """How many serial indices in ``first..last`` (inclusive) have a backend.

        >>> Vm("v", "q35", {}, Topology(), (), serials=("null", "none", "stdio")).serial_ports(0, 3)
        2
        """
        return sum(1 for s in self.serials[first : last + 1] if s != "none")
    def pflash_units(self) -> int:
        """Flash units the board backs, counted from unit 0 as QEMU maps them (a gap ends
        the map: hw/i386/pc_sysfw.c pc_system_flash_map): ``-drive if=pflash`` / ``-pflash``
        take units in order, ``-machine pflash0=,pflash1=`` name them.

        >>> Vm("v", "q35", {"pflash0": "code", "pflash1": "vars"}, Topology(), ()).pflash_units()
        2
        >>> Vm("v", "q35", {}, Topology(), (), drives=("pflash",)).pflash_units()
        1
        """
        units = [False, False]
        for n in range(self.drives.count("pflash")):
            if n < len(units):
                units[n] = True
        for n in range(len(units)):
            units[n] = units[n] or bool(self.machine_options.get(f"pflash{n}"))
        return units.index(False) if False in units else len(units)

    source: str = ""
    description: str = ""
    chardevs: tuple[str, ...] = ()
    """The backend type of every ``-chardev`` in order (``qemu-vdagent`` registers state)."""
    binary: str = ""
    """The QEMU binary the command line names first (``qemu-system-x86_64``), if any."""
    cpu: str = ""
    """``-cpu`` as given (``qemu64,+x2apic``); empty for the binary's default model."""
    smp_levels: Mapping[str, int] = field(default_factory=dict)
    """``-smp`` levels given beyond sockets, dies, cores and threads (``clusters``, ``modules``,
    ``books``, ``drawers``), as given: the release and machine decide whether QEMU takes them."""
    smp_cores_filled: bool = False
    """``-smp`` gave dies but neither sockets nor cores: cores were filled (machine types
    since 6.2); an older machine type fills sockets instead (:func:`ordering.refusals.refuse`)."""
