"""QEMU's load order: registration, then a stable sort by priority within each phase.

On the source every SaveStateEntry sits in one list, higher priority first, ties in
registration order (``savevm_state_handler_insert``). The stream walks that list once per
phase: setup (early_setup FULL sections and iterable START sections, mixed in list order),
iterate (PART), completion (every iterable END first, then every FULL section). The
destination loads in stream order and never re-sorts, so the **source** release decides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ordering._bulk import bulk
from ordering.errors import ScenarioError
from ordering.model.machine import (
    DeviceType,
    MachineLayout,
    RegistrationTemplate,
    condition_holds,
    machine_type_version,
    version_tuple,
)
from ordering.model.priority import PriorityLevel
from ordering.model.release import Release
from ordering.model.section import LoadStep, Phase, Section, SectionType
from ordering.model.vm import DeviceSpec, Vm
from ordering.refusals import (
    check_drives,
    check_ids,
    check_limit,
    check_properties,
    machine_options,
)
from ordering.topology import PlacedDevice, Placer


@dataclass(frozen=True)
class Registered:
    """Every SaveStateEntry a VM registers, in registration order, and its placed devices."""

    release: Release
    vm: Vm
    machine_type: str
    sections: tuple[Section, ...]
    devices: tuple[PlacedDevice, ...]


@dataclass(frozen=True)
class LoadOrder:
    """The order a destination loads a VM's sections in, from a source of ``release``."""

    release: Release
    vm: Vm
    machine_type: str
    steps: tuple[LoadStep, ...]
    registered: Registered

    @property
    def full(self) -> tuple[LoadStep, ...]:
        """Only the FULL sections, in load order."""
        return tuple(s for s in self.steps if s.type is SectionType.FULL)

    def position(self) -> dict[int, int]:
        """section_id → index of its FULL load (or its START/END when it has no FULL)."""
        pos: dict[int, int] = {}
        for i, step in enumerate(self.steps):
            if step.type is SectionType.FULL or step.section.section_id not in pos:
                pos[step.section.section_id] = i
        return pos


_NOT_IN_RELEASE: tuple[PriorityLevel, bool, str] = (PriorityLevel(0, ""), False, "")
"""The compiled form of a template its since/until keep out of the release (compared by
identity)."""


