"""A real migration stream as a :class:`~ordering.order.LoadOrder` that the engines can judge.

The stream says what really happened: which sections were sent, in which order, in which
phase. It does not say which device registered a section, nor at which priority. Both come
from the knowledge: the release's VMSD priorities (``release.priority_of``) and kinds, and the
device types' registrations in ``devices.toml`` (a section ``{path}/virtio-net`` belongs to the
``virtio-net-pci`` at that qdev path). Bridges come from qdev paths (a device at
``0000:00:04.0:00.0`` sits behind the one at ``0000:00:04.0``); a ``PCIBUS`` section belongs to
the bridge registered just before it (``pci_bus_realize`` registers the secondary bus right
after the bridge's own section).

The steps keep the **observed** order, never re-sorted, so a verdict judges what the
destination really loaded. :func:`disagreements` lists where that order contradicts the
release's priorities (a wrong ``--qemu``, or a model that is wrong about that binary).

Pure: it takes a :class:`~ordering.sources.stream.Stream` already read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath

from ordering.errors import UsageError
from ordering.model.knowledge import Knowledge
from ordering.model.machine import DeviceType, MachineLayout, machine_type_version
from ordering.model.release import Release
from ordering.model.section import LoadStep, Phase, Section, SectionType
from ordering.model.vm import DeviceSpec, Topology, Vm
from ordering.order import LoadOrder, Registered, rel_kind
from ordering.sources.stream import Stream, StreamSection
from ordering.topology import PlacedDevice

__all__ = [
    "Annotated",
    "Disagreement",
    "annotate",
    "disagreements",
    "observed_order",
    "release_for_stream",
]

_PCI_PATH = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}\.[0-7])+$")


_CHIPSET_MACHINE = {"I440FX": "pc", "mch": "q35"}
"""The host bridge's VMSD that names the machine of a stream without a configuration section
(pc machine types up to 2.x sent none: ``migration.send-configuration=off``)."""


def _machine_from_sections(stream: Stream) -> str:
    """``pc`` or ``q35`` from the host bridge's section, when the stream names no machine."""
    for s in stream.full_sections:
        machine = _CHIPSET_MACHINE.get(s.idstr.rpartition("/")[2])
        if machine:
            return machine
    return ""


def release_for_stream(
    knowledge: Knowledge, stream: Stream, release: Release | None = None
) -> Release:
    """The release whose priorities and registrations explain ``stream``.

    ``release`` (``--qemu``) wins. Otherwise the stream's machine type decides: the release
    whose newest machine type it is (``pc-q35-7.2`` → 7.2). An older machine type may run on
    any newer binary, which the stream does not name: the release named by the machine type's
    version is taken when it is bundled, else the user must say.

    Raises
    ------
    UsageError
        No configuration section, or a machine type no bundled release is named by.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.stream import Configuration, Stream
    >>> k = load_knowledge()
    >>> s = Stream("x.mig", 3, "plain", 0, Configuration("pc-q35-7.2"), (), (), None, 0, None)
    >>> release_for_stream(k, s).name
    '7.2'
    """
    if release is not None:
        return release
    machine_type = stream.machine_type or _machine_from_sections(stream)
    if not machine_type:
        raise UsageError(
            f"{stream.path}: the stream has no configuration section naming its machine type; "
            "pass --qemu R to say which QEMU release wrote it"
        )
    found = knowledge.release_for_machine_type(machine_type)
    if found is not None:
        return found
    version = machine_type_version(machine_type)
    if version is not None:
        for rel in knowledge.releases.values():
            if rel.version == version:
                return rel
    known = ", ".join(sorted(knowledge.releases))
    raise UsageError(
        f"{stream.path}: machine type {machine_type!r} does not name a bundled release "
        f"({known}); it may run on any newer QEMU: pass --qemu R with the source binary's release"
    )


@dataclass(frozen=True)
class _Owner:
    qdev_id: str
    dtype: DeviceType | None
    own: bool
    """Whether the section is the device's own ``{path}/NAME`` registration."""


