"""Build an :class:`~ordering.space.OrderSpace` for one VM, and the moves that walk it.

The space is every load order a destination may see for the VM, from five sources:

* **Registration freedom** (stage three of :func:`ordering.order.derive`): any ``-device``
  order that respects bus parents (a device moves to the end of the command line unless a
  device sits behind it); hot-plug of an absent vCPU (``-smp N,maxcpus=M``); unplug and replug
  of a device with an id (``device_del`` + ``device_add``: FACTS §2, re-plug moves a device to
  the end of its priority bucket); the scenario's ``[[hotplug]]`` steps marked ``any-order``
  in any order. Each costs one step; the explorer bounds the steps.
* **Releases.** The stream's order comes from the (last) source, behaviours and blockers from
  the destination; in a chain A→B→C the VM keeps the machine type A gave it, so B registers
  with A's compat properties.
* **Machine-type compat properties.** An unversioned ``-machine`` may have been created on an
  older machine type and kept it: every versioned machine type of a bundled release up to the
  source is a start of its own (``hw_compat_7_2`` turns virtio-mem's ``x-early-migration``
  off; ``hw_compat_9_2`` VFIO's ``x-migration-multifd-transfer``; ``hw_compat_10_0`` its
  ``x-migration-load-config-after-iter``).
* **Load-side concurrency.** With multifd, a VFIO device's config loads from
  ``vfio_load_bufs_thread`` (hw/vfio/migration-multifd.c, 10.0+), unordered against the main
  thread's FULL sections unless ``x-migration-load-config-after-iter`` holds it back
  (:func:`ordering.verdict.vfio_config_unordered` decides which devices); the explorer tries
  the earliest and the latest point the thread can reach in the completion phase.
* **Postcopy.** ``postcopy_start`` (migration/migration.c) sends the END of every iterable that
  cannot run in postcopy (``qemu_savevm_state_complete_precopy_iterable(f, true)``), then the
  package (``MIG_CMD_PACKAGED``: ``POSTCOPY_LISTEN``,
  ``qemu_savevm_state_complete_precopy_non_iterable(fb, true)``, ``POSTCOPY_RUN``). The
  package walks the same handler list, so every FULL section keeps its precopy order; only the
  END of a postcopiable iterable (``ram``, ``dirty-bitmap``) comes after the device state.
  From 8.2 a migrating VFIO device refuses postcopy (``vfio_save_prepare``: "VFIO migration is
  not supported with postcopy migration"), so such a VM has no postcopy order at all.

Pure core: no file or process I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ordering.model.machine import machine_type_version, version_tuple
from ordering.model.release import Release
from ordering.model.section import LoadStep, Phase, SectionType
from ordering.model.vm import DeviceSpec, HotplugStep, Vm
from ordering.order import LoadOrder, Registered
from ordering.space import OrderSpace
from ordering.verdict import vfio_config_unordered

POSTCOPIABLE = frozenset({"ram", "dirty-bitmap"})
"""Iterable handlers with ``save_live_complete_postcopy``: their END follows the package."""


def order_space(
    source: Release,
    destination: Release,
    vm: Vm,
    *,
    releases: Sequence[Release] = (),
    chain: Sequence[Release] = (),
    hotplug_bound: int = 2,
    multifd: bool = False,
    postcopy: bool = False,
) -> OrderSpace:
    """The order space of ``vm`` migrating from ``source`` to ``destination``.

    ``releases`` are the releases whose machine types the VM may carry (the bundled ones);
    ``chain`` the earlier sources of a chain of migrations, oldest first.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-machine q35 -smp 2,maxcpus=4")
    >>> s = order_space(k.release("10.2"), k.release("10.2"), vm, releases=k.releases.values())
    >>> s.machine_types
    ('pc-q35-10.2', 'pc-q35-10.1', 'pc-q35-10.0', 'pc-q35-7.2')
    >>> s.describe()
    "VM 'command-line' of QEMU 10.2, any registration order, up to 2 hot-plug step(s), machine types pc-q35-10.2, pc-q35-10.1, pc-q35-10.0, pc-q35-7.2"
    """
    if multifd:
        vm = replace(vm, migration={**vm.migration, "multifd": "on"})
    first = chain[0] if chain else source
    layout, resolved = first.machine(vm.machine)
    if machine_type_version(vm.machine) or chain:
        types: tuple[str, ...] = (resolved,)
    else:
        prefix = layout.type_prefix
        versions = sorted(
            {r.name for r in releases if r.version <= source.version} | {source.name},
            key=version_tuple,
            reverse=True,
        )
        types = tuple(f"{prefix}{v}" for v in versions) if prefix else (resolved,)
    return OrderSpace(
        source,
        destination,
        vm,
        chain=tuple(chain),
        registration_free=True,
        hotplug_bound=hotplug_bound,
        hotplug_any_order=any(h.any_order for h in vm.hotplug),
        multifd=multifd or vm.migration.get("multifd") == "on",
        postcopy=postcopy,
        machine_types=types,
    )


@dataclass(frozen=True)
class Move:
    """One step that changes what a VM registers, and so its order."""

    kind: str
    """``machine`` (start on another machine type), ``last`` (a ``-device`` to the end of the
    command line), ``cpu`` (hot-plug a vCPU), ``replug`` (``device_del`` + ``device_add``),
    ``hotplug-order`` (the ``any-order`` hot-plug steps permuted)."""
    target: str
    """The machine type, the device's id (or its position), the vCPU index, the permutation."""
    symmetry: str = ""
    """Moves with the same key act on interchangeable devices: only the first is tried until
    it has been taken."""

    def describe(self, source: Release) -> str:
        """The step in a user's words."""
        if self.kind == "machine":
            return f"start the VM with -machine {self.target} (compat properties of that machine type)"
        if self.kind == "last":
            return f"give -device {self.target} last on the command line"
        if self.kind == "cpu":
            return f"hot-plug vCPU {self.target} (device_add; it registers after every device so far)"
        if self.kind == "replug":
            return f"unplug and replug {self.target} (device_del, device_add: it registers last)"
        return f"run the any-order hot-plug steps in the order {self.target}"