class _Registry:
    def __init__(self, release: Release, vm: Vm, machine_type: str, layout: MachineLayout) -> None:
        self.release = release
        self.layout = layout
        # vm.audiodevs: how many -audiodev the VM has, for `when = "vm.audiodevs=0"`;
        # vm.firmware: whether -bios loads firmware, for `when = "vm.firmware=on"`.
        self.options = {
            **layout.options,
            **machine_options(vm, layout, release),
            "vm.audiodevs": str(len(vm.audiodevs)),
            **{f"migration.{k}": v for k, v in vm.migration.items()},
            "vm.firmware": "on" if vm.firmware else "off",
        }
        self._once: set[tuple[str, str]] = set()
        """(idstr, vmsd) of the `once` templates already registered."""
        self.kind_of = {v: kind.name for kind in release.kinds.values() for v in kind.vmsds}
        self._compiled: dict[int, tuple[PriorityLevel, bool, str]] = {}
        """id(template) → :meth:`_compile` (templates live as long as the release model, so
        their ids are stable here)."""
        self.vm = vm
        self.machine_version = machine_type_version(machine_type)
        self.next_id = 0
        self.sections: list[Section] = []
        self.top: dict[str, int] = {}
        """Highest instance_id in use per idstr (recomputed from the sections after an unplug)."""

    def add(
        self,
        t: RegistrationTemplate,
        *,
        owner: str,
        path: str = "",
        options: Mapping[str, str] | None = None,
        cpu_index: int = 0,
        apic_id: int = 0,
        kind: str = "",
        hotplugged: bool = False,
    ) -> None:
        compiled = self._compiled.get(id(t))
        if compiled is None:
            compiled = self._compiled[id(t)] = self._compile(t)
        if compiled is _NOT_IN_RELEASE:
            return
        priority, early_setup, vmsd_kind = compiled
        if t.when and not self.holds(t.when, options):
            return
        if t.once:
            if (t.idstr, t.vmsd) in self._once:
                return
            self._once.add((t.idstr, t.vmsd))
        idstr = t.idstr
        if "{path}" in idstr:
            if not path:
                raise ScenarioError(
                    self.vm.source or self.vm.name,
                    f"{owner}: registration {t.idstr!r} needs a qdev path but the device has none",
                )
            idstr = idstr.replace("{path}", path)
        top = self.top.get(idstr, -1)
        if t.instance == "auto":
            instance = top + 1  # calculate_new_instance_id: the highest in use, plus one
        elif t.instance == "cpu-index":
            instance = cpu_index
        elif t.instance == "apic-id":
            instance = apic_id
        else:
            instance = int(t.instance)
        if instance > top:
            self.top[idstr] = instance
        # A VMSD listed in kinds.toml has that kind; a device's other sections (a bridge's
        # PCIBUS, say) keep the device's kind only when it is not a rule kind.
        section_kind = vmsd_kind or (kind if kind and kind not in self.release.kinds else "other")
        # Positional: the fields of Section in order (a named tuple builds fastest that way).
        self.sections.append(
            Section(
                self.next_id,
                idstr,
                instance,
                t.vmsd,
                priority,
                section_kind,
                owner,
                t.iterable,
                t.full,
                t.sent,
                early_setup,
                hotplugged,
            )
        )
        self.next_id += 1

    def holds(self, when: str, device_options: Mapping[str, str] | None = None) -> bool:
        """Whether a ``when`` condition holds on this release, machine type and its options
        (a device's own options, when given, override the machine's)."""
        return condition_holds(
            when,
            release=self.release.version,
            machine_version=self.machine_version,
            options={**self.options, **device_options} if device_options else self.options,
        )

    def _compile(self, t: RegistrationTemplate) -> tuple[PriorityLevel, bool, str]:
        """What a template's sections share on this release: priority, early_setup, kind
        (``_NOT_IN_RELEASE`` when its since/until exclude the release)."""
        rel = self.release
        if (t.since and rel.version < version_tuple(t.since)) or (
            t.until and rel.version >= version_tuple(t.until)
        ):
            return _NOT_IN_RELEASE
        return rel.priority_of(t.vmsd), rel.is_early_setup(t.vmsd), self.kind_of.get(t.vmsd, "")

    def remove_owner(self, owner: str) -> None:
        gone = {s.idstr for s in self.sections if s.owner == owner}
        self.sections = [s for s in self.sections if s.owner != owner]
        for idstr in gone:
            rest = [s.instance_id for s in self.sections if s.idstr == idstr]
            if rest:
                self.top[idstr] = max(rest)
            else:
                del self.top[idstr]


def rel_kind(release: Release, vmsd: str) -> str:
    """The kind (``kinds.toml``) whose VMSD list names ``vmsd``, or ``""``."""
    for kind in release.kinds.values():
        if vmsd in kind.vmsds:
            return kind.name
    return ""