class _Builder:
    def __init__(self, release: Release, layout: MachineLayout, stream: Stream) -> None:
        self.release = release
        self.layout = layout
        self.stream = stream
        self.machine_idstrs = {
            t.idstr: t.vmsd
            for group in (layout.boot, layout.cpu, layout.platform, layout.late, layout.hotplug_cpu)
            for t in group
        }
        self.by_path_name: dict[str, list[DeviceType]] = {}
        self.by_bare: dict[str, list[DeviceType]] = {}
        self.template_vmsd: dict[str, str] = {}
        for dtype in release.devices.values():
            for t in dtype.registers:
                if t.idstr.startswith("{path}/"):
                    name = t.idstr.removeprefix("{path}/")
                    self.by_path_name.setdefault(name, []).append(dtype)
                    self.template_vmsd[name] = t.vmsd
                elif t.idstr != "PCIBUS":
                    self.by_bare.setdefault(t.idstr, []).append(dtype)
                    self.template_vmsd[t.idstr] = t.vmsd

    def first_seen(self) -> dict[int, list[StreamSection]]:
        out: dict[int, list[StreamSection]] = {}
        for s in self.stream.sections:
            out.setdefault(s.section_id, []).append(s)
        return out

    def device_types_by_path(
        self, seen: dict[int, list[StreamSection]]
    ) -> dict[str, DeviceType | None]:
        """qdev path → the device type all its sections agree on (None: not in devices.toml)."""
        candidates: dict[str, set[str] | None] = {}
        for group in seen.values():
            s = group[0]
            if "/" not in s.idstr or s.idstr in self.machine_idstrs:
                continue
            path, name = s.idstr.rsplit("/", 1)
            # a virtio-mmio transport's path names its bus; any other qdev path here is PCI's
            mmio = path.startswith("virtio-mmio@")
            names = {d.name for d in self.by_path_name.get(name, []) if (d.bus == "virtio-mmio") == mmio}
            current = candidates.get(path)
            if not names:
                candidates.setdefault(path, None)
            elif current is None:
                candidates[path] = names
            else:
                candidates[path] = (current & names) or current
        out: dict[str, DeviceType | None] = {}
        for path, agreed in candidates.items():
            out[path] = self.release.devices[sorted(agreed)[0]] if agreed else None
        return out


def _unknown_type(name: str) -> DeviceType:
    return DeviceType(
        name="",
        kind="other",
        bus="pci",
        provides_bus="",
        first_slot=0,
        registers=(),
        dma=False,
        msi=False,
        source=f"not in devices.toml: seen in a stream as {name!r}",
    )


def _parent_paths(path: str) -> list[str]:
    """Qdev paths of the bridges above a PCI path, outermost first.

    >>> _parent_paths("0000:00:05.0:00.0:01.0")
    ['0000:00:05.0', '0000:00:05.0:00.0']
    """
    if not _PCI_PATH.match(path):
        return []
    parts = path.split(":")
    head = ":".join(parts[:2])
    slots = parts[2:]
    return [":".join([head, *slots[:k]]) for k in range(1, len(slots))]


