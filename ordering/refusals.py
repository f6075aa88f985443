"""Stage one of :func:`ordering.order.derive`: what QEMU refuses in a command line.

:func:`refuse` runs every check that needs no placement or registration against the release
and machine: ``-machine`` options (modelled, captured inert, or refused), ``-drive``
interfaces, device ids, each ``-device`` and ``device_add`` (known to the release, allowed on
the machine, its ``audiodev=``, its properties against what the release's binary lists),
vCPU hot-plugs against ``maxcpus``. Each refusal is a :class:`~ordering.errors.ScenarioError`
in QEMU's words where QEMU has words for it. What QEMU refuses only once devices sit on buses
(a slot in use, a bus without hotplug) is :func:`ordering.place.place`'s; a device type's
``limit`` is counted while registering (:func:`check_limit`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ordering.apic_ids import (
    X86_IOMMUS,
    check_apic_ids,
    check_hotplug_cpu,
    check_interrupt_remapping,
    check_smp_levels,
)
from ordering.errors import ScenarioError
from ordering.model.machine import (
    DeviceType,
    MachineLayout,
    condition_holds,
    is_off,
    is_on,
    machine_type_version,
    version_tuple,
)
from ordering.model.release import Release
from ordering.model.section import Section
from ordering.model.vm import NEWER_OPTIONS, NEWER_VALUES, DeviceSpec, Vm


@dataclass(frozen=True)
class Accepted:
    """A VM QEMU accepts on a release, and what its ``when`` conditions read.

    ``options`` are the board's options, the checked ``-machine`` options and the VM's own
    (``vm.audiodevs``: how many ``-audiodev``; ``vm.firmware``: whether ``-bios`` loads
    firmware; ``migration.*``: ``-global migration.*``). ``devices`` are the cold-plugged
    ``-device`` specs this release builds (a scenario may give a release its own list).
    """

    release: Release
    vm: Vm
    layout: MachineLayout
    machine_type: str
    machine_version: tuple[int, int] | None
    options: dict[str, str]
    devices: tuple[DeviceSpec, ...]

    def holds(self, when: str, device_options: Mapping[str, str] | None = None) -> bool:
        """Whether a ``when`` condition holds on this release, machine type and its options
        (a device's own options, when given, override the machine's)."""
        return condition_holds(
            when,
            release=self.release.version,
            machine_version=self.machine_version,
            options={**self.options, **device_options} if device_options else self.options,
        )


def refuse(release: Release, vm: Vm) -> Accepted:
    """Everything QEMU would refuse in ``vm`` before placing a device, or what it accepts.

    Raises
    ------
    ScenarioError
        The first refusal, in QEMU's words where QEMU has words for it.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> refuse(k.release("10.2"), parse_command_line(["-machine", "q35"])).machine_type
    'pc-q35-10.2'
    >>> refuse(k.release("10.2"), parse_command_line(["-machine", "q35,frobnicate=on"]))
    Traceback (most recent call last):
    ...
    ordering.errors.ScenarioError: command line: -machine q35,frobnicate=...: migorder does not know ...
    """
    layout, machine_type = release.machine(vm.machine)
    if vm.smp_cores_filled and (machine_type_version(machine_type) or (99, 0)) < (6, 2):
        t = vm.topology  # before 6.2 QEMU filled sockets first (prefer_sockets)
        vm = replace(vm, topology=replace(t, sockets=t.cores, cores=1), smp_cores_filled=False)
    check_arch(vm, layout, release)
    check_topology(vm, layout, release, machine_type)
    check_option_values(vm)
    options = {
        **layout.options,
        **machine_options(vm, layout, release),
        "vm.audiodevs": str(len(vm.audiodevs)),
        **{f"migration.{k}": v for k, v in vm.migration.items()},
        # firmware: -bios, or a flash unit 0 (hw/arm/virt.c virt_firmware_init: firmware is
        # loaded when pflash0 has a drive; captured on 7.2, 10.0 and 11.1: pflash0= gives virt
        # the same sections as -bios)
        "vm.firmware": "on" if vm.firmware or vm.pflash_units() else "off",
    }
    check_drives(vm, layout)
    check_ids(vm)
    vm = canonical_devices(release, vm)
    devices = vm.devices_for.get(release.name, vm.devices)
    check_pci_id_links(devices)
    check_memory_devices(vm, layout, devices)
    plain: dict[str, frozenset[str] | None] = {}
    """Drivers already checked whose checks, but for properties, depend on the driver alone,
    with the properties the release's binary lists for them (None: not read)."""
    for spec in (*devices, *(h.device for h in vm.hotplug if h.device is not None)):
        if spec.driver in plain:
            known = plain[spec.driver]
            if known is not None and not known.issuperset(spec.props):
                check_properties(release, spec)  # names the first unknown property
        elif not check_device(release, layout, vm, spec).audiodev:
            plain[spec.driver] = release.device_properties.get(spec.driver)
    present = set(range(vm.topology.cpus))
    for step in vm.hotplug:
        if step.cpu is not None:
            if step.cpu in present or not 0 <= step.cpu < vm.topology.maxcpus:
                raise ScenarioError(
                    vm.source or vm.name,
                    f"hot-plug of vCPU {step.cpu}: expected an absent vCPU index below "
                    f"maxcpus={vm.topology.maxcpus}",
                )
            if layout.arch == "x86_64":
                check_hotplug_cpu(vm, release, step.cpu)
            present.add(step.cpu)
    return Accepted(
        release, vm, layout, machine_type, machine_type_version(machine_type), options, devices
    )


