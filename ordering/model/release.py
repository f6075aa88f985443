"""What one QEMU release knows: its enum, its priority-bearing VMSDs, its machines and devices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ordering.errors import UnknownName
from ordering.model.machine import DeviceType, MachineLayout, machine_type_version
from ordering.model.priority import PriorityLevel, PriorityScheme
from ordering.model.rule import Kind


class Registration(StrEnum):
    """How a VMSD or handler reaches the stream."""

    SECTION = "section"
    """Registered as a section of its own: its priority orders the stream."""
    NESTED = "nested"
    """Only ever inside another section: its priority has no effect on order."""
    EARLY_SETUP = "early_setup"
    """A section sent as FULL in the setup phase, before RAM pages."""
    HANDLER = "handler"
    """SaveVMHandlers registered with register_savevm_live: no VMSD, always DEFAULT."""


@dataclass(frozen=True)
class VmsdFact:
    """A VMSD (or handler) whose priority or registration matters, with its source."""

    name: str
    symbol: str
    file: str
    priority: str
    registration: Registration
    how: str = ""
    inside: str = ""
    source: str = ""

    @property
    def orders_stream(self) -> bool:
        """Whether this VMSD's own ``.priority`` can take effect."""
        return self.registration in (Registration.SECTION, Registration.EARLY_SETUP)


@dataclass(frozen=True)
class Unmigratable:
    """A VMSD with ``.unmigratable = 1``: a VM holding it cannot migrate."""

    name: str
    symbol: str
    file: str
    device: str
    source: str = ""
    when: str = ""
    """Device-property condition under which it blocks (``pci-id=``: only without a pci-id)."""


@dataclass(frozen=True)
class BlockerFact:
    """A migration blocker a device adds at realize (``migrate_add_blocker``), in QEMU's words.

    It applies to every ``device`` whose properties satisfy ``when`` in a VM that also has a
    section of kind ``with_kind`` (when given). ``conditional`` blockers depend on what the
    host device supports; they are reported, not counted as findings.
    """

    device: str
    message: str
    source: str
    when: str = ""
    with_kind: str = ""
    conditional: str = ""


@dataclass(frozen=True)
class Features:
    """Release features that change the order or its hazards."""

    early_setup: bool = False
    zero_priority_is_default: bool = False
    switchover_start: bool = False
    vfio_multifd_load_thread: bool = False
    vfio_config_load_after_iter: bool = False
    duplicate_section_check: bool = False
    early_setup_before_start: bool = False
    """Setup sends every early_setup FULL section before any START (seen on 11.1); before,
    one walk of the list interleaved them (10.2: qemu_savevm_state_setup)."""
    no_hpet_no_acpi_flags: bool = False
    """``-no-hpet`` and ``-no-acpi`` are taken (as ``-machine hpet=off`` / ``acpi=off``)."""
    hotplug_needs_free_port_slot0: bool = False
    """A device hot-plugged onto a PCIe port whose slot 0 is taken is refused."""
    gicv2_its_refused: bool = False
    gicv3_above_8_cpus: bool = False
    smp_zero_refused: bool = False
    """``-smp`` with a parameter of 0 is refused; before, it was read as omitted, with a warning."""
    x2apic_needs_kernel_irqchip: bool = False
    """An APIC id of 255 or more (among ``maxcpus``) needs KVM's in-kernel irqchip (on or
    split) and KVM's X2APIC API: TCG and ``kernel-irqchip=off`` are refused."""
    x2apic_needs_cpu_feature: bool = False
    """Each vCPU made with an APIC id of 255 or more needs the x2APIC feature in its CPU
    model (TCG's userspace APIC emulates x2APIC)."""
    x2apic_refusal_aborts: bool = False
    """A vCPU refused for its APIC id aborts QEMU (error_abort: at start, and at a vCPU's
    ``device_add``, which kills the running VM) instead of exiting or failing the command."""
    intremap_needs_userspace_ioapic: bool = False
    """``intel-iommu,intremap=on`` under KVM with ``kernel-irqchip=on`` is refused."""
    smp_books_drawers_modules: bool = False
    """``-smp`` takes ``books``, ``drawers`` and ``modules`` (before: "Parameter 'smp.books' is
    unexpected"), and refuses a level the machine lacks as "books > 1 not supported by this
    machine's CPU topology" (7.2: "dies not supported by ...")."""
    amd_iommu_x2apic_needs_xtsup: bool = False
    """Under KVM, ``amd-iommu`` with APIC ids from 255 up needs ``xtsup=on``."""
    eim_needs_kvm_split: bool = False
    """``intel-iommu,eim=on`` needs ``-accel kvm`` with ``kernel-irqchip=split`` (later
    releases take it under TCG too)."""
    kvm_userspace_apic_refused: bool = False
    """KVM with ``kernel-irqchip=off`` is refused: "KVM does not support userspace APIC"."""
    """virt without gic-version= picks GICv3 when more than 8 vCPUs are asked for (TCG);
    before, the default GICv2 refused them."""
    """virt refuses ``its=on`` with GICv2 instead of ignoring the ITS."""
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CpuModels:
    """The x86 CPU models of a release and whether their vCPUs have x2APIC
    (``models/cpus/<release>.toml``, captured from the binary over QMP)."""

    tcg_x2apic: frozenset[str]
    tcg_without: frozenset[str]
    kvm_without: frozenset[str]
    source: str = ""

    @property
    def names(self) -> frozenset[str]:
        """Every model the binary lists but ``host`` (which needs KVM)."""
        return self.tcg_x2apic | self.tcg_without


