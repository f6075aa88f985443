"""The explicit engine and `migorder explore`: known results, and every counterexample replays."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_strategies import vms

from ordering.cli import main
from ordering.errors import ScenarioError
from ordering.explore import Exploration, explore, failure_class
from ordering.model.vm import Vm
from ordering.order import derive
from ordering.order_space import order_space, postcopy_order
from ordering.sim import simulate
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario
from ordering.space import Outcome
from ordering.verdict import Verdict, judge

K = load_knowledge()
RELEASES = list(K.releases.values())

# hazard-posted-remapped without its [[hotplug]]: vCPU 2 is absent, nic0's MSI aims at it.
POSTED_NO_HOTPLUG = """
description = "q35, a VFIO NIC whose MSI-X targets absent vCPU 2"
command = \"\"\"qemu-system-x86_64 -nodefaults -machine q35 -accel kvm -smp 2,maxcpus=4 -m 4G \\
 -device pcie-root-port,id=rp0,chassis=1 \\
 -device vfio-pci,host=0000:3b:00.0,id=nic0,bus=rp0\"\"\"
[release_globals]
"10.1" = ["vfio-pci.enable-migration=on"]
"10.2" = ["vfio-pci.enable-migration=on"]
[guest]
x2apic = true
msi-mode = "logical"
posted = true
[guest.device.nic0]
msi = true
msi-targets = [2]
"""


def _posted_vm(tmp_path: Path) -> Vm:
    path = tmp_path / "posted.toml"
    path.write_text(POSTED_NO_HOTPLUG)
    return read_scenario(path)


def _run(vm: Vm, source: str, dest: str | None = None, **kw: object) -> Exploration:
    bound = kw.pop("bound", 2)
    space = order_space(
        K.release(source), K.release(dest or source), vm, releases=RELEASES,
        hotplug_bound=bound, **kw,  # type: ignore[arg-type]
    )
    return explore(space, K.rules, max_states=400)


def _outcome(r: Exploration, subject: str) -> Outcome:
    return next(v.outcome for v in r.verdicts if v.subject == subject)


def _assert_replays(r: Exploration) -> None:
    """Every counterexample replays: a rule's witness order breaks the rule when judged, a
    failure class's witness fails in the simulator with that class; without a load-side
    variant, the witness order is exactly what QEMU derives for the witness VM."""
    for subject, w in r.witnesses.items():
        if not w.variant and not r.space.postcopy:
            assert [s.section.label for s in derive(r.space.source, w.vm).steps] == [
                s.section.label for s in w.order.steps
            ]
        if subject.startswith("simulator: "):
            trace = simulate(r.space.destination, w.vm, w.order)
            assert subject in {failure_class(f) for f in trace.failures}
        else:
            verdicts = [v for v in judge(w.order, K.rules) if v.rule.id == subject]
            assert any(v.verdict is Verdict.VIOLATED for v in verdicts), subject


def test_on_101_apic_before_vfio_breaks_with_a_vcpu_hot_plugged_after_vfio(tmp_path: Path) -> None:
    r = _run(_posted_vm(tmp_path), "10.1")
    v = next(v for v in r.verdicts if v.subject == "apic-before-vfio")
    assert v.outcome is Outcome.COUNTEREXAMPLE
    assert v.steps[0].startswith("hot-plug vCPU 2"), v.steps
    assert any(line.startswith("+apic#2") for line in v.order), v.order
    assert _outcome(r, "simulator: apic before vfio (degraded)") is Outcome.COUNTEREXAMPLE
    w = r.witnesses["simulator: apic before vfio (degraded)"]
    assert "kvm_intr_is_single_vcpu" in w.trace.failures[0].message
    _assert_replays(r)
    assert r.exit_code == 1


def test_on_102_apic_before_vfio_is_proved(tmp_path: Path) -> None:
    r = _run(_posted_vm(tmp_path), "10.2")
    assert _outcome(r, "apic-before-vfio") is Outcome.PROVED
    assert not [v for v in r.verdicts if v.subject.startswith("simulator: apic")]
    assert r.states > 1
    assert not r.stopped


def test_a_101_source_breaks_it_on_a_102_destination(tmp_path: Path) -> None:
    r = _run(_posted_vm(tmp_path), "10.1", "10.2")
    assert _outcome(r, "apic-before-vfio") is Outcome.COUNTEREXAMPLE
    v = next(v for v in r.verdicts if v.subject == "apic-before-vfio")
    assert v.steps[-1] == "migrate from a QEMU 10.1 source to a 10.2 destination"
    _assert_replays(r)


def test_the_discarded_memory_hazard_on_a_72_source() -> None:
    vm = read_scenario(K.scenarios["hazard-iommu-discarded"])
    r = _run(vm, "7.2", bound=1)
    assert _outcome(r, "virtio-mem-before-viommu") is Outcome.COUNTEREXAMPLE
    cls = "simulator: virtio-mem before viommu (error)"
    assert _outcome(r, cls) is Outcome.COUNTEREXAMPLE
    assert r.witnesses[cls].moves == ()  # QEMU's own 7.2 order already fails
    assert "iommu map to discarded memory" in r.witnesses[cls].trace.failures[0].message
    _assert_replays(r)


def test_a_newer_release_on_a_72_machine_type_has_the_hazard_too() -> None:
    vm = read_scenario(K.scenarios["hazard-iommu-discarded"])
    r = _run(vm, "10.2", bound=1)
    w = r.witnesses["simulator: virtio-mem before viommu (error)"]
    assert [m.target for m in w.moves] == ["pc-q35-7.2"]
    _assert_replays(r)
    pinned = _run(replace(vm, machine="pc-q35-10.2"), "10.2", bound=1)
    assert _outcome(pinned, "virtio-mem-before-viommu") is Outcome.PROVED


def test_multifd_on_x86_leaves_the_vfio_config_unordered(tmp_path: Path) -> None:
    r = _run(_posted_vm(tmp_path), "10.2", multifd=True, bound=0)
    v = next(v for v in r.verdicts if v.subject == "apic-before-vfio")
    assert v.outcome is Outcome.COUNTEREXAMPLE
    assert any("vfio_load_bufs_thread" in s for s in v.steps)
    _assert_replays(r)


def test_a_chain_keeps_the_first_sources_machine_type() -> None:
    vm = read_scenario(K.scenarios["hazard-iommu-discarded"])
    space = order_space(K.release("10.2"), K.release("10.2"), vm, chain=[K.release("7.2")], hotplug_bound=0)
    assert space.machine_types == ("pc-q35-7.2",)
    r = explore(space, K.rules)
    assert _outcome(r, "simulator: virtio-mem before viommu (error)") is Outcome.COUNTEREXAMPLE
    assert "7.2 → 10.2 source" in r.verdicts[0].space


def test_postcopy_keeps_the_device_order() -> None:
    vm = read_scenario(K.scenarios["hazard-iommu-discarded"])
    pre = _run(vm, "7.2", bound=0)
    post = _run(vm, "7.2", bound=0, postcopy=True)
    assert [(v.subject, v.outcome) for v in pre.verdicts] == [(v.subject, v.outcome) for v in post.verdicts]
    order = postcopy_order(derive(K.release("7.2"), vm))
    assert [s.section.idstr for s in order.steps][-1] == "ram"  # its END after the package
    assert [s.section.label for s in order.full] == [s.section.label for s in derive(K.release("7.2"), vm).full]


def test_postcopy_with_vfio_is_refused_from_82() -> None:
    r = _run(read_scenario(K.scenarios["default"]), "10.2", bound=0, postcopy=True)
    assert {v.outcome for v in r.verdicts} == {Outcome.VACUOUS}
    assert "VFIO migration is not supported with postcopy migration" in r.verdicts[0].reason


def test_a_big_vm_stops_at_its_bound_with_unknown() -> None:
    args = ["-machine", "q35", "-smp", "1,maxcpus=4096", "-device", "intel-iommu,intremap=on,caching-mode=on"]
    for i in range(64):
        args += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1},addr={1 + i // 8:#x}.{i % 8}"
                 + (",multifunction=on" if i % 8 == 0 else "")]
        args += ["-device", f"vfio-pci,host=0000:{0x40 + i // 8:02x}:00.{i % 8},id=vf{i},bus=rp{i}"]
    vm = parse_command_line(args)
    space = order_space(K.release("10.2"), K.release("10.2"), vm, releases=RELEASES, hotplug_bound=3)
    r = explore(space, K.rules, max_states=4)
    assert r.stopped == "states"
    assert r.states == 4
    assert Outcome.UNKNOWN in {v.outcome for v in r.verdicts}
    assert Outcome.PROVED not in {v.outcome for v in r.verdicts}
    unknown = next(v for v in r.verdicts if v.outcome is Outcome.UNKNOWN)
    assert "stopped at the bound of 4 orders" in unknown.space


def test_any_order_hotplug_steps_are_tried_in_every_order(tmp_path: Path) -> None:
    path = tmp_path / "any.toml"
    path.write_text(
        'description = "two hot-plugs in any order"\n'
        'command = "qemu-system-x86_64 -nodefaults -machine q35 -smp 1,maxcpus=2 -device pcie-root-port,id=rp0,chassis=1"\n'
        '[[hotplug]]\ncpu = 1\nany-order = true\n'
        '[[hotplug]]\ndevice = "vfio-pci,host=0000:3b:00.0,id=nic0,bus=rp0"\nany-order = true\n'
    )
    vm = read_scenario(path)
    assert [h.any_order for h in vm.hotplug] == [True, True]
    r = _run(vm, "10.1", bound=1)
    v = next(v for v in r.verdicts if v.subject == "apic-before-vfio")
    assert v.outcome is Outcome.COUNTEREXAMPLE
    assert v.steps[0] == "run the any-order hot-plug steps in the order 1,0"
    _assert_replays(r)


def test_cli_json_and_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "posted.toml"
    path.write_text(POSTED_NO_HOTPLUG)
    assert main(["explore", str(path), "--qemu", "10.1", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    row = next(r for r in data["results"] if r["rule"] == "apic-before-vfio")
    assert set(row) >= {"rule", "outcome", "engine", "space", "steps", "order", "trace"}
    assert row["outcome"] == "counterexample"
    assert row["engine"] == "explicit"
    assert main(["explore", str(path), "--qemu", "10.2"]) == 0
    out = capsys.readouterr().out
    assert "PROVED apic-before-vfio" in out
    assert main(["explore", str(path), "--bound", "-1"]) == 2
    assert "--bound" in capsys.readouterr().err


def test_an_older_destination_refuses_a_newer_machine_type_but_not_an_older_one() -> None:
    vm = read_scenario(K.scenarios["hazard-iommu-discarded"])
    r = _run(vm, "10.2", "10.1", bound=1)
    w = r.witnesses["simulator: virtio-mem before viommu (error)"]
    assert [m.target for m in w.moves] == ["pc-q35-7.2"]
    assert r.verdicts[0].covered["destination_refused"] >= 1  # pc-q35-10.2 is unknown to 10.1
    _assert_replays(r)
    none = _run(replace(vm, machine="pc-q35-10.2"), "10.2", "10.1", bound=1)
    assert {v.outcome for v in none.verdicts} == {Outcome.VACUOUS}
    assert "unsupported machine type" in none.verdicts[0].reason


@settings(max_examples=25, deadline=None)
@given(vms(), st.sampled_from(["7.2", "10.1", "10.2"]))
def test_the_reduction_loses_no_counterexample(vm: Vm, release: str) -> None:
    """Partial-order and symmetry reduction against the plain walk of the same bounded space:
    the same outcome for every rule and failure class."""
    space = order_space(K.release(release), K.release(release), vm, hotplug_bound=2)
    try:
        reduced = explore(space, K.rules, max_states=5000)
    except ScenarioError:
        return  # QEMU refuses the VM as drawn
    plain = explore(space, K.rules, max_states=5000, reduce=False)
    assert not reduced.stopped
    assert not plain.stopped
    assert {v.subject: v.outcome for v in reduced.verdicts} == {v.subject: v.outcome for v in plain.verdicts}
    assert reduced.states <= plain.states
    _assert_replays(reduced)
    _assert_replays(plain)


def test_on_arm_multifd_orders_the_vfio_config_only_on_newer_machine_types() -> None:
    vm = parse_command_line(
        "-machine virt,gic-version=3,its=on -cpu max -smp 2 -device pcie-root-port,id=rp0,chassis=1 "
        "-device vfio-pci,host=0000:3b:00.0,id=nic0,bus=rp0"
    )
    r = _run(vm, "10.2", multifd=True, bound=1)
    w = r.witnesses["its-before-msi-devices"]
    # x-migration-load-config-after-iter: auto is on for ARM, but hw_compat_10_0 turns it off
    assert [m.target for m in w.moves] == ["virt-10.0"]
    assert "vfio_load_bufs_thread" in w.variant
    _assert_replays(r)
    pinned = _run(replace(vm, machine="virt-10.2"), "10.2", multifd=True, bound=1)
    assert _outcome(pinned, "its-before-msi-devices") is Outcome.PROVED


def test_a_chain_hop_may_be_a_release_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "rel.toml"
    main(["scan", str(Path(__file__).parent / "fixtures/qemu-trees/basic"), "--out", str(out)])  # 1: lint findings
    capsys.readouterr()
    assert main(["explore", "hazard-iommu-discarded", "--qemu", "10.2", "--chain", str(out), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["chain"] == ["7.2"]
    assert {r["rule"]: r["outcome"] for r in data["results"]}["virtio-mem-before-viommu"] == "counterexample"


@pytest.mark.parametrize("engine_name", ["explicit", "graph", "smt"])
@pytest.mark.parametrize(
    ("source", "dest", "machine"),
    [("11.1", "10.0", "pc-q35-11.1"), ("10.2", "10.1", "q35"), ("10.0", "7.2", "q35")],
)
def test_destination_refusing_the_vm_is_a_finding_for_every_engine(
    capsys: pytest.CaptureFixture[str], engine_name: str, source: str, dest: str, machine: str
) -> None:
    """A destination that lacks the machine type the source resolved refuses the migration
    (QEMU: 'unsupported machine type'): explore says so and exits 1, as check does, whatever
    the engine; other machine types the VM might have been created on do not hide it."""
    if engine_name == "smt":
        pytest.importorskip("z3")
    line = f"-nodefaults -machine {machine}"
    argv = ["explore", "--from", source, "--to", dest, "--engine", engine_name, "--json", "--", "qemu-system-x86_64", *line.split()]
    assert main(argv) == 1
    data = json.loads(capsys.readouterr().out)
    refusal = [r for r in data["results"] if r["rule"] == "destination"]
    assert len(refusal) == 1
    assert refusal[0]["outcome"] == "counterexample"
    assert "unsupported machine type" in refusal[0]["reason"]
    assert f"pc-q35-{source}" in refusal[0]["reason"]


def test_destination_accepting_the_vm_adds_no_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explore", "--from", "10.1", "--to", "10.2", "--json", "--", "qemu-system-x86_64",
            "-nodefaults", "-machine", "q35"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert not [r for r in data["results"] if r["rule"] == "destination"]


@pytest.mark.parametrize("engine_name", ["explicit", "graph"])
def test_a_vm_qemu_blocks_is_a_finding(capsys: pytest.CaptureFixture[str], engine_name: str) -> None:
    """VFIO behind an intel-iommu on 10.0: QEMU refuses to migrate it (check: BLOCKER, exit 1);
    explore said PROVED with exit 0."""
    line = ("-nodefaults -machine q35 -device intel-iommu,intremap=on -device pcie-root-port,id=rp0"
            " -device vfio-pci,host=0000:3b:00.0,id=h0,bus=rp0")
    argv = ["explore", "--qemu", "10.0", "--engine", engine_name, "--json", "--", "qemu-system-x86_64", *line.split()]
    assert main(argv) == 1
    data = json.loads(capsys.readouterr().out)
    refusal = [r for r in data["results"] if r["rule"] == "destination"]
    assert len(refusal) == 1
    assert "not supported with vIOMMU" in refusal[0]["reason"]
