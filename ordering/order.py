"""QEMU's load order: registration, then a stable sort by priority within each phase.

:func:`derive` is four pure stages, each testable alone: :func:`ordering.refusals.refuse`
(everything QEMU rejects; an :class:`~ordering.refusals.Accepted` VM) →
:func:`ordering.place.place` (buses, addresses, qdev paths; a :class:`~ordering.place.Placed`
VM) → :func:`register` (sections in registration order; :class:`Registered`) → :func:`sort`
(phases, priority, ties; :class:`LoadOrder`). The model checker varies the third stage.

On the source every SaveStateEntry sits in one list, higher priority first, ties in
registration order (``savevm_state_handler_insert``). The stream walks that list once per
phase: setup (early_setup FULL sections and iterable START sections, mixed in list order),
iterate (PART), completion (every iterable END first, then every FULL section). The
destination loads in stream order and never re-sorts, so the **source** release decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from ordering._bulk import bulk
from ordering.errors import ScenarioError
from ordering.model.machine import DeviceType, RegistrationTemplate, version_tuple
from ordering.model.priority import PriorityLevel
from ordering.model.release import Release
from ordering.model.section import LoadStep, Phase, Section, SectionType
from ordering.model.vm import DeviceSpec, Vm

if TYPE_CHECKING:  # the refuse and place stages load with derive: reading a stream needs neither
    from ordering.place import CpuPlug, DevicePlug, Placed
    from ordering.refusals import Accepted
from ordering.topology import PlacedDevice


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

    def __repr__(self) -> str:
        """Short enough to read in a failing property test: release, VM and the FULL sections."""
        labels = [s.section.label for s in self.full]
        if len(labels) > 60:
            labels = [*labels[:30], f"... {len(labels) - 50} more ...", *labels[-20:]]
        full = ", ".join(labels)
        return f"<LoadOrder of {self.vm.name!r} from a QEMU {self.release.name} source: {full}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """hypothesis's pretty printer (a falsifying example) uses the short repr too."""
        p.text(repr(self))

    def position(self) -> dict[int, int]:
        """section_id → index of its FULL load (or its START/END when it has no FULL)."""
        pos: dict[int, int] = {}
        for i, step in enumerate(self.steps):
            if step.type is SectionType.FULL or step.section.section_id not in pos:
                pos[step.section.section_id] = i
        return pos


class _Plan(NamedTuple):
    """What every section of one template shares on one release (compiled once per VM)."""

    template: RegistrationTemplate
    when: str
    once: bool
    idstr: str
    vmsd: str
    iterable: bool
    full: bool
    sent: bool
    priority: PriorityLevel
    early_setup: bool
    kind: str
    """The section's kind: the VMSD's (``kinds.toml``), else the device's when it is not a rule
    kind, else ``other``."""
    instance: int | None
    """A fixed instance_id; None for ``auto``, and for ``cpu-index``/``apic-id`` until the
    vCPU's is known."""
    needs_path: bool


