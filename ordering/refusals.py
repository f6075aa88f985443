"""What QEMU refuses, or reads differently, in a command line before it registers anything.

The checks :func:`ordering.order.register` runs against the release and machine: ``-machine``
options (modelled, captured inert, or refused), ``-drive`` interfaces, and ``-device``
properties against what the release's binary lists. Each refusal is a
:class:`~ordering.errors.ScenarioError` in QEMU's words where QEMU has words for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ordering.errors import ScenarioError
from ordering.model.machine import DeviceType, MachineLayout, is_on
from ordering.model.release import Release
from ordering.model.section import Section
from ordering.model.vm import DeviceSpec, Vm

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
        else:
            raise ScenarioError(
                where,
                f"-machine virt,gic-version={gic}: the GIC depends on the host (or is not modelled); "
                "give gic-version=2 or 3",
            )
    if (
        release.features.gicv2_its_refused
        and is_on(vm.machine_options.get("its", ""))
        and options.get("gic-version", layout.options.get("gic-version", "")) == "2"
    ):
        raise ScenarioError(where, f"QEMU {release.name} refuses it: 'GICv2 + ITS is an invalid configuration.'")
    return options


def check_ids(vm: Vm) -> None:
    """Every device id is used once (QEMU refuses a second -device or device_add with an id
    in use; an id freed by device_del may be used again)."""
    live: set[str] = set()
    steps = [(d, "") for d in vm.devices] + [(h.device, h.unplug) for h in vm.hotplug]
    for spec, unplug in steps:
        if unplug:
            live.discard(unplug)
        elif spec is not None and spec.id:
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
        if used == "none" or (used == "ide" and x86):
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