def check_device(release: Release, layout: MachineLayout, vm: Vm, spec: DeviceSpec) -> DeviceType:
    """One ``-device`` or ``device_add``: a type the release has, on a machine that takes it,
    with its ``audiodev=`` and properties as the release's binary wants them."""
    dtype = release.device(spec.driver, spec.origin)
    if dtype.since and release.version < version_tuple(dtype.since):
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: '{spec.driver}' is not a valid device model name in QEMU "
            f"{release.name} (it came in {dtype.since})",
        )
    if dtype.arches and layout.arch not in dtype.arches:
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: QEMU refuses it: \"'{spec.driver}' is not a valid device model "
            f"name\" (qemu-system-{layout.arch} has no such type: it is {', '.join(dtype.arches)}'s)",
        )
    if dtype.machines and layout.name not in dtype.machines:
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: QEMU refuses it on machine {layout.name}"
            + (f" ('{dtype.refusal}')" if dtype.refusal else "")
            + f"; it needs {', '.join(dtype.machines)}",
        )
    if dtype.audiodev:
        check_audiodev(release, vm, spec, dtype)
    if spec.driver in X86_IOMMUS:
        check_interrupt_remapping(vm, release, spec)
    check_properties(release, spec)
    return dtype


def check_audiodev(release: Release, vm: Vm, spec: DeviceSpec, dtype: DeviceType) -> None:
    """``audiodev=`` must name an ``-audiodev``; newer releases refuse a device without it."""
    wanted = spec.props.get("audiodev", "")
    if wanted and wanted not in vm.audiodevs:
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: QEMU refuses it: no -audiodev has id '{wanted}' (7.2: "
            f"\"Property '{spec.driver}.audiodev' can't find value '{wanted}'\"; 10.0 and 11.1: "
            f"\"audiodev '{wanted}' not found\")",
        )
    since = dtype.audiodev_required_since
    if not wanted and since and release.version >= version_tuple(since):
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: QEMU {release.name} refuses it without audiodev=: "
            f"'{dtype.audiodev_refusal}'; give -audiodev DRIVER,id=ID and audiodev=ID",
        )

_GICV2_MAX_CPUS = 8
"""hw/intc/arm_gic_common.h GIC_NCPU: hw/arm/virt.c machvirt_init refuses more vCPUs with GICv2."""

ANY_MACHINE_OPTIONS = frozenset({"accel", "type"})