class _Registry:
    def __init__(self, accepted: Accepted) -> None:
        self.accepted = accepted
        self.release = accepted.release
        self.holds = accepted.holds
        self._once: set[tuple[str, str]] = set()
        """(idstr, vmsd) of the `once` templates already registered."""
        self.kind_of = {v: kind.name for kind in self.release.kinds.values() for v in kind.vmsds}
        self._plans: dict[tuple[int, str], _Plan | None] = {}
        """(id(template), device kind) → its :class:`_Plan`, or None when its since/until keep
        it out of the release (templates live as long as the release model, so their ids are
        stable here)."""
        self._device_plans: dict[int, tuple[_Plan, ...]] = {}
        """id(device type) → the plans of its templates that are in the release."""
        self.vm = accepted.vm
        self.next_id = 0
        self.sections: list[Section] = []
        self.top: dict[str, int] = {}
        """Highest instance_id in use per idstr (recomputed from the sections after an unplug)."""

    def add(self, t: RegistrationTemplate, *, owner: str) -> None:
        """One entry of the board's own (``owner`` is ``machine``)."""
        plan = self._plan(t, "")
        if plan is not None:
            self.add_planned([((plan,), owner, "", None, 0, 0)], False)

    def add_cpus(
        self, cpus: Iterable[CpuPlug], templates: tuple[RegistrationTemplate, ...], *, at_start: bool
    ) -> None:
        """Each vCPU's entries (``first_only`` ones for vCPU 0 present at start only)."""
        compiled = [(t.first_only, self._plan(t, "")) for t in templates]
        every = tuple(p for first_only, p in compiled if p is not None and not first_only)
        all_of_them = tuple(p for _, p in compiled if p is not None)
        self.add_planned(
            [
                (all_of_them if at_start and cpu.cpu_index == 0 else every, f"cpu{cpu.cpu_index}", "", None,
                 cpu.cpu_index, cpu.apic_id)
                for cpu in cpus
            ],
            not at_start,
        )

    def add_devices(self, devices: Iterable[PlacedDevice], hotplugged: bool) -> None:
        """Every entry of each placed device, in its type's order (a device is no vCPU)."""
        plans_of = self._device_plans
        self.add_planned(
            (
                (plans_of.get(id(d.type)) or self._device_type_plans(d.type), d.qdev_id, d.path, d.spec.props, 0, 0)
                for d in devices
            ),
            hotplugged,
        )

    def _admits(self, when: str, once: bool, idstr: str, vmsd: str, options: Mapping[str, str] | None) -> bool:
        """Whether a template with a ``when`` or ``once`` registers here (``once``: marked taken)."""
        if when and not self.holds(when, options):
            return False
        if once:
            if (idstr, vmsd) in self._once:
                return False
            self._once.add((idstr, vmsd))
        return True

    def _with_path(self, idstr: str, owner: str, path: str) -> str:
        """``idstr`` with ``{path}`` replaced by the owner's qdev path."""
        if not path:
            raise ScenarioError(
                self.vm.source or self.vm.name,
                f"{owner}: registration {idstr!r} needs a qdev path but the device has none",
            )
        return idstr.replace("{path}", path)

    def _device_type_plans(self, dtype: DeviceType) -> tuple[_Plan, ...]:
        """The plans of a device type's templates that are in the release, kept per type."""
        plans = tuple(p for p in (self._plan(t, dtype.kind) for t in dtype.registers) if p is not None)
        self._device_plans[id(dtype)] = plans
        return plans

    def add_planned(
        self,
        owners: Iterable[tuple[Sequence[_Plan], str, str, Mapping[str, str] | None, int, int]],
        hotplugged: bool,
    ) -> None:
        """Each owner's entries (its plans, name, qdev path, options, vCPU index and APIC id),
        each taking the next section_id: the hot loop of a 100k-section VM, where a Section is
        built as the tuple it is (its fields in order)."""
        top, append, new = self.top, self.sections.append, tuple.__new__
        next_id = self.next_id
        for plans, owner, path, options, cpu_index, apic_id in owners:
            for t, when, once, idstr, vmsd, iterable, full, sent, priority, early_setup, kind, instance, needs_path in plans:
                if (when or once) and not self._admits(when, once, idstr, vmsd, options or None):
                    continue
                if needs_path:
                    idstr = self._with_path(idstr, owner, path)
                highest = top.get(idstr, -1)
                if instance is None:  # calculate_new_instance_id: the highest in use, plus one
                    source = t.instance
                    instance = highest + 1 if source == "auto" else cpu_index if source == "cpu-index" else apic_id
                if instance > highest:
                    top[idstr] = instance
                append(
                    new(
                        Section,
                        (next_id, idstr, instance, vmsd, priority, kind, owner,
                         iterable, full, sent, early_setup, hotplugged),
                    )
                )
                next_id += 1
        self.next_id = next_id

    def _plan(self, t: RegistrationTemplate, kind: str) -> _Plan | None:
        """What a template's sections share on this release (None when its since/until
        exclude the release)."""
        key = (id(t), kind)
        if key in self._plans:
            return self._plans[key]
        rel = self.release
        plan: _Plan | None = None
        if not (
            (t.since and rel.version < version_tuple(t.since))
            or (t.until and rel.version >= version_tuple(t.until))
        ):
            # A VMSD listed in kinds.toml has that kind; a device's other sections (a bridge's
            # PCIBUS, say) keep the device's kind only when it is not a rule kind.
            vmsd_kind = self.kind_of.get(t.vmsd, "")
            section_kind = vmsd_kind or (kind if kind and kind not in rel.kinds else "other")
            if t.instance == "auto":
                instance: int | None = None
            elif t.instance in ("cpu-index", "apic-id"):
                instance = None  # the vCPU's, given to add()
            else:
                instance = int(t.instance)
            plan = _Plan(
                t, t.when, t.once, t.idstr, t.vmsd, t.iterable, t.full, t.sent,
                rel.priority_of(t.vmsd), rel.is_early_setup(t.vmsd), section_kind, instance,
                "{path}" in t.idstr,
            )
        self._plans[key] = plan
        return plan

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


