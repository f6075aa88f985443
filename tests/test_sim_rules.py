"""Cross-validation: the simulator's behaviours and models/rules.toml describe the same QEMU.

1. Every failure the simulator reports breaks a live rule instance in that order, with the
   failing section as the instance's ``then``, the needed section among its ``firsts``, and the
   rule's consequence as the failure's class.
2. Every rule has a scenario whose violation makes the simulator report its consequence.

A disagreement is a bug in one of the two descriptions. The known ones are listed below with
the side believed wrong; the tests pin them so a fix on either side shows up.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sim_strategies import RELEASES, reorderings, vms

from ordering.conditions import rule_instances
from ordering.model.section import Section
from ordering.order import LoadOrder, derive
from ordering.sim import Failure, move, simulate
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario

K = load_knowledge()

# Once known: a bridge loaded after a virtio device with iommu_platform=on fails the device's
# translation ("Cannot map desc", error) and broke only pci-bus-before-viommu (silent, then =
# the vIOMMU). The rules were incomplete: pci-bus-before-dma-devices now covers it.
KNOWN_UNMATCHED: set[tuple[str, str]] = set()


def _pos(order: LoadOrder) -> dict[int, int]:
    return order.position()


def explain(order: LoadOrder, f: Failure) -> tuple[str, str] | None:
    """(rule id, 'exact' | 'broken') for the best rule instance ``f`` breaks, or None."""
    pos = _pos(order)
    found = rule_instances(K.rules, order.registered)
    broken: str | None = None

    def after(first: Section, then: Section) -> bool:
        return first.section_id not in pos or pos[first.section_id] > pos[then.section_id]

    for rid, insts in found.items():
        for inst in insts:
            if inst.then.section_id not in pos:
                continue
            if not any(after(fs, inst.then) for fs in inst.firsts):
                continue
            if (
                inst.then.section_id == f.section.section_id
                and any(fs.section_id == f.needs.section_id for fs in inst.firsts)
                and inst.rule.consequence == f.consequence
            ):
                return rid, "exact"
            broken = broken or rid
    return (broken, "broken") if broken else None


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, LoadOrder]:
    vm = draw(vms())
    source = draw(st.sampled_from(RELEASES))
    dest = draw(st.sampled_from(RELEASES))
    order = draw(reorderings(derive(K.release(source), vm)))
    return source, dest, order


@given(cases())
def test_every_simulated_failure_breaks_a_live_rule(case: tuple[str, str, LoadOrder]) -> None:
    _, dest, order = case
    trace = simulate(K.release(dest), order.vm, order)
    for f in trace.failures:
        why = explain(order, f)
        assert why is not None, f"no live rule instance is broken: {f}"
        if why[1] != "exact":
            assert (f.message, f.needs.kind) in KNOWN_UNMATCHED, (
                f"{f.consequence.value} at {f.section.label} needing {f.needs.label} breaks only "
                f"{why[0]}, not as its then/first/consequence"
            )


@given(cases())
def test_derived_orders_of_72_and_later_fail_only_where_hazards_are_known(
    case: tuple[str, str, LoadOrder],
) -> None:
    source, dest, order = case
    derived = derive(K.release(source), order.vm)
    trace = simulate(K.release(dest), order.vm, derived)
    for f in trace.failures:
        # QEMU's own order fails only in the two hazards its priorities do not prevent.
        assert f.message.startswith("iommu map to discarded memory") or f.needs.kind == "apic", f


def _violate(scenario: str, release: str, a: str, b: str) -> list[str]:
    vm = read_scenario(K.scenarios[scenario])
    order = derive(K.release(release), vm)
    if a:
        order = move(order, a, b)
    trace = simulate(K.release(release), vm, order)
    out: list[str] = []
    for f in trace.failures:
        why = explain(order, f)
        out.append(f"{why[0] if why and why[1] == 'exact' else '?'}:{f.consequence.value}")
    return out


@pytest.mark.parametrize(
    ("rule", "scenario", "release", "a", "b"),
    [
        ("pci-bus-before-viommu", "hazard-bus-before-viommu", "11.1", "iommu-intel", "0000:00:01.0/pcie-root-port"),
        ("virtio-mem-before-viommu", "hazard-iommu-discarded", "7.2", "", ""),
        ("viommu-before-dma-devices", "hazard-dma-before-viommu", "11.1", "0000:00:01.0/virtio-net", "iommu-intel"),
        ("apic-before-vfio", "hazard-posted-remapped", "10.1", "", ""),
        ("gicv3-before-its", "hazard-its-before-gicv3", "11.1", "arm_gicv3_its", "arm_gicv3"),
        ("its-before-msi-devices", "hazard-msi-before-its", "11.1", "0000:00:01.0/vfio", "arm_gicv3_its"),
    ],
)
def test_every_rule_has_a_violation_the_simulator_shows(
    rule: str, scenario: str, release: str, a: str, b: str
) -> None:
    got = _violate(scenario, release, a, b)
    assert got
    assert all(g == f"{rule}:{K.rule(rule).consequence.value}" for g in got), got


def test_rules_without_a_behaviour_are_known() -> None:
    # vfio-before-container (CPR, 10.1): no bundled machine or device registers the
    # 'vfio-container' VMSD, so no VM can violate it and the simulator has no behaviour for it.
    covered = {
        "pci-bus-before-viommu", "pci-bus-before-dma-devices", "virtio-mem-before-viommu",
        "viommu-before-dma-devices",
        "apic-before-vfio", "gicv3-before-its", "its-before-msi-devices",
    }
    assert {r.id for r in K.rules} - covered == {"vfio-before-container"}


def test_bridge_after_translated_virtio_device_breaks_pci_bus_before_dma_devices() -> None:
    vm = read_scenario(K.scenarios["hazard-bus-before-viommu"])
    # the vIOMMU first, root port rp1 last: virtio-net (behind rp1) loads between them
    order = move(derive(K.release("11.1"), vm), "iommu-intel", "0000:00:01.0/pcie-root-port")
    order = move(order, "0000:00:02.0/pcie-root-port", "globalstate")
    trace = simulate(K.release("11.1"), vm, order)
    got = {(f.consequence.value, f.message[:15], f.section.label, f.needs.label) for f in trace.failures}
    assert ("error", "Cannot map desc", "0000:00:02.0:00.0/virtio-net", "0000:00:02.0/pcie-root-port") in got
    for f in trace.failures:
        if f.message.startswith("Cannot map desc"):
            assert explain(order, f) == ("pci-bus-before-dma-devices", "exact")
