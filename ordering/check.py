"""``migorder check``'s core: one VM on one release, judged against every rule."""

from __future__ import annotations

from dataclasses import dataclass

from ordering._bulk import bulk
from ordering.claims import ClaimCheck, check_claims
from ordering.conditions import bypasses_viommu, rule_instances
from ordering.graph import Cycle, cycles, kind_graph, section_graph
from ordering.model.knowledge import Knowledge
from ordering.model.machine import condition_holds
from ordering.model.machine import machine_type_version as machine_version
from ordering.model.release import Release
from ordering.model.vm import Vm
from ordering.order import LoadOrder, derive
from ordering.topology import PlacedDevice
from ordering.verdict import RuleVerdict, Verdict, judge


@dataclass(frozen=True)
class Blocker:
    """Why QEMU refuses to migrate the VM: an unmigratable VMSD or a device's blocker."""

    device: str
    message: str
    source: str
    conditional: str = ""
    """Non-empty when the blocker depends on what the host device supports (not a finding)."""


@dataclass(frozen=True)
class CheckResult:
    """Everything ``migorder check`` reports, with its evidence."""

    release: Release
    vm: Vm
    order: LoadOrder
    verdicts: tuple[RuleVerdict, ...]
    kind_cycles: tuple[Cycle, ...]
    section_cycles: tuple[Cycle, ...]
    claims: tuple[ClaimCheck, ...]
    blockers: tuple[Blocker, ...]

    @property
    def findings(self) -> bool:
        """Whether anything is wrong: a violated or tie-fragile rule, a cycle, a blocker."""
        return bool(
            any(v.verdict in (Verdict.VIOLATED, Verdict.TIE_FRAGILE) for v in self.verdicts)
            or self.kind_cycles
            or self.section_cycles
            or any(not b.conditional for b in self.blockers)
        )

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings."""
        return 1 if self.findings else 0


def blockers(order: LoadOrder) -> list[Blocker]:
    """What makes QEMU refuse the migration, in QEMU's words.

    Unmigratable VMSDs of ``-device`` devices (``qemu_savevm_state_blocked``: "State blocked
    by non-migratable device"), and the blockers devices add at realize (release
    ``[[blocker]]`` facts). The machines' built-in sections never block: they were captured
    from migrations that succeeded.
    """
    reg = order.registered
    release = order.release
    out: list[Blocker] = []
    unmigratable = release.unmigratable
    hits = [s for s in reg.sections if s.vmsd in unmigratable] if unmigratable else []
    owners = {s.owner for s in hits}  # vCPUs' 'cpu' sections hit too, and are no device
    # Only the drivers a blocker names are looked for (a 100k-device VM has few of them).
    named = {b.device for b in release.blockers}
    devices: dict[str, PlacedDevice] = {}
    by_driver: dict[str, list[PlacedDevice]] = {}
    for placed in reg.devices:
        if placed.qdev_id in owners:
            devices[placed.qdev_id] = placed
        if placed.spec.driver in named:
            by_driver.setdefault(placed.spec.driver, []).append(placed)
    for s in hits:
        fact = unmigratable[s.vmsd]
        dev = devices.get(s.owner)
        if dev is None:
            continue
        if fact.device and fact.device != dev.spec.driver and fact.name != s.vmsd:
            continue
        if fact.when and not condition_holds(
            fact.when, release=release.version, machine_version=None, options=dict(dev.spec.props)
        ):
            continue
        out.append(Blocker(dev.qdev_id, f"State blocked by non-migratable device '{s.idstr}'", fact.source))
    machine_type_version = machine_version(order.machine_type)
    bypass = bypasses_viommu(reg)
    for b in release.blockers:
        if b.device.startswith("chardev:"):  # a -chardev backend's blocker (no device to name)
            backend = b.device.removeprefix("chardev:")
            if backend in order.vm.chardevs:
                out.append(Blocker(f"chardev {backend}", b.message, b.source, b.conditional))
            continue
        candidates = by_driver.get(b.device, [])
        if not candidates or (b.with_kind == "viommu" and bypass):
            continue  # behind no vIOMMU: vfio_viommu_preset() is false
        if b.with_kind and not any(s.sent and s.kind == b.with_kind for s in reg.sections):
            continue
        for dev in candidates:
            if not condition_holds(
                b.when, release=release.version, machine_version=machine_type_version, options=dict(dev.spec.props)
            ):
                continue
            name = dev.spec.props.get("host") or dev.spec.props.get("sysfsdev") or dev.qdev_id
            out.append(Blocker(dev.qdev_id, b.message.replace("{name}", name), b.source, b.conditional))
    return out


@bulk
def check_order(knowledge: Knowledge, order: LoadOrder) -> CheckResult:
    """Judge an already derived (or observed) load order."""
    rules = knowledge.rules
    found = rule_instances(rules, order.registered)
    verdicts = judge(order, rules, found)
    instances = [i for insts in found.values() for i in insts]
    return CheckResult(
        release=order.release,
        vm=order.vm,
        order=order,
        verdicts=tuple(verdicts),
        kind_cycles=tuple(cycles(kind_graph(rules))),
        section_cycles=tuple(cycles(section_graph(instances))),
        claims=tuple(check_claims(order.release, rules)),
        blockers=tuple(blockers(order)),
    )


@bulk
def check(knowledge: Knowledge, release: Release, vm: Vm) -> CheckResult:
    """Derive ``vm``'s load order on ``release`` and judge it.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> k = load_knowledge()
    >>> r = check(k, k.release("7.2"), read_scenario(k.scenarios["default"]))
    >>> r.exit_code
    1
    """
    return check_order(knowledge, derive(release, vm))