def register(placed: Placed) -> Registered:
    """Stage three of :func:`derive`: every SaveStateEntry a placed VM registers, in order.

    Machine init first (boot entries, each vCPU, platform devices), then every ``-device`` in
    command-line order, then the entries made at machine-done (``late``), then hot-plugs.
    Each registration takes the next section_id; ``instance_id`` follows
    ``calculate_new_instance_id`` (one more than the highest for the same idstr) unless the
    registration gives it (vCPU index, APIC id). An unplug frees its devices' entries.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.place import place
    >>> from ordering.refusals import refuse
    >>> k = load_knowledge()
    >>> vm = parse_command_line(["-machine", "q35", "-device", "intel-iommu"])
    >>> sections = register(place(refuse(k.release("10.2"), vm))).sections
    >>> [s.idstr for s in sections if s.owner != "machine"][:3]
    ['cpu_common', 'cpu', 'kvm-tpr-opt']
    """
    from ordering.place import CpuPlug, DevicePlug
    from ordering.refusals import check_limit

    accepted = placed.accepted
    layout, vm = accepted.layout, accepted.vm
    reg = _Registry(accepted)
    for t in layout.boot:
        for _ in range(_times(t, vm)):
            reg.add(t, owner="machine")
    reg.add_cpus(placed.cpus, layout.cpu, at_start=True)
    for t in layout.platform:
        for _ in range(_times(t, vm)):
            reg.add(t, owner="machine")
    if any(d.type.limit for d in placed.cold):
        for d in placed.cold:
            if d.type.limit:  # QEMU counts the board's own sections against it
                check_limit(reg.sections, d.spec, d.type)
            reg.add_devices((d,), False)
    else:
        reg.add_devices(placed.cold, False)
    for t in layout.late:
        for _ in range(_times(t, vm)):
            reg.add(t, owner="machine")
    for event in placed.hotplug:
        if isinstance(event, CpuPlug):
            reg.add_cpus((event,), layout.hotplug_cpu or layout.cpu, at_start=False)
        elif isinstance(event, DevicePlug):
            _register_devices(reg, event, check_limit)
        else:
            for qdev_id in event.qdev_ids:
                reg.remove_owner(qdev_id)
    return Registered(accepted.release, vm, accepted.machine_type, tuple(reg.sections), placed.devices)


def _register_devices(
    reg: _Registry, plug: DevicePlug, check_limit: Callable[[Sequence[Section], DeviceSpec, DeviceType], None]
) -> None:
    """One ``-device`` or ``device_add``: its devices' entries (a ``limit`` refused here, as
    QEMU counts the board's own sections against it)."""
    last = plug.devices[-1]
    if last.type.limit:
        check_limit(reg.sections, last.spec, last.type)
    reg.add_devices(plug.devices, plug.hotplugged)


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
    if t.repeat == "pflash":
        return vm.pflash_units()
    if t.repeat == "chardev-vdagent":
        return vm.chardevs.count("qemu-vdagent")
    if t.repeat == "netdev-user":
        return vm.netdevs.count("user")
    raise ValueError(f"unknown repeat {t.repeat!r}")  # the models loader admits only REPEATS


def list_order(sections: Iterable[Section]) -> list[Section]:
    """The source's handler list: priority descending, registration order within a priority.

    >>> from ordering.model.priority import PriorityLevel
    >>> hi, lo = PriorityLevel(3, "MIG_PRI_HI"), PriorityLevel(0, "MIG_PRI_DEFAULT")
    >>> s = [Section(2, "b", 0, "b", lo, "other", "m"), Section(1, "a", 0, "a", lo, "other", "m"),
    ...      Section(3, "c", 0, "c", hi, "other", "m")]
    >>> [x.idstr for x in list_order(s)]
    ['c', 'a', 'b']
    """
    # One bucket per priority (a VM has a handful), each in section_id order: no key call per
    # section of a 100k-section VM.
    buckets: dict[int, list[Section]] = {}
    for section in sections:
        value = section.priority.value
        bucket = buckets.get(value)
        if bucket is None:
            buckets[value] = [section]
        else:
            bucket.append(section)
    out: list[Section] = []
    for value in sorted(buckets, reverse=True):
        out.extend(sorted(buckets[value], key=_SECTION_ID))
    return out


_SECTION_ID = itemgetter(0)
"""A Section's section_id (its first field)."""

_FULL, _START, _PART, _END = SectionType.FULL, SectionType.START, SectionType.PART, SectionType.END
_SETUP, _ITERATE, _COMPLETE = Phase.SETUP, Phase.ITERATE, Phase.COMPLETE


def _steps(ordered: list[Section], early_first: bool) -> Iterator[LoadStep]:
    iterable = [s for s in ordered if s.iterable]
    new = tuple.__new__  # LoadStep built as the tuple it is: (section, type, phase)
    if early_first:
        for s in ordered:
            if s.early_setup and s.full:
                yield new(LoadStep, (s, _FULL, _SETUP))
        for s in iterable:
            yield new(LoadStep, (s, _START, _SETUP))
    else:
        for s in ordered:
            if s.early_setup and s.full:
                yield new(LoadStep, (s, _FULL, _SETUP))
            if s.iterable:
                yield new(LoadStep, (s, _START, _SETUP))
    for s in iterable:
        yield new(LoadStep, (s, _PART, _ITERATE))
    for s in iterable:
        yield new(LoadStep, (s, _END, _COMPLETE))
    for s in ordered:
        if s.full and not s.early_setup:
            yield new(LoadStep, (s, _FULL, _COMPLETE))


def sort(registered: Registered) -> LoadOrder:
    """Stage four of :func:`derive`: the sent sections in stream order, by phase.

    The source's handler list is sorted by priority (higher first), ties in registration order
    (:func:`list_order`); each phase walks it (:func:`_steps`).
    """
    release = registered.release
    ordered = list_order(s for s in registered.sections if s.sent)
    steps = tuple(_steps(ordered, release.features.early_setup_before_start))
    return LoadOrder(release, registered.vm, registered.machine_type, steps, registered)


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
    from ordering.place import place
    from ordering.refusals import refuse

    return sort(register(place(refuse(release, vm))))