def observed_order(
    knowledge: Knowledge, stream: Stream, release: Release | None = None
) -> LoadOrder:
    """The load order a real stream shows, as a :class:`LoadOrder` :func:`check_order` judges.

    Parameters
    ----------
    knowledge
        The QEMU model: releases (priorities, kinds, device registrations).
    stream
        A stream read by :func:`ordering.sources.stream.read_stream`.
    release
        The source binary's release (``--qemu``); default: see :func:`release_for_stream`.

    Returns
    -------
    LoadOrder
        One step per section in **stream order** (START/PART/END/FULL, with the stream's
        phases); ``registered`` holds one Section per section_id seen (registration order =
        section_id order) and the devices rebuilt from the idstrs. Sections whose VMSD no
        kind lists are kind ``other``; sections never sent are absent (the stream cannot
        show them).

    Raises
    ------
    UsageError
        The release cannot be told from the stream (see :func:`release_for_stream`).
    UnknownName
        The release has no machine of the stream's machine type.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.stream import Configuration, Phase as P, SectionType as T
    >>> from ordering.sources.stream import Stream, StreamSection
    >>> def full(sid, idstr):
    ...     return StreamSection(T.FULL, sid, idstr, 0, 1, P.COMPLETE, 0, 0, idstr.split("/")[-1])
    >>> s = Stream("x.mig", 3, "plain", 0, Configuration("pc-q35-7.2"),
    ...            (full(40, "iommu-intel"), full(41, "0000:00:01.0/pcie-root-port"),
    ...             full(43, "0000:00:01.0:00.0/virtio-net")), (), None, 0, None)
    >>> o = observed_order(load_knowledge(), s)
    >>> [(st.section.idstr, st.section.priority.short, st.section.kind) for st in o.steps]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('iommu-intel', 'IOMMU', 'viommu'), ('0000:00:01.0/pcie-root-port', 'PCI_BUS', 'pci-bridge'),
     ('0000:00:01.0:00.0/virtio-net', 'DEFAULT', 'pci')]
    >>> [d.qdev_id for d in o.registered.devices[-1:]], o.registered.devices[-1].bridges
    (['0000:00:01.0:00.0'], ('0000:00:01.0',))
    """
    rel = release_for_stream(knowledge, stream, release)
    machine_type = stream.machine_type or _machine_from_sections(stream)
    if not machine_type:
        raise UsageError(
            f"{stream.path}: the stream has no configuration section naming its machine type; "
            "migorder cannot tell the machine (streams of QEMU 2.x before the configuration "
            "section are not supported)"
        )
    layout, _ = rel.machine(machine_type)
    b = _Builder(rel, layout, stream)
    seen = b.first_seen()
    path_types = b.device_types_by_path(seen)

    # Owners, in registration (section_id) order so a PCIBUS finds the bridge before it.
    owners: dict[int, _Owner] = {}
    bare_devices: dict[str, DeviceType] = {}
    last_owner: _Owner | None = None
    for sid in sorted(seen):
        s = seen[sid][0]
        owner: _Owner
        if s.idstr == "PCIBUS":
            # pci_bus_realize registers a secondary bus right after its bridge's section.
            above = last_owner
            if above is not None and above.dtype is not None and above.dtype.provides_bus:
                owner = _Owner(above.qdev_id, above.dtype, False)
            else:
                owner = _Owner("machine", None, False)
        elif s.idstr in b.machine_idstrs:
            cpu = s.idstr in ("cpu_common", "cpu")
            owner = _Owner(f"cpu{s.instance_id}" if cpu else "machine", None, False)
        elif "/" in s.idstr:
            path = s.idstr.rsplit("/", 1)[0]
            owner = _Owner(path, path_types.get(path), True)
        elif s.idstr in b.by_bare:
            dtype = sorted(b.by_bare[s.idstr], key=lambda d: d.name)[0]
            qdev = s.idstr if s.instance_id == 0 else f"{s.idstr}#{s.instance_id}"
            bare_devices[qdev] = dtype
            owner = _Owner(qdev, dtype, True)
        else:
            owner = _Owner("machine", None, False)
        owners[sid] = owner
        last_owner = owner

    sections: dict[int, Section] = {}
    for sid in sorted(seen):
        group = seen[sid]
        s = group[0]
        own = owners[sid]
        types = {g.type for g in group}
        vmsd = s.vmsd_name
        kind = rel_kind(rel, vmsd)
        if not kind:
            name = s.idstr.rsplit("/", 1)[-1]
            template = b.machine_idstrs.get(s.idstr, b.template_vmsd.get(name, ""))
            kind = (rel_kind(rel, template) if template else "") or (
                own.dtype.kind if own.own and own.dtype is not None and own.dtype.kind else "other"
            )
        early = any(g.type.value == "FULL" and g.phase.value == "setup" for g in group)
        sections[sid] = Section(
            section_id=sid,
            idstr=s.idstr,
            instance_id=s.instance_id,
            vmsd=vmsd,
            priority=rel.priority_of(vmsd),
            kind=kind,
            owner=own.qdev_id,
            iterable=any(t.value in ("START", "PART", "END") for t in types),
            full=any(t.value == "FULL" for t in types),
            sent=True,
            early_setup=early,
        )

    devices = _devices(path_types, bare_devices, sections)
    steps = tuple(
        LoadStep(sections[s.section_id], SectionType(s.type.value), Phase(s.phase.value))
        for s in stream.sections
    )
    cpus = len({s.instance_id for s in sections.values() if s.idstr == "cpu_common"}) or 1
    vm = Vm(
        name=PurePath(stream.path).name or "stream",
        machine=machine_type,
        machine_options={},
        topology=Topology(cpus=cpus, maxcpus=cpus, sockets=cpus),
        devices=tuple(d.spec for d in devices),
        source=stream.path,
        description=f"observed in {stream.path}",
    )
    ordered = tuple(sections[sid] for sid in sorted(sections))
    registered = Registered(rel, vm, machine_type, ordered, devices)
    return LoadOrder(rel, vm, registered.machine_type, steps, registered)