def moves(space: OrderSpace, relevant: frozenset[str] = frozenset()) -> tuple[Move, ...]:
    """The moves of ``space``'s VM (machine-type starts first), symmetric devices keyed alike.

    ``relevant``: the qdev ids (and ``cpu``) whose sections a rule or a behaviour relates;
    moves of other devices change no relative order that matters and are left out (empty:
    every device is relevant).
    """
    vm = space.vm
    if vm is None:
        return ()
    out = [Move("machine", t) for t in space.machine_types[1:]]
    devices = vm.devices_for.get(space.source.name, vm.devices)
    parents = {d.bus for d in devices if d.bus} | {h.device.bus for h in vm.hotplug if h.device and h.device.bus}
    knobs = _guest_device_knobs(vm.guest)
    for i, spec in enumerate(devices):
        name = spec.id or f"#{i}"
        if relevant and spec.id not in relevant and name not in relevant:
            continue
        if name in parents or (spec.id and spec.id in parents):
            continue  # a device sits behind it: it cannot come after its children
        key = _symmetry(spec, knobs)
        if i < len(devices) - 1:
            out.append(Move("last", name, f"last:{key}"))
        if spec.id:
            out.append(Move("replug", spec.id, f"replug:{key}"))
    present = set(range(vm.topology.cpus)) | {h.cpu for h in vm.hotplug if h.cpu is not None}
    targets = _guest_cpu_targets(vm.guest)
    if not relevant or "cpu" in relevant:
        for cpu in range(vm.topology.maxcpus):
            if cpu not in present:
                out.append(Move("cpu", str(cpu), "" if cpu in targets else "cpu:untargeted"))
    marked = [i for i, h in enumerate(vm.hotplug) if h.any_order]
    if len(marked) > 1:
        for perm in itertools.islice(itertools.permutations(marked), 1, 720):
            out.append(Move("hotplug-order", ",".join(str(i) for i in perm)))
    return tuple(out)


def apply(vm: Vm, move: Move, source: Release) -> Vm:
    """``vm`` after ``move`` (machine-type starts replace the machine name)."""
    if move.kind == "machine":
        return replace(vm, machine=move.target)
    if move.kind == "hotplug-order":
        perm = [int(x) for x in move.target.split(",")]
        marked = sorted(perm)
        steps = list(vm.hotplug)
        for slot, src in zip(marked, perm, strict=True):
            steps[slot] = vm.hotplug[src]
        return replace(vm, hotplug=tuple(steps))
    if move.kind == "cpu":
        return replace(vm, hotplug=(*vm.hotplug, HotplugStep(cpu=int(move.target))))
    devices = vm.devices_for.get(source.name, vm.devices)
    index = _index(devices, move.target)
    if move.kind == "replug":
        spec = devices[index]
        return replace(
            vm, hotplug=(*vm.hotplug, HotplugStep(unplug=spec.id), HotplugStep(device=spec))
        )
    return replace(
        vm,
        devices=_to_end(vm.devices, index),
        devices_for={r: _to_end(d, index) for r, d in vm.devices_for.items()},
    )