def machine_options(vm: Vm, layout: MachineLayout, release: Release) -> dict[str, str]:
    """The ``-machine`` options, checked: each is one whose effect the machine's templates
    model, or one captured to change no section; anything else is refused rather than
    silently mis-predicted. Legacy flags later releases removed are refused in QEMU's words."""
    where = vm.source or vm.name
    for flag in vm.removed_options:
        if not release.features.no_hpet_no_acpi_flags:
            raise ScenarioError(
                where,
                f"QEMU {release.name} refuses it: '{flag}: invalid option' (removed in 9.0; "
                f"use -machine {flag.removeprefix('-no-')}=off)",
            )
    for flag in vm.newer_options:
        first = NEWER_OPTIONS[flag]
        if release.version < first:
            raise ScenarioError(
                where, f"QEMU {release.name} refuses it: '{flag}: invalid option' (added in {first[0]}.{first[1]})"
            )
    for option, value in vm.newer_values:
        param, (major, minor) = NEWER_VALUES[(option, value)]
        if release.version < (major, minor):
            raise ScenarioError(
                where,
                f"{option} {value}: QEMU {release.name} refuses it: \"Parameter '{param}' does not accept value "
                f"'{value}'\" (added in {major}.{minor})",
            )
    if layout.name == "virt" and is_on(vm.machine_options.get("ras", "")) and not (vm.firmware or vm.pflash_units()) and not is_off(vm.machine_options.get("acpi", "")):
        # captured on 7.2, 10.0 and 11.1: without firmware virt has no ACPI GED for RAS
        raise ScenarioError(
            where,
            f"-machine {layout.name},ras=on: QEMU {release.name} aborts at start "
            "(\"virt_acpi_setup: Assertion `vms->acpi_dev' failed\": no firmware, so no ACPI GED); "
            "give firmware (pflash0= or -bios) or acpi=off",
        )
    known = layout.modelled_options | layout.inert_options | ANY_MACHINE_OPTIONS
    for key in vm.machine_options:
        if key not in known:
            raise ScenarioError(
                where,
                f"-machine {layout.name},{key}=...: migorder does not know whether this option "
                f"changes the sections QEMU {release.name} registers; the ones it models: "
                f"{', '.join(sorted(known - {'type'}))}",
            )
    options = dict(vm.machine_options)
    gic = options.get("gic-version", "")
    if gic in ("max", "host", "4"):
        kvm = options.get("accel", "") == "kvm"
        if gic == "max" and not kvm:
            # TCG's "max" with -cpu max is GICv3 with its ITS (captured on 7.2, 10.0, 11.1).
            options["gic-version"] = "3"
        elif gic == "host" and not kvm:
            raise ScenarioError(where, f"QEMU {release.name} refuses it: 'gic-version=host requires KVM' (captured)")
        elif gic in ("host", "max") and kvm:
            # The host's GIC decides; taken as GICv3 (every current arm64 server), and said so
            # (report.order_notes): a KVM order is not a TCG capture's anyway.
            options["gic-version"] = "3"
        else:
            raise ScenarioError(
                where,
                f"-machine virt,gic-version={gic}: the GIC depends on the host (or is not modelled); "
                "give gic-version=2 or 3",
            )
    gicv2 = options.get("gic-version", layout.options.get("gic-version", "")) == "2"
    if layout.name == "virt" and gicv2 and vm.topology.maxcpus > _GICV2_MAX_CPUS:
        if "gic-version" not in options and release.features.gicv3_above_8_cpus:
            options["gic-version"] = "3"
        else:
            raise ScenarioError(
                where,
                f"QEMU {release.name} refuses it: 'Number of SMP CPUs requested "
                f"({vm.topology.maxcpus}) exceeds max CPUs supported by machine 'mach-virt' "
                f"({_GICV2_MAX_CPUS})' (GICv2 serves at most 8; give gic-version=3)",
            )
    if (
        release.features.gicv2_its_refused
        and is_on(vm.machine_options.get("its", ""))
        and options.get("gic-version", layout.options.get("gic-version", "")) == "2"
    ):
        raise ScenarioError(where, f"QEMU {release.name} refuses it: 'GICv2 + ITS is an invalid configuration.'")
    return options


def check_topology(vm: Vm, layout: MachineLayout, release: Release, machine_type: str) -> None:
    """``-smp`` as the release reads it, before anything is made per vCPU: ``maxcpus`` within
    the machine type's ``max_cpus`` (so ``-smp 1000000000`` costs nothing), a parameter
    given as 0 refused where the release refuses it (7.2 only warned, reading it as omitted),
    and APIC ids from 255 up as the release takes them (:mod:`ordering.apic_ids`)."""
    where = vm.source or vm.name
    check_smp_levels(vm, layout, release)  # clusters, modules, books, drawers, dies
    if layout.max_cpus and vm.topology.maxcpus > layout.max_cpus:
        raise ScenarioError(
            where,
            f"QEMU {release.name} refuses it: 'Invalid SMP CPUs {vm.topology.maxcpus}. The max "
            f"CPUs supported by machine '{machine_type}' is {layout.max_cpus}'",
        )
    if vm.smp_zero and release.features.smp_zero_refused:
        raise ScenarioError(
            where,
            f"-smp ...,{vm.smp_zero[0]}=0: QEMU {release.name} refuses it: 'Invalid CPU topology: "
            "CPU topology parameters must be greater than zero' (7.2 only warned)",
        )
    if layout.arch == "x86_64":
        check_apic_ids(vm, release)  # APIC ids from 255 up; KVM's userspace APIC