def register(release: Release, vm: Vm) -> Registered:
    """Every SaveStateEntry ``vm`` registers on a ``release`` binary, in registration order.

    Machine init first (boot entries, each vCPU, platform devices), then every ``-device`` in
    command-line order, then the entries made at machine-done (``late``), then hot-plugs.
    Each registration takes the next section_id; ``instance_id`` follows
    ``calculate_new_instance_id`` (one more than the highest for the same idstr) unless the
    registration gives it (vCPU index, APIC id).
    """
    layout, machine_type = release.machine(vm.machine)
    reg = _Registry(release, vm, machine_type, layout)
    placer = _board_placer(reg, layout)
    topo = vm.topology
    check_drives(vm, layout)
    for t in layout.boot:
        for _ in range(_times(t, vm)):
            reg.add(t, owner="machine")
    for i in range(topo.cpus):
        apic_id = topo.apic_id(i)
        for t in layout.cpu:
            if t.first_only and i > 0:
                continue
            reg.add(t, owner=f"cpu{i}", cpu_index=i, apic_id=apic_id)
    for t in layout.platform:
        for _ in range(_times(t, vm)):
            reg.add(t, owner="machine")
    placed: list[PlacedDevice] = []
    check_ids(vm)
    for spec in vm.devices_for.get(release.name, vm.devices):
        placed.extend(_plug(reg, placer, spec, hotplugged=False))
    for t in layout.late:
        for _ in range(_times(t, vm)):
            reg.add(t, owner="machine")
    present = set(range(topo.cpus))
    for step in vm.hotplug:
        if step.cpu is not None:
            if step.cpu in present or step.cpu >= topo.maxcpus:
                raise ScenarioError(
                    vm.source or vm.name,
                    f"hot-plug of vCPU {step.cpu}: expected an absent vCPU index below "
                    f"maxcpus={topo.maxcpus}",
                )
            present.add(step.cpu)
            for t in layout.hotplug_cpu or layout.cpu:
                if t.first_only:
                    continue
                reg.add(
                    t,
                    owner=f"cpu{step.cpu}",
                    cpu_index=step.cpu,
                    apic_id=topo.apic_id(step.cpu),
                    hotplugged=True,
                )
        elif step.device is not None:
            placed.extend(_plug(reg, placer, step.device, hotplugged=True))
        elif step.unplug:
            victim = next((p for p in placed if p.qdev_id == step.unplug), None)
            if victim is None:
                raise ScenarioError(
                    vm.source or vm.name, f"unplug of {step.unplug!r}: no device with that id"
                )
            placer.check_hotplug(victim.bus, vm.source or vm.name)
            # device_del takes the device's subtree with it (captured: a usb-hub's keyboard)
            for gone in [*_behind(victim, placed), victim]:
                reg.remove_owner(gone.qdev_id)
                placer.unplug(gone.qdev_id, gone)
                placed.remove(gone)
    return Registered(
        release, vm, machine_type, tuple(reg.sections), tuple(placed)
    )


def _behind(device: PlacedDevice, placed: list[PlacedDevice]) -> list[PlacedDevice]:
    """The devices below ``device`` (behind a bridge, a hub, a controller's bus), deepest first:
    their qdev paths continue its path with ``:``, ``.`` or ``/``."""
    root = device.path
    if not root:
        return []
    below = [p for p in placed if p is not device and p.path[: len(root)] == root and p.path[len(root) : len(root) + 1] in (":", ".", "/")]
    return sorted(below, key=lambda p: -len(p.path))


def _board_placer(reg: _Registry, layout: MachineLayout) -> Placer:
    """A placer for this board: its own USB buses (``usb=on``) and the bridges whose slot 0 it
    refuses (``slot0_refused_on`` entries: ``virt``, or ``pc:acpi=off`` with a condition)."""
    placer = Placer(layout, reg.release.devices)
    placer.hotplug_needs_free_port_slot0 = reg.release.features.hotplug_needs_free_port_slot0
    placer.set_root_hotpluggable(layout.root_bus_hotplug != "never" and reg.holds(layout.root_bus_hotplug))
    for board in layout.usb_buses:
        if reg.holds(board.when):
            placer.add_board_usb_bus(board)
    for d in reg.release.devices.values():
        for entry in d.slot0_refused_on:
            machine, _, when = entry.partition(":")
            if machine == layout.name and reg.holds(when):
                placer.slot0_refused[d.name] = d.slot0_refused_text
    return placer


def _times(t: RegistrationTemplate, vm: Vm) -> int:
    """How many times the board registers ``t`` for this command line (its ``repeat``)."""
    if not t.repeat:
        return 1
    if t.repeat == "audiodev":
        return len(vm.audiodevs)
    if t.repeat == "serial-isa":
        return vm.serial_ports(0, 3)  # MAX_ISA_SERIAL_PORTS: later indices get no UART
    if t.repeat == "serial-second":
        return vm.serial_ports(1, 1)
    if t.repeat == "parallel":
        return len(vm.parallels)
    if t.repeat == "netdev-user":
        return vm.netdevs.count("user")
    raise ValueError(f"unknown repeat {t.repeat!r}")  # the models loader admits only REPEATS