@dataclass(frozen=True)
class Release:
    """One QEMU release as migorder models it.

    The **source** binary's release decides the load order: the destination never re-sorts.
    """

    name: str
    version: tuple[int, int]
    source: str
    scheme: PriorityScheme
    vmsds: Mapping[str, VmsdFact]
    unmigratable: Mapping[str, Unmigratable]
    features: Features
    machines: Mapping[str, MachineLayout]
    machines_source: str
    devices: Mapping[str, DeviceType]
    kinds: Mapping[str, Kind] = field(default_factory=dict)
    blockers: tuple[BlockerFact, ...] = ()
    file: str = ""
    device_properties: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Device type → the properties ``-device TYPE,help`` lists on this release's binary
    (``models/properties/<release>.toml``); empty when no binary was read."""
    device_properties_source: str = ""
    cpu_models: CpuModels | None = None
    """Which ``-cpu`` models have x2APIC under TCG and KVM; ``None`` when not captured."""
    device_aliases: Mapping[str, str] = field(default_factory=dict)
    """QEMU's -device type aliases (``virtio-iommu`` → ``virtio-iommu-pci``;
    ``models/aliases.toml``, read from qdev-monitor.c qdev_alias_table)."""
    assumes: tuple[str, ...] = ()
    """What this release borrows or could not read (a release file or a scanned tree): said
    under "Assumes" in every report. Empty for a bundled release."""

    def __repr__(self) -> str:
        """The release's name and where it was read (its model is too large to print)."""
        return f"<Release {self.name} from {self.file or self.source}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """hypothesis's pretty printer (a falsifying example) uses the short repr too."""
        p.text(repr(self))

    def priority_of(self, vmsd: str) -> PriorityLevel:
        """The priority a section registered with VMSD ``vmsd`` is sorted by in this release.

        A VMSD this release does not list, a handler and a nested VMSD are DEFAULT.
        """
        fact = self.vmsds.get(vmsd)
        if fact is None or not fact.orders_stream:
            return self.scheme.default
        return self.scheme.resolve(fact.priority)

    def is_early_setup(self, vmsd: str) -> bool:
        """Whether a section of this VMSD goes in the setup phase."""
        fact = self.vmsds.get(vmsd)
        return (
            self.features.early_setup
            and fact is not None
            and fact.registration is Registration.EARLY_SETUP
        )

    def machine(self, name: str) -> tuple[MachineLayout, str]:
        """The machine layout for ``-machine name`` and the machine type it resolves to.

        A versioned machine type the release's binary does not list is refused in QEMU's
        words (:meth:`unsupported_machine`); a name outside the modelled families is refused
        as unmodelled, since the binary may have it.

        >>> from ordering.sources.models import load_knowledge
        >>> load_knowledge().release("11.1").machine("vexpress-a9")
        Traceback (most recent call last):
        ...
        ordering.errors.UnknownName: -machine vexpress-a9: migorder does not model this machine type (release 11.1 models pc, q35, virt and their versioned types)
        """
        for layout in self.machines.values():
            if name == layout.name or name in layout.aliases:
                resolved = name
                if not machine_type_version(name):
                    # The short name is this release's own newest machine type, even when the
                    # layout was captured on (and borrowed from) another release.
                    prefix = layout.type_prefix
                    resolved = f"{prefix}{self.name}" if prefix else layout.aliases[0]
                return layout, resolved
            if layout.type_prefix and name.startswith(layout.type_prefix) and self._borrowed_type(layout, name):
                return layout, name
        known = ", ".join(sorted(self.machines))
        if not any(name.startswith(m.type_prefix) for m in self.machines.values() if m.type_prefix):
            # Not a machine type of a modelled family (vexpress-a9, versatilepb, collie): the
            # binary may well have it (10.0 and 11.1 do), so QEMU's refusal is not claimed.
            raise UnknownName(
                f"-machine {name}: migorder does not model this machine type "
                f"(release {self.name} models {known} and their versioned types)"
            )
        raise UnknownName(f"{self.unsupported_machine(name)} (release {self.name} has {known})")

    def _borrowed_type(self, layout: MachineLayout, name: str) -> bool:
        """A versioned type of a layout borrowed from another release's binary (10.1 uses
        10.0's): the binary's own list is unknown, so any version from the oldest the layout
        lists up to this release is taken (inferred). A layout read from this release's own
        binary (its aliases hold this release's type) lists every type the binary has
        (``-machine help``), so anything else is refused."""
        version = machine_type_version(name)
        if version is None or f"{layout.type_prefix}{self.name}" in layout.aliases:
            return False
        listed = [v for v in (machine_type_version(a) for a in layout.aliases) if v is not None]
        return bool(listed) and min(listed) <= version <= self.version

    def unsupported_machine(self, name: str) -> str:
        """QEMU's refusal of a machine type its binary does not have (``-machine help`` lists
        the ones it has): 7.2 names no type, 10.0 and 11.1 quote it (captured on Debian's
        7.2, 10.0 and 11.1 binaries; hw/core/machine.c or vl.c select_machine)."""
        quoted = "" if self.version < (10, 0) else f': "{name}"'
        return f"QEMU {self.name} refuses -machine {name}: 'unsupported machine type{quoted}'"

    def device(self, driver: str, origin: str = "") -> DeviceType:
        """The device type ``driver`` (a ``-device`` name given at ``origin``)."""
        try:
            return self.devices[self.device_aliases.get(driver, driver)]
        except KeyError:
            where = f"{origin}: " if origin else ""
            raise UnknownName(
                f"{where}unknown device type {driver!r}: migorder models {len(self.devices)} "
                "(`migorder devices` lists them)"
            ) from None