BOOL_OPTIONS = frozenset({"hpet", "i8042", "usb", "sata", "its", "secure"})
"""``-machine`` options that are booleans: anything but on/off (yes/no, true/false) is refused,
"Parameter 'hpet' expects 'on' or 'off'" (captured: Debian 7.2 and 11.1, q35 and virt)."""
ON_OFF_AUTO_OPTIONS = frozenset({"pit", "pic", "vmport", "acpi", "smm"})
"""``-machine`` options that are OnOffAuto: only on, off or auto, "Parameter 'pit' does not
accept value 'maybe'" (captured: Debian 7.2, q35 and virt; yes is refused too)."""


def check_option_values(vm: Vm) -> None:
    """Booleans and OnOffAuto ``-machine`` options take only what QEMU's parser takes."""
    for key, value in vm.machine_options.items():
        if key in BOOL_OPTIONS and not (is_on(value) or is_off(value)):
            raise ScenarioError(vm.source or vm.name, f"-machine ...,{key}={value}: QEMU refuses it: \"Parameter '{key}' expects 'on' or 'off'\"")
        if key in ON_OFF_AUTO_OPTIONS and value not in ("on", "off", "auto"):
            raise ScenarioError(vm.source or vm.name, f"-machine ...,{key}={value}: QEMU refuses it: \"Parameter '{key}' does not accept value '{value}'\"")


_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
"""QEMU's id_wellformed: an ASCII letter, then ASCII letters, digits, '-', '.' or '_'."""


def check_ids(vm: Vm) -> None:
    """Every device id is used once (QEMU refuses a second -device or device_add with an id
    in use; an id freed by device_del may be used again)."""
    live: set[str] = set()
    steps = itertools.chain(((d, "") for d in vm.devices), ((h.device, h.unplug) for h in vm.hotplug))
    fullmatch = _ID.fullmatch
    for spec, unplug in steps:
        if unplug:
            live.discard(unplug)
        elif spec is not None and spec.id:
            if not fullmatch(spec.id):
                raise ScenarioError(
                    spec.origin,
                    f"-device {spec.driver},id={spec.id!r}: QEMU refuses it: \"Parameter 'id' expects an "
                    "identifier\" (an ASCII letter, then letters, digits, '-', '.' or '_'; captured on 7.2 and 11.1)",
                )
            if spec.id in live:
                raise ScenarioError(spec.origin, f"-device {spec.driver},id={spec.id}: QEMU refuses it: the id is in use")
            live.add(spec.id)


def check_limit(sections: Sequence[Section], spec: DeviceSpec, dtype: DeviceType) -> None:
    """A device type with a ``limit`` is refused once that many sections of its VMSD exist
    (the board's serial ports count against ``isa-serial``; one balloon per VM)."""
    if dtype.limit and dtype.registers:
        vmsd = dtype.registers[0].vmsd
        if sum(1 for s in sections if s.vmsd == vmsd) >= dtype.limit:
            raise ScenarioError(spec.origin, f"-device {spec.driver}: QEMU refuses it: '{dtype.limit_refusal}'")


def check_drives(vm: Vm, layout: MachineLayout) -> None:
    """``-drive`` registers nothing only as ``if=none`` or, on the x86 boards, ``if=ide``: the
    built-in IDE/AHCI controller keeps the drive's state in its own section (captured on 7.2,
    10.0 and 11.1, pc and q35, disk and cdrom). Any other interface makes the board create a
    device migorder does not place (virt's default is ``if=virtio``: a virtio-blk-pci)."""
    x86 = layout.arch == "x86_64"
    for iface in vm.drives:
        used = iface or ("ide" if x86 else "virtio")
        if used in ("none", "pflash") or (used == "ide" and x86):
            # pflash: the board's flash (x86: a pflash_cfi01 section per unit, the `pflash`
            # repeat; virt: its two flash devices exist with or without a drive)
            continue
        default = "" if iface else f" (the default on {layout.name})"
        raise ScenarioError(
            vm.source or vm.name,
            f"-drive if={used}{default}: QEMU creates a device for it that migorder does not "
            "place; give -drive if=none,id=ID (or -blockdev) and the device with -device ...,drive=ID",
        )


def check_properties(release: Release, spec: DeviceSpec) -> None:
    """Every property given must be one the release's binary lists for the type (``-device
    TYPE,help``); releases whose binary was not read are not checked."""
    known = release.device_properties.get(spec.driver)
    if known is None:
        return
    for key in spec.props:
        if key not in known:
            raise ScenarioError(
                spec.origin,
                f"-device {spec.driver},{key}=...: QEMU {release.name} refuses it: "
                f"\"Property '{spec.driver}.{key}' not found\"",
            )


