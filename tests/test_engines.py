"""The graph, z3, brute-force and explicit engines agree exactly on small order spaces.

Two properties: over random small :class:`SpaceModel`s (stages, bus-parent forests, mobile
devices, ties, threaded loads; graph, z3 and brute force) and over small real VMs derived
from command lines (all four, the explicit engine of ``migorder explore`` included). Every
counterexample order an engine gives really loads the first after the then.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordering.cli import main
from ordering.engines import brute, graph, smt_space
from ordering.engines.families import x86_vfio
from ordering.engines.slots import Instance, Slot, SpaceModel, space_model
from ordering.explore import explore_verdicts
from ordering.model.section import Phase
from ordering.model.vm import HotplugStep
from ordering.order_space import order_space
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.space import OrderSpace, Outcome

K = load_knowledge()


@st.composite
def models(draw: st.DrawFn) -> SpaceModel:
    """A small space: up to 6 devices of 1-2 sections in stages, some under a bus parent."""
    slots: list[Slot] = []
    units = draw(st.integers(1, 5))
    stage_of = sorted(draw(st.lists(st.integers(0, 3), min_size=units, max_size=units)))
    last_in_stage: dict[int, int] = {}
    for u, stage in enumerate(stage_of):
        owner = f"d{u}"
        size = draw(st.integers(1, 2))
        chain = stage in (0, 2)
        same_stage = [i for i, s in enumerate(slots) if s.stage == stage]
        if chain:
            parent = last_in_stage.get(stage, -1)
        elif same_stage and draw(st.integers(0, 1)) == 1:
            parent = draw(st.sampled_from(same_stage))
        else:
            parent = -1
        mobile = stage in (1, 3) and draw(st.booleans())
        for k in range(size):
            slots.append(
                Slot(
                    f"{owner}.{k}",
                    "v",
                    owner,
                    draw(st.sampled_from((Phase.SETUP, Phase.COMPLETE))) if draw(st.integers(0, 4)) == 0 else Phase.COMPLETE,
                    draw(st.integers(1, 2)),
                    "P",
                    stage,
                    parent,
                    mobile,
                    draw(st.integers(0, 19)) == 0,
                )
            )
            parent = len(slots) - 1
            last_in_stage[stage] = parent
    n = len(slots)
    instances = []
    for _ in range(draw(st.integers(1, 2))):
        then = draw(st.integers(0, n - 1))
        others = [i for i in range(n) if i != then] or [then]
        firsts = draw(st.lists(st.sampled_from(others), min_size=1, max_size=3, unique=True))
        instances.append(Instance(tuple(firsts), then))
    return SpaceModel(tuple(slots), tuple(instances), draw(st.integers(0, 2)), "random")


def _violates(model: SpaceModel, order: list[str]) -> bool:
    at = {label: i for i, label in enumerate(order)}
    return any(
        model.slots[inst.then].threaded
        or any(
            model.slots[f].label in at and at[model.slots[f].label] > at.get(model.slots[inst.then].label, 1 << 30)
            for f in inst.firsts
        )
        for inst in model.instances
    )


RULE = K.rule("apic-before-vfio")


@given(models())
def test_engines_agree_on_random_spaces(model: SpaceModel) -> None:
    w_graph, _ = graph.find_witness(model)
    w_brute, _ = brute.find_witness(model)
    w_smt, _, unknown = smt_space.find_witness(model)
    assert not unknown
    assert (w_graph is None) == (w_brute is None) == (w_smt is None)
    if w_graph is not None and w_smt is not None:
        assert _violates(model, graph.counterexample_order(model, w_graph))
        assert _violates(model, graph.counterexample_order(model, w_smt))


@st.composite
def small_spaces(draw: st.DrawFn) -> tuple[OrderSpace, str]:
    """A small q35 VM: vCPUs (some hot-pluggable), VFIO and virtio devices behind root ports,
    maybe a vIOMMU; a release pair, a hot-plug bound, multifd or not, and a rule."""
    cpus = draw(st.integers(1, 2))
    maxcpus = cpus + draw(st.integers(0, 1))
    args = f"-machine q35,kernel-irqchip=split -smp {cpus},maxcpus={maxcpus}"
    iommu = draw(st.booleans())
    if iommu:
        args += " -device intel-iommu,intremap=on,caching-mode=on"
    for p in range(draw(st.integers(1, 2))):
        args += f" -device pcie-root-port,id=rp{p},chassis={p + 1}"
        if draw(st.integers(0, 2)) > 0:
            args += f" -device vfio-pci,host=0000:0{p}:00.0,id=nic{p},bus=rp{p}"
        else:
            args += f" -device virtio-net-pci,iommu_platform=on,disable-legacy=on,id=net{p},bus=rp{p}"
    vm = parse_command_line(args)
    source = K.release(draw(st.sampled_from(("10.1", "10.2"))))
    space = order_space(
        source,
        K.release("10.2"),
        vm,
        releases=list(K.releases.values()),
        hotplug_bound=draw(st.integers(0, 1)),
        multifd=draw(st.integers(0, 3)) == 0,
    )
    rule = draw(st.sampled_from(("apic-before-vfio", "viommu-before-dma-devices", "pci-bus-before-dma-devices")))
    return space, rule


@given(small_spaces())
def test_engines_agree_on_small_vms(case: tuple[OrderSpace, str]) -> None:
    space, rule_id = case
    rule = K.rule(rule_id)
    g = graph.graph_engine(space, rule)
    s = smt_space.smt_engine(space, rule)
    b = brute.brute_engine(space, rule)
    (e,) = [v for v in explore_verdicts(space, [rule], max_states=5000) if v.subject == rule.id]
    assert g.outcome == s.outcome == b.outcome == e.outcome, (g, s, b, e)
    if g.outcome is Outcome.COUNTEREXAMPLE and g.reason.startswith("tie"):
        assert any(line.startswith("+") for line in g.order)


def test_apic_counterexample_is_a_hot_plugged_vcpu_loading_last() -> None:
    vm = parse_command_line(
        "-machine q35 -smp 2,maxcpus=4 -device pcie-root-port,id=rp1 -device vfio-pci,host=01:00.0,id=nic0,bus=rp1"
    )
    space = OrderSpace(K.release("10.1"), K.release("10.2"), vm, hotplug_bound=1)
    v = graph.graph_engine(space, RULE)
    assert v.outcome is Outcome.COUNTEREXAMPLE
    assert "+apic#2" in v.order
    assert "tie at MIG_PRI_DEFAULT" in v.reason
    assert graph.graph_engine(OrderSpace(K.release("10.2"), K.release("10.2"), vm, hotplug_bound=1), RULE).outcome is Outcome.PROVED


def test_a_replugged_device_is_the_counterexample() -> None:
    # Two virtio devices behind ports, a vIOMMU: a tie at DEFAULT between... none; but the
    # vIOMMU before DMA devices holds by priority whatever is replugged.
    vm = parse_command_line(
        "-machine q35 -device intel-iommu -device pcie-root-port,id=rp0 "
        "-device virtio-net-pci,iommu_platform=on,disable-legacy=on,bus=rp0"
    )
    space = OrderSpace(K.release("10.2"), K.release("10.2"), vm, hotplug_bound=2)
    rule = K.rule("viommu-before-dma-devices")
    assert graph.graph_engine(space, rule).outcome is Outcome.PROVED
    assert smt_space.smt_engine(space, rule).outcome is Outcome.PROVED


def test_multifd_config_thread_is_a_counterexample_on_x86() -> None:
    vm = parse_command_line("-machine q35 -device pcie-root-port,id=rp1 -device vfio-pci,host=01:00.0,bus=rp1")
    space = OrderSpace(K.release("10.2"), K.release("10.2"), vm, multifd=True)
    v = graph.graph_engine(space, RULE)
    assert v.outcome is Outcome.COUNTEREXAMPLE
    assert "vfio_load_bufs_thread" in v.reason


def test_smt_timeout_is_unknown_never_proved() -> None:
    vm = parse_command_line(
        "-machine q35 -smp 1,maxcpus=2 -device pcie-root-port,id=rp1 -device vfio-pci,host=01:00.0,bus=rp1"
    )
    space = OrderSpace(K.release("10.1"), K.release("10.1"), vm, hotplug_bound=1)
    model = space_model(space, RULE)
    assert smt_space.decide(model, RULE, timeout_ms=1).outcome in (Outcome.UNKNOWN, Outcome.COUNTEREXAMPLE)
    big = SpaceModel(model.slots, model.instances * 1, model.bound, model.space)
    old = smt_space.MAX_TERMS
    try:
        smt_space.MAX_TERMS = 0
        assert smt_space.decide(big, RULE).outcome is Outcome.UNKNOWN
    finally:
        smt_space.MAX_TERMS = old


def test_family_minimal_counterexample_on_10_1() -> None:
    proof = smt_space.prove_family(x86_vfio(K.release("10.1")), RULE)
    assert proof.outcome is Outcome.COUNTEREXAMPLE
    assert {n: c for n, c in proof.counts if c} == {
        "cold vCPUs": 1,
        "hot-plugged vCPUs": 1,
        "VFIO devices (-device)": 1,
        "hot-plug steps": 1,
    }
    assert smt_space.prove_family(x86_vfio(K.release("10.2")), RULE).outcome is Outcome.PROVED
    assert smt_space.prove_family(x86_vfio(K.release("10.1"), K.release("10.2")), RULE).outcome is Outcome.COUNTEREXAMPLE


def test_family_timeout_is_unknown() -> None:
    proof = smt_space.prove_family(x86_vfio(K.release("10.1")), RULE, timeout_ms=1)
    assert proof.outcome in (Outcome.UNKNOWN, Outcome.COUNTEREXAMPLE)


def test_universal_space_matches_prove() -> None:
    # Every VM of the release: the graph and z3 engines answer as `migorder prove` does.
    for release, want in (("10.1", Outcome.COUNTEREXAMPLE), ("10.2", Outcome.PROVED)):
        space = OrderSpace(K.release(release), K.release(release))
        assert graph.graph_engine(space, RULE).outcome is want
        assert smt_space.smt_engine(space, RULE).outcome is want


def test_explore_command_runs_the_graph_and_smt_engines(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "explore", "--qemu", "10.1", "--bound", "1", "--",
        "qemu-system-x86_64", "-nodefaults", "-machine", "q35", "-smp", "1,maxcpus=2",
        "-device", "pcie-root-port,id=rp0", "-device", "vfio-pci,host=0000:3b:00.0,id=nic0,bus=rp0",
    ]
    for engine in ("graph", "smt"):
        assert main([*args[:1], "--engine", engine, *args[1:]]) == 1
        out = capsys.readouterr().out
        assert f"{engine} engine" in out
        assert "COUNTEREXAMPLE apic-before-vfio: tie at MIG_PRI_DEFAULT" in out
        assert "+apic#1" in out


def test_a_replug_moves_a_first_after_a_later_then() -> None:
    # F (a device on a hot-pluggable bus) registers by -device, T at a hot-plug step after it,
    # both at one priority: only device_del + device_add of F puts F after T.
    f = Slot("f", "v", "nicF", Phase.COMPLETE, 2, "MIG_PRI_DEFAULT", 1, -1, mobile=True)
    t = Slot("t", "v", "nicT", Phase.COMPLETE, 2, "MIG_PRI_DEFAULT", 3, -1)
    behind = t._replace(stage=1, parent=0)  # T behind F: unplugging F takes T away
    for slots, bound, moved in (((f, t), 1, True), ((f, t), 0, None), ((f, behind), 2, None)):
        model = SpaceModel(slots, (Instance((0,), 1),), bound, "hand-made")
        w_graph, _ = graph.find_witness(model)
        w_brute, _ = brute.find_witness(model)
        w_smt, _, _ = smt_space.find_witness(model)
        got = [None if w is None else w.moved for w in (w_graph, w_brute, w_smt)]
        assert got == [moved] * 3, (slots, bound, got)
    w, _ = graph.find_witness(SpaceModel((f, t), (Instance((0,), 1),), 1, "hand-made"))
    assert w is not None
    v = graph.verdict_of(SpaceModel((f, t), (Instance((0,), 1),), 1, "hand-made"), RULE, w, 1, "graph")
    assert v.steps[1:] == ("device_del nicF", "device_add nicF (it registers last)")
    assert any(line.startswith("+") for line in v.order)


def test_smt_answers_a_many_vcpu_vm_by_symmetry() -> None:
    # 200 hot-plugged vCPUs x 8 VFIO devices: one first per (stage, key, mobility) stands for
    # the rest, so z3 answers (and agrees with the graph engine) instead of stopping UNKNOWN.
    args = "-machine q35,kernel-irqchip=split -smp 2,maxcpus=256"
    for i in range(8):
        args += f" -device pcie-root-port,id=rp{i},chassis={i + 1} -device vfio-pci,host=0000:4{i}:00.0,id=vf{i},bus=rp{i}"
    vm = parse_command_line(args)
    vm = replace(vm, hotplug=tuple(HotplugStep(cpu=c) for c in range(2, 202)))
    for release, want in (("10.1", Outcome.COUNTEREXAMPLE), ("10.2", Outcome.PROVED)):
        space = OrderSpace(K.release(release), K.release(release), vm, hotplug_bound=1)
        s = smt_space.smt_engine(space, RULE)
        assert s.outcome is want, s
        assert graph.graph_engine(space, RULE).outcome is want
        assert s.covered["pairs"] <= 8 * 3