def _plug(
    reg: _Registry, placer: Placer, spec: DeviceSpec, *, hotplugged: bool
) -> list[PlacedDevice]:
    """Place and register one device; first any device QEMU plugged on its own for it (the
    USB hub chained on when it takes a bus's last free port)."""
    dtype = reg.release.device(spec.driver)
    if dtype.since and reg.release.version < version_tuple(dtype.since):
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: '{spec.driver}' is not a valid device model name in QEMU "
            f"{reg.release.name} (it came in {dtype.since})",
        )
    if dtype.machines and reg.layout.name not in dtype.machines:
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: QEMU refuses it on machine {reg.layout.name}"
            + (f" ('{dtype.refusal}')" if dtype.refusal else "")
            + f"; it needs {', '.join(dtype.machines)}",
        )
    if dtype.audiodev:
        _check_audiodev(reg, spec, dtype)
    check_limit(reg.sections, spec, dtype)
    check_properties(reg.release, spec)
    dev = placer.place(spec, dtype, hotplugged=hotplugged)
    out = [*placer.auto_plugged, dev]
    placer.auto_plugged.clear()
    for d in out:
        props = d.spec.props or None
        for t in d.type.registers:
            reg.add(
                t,
                owner=d.qdev_id,
                path=d.path,
                options=props,
                kind=d.type.kind,
                hotplugged=hotplugged,
            )
    return out


def _check_audiodev(reg: _Registry, spec: DeviceSpec, dtype: DeviceType) -> None:
    """``audiodev=`` must name an ``-audiodev``; newer releases refuse a device without it."""
    wanted = spec.props.get("audiodev", "")
    if wanted and wanted not in reg.vm.audiodevs:
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: QEMU refuses it: no -audiodev has id '{wanted}' (7.2: "
            f"\"Property '{spec.driver}.audiodev' can't find value '{wanted}'\"; 10.0 and 11.1: "
            f"\"audiodev '{wanted}' not found\")",
        )
    since = dtype.audiodev_required_since
    if not wanted and since and reg.release.version >= version_tuple(since):
        raise ScenarioError(
            spec.origin,
            f"-device {spec.driver}: QEMU {reg.release.name} refuses it without audiodev=: "
            f"'{dtype.audiodev_refusal}'; give -audiodev DRIVER,id=ID and audiodev=ID",
        )


def list_order(sections: tuple[Section, ...]) -> list[Section]:
    """The source's handler list: priority descending, registration order within a priority."""
    return sorted(sections, key=lambda s: (-s.priority.value, s.section_id))


_FULL, _START, _PART, _END = SectionType.FULL, SectionType.START, SectionType.PART, SectionType.END
_SETUP, _ITERATE, _COMPLETE = Phase.SETUP, Phase.ITERATE, Phase.COMPLETE


def _steps(ordered: list[Section], early_first: bool) -> Iterator[LoadStep]:
    iterable = [s for s in ordered if s.iterable]
    if early_first:
        for s in ordered:
            if s.early_setup and s.full:
                yield LoadStep(s, _FULL, _SETUP)
        for s in iterable:
            yield LoadStep(s, _START, _SETUP)
    else:
        for s in ordered:
            if s.early_setup and s.full:
                yield LoadStep(s, _FULL, _SETUP)
            if s.iterable:
                yield LoadStep(s, _START, _SETUP)
    for s in iterable:
        yield LoadStep(s, _PART, _ITERATE)
    for s in iterable:
        yield LoadStep(s, _END, _COMPLETE)
    for s in ordered:
        if s.full and not s.early_setup:
            yield LoadStep(s, _FULL, _COMPLETE)


@bulk
def derive(release: Release, vm: Vm) -> LoadOrder:
    """The load order a destination sees when ``vm`` migrates from a ``release`` source.

    Parameters
    ----------
    release
        The **source** QEMU release: its enum and registrations decide the order.
    vm
        The VM as started on the source, with its hot-plugs.

    Returns
    -------
    LoadOrder
        Every section in stream order, with its type and phase. Registered entries that are
        never sent (``needed`` false) take a section_id but no step.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> vm = parse_command_line(["-machine", "q35", "-device", "intel-iommu",
    ...                          "-device", "pcie-root-port,id=rp1,chassis=1"])
    >>> [s.section.idstr for s in derive(k.release("7.2"), vm).full][:2]
    ['0000:00:01.0/pcie-root-port', 'iommu-intel']
    """
    registered = register(release, vm)
    ordered = list_order(tuple(s for s in registered.sections if s.sent))
    return LoadOrder(release, vm, registered.machine_type, tuple(_steps(ordered, release.features.early_setup_before_start)), registered)