_BINARY_ARCH = re.compile(r"system-(?P<arch>[a-z0-9_]+)$")
_ARCH_OF_TARGET = {"x86_64": "x86_64", "i386": "x86_64", "aarch64": "aarch64"}
"""QEMU target → the machine family migorder models for it (qemu-system-i386 has pc and q35)."""


def check_arch(vm: Vm, layout: MachineLayout, release: Release) -> None:
    """The binary's target must have the machine: ``qemu-system-x86_64 -machine virt`` is
    refused as QEMU refuses it ('unsupported machine type', captured on 7.2, 10.0, 11.1), never
    read as ARM's virt. A binary whose name gives no target (a wrapper) is not checked.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> rel = load_knowledge().release("11.1")
    >>> vm = parse_command_line("qemu-system-x86_64 -machine virt")
    >>> check_arch(vm, rel.machine("virt")[0], rel)
    Traceback (most recent call last):
    ...
    ordering.errors.ScenarioError: command line: QEMU 11.1 refuses -machine virt: 'unsupported machine type: "virt"' (qemu-system-x86_64 has no machine virt: it is aarch64's)
    """
    m = _BINARY_ARCH.search(vm.binary.rsplit("/", 1)[-1])
    if not m:
        return
    target = m.group("arch")
    family = _ARCH_OF_TARGET.get(target)
    if family == layout.arch:
        return
    name = vm.machine
    why = (
        f"qemu-system-{target} has no machine {name}: it is {layout.arch}'s"
        if family
        else f"migorder models qemu-system-x86_64 and qemu-system-aarch64, not qemu-system-{target}"
    )
    raise ScenarioError(vm.source or vm.name, f"{release.unsupported_machine(name)} ({why})")


def canonical_devices(release: Release, vm: Vm) -> Vm:
    """``vm`` with every -device and device_add type named as QEMU resolves it: an alias
    (``virtio-iommu``, ``virtio-net``) becomes its type (``Release.device_aliases``)."""
    aliases = release.device_aliases
    if not aliases:
        return vm

    def fix(spec: DeviceSpec) -> DeviceSpec:
        target = aliases.get(spec.driver)
        return replace(spec, driver=target) if target else spec

    given = (*vm.devices, *(h.device for h in vm.hotplug if h.device), *(d for ds in vm.devices_for.values() for d in ds))
    if not any(d.driver in aliases for d in given):
        return vm
    return replace(
        vm,
        devices=tuple(fix(d) for d in vm.devices),
        devices_for={r: tuple(fix(d) for d in specs) for r, specs in vm.devices_for.items()},
        hotplug=tuple(replace(h, device=fix(h.device)) if h.device else h for h in vm.hotplug),
    )


def check_pci_id_links(devices: Sequence[DeviceSpec]) -> None:
    """``amd-iommu,pci-id=X`` must name an earlier device (captured on 11.1: "Cannot find PCI
    device 'x'"; hw/i386/amd_iommu.c amdvi_sysbus_realize looks the id up)."""
    ids: set[str] = set()
    for spec in devices:
        wanted = spec.props.get("pci-id", "") if spec.driver == "amd-iommu" else ""
        if wanted and wanted not in ids:
            raise ScenarioError(spec.origin, f"-device {spec.driver}: QEMU refuses it: \"Cannot find PCI device '{wanted}'\"")
        if spec.id:
            ids.add(spec.id)


_DIMMS = frozenset({"pc-dimm", "nvdimm"})


def check_memory_devices(vm: Vm, layout: MachineLayout, devices: Sequence[DeviceSpec]) -> None:
    """A DIMM needs the machine's memory hot-plug: ACPI (x86) or virt's ACPI GED (firmware and
    ACPI on), ``nvdimm=on`` for an NVDIMM, and ``-m ...,slots=`` (captured on 7.2, 10.0 and
    11.1, QEMU's words below)."""
    for spec in devices:
        if spec.driver not in _DIMMS:
            continue
        options = vm.machine_options
        if layout.arch == "x86_64" and is_off(options.get("acpi", "")):
            why = "memory hotplug is not enabled: missing acpi device or acpi disabled"
        elif layout.arch != "x86_64" and (is_off(options.get("acpi", "")) or not (vm.firmware or vm.pflash_units())):
            why = "memory hotplug is not enabled: missing acpi-ged device"
        elif spec.driver == "nvdimm" and not is_on(options.get("nvdimm", "")):
            why = "nvdimm is not enabled: missing 'nvdimm' in '-M'"
        elif "slots=" not in vm.memory:
            why = "no slots where allocated, please specify the 'slots' option"
        else:
            continue
        raise ScenarioError(spec.origin, f"-device {spec.driver}: QEMU refuses it: '{why}'")