def relevant_owners(registered: Registered) -> frozenset[str]:
    """Owners whose sections a rule or a behaviour can relate: devices of a kind other than
    ``other`` (a PCI device may be a DMA or MSI side through a computed selector), owners of a
    section of a rule kind, and ``cpu`` when vCPUs register an APIC.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order import derive
    >>> vm = parse_command_line("-machine q35 -device pcie-root-port,id=rp0 -device usb-ehci,id=u"
    ...                         " -device usb-kbd,id=kbd")
    >>> sorted(relevant_owners(derive(load_knowledge().release("10.2"), vm).registered))
    ['cpu', 'rp0', 'u']
    """
    out = {d.qdev_id for d in registered.devices if d.kind != "other"}
    for s in registered.sections:
        if s.kind != "other":
            out.add("cpu" if s.owner.startswith("cpu") else s.owner)
    return frozenset(out)


def _index(devices: Sequence[DeviceSpec], name: str) -> int:
    for i, d in enumerate(devices):
        if d.id == name or f"#{i}" == name:
            return i
    raise ValueError(f"no device {name!r}")  # moves name only devices the VM has


def _to_end(devices: tuple[DeviceSpec, ...], index: int) -> tuple[DeviceSpec, ...]:
    if index >= len(devices):
        return devices
    return (*devices[:index], *devices[index + 1 :], devices[index])


_IDENTITY = frozenset({"id", "host", "addr", "chassis", "chassis_nr", "slot", "memdev", "sysfsdev"})


def _symmetry(spec: DeviceSpec, knobs: Mapping[str, object]) -> str:
    """Devices with the same driver, bus, non-identity properties and no guest knobs of their
    own are interchangeable."""
    if spec.id and spec.id in knobs:
        return f"own:{spec.id}"
    props = ",".join(f"{k}={v}" for k, v in sorted(spec.props.items()) if k not in _IDENTITY)
    return f"{spec.driver}|{'bus' if spec.bus else ''}|{props}"


def _guest_device_knobs(guest: Mapping[str, object]) -> Mapping[str, object]:
    table = guest.get("device", {})
    return table if isinstance(table, dict) else {}


def _guest_cpu_targets(guest: Mapping[str, object]) -> set[int]:
    """vCPU indexes a guest knob names (``msi-targets``): those vCPUs are not interchangeable."""
    out: set[int] = set()
    for knobs in _guest_device_knobs(guest).values():
        if isinstance(knobs, dict):
            for t in knobs.get("msi-targets", ()) or ():
                if isinstance(t, int):
                    out.add(t)
    return out


def load_variants(order: LoadOrder, space: OrderSpace) -> list[tuple[str, LoadOrder]]:
    """The orders a destination may load for one derived order: postcopy moves the END of
    postcopiable iterables after the package; with multifd each VFIO config load QEMU does not
    order may run at the earliest or the latest point of the completion phase."""
    if space.postcopy:
        order = postcopy_order(order)
    out = [("", order)]
    unordered = vfio_config_unordered(order)
    if unordered:
        out.append(("multifd: VFIO config loaded earliest (vfio_load_bufs_thread)", config_at(order, unordered, early=True)))
        out.append(("multifd: VFIO config loaded latest (vfio_load_bufs_thread)", config_at(order, unordered, early=False)))
    return out


def postcopy_order(order: LoadOrder) -> LoadOrder:
    """``order`` as postcopy sends it: non-postcopiable ENDs, the package (every FULL section
    in list order), then the END of ``ram`` and ``dirty-bitmap`` (postcopy_start)."""
    late = [s for s in order.steps if s.type is SectionType.END and s.section.idstr in POSTCOPIABLE]
    if not late:
        return order
    rest = [s for s in order.steps if not (s.type is SectionType.END and s.section.idstr in POSTCOPIABLE)]
    return replace(order, steps=(*rest, *late))


def config_at(order: LoadOrder, owners: set[str], *, early: bool) -> LoadOrder:
    """The VFIO FULL sections of ``owners`` moved to the start (or end) of the completion
    phase's FULL sections."""
    moved = [s for s in order.steps if s.type is SectionType.FULL and s.section.owner in owners]
    rest = [s for s in order.steps if not (s.type is SectionType.FULL and s.section.owner in owners)]
    full = [i for i, s in enumerate(rest) if s.type is SectionType.FULL and s.phase is Phase.COMPLETE]
    at = (full[0] if full else len(rest)) if early else (full[-1] + 1 if full else len(rest))
    placed = [LoadStep(s.section, s.type, Phase.COMPLETE) for s in moved]
    return replace(order, steps=(*rest[:at], *placed, *rest[at:]))


def postcopy_refusal(space: OrderSpace, order: LoadOrder) -> str:
    """QEMU's refusal of postcopy with a migrating VFIO device (``vfio_save_prepare``,
    hw/vfio/migration.c, 8.2+: it cannot serve page faults), or ``""``."""
    if not space.postcopy or space.source.version < (8, 2):
        return ""
    for step in order.steps:
        if step.section.kind == "vfio":
            owner = step.section.owner
            return f"QEMU {space.source.name} refuses it: '{owner}: VFIO migration is not supported with postcopy migration' (vfio_save_prepare)"
    return ""
