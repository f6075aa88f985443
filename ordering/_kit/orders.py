"""Load-order strategies: orders drawn from an order space, and reorderings of one order."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from ordering.model.section import LoadStep, SectionType
from ordering.model.vm import DeviceSpec, HotplugStep, Vm
from ordering.order import LoadOrder, derive
from ordering.space import OrderSpace


def _parents_first(devices: tuple[DeviceSpec, ...], order: list[int]) -> bool:
    """Whether every device in ``order`` comes after the device whose bus it names."""
    seen: set[str] = set()
    ids = {d.id for d in devices if d.id}
    for i in order:
        d = devices[i]
        if d.bus in ids and d.bus not in seen:
            return False
        if d.id:
            seen.add(d.id)
    return True


@st.composite
def registration_orders(draw: st.DrawFn, vm: Vm) -> Vm:
    """``vm`` with its ``-device`` list in another order that QEMU accepts (a device after the
    port or bridge whose bus it names); shrinks to the order as given.

    >>> from hypothesis import find
    >>> from ordering.sources.cmdline import parse_command_line
    >>> vm = parse_command_line("-machine q35 -device pcie-root-port,id=rp0,chassis=1 "
    ...     "-device vfio-pci,host=01:00.0,bus=rp0 -device virtio-net-pci")
    >>> moved = find(registration_orders(vm), lambda v: v.devices[0].driver == "virtio-net-pci")
    >>> [d.driver for d in moved.devices]
    ['virtio-net-pci', 'pcie-root-port', 'vfio-pci']
    """
    n = len(vm.devices)
    order = list(range(n))
    # Insertion shuffle: each device goes to a drawn position among those before it; drawing 0
    # keeps the given order, so it shrinks back to it.
    for i in range(1, n):
        back = draw(st.integers(0, i))
        if back:
            order.insert(i - back, order.pop(i))
    if not _parents_first(vm.devices, order):
        order = sorted(order, key=lambda i: (_depth(vm.devices, i), order.index(i)))
    devices = tuple(vm.devices[i] for i in order)
    devices_for = {r: tuple(ds[i] for i in order) for r, ds in vm.devices_for.items() if len(ds) == n}
    return replace(vm, devices=devices, devices_for={**vm.devices_for, **devices_for})


def _depth(devices: tuple[DeviceSpec, ...], i: int) -> int:
    by_id = {d.id: d for d in devices if d.id}
    depth, d = 0, devices[i]
    while d.bus in by_id and depth < len(devices):
        d, depth = by_id[d.bus], depth + 1
    return depth


@st.composite
def load_orders(draw: st.DrawFn, space: OrderSpace) -> LoadOrder:
    """A load order from ``space``: the space's VM (or a drawn one, for every VM), in a drawn
    registration order when the space leaves it free, with up to ``hotplug_bound`` vCPUs
    hot-plugged, one of the space's machine types, derived on the space's **source** release
    (as postcopy sends it, when the space says postcopy).

    Shrinks to the VM as given, no hot-plug.

    Examples
    --------
    >>> from hypothesis import find
    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> from ordering.sources.scenario import read_scenario
    >>> vm = read_scenario(k.scenarios["default"])
    >>> space = OrderSpace(k.release("10.1"), k.release("10.1"), vm=vm, hotplug_bound=1)
    >>> order = find(load_orders(space), lambda o: len(o.vm.hotplug) > len(vm.hotplug))
    >>> order.release.name, order.vm.hotplug[-1]
    ('10.1', HotplugStep(cpu=4, device=None, unplug=''))
    """
    if space.vm is None:
        from ordering._kit.vms import vms

        vm = draw(vms())
    else:
        vm = space.vm
    if space.registration_free:
        vm = draw(registration_orders(vm))
    if space.hotplug_bound:
        plugged = {s.cpu for s in vm.hotplug if s.cpu is not None}
        free = [c for c in range(vm.topology.cpus, vm.topology.maxcpus) if c not in plugged]
        extra = draw(st.integers(0, min(space.hotplug_bound, len(free))))
        vm = replace(vm, hotplug=(*vm.hotplug, *(HotplugStep(cpu=c) for c in free[:extra])))
    if space.machine_types:  # the source's own type first: shrinks to it
        vm = replace(vm, machine=draw(st.sampled_from(space.machine_types)))
    if space.multifd:
        vm = replace(vm, migration={**vm.migration, "multifd": "on"})
    order = derive(space.source, vm)
    if space.postcopy:
        from ordering.explore import postcopy_order

        order = postcopy_order(order)
    return order


@st.composite
def reorderings(draw: st.DrawFn, order: LoadOrder) -> LoadOrder:
    """A derived order unchanged, one FULL section moved elsewhere, or the FULL sections
    permuted: what an observed or rewritten stream may show. Shrinks to the order unchanged.

    >>> from hypothesis import find
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> k = load_knowledge()
    >>> order = derive(k.release("10.0"), read_scenario(k.scenarios["default"]))
    >>> find(reorderings(order), lambda o: True) == order
    True
    """
    full = [i for i, s in enumerate(order.steps) if s.type is SectionType.FULL]
    how = draw(st.sampled_from(["derived", "move", "permute"]))
    steps = list(order.steps)
    if how == "move" and len(full) > 1:
        a = draw(st.sampled_from(full))
        step = steps.pop(a)
        b = draw(st.integers(0, len(steps)))
        phase = steps[b].phase if b < len(steps) else steps[-1].phase
        steps.insert(b, LoadStep(step.section, step.type, phase))
    elif how == "permute":
        perm = draw(st.permutations([steps[i] for i in full]))
        for i, s in zip(full, perm, strict=True):
            steps[i] = LoadStep(s.section, s.type, steps[i].phase)
    return replace(order, steps=tuple(steps))
