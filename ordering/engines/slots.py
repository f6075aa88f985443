"""One reading of an :class:`~ordering.space.OrderSpace` that every engine shares.

QEMU loads a section by its sort key: phase, then priority (higher first), then registration
order. Phase and priority are fixed by the source release; what the space leaves free is
registration order. It is modelled here as a sequence of **stages**, each a forest:

* stage 0, machine init (boot entries, each cold vCPU, platform devices): one fixed chain;
* stage 1, ``-device`` in command-line order: any order where a bus's parent registers
  before the devices on it (a forest of bus parents), or one chain when registration is fixed;
* stage 2, machine done (``late`` entries): one fixed chain;
* stage 3, the scenario's hot-plug steps: a chain, or a forest of bus parents when the steps
  may come in any order (``OrderSpace.hotplug_any_order``: when a scenario marks only some
  steps ``any-order``, every step is taken as free, an over-approximation whose counterexample
  names the steps to check).

A device's own sections always register together, in their template order (a chain). With a
hot-plug bound of one or more, a device on a hot-pluggable bus and a hot-plugged vCPU are
**mobile**: ``device_del`` + ``device_add`` re-registers them after everything else (and takes
the devices behind them away). With a bound, one more vCPU than the VM has is hot-plugged too,
when ``maxcpus`` leaves room (cold-plugged vCPUs are not unplugged: migorder does not model it).

Pure core: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from ordering.conditions import rule_instances
from ordering.model.machine import is_off
from ordering.model.rule import Rule
from ordering.model.section import Phase, Section
from ordering.model.vm import HotplugStep, Vm
from ordering.order import derive
from ordering.space import OrderSpace
from ordering.topology import PlacedDevice
from ordering.verdict import vfio_config_unordered

STAGES = ("machine init", "-device", "machine done", "hot-plug")
"""Names of the registration stages, in order."""


class Slot(NamedTuple):
    """One section of the space: what it sorts by and how free its registration is."""

    label: str
    vmsd: str
    owner: str
    phase: Phase
    priority: int
    priority_name: str
    stage: int
    parent: int
    """The slot that must register before it in the same stage (``-1``: none); always an
    earlier slot (a smaller index)."""
    mobile: bool = False
    """A hot-plug step may unplug and replug its device after everything else."""
    threaded: bool = False
    """Its load runs in a thread, unordered against the main thread (multifd VFIO config)."""

    @property
    def key(self) -> tuple[int, int]:
        """Phase and priority as one key: a larger key loads later."""
        return (self.phase.rank, -self.priority)


class Instance(NamedTuple):
    """One live rule instance: every ``firsts`` slot must load before the ``then`` slot."""

    firsts: tuple[int, ...]
    then: int


@dataclass(frozen=True)
class SpaceModel:
    """The sections of a space, the rule's live instances over them, and the freedom left."""

    slots: tuple[Slot, ...]
    instances: tuple[Instance, ...]
    bound: int
    """How many hot-plug steps may follow (0: none; one is enough for any pairwise witness)."""
    space: str
    """What the space is, in words (:meth:`OrderSpace.describe`)."""
    universal: bool = False
    """Every VM of the release: each pair of sections may sit in some VM, any registration."""
    blocked: str = ""
    """QEMU's words when the source refuses to migrate the VM at all (the verdict is VACUOUS)."""
    added: str = ""
    """The owner (``cpu4``) of the vCPU the space hot-plugs beyond the VM's own, if any: not in
    QEMU's default order, one hot-plug step in a counterexample that uses it."""
    machine: str = ""
    """The machine type this model starts the VM on when it is not the one the VM as given
    resolves to (an older one it may have been created on): a counterexample names it."""

    def intervals(self) -> tuple[list[int], list[int]]:
        """Entry and exit times of a depth-first walk of the stage forests (ancestor tests)."""
        n = len(self.slots)
        children: list[list[int]] = [[] for _ in range(n)]
        roots: list[int] = []
        for i, s in enumerate(self.slots):
            (children[s.parent] if s.parent >= 0 else roots).append(i)
        tin, tout = [0] * n, [0] * n
        clock = 0
        for root in roots:
            stack: list[tuple[int, int]] = [(root, 0)]
            while stack:
                node, k = stack.pop()
                if k == 0:
                    tin[node] = clock
                    clock += 1
                if k < len(children[node]):
                    stack.append((node, k + 1))
                    stack.append((children[node][k], 0))
                else:
                    tout[node] = clock
                    clock += 1
        return tin, tout


def space_models(space: OrderSpace, rule: Rule) -> list[SpaceModel]:
    """One :func:`space_model` per machine type the space's VM may carry (an unversioned
    ``-machine`` may have been created on an older machine type and kept its compat
    properties): the space is their union.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-machine q35")
    >>> len(space_models(OrderSpace(k.release("10.2"), k.release("10.2"), vm), k.rule("apic-before-vfio")))
    1
    """
    types = space.machine_types
    if space.vm is None or len(types) <= 1:
        return [space_model(space, rule)]
    return [
        replace(space_model(replace(space, vm=replace(space.vm, machine=t)), rule), machine=t if i else "")
        for i, t in enumerate(types)
    ]