def _devices(
    path_types: dict[str, DeviceType | None],
    bare: dict[str, DeviceType],
    sections: dict[int, Section],
) -> tuple[PlacedDevice, ...]:
    first_sid: dict[str, int] = {}
    for sid in sorted(sections):
        first_sid.setdefault(sections[sid].owner, sid)
    out: list[tuple[int, PlacedDevice]] = []
    for qdev, dtype in bare.items():
        spec = DeviceSpec(driver=dtype.name, id=qdev, origin="stream")
        placed = PlacedDevice(spec, dtype, qdev, "", None, None, "", ())
        out.append((first_sid.get(qdev, 0), placed))
    for path, maybe in path_types.items():
        dtype = maybe or _unknown_type(path)
        pci = _PCI_PATH.match(path) is not None
        slot: int | None = None
        function: int | None = None
        bus = ""
        if pci:
            last = path.rsplit(":", 1)[1]
            slot, function = int(last.split(".")[0], 16), int(last.split(".")[1])
            parents = [p for p in _parent_paths(path) if p in path_types]
            bus = parents[-1] if parents else "root"
        else:
            parents = []
        # A stream does not carry -device properties: a virtio device is judged as a command
        # line without iommu_platform=on would be (no load-time translation through a vIOMMU).
        spec = DeviceSpec(driver=dtype.name, id=path, bus=bus, origin="stream")
        placed = PlacedDevice(spec, dtype, path, bus, slot, function, path, tuple(parents))
        out.append((first_sid.get(path, 0), placed))
    return tuple(p for _, p in sorted(out, key=lambda x: x[0]))


@dataclass(frozen=True)
class Annotated:
    """One step of an observed order, in the words ``migorder stream`` prints."""

    position: int
    type: str
    phase: str
    section_id: int
    idstr: str
    instance_id: int
    vmsd: str
    priority: str
    priority_value: int
    kind: str
    device: str
    """The ``-device`` type the section was matched to (``""``: machine or unknown)."""

    def as_json(self) -> dict[str, object]:
        """The JSON object ``migorder stream --json`` prints for this step."""
        return {
            "idstr": self.idstr,
            "instance_id": self.instance_id,
            "section_id": self.section_id,
            "phase": self.phase,
            "priority": self.priority,
            "priority_value": self.priority_value,
            "vmsd": self.vmsd,
            "kind": self.kind,
            "type": self.type,
            "device": self.device,
        }


def annotate(order: LoadOrder) -> tuple[Annotated, ...]:
    """Each step of ``order`` with its VMSD, priority, phase, kind and device type.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order import derive
    >>> k = load_knowledge()
    >>> o = derive(k.release("7.2"), parse_command_line("-machine q35 -device intel-iommu"))
    >>> a = [a for a in annotate(o) if a.idstr == "iommu-intel"][0]
    >>> a.type, a.phase, a.priority, a.kind, a.device
    ('FULL', 'complete', 'MIG_PRI_IOMMU', 'viommu', 'intel-iommu')
    """
    types = {d.qdev_id: d.type.name for d in order.registered.devices}
    return tuple(
        Annotated(
            position=i,
            type=step.type.value,
            phase=step.phase.value,
            section_id=step.section.section_id,
            idstr=step.section.idstr,
            instance_id=step.section.instance_id,
            vmsd=step.section.vmsd,
            priority=step.section.priority.name,
            priority_value=step.section.priority.value,
            kind=step.section.kind,
            device=types.get(step.section.owner, ""),
        )
        for i, step in enumerate(order.steps)
    )


@dataclass(frozen=True)
class Disagreement:
    """Two FULL sections the stream sent in an order the release's priorities forbid."""

    earlier: Section
    later: Section
    phase: Phase

    def describe(self) -> str:
        """One line naming both sections, their priorities and section_ids."""
        e, lt = self.earlier, self.later
        return (
            f"{e.label} ({e.priority.name}, section_id {e.section_id}) was sent before "
            f"{lt.label} ({lt.priority.name}, section_id {lt.section_id}) in the {self.phase} "
            "phase, against this release's priorities"
        )


def disagreements(order: LoadOrder) -> list[Disagreement]:
    """Adjacent FULL sections of one phase whose order contradicts priority, then section_id.

    QEMU's source sends a phase's FULL sections by priority (higher first), ties in
    registration order. A disagreement means the stream came from a binary whose priorities
    (or registrations) differ from the release used to read it.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order import derive
    >>> k = load_knowledge()
    >>> disagreements(derive(k.release("7.2"), parse_command_line("-machine q35")))
    []
    """
    out: list[Disagreement] = []
    prev: LoadStep | None = None
    for step in _full_steps(order.steps):
        if prev is not None and prev.phase == step.phase:
            a, b = prev.section, step.section
            if (-a.priority.value, a.section_id) > (-b.priority.value, b.section_id):
                out.append(Disagreement(a, b, step.phase))
        prev = step
    return out


def _full_steps(steps: Iterable[LoadStep]) -> Iterable[LoadStep]:
    return (s for s in steps if s.type is SectionType.FULL)