def space_model(space: OrderSpace, rule: Rule) -> SpaceModel:
    """The sections of ``space`` and the live instances of ``rule`` over them.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-machine q35 -smp 1,maxcpus=2 -device pcie-root-port,id=rp1"
    ...                         " -device vfio-pci,host=01:00.0,bus=rp1")
    >>> m = space_model(OrderSpace(k.release("10.1"), k.release("10.1"), vm, hotplug_bound=1),
    ...                 k.rule("apic-before-vfio"))
    >>> [(m.slots[i].label, m.slots[i].stage, m.slots[i].mobile) for i in m.instances[0].firsts]
    [('apic', 0, False), ('apic#1', 3, True)]
    """
    if space.vm is None:
        return _universal(space, rule)
    vm = space.vm
    if space.multifd:
        vm = replace(vm, migration={**vm.migration, "multifd": "on"})
    added = ""
    if space.hotplug_bound >= 1:
        vm, added = _one_more_vcpu(vm)
    order = derive(space.source, vm)
    reg = order.registered
    threaded_owners = vfio_config_unordered(order)
    devices = {d.qdev_id: d for d in reg.devices}
    layout = space.source.machine(vm.machine)[0]
    root_hotplug = layout.root_bus_hotplug not in ("never",)
    sent = [s for s in reg.sections if s.sent]
    index = {s.section_id: i for i, s in enumerate(sent)}
    slots: list[Slot] = []
    last_of_owner: dict[str, int] = {}
    last_in_stage: dict[int, int] = {}
    seen_device = False
    for i, s in enumerate(sent):
        dev = devices.get(s.owner)
        if s.hotplugged:
            stage = 3
        elif dev is not None:
            stage, seen_device = 1, True
        else:
            stage = 2 if seen_device else 0
        chain = stage in (0, 2) or (stage == 1 and not space.registration_free) or (
            stage == 3 and not space.hotplug_any_order
        )
        mine = last_of_owner.get(s.owner, -1)
        if chain:
            parent = last_in_stage.get(stage, -1)
        elif mine >= 0 and slots[mine].stage == stage:
            parent = mine  # a device's sections register together, in template order
        else:
            parent = _bus_parent(dev, last_of_owner, slots, stage)
        last_of_owner[s.owner] = i
        last_in_stage[stage] = i
        mobile = space.hotplug_bound >= 1 and (
            (dev is not None and _replugable(dev, devices, root_hotplug))
            or (s.hotplugged and s.owner.startswith("cpu"))
        )
        slots.append(
            Slot(
                s.label,
                s.vmsd,
                s.owner,
                _phase(s),
                s.priority.value,
                s.priority.name,
                stage,
                parent,
                mobile,
                s.owner in threaded_owners and s.full,
            )
        )
    instances: list[Instance] = []
    for inst in rule_instances([rule], reg).get(rule.id, []):
        firsts = tuple(index[f.section_id] for f in inst.firsts if f.section_id in index)
        if firsts and inst.then.section_id in index:
            instances.append(Instance(firsts, index[inst.then.section_id]))
    from ordering.check import blockers  # the check's own reading of QEMU's blockers

    refused = [b for b in blockers(order) if not b.conditional]
    blocked = f"{refused[0].device}: {refused[0].message}" if refused else ""
    return SpaceModel(tuple(slots), tuple(instances), space.hotplug_bound, space.describe(), blocked=blocked, added=added)


def _phase(s: Section) -> Phase:
    """Where a section's state loads: its FULL section (setup when early_setup), else START."""
    if s.full:
        return Phase.SETUP if s.early_setup else Phase.COMPLETE
    return Phase.SETUP


def _bus_parent(dev: PlacedDevice | None, last_of_owner: dict[str, int], slots: list[Slot], stage: int) -> int:
    """The last section of the nearest bridge above ``dev`` registered in the same stage."""
    if dev is None:
        return -1
    for bridge in reversed(dev.bridges):
        j = last_of_owner.get(bridge)
        if j is not None:
            return j if slots[j].stage == stage else -1
    return -1


def _replugable(dev: PlacedDevice, devices: dict[str, PlacedDevice], root_hotplug: bool) -> bool:
    """Whether ``device_del`` + ``device_add`` can move ``dev``: a PCI device behind a port or
    bridge that takes hot-plugs, or on a root bus that does (pc with ACPI)."""
    if not dev.is_pci:
        return False
    if not dev.bridges:
        return root_hotplug
    port = devices.get(dev.bridges[-1])
    return port is None or not is_off(port.spec.props.get("hotplug", ""))


def _one_more_vcpu(vm: Vm) -> tuple[Vm, str]:
    """``vm`` with one more vCPU hot-plugged after its steps, if ``maxcpus`` leaves room, and
    the new vCPU's owner name (``""``: no room)."""
    present = set(range(vm.topology.cpus))
    for step in vm.hotplug:
        if step.cpu is not None:
            present.add(step.cpu)
    free = [i for i in range(vm.topology.maxcpus) if i not in present]
    if not free:
        return vm, ""
    return replace(vm, hotplug=(*vm.hotplug, HotplugStep(cpu=free[0]))), f"cpu{free[0]}"


def _universal(space: OrderSpace, rule: Rule) -> SpaceModel:
    """Every VM of the release: every section either side may have, registration free."""
    from ordering.smt import candidates  # z3 is heavy: only for the universal space

    rel = space.source
    firsts = candidates(rel, rule.first)
    thens = candidates(rel, rule.then)
    slots = [
        Slot(c.vmsd, c.vmsd, c.note, c.phase, c.priority.value, c.priority.name, 1, -1)
        for c in (*firsts, *thens)
    ]
    n = len(firsts)
    instances = []
    for j, t in enumerate(thens):
        fs = tuple(i for i, f in enumerate(firsts) if f.vmsd != t.vmsd)
        if fs:
            instances.append(Instance(fs, n + j))
    return SpaceModel(tuple(slots), tuple(instances), space.hotplug_bound, space.describe(), universal=True)
