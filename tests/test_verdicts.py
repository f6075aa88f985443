"""Verdicts on QEMU's real hazards, each with its evidence, across the bundled releases."""

from __future__ import annotations

import gc
import random
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordering.check import check, check_order
from ordering.errors import ScenarioError
from ordering.model.rule import Consequence, Rule
from ordering.model.vm import HotplugStep
from ordering.order import LoadOrder, derive
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario
from ordering.verdict import RuleVerdict, Verdict, judge, placements

K = load_knowledge()


def _verdicts(release: str, vm_args: str, rule: str, **kw: object) -> list[RuleVerdict]:
    vm = parse_command_line("-nodefaults " + vm_args)
    if kw:
        vm = replace(vm, **kw)  # type: ignore[arg-type]
    return [v for v in check(K, K.release(release), vm).verdicts if v.rule.id == rule]


VFIO_VM = (
    "-machine q35 -smp 2,maxcpus=4 -device intel-iommu,caching-mode=on "
    "-device pcie-root-port,id=rp0,chassis=1 -device vfio-pci,host=0000:3b:00.0,id=nic0,bus=rp0"
)


def test_apic_before_vfio_is_a_tie_before_10_2_and_priority_after() -> None:
    vm = "-machine q35 -smp 2 -device vfio-pci,host=0000:3b:00.0,id=nic0"
    (v10,) = _verdicts("10.0", vm, "apic-before-vfio")
    assert v10.verdict is Verdict.TIE_FRAGILE
    assert v10.by == "registration"
    assert v10.evidence is not None
    text = v10.evidence.describe()
    assert "tie at MIG_PRI_DEFAULT" in text
    assert "registration order decides" in text
    assert f"section_id {v10.evidence.first.section.section_id} (apic#1)" in text
    (v102,) = _verdicts("10.2", vm, "apic-before-vfio")
    assert (v102.verdict, v102.by) == (Verdict.GUARANTEED, "priority")
    assert v102.evidence is not None
    assert "apic#1 at MIG_PRI_APIC (6) vs 0000:00:01.0/vfio at MIG_PRI_DEFAULT (2)" in v102.evidence.describe()


def test_hotplugged_vcpu_breaks_apic_before_vfio_until_10_2() -> None:
    vm = "-machine q35 -smp 2,maxcpus=4 -device vfio-pci,host=0000:3b:00.0,id=nic0"
    plug = (HotplugStep(cpu=2),)
    (v10,) = _verdicts("10.0", vm, "apic-before-vfio", hotplug=plug)
    assert v10.verdict is Verdict.VIOLATED
    assert v10.evidence is not None
    assert v10.evidence.first.section.label == "apic#2"
    assert v10.evidence.violating == 1
    (v11,) = _verdicts("11.1", vm, "apic-before-vfio", hotplug=plug)
    assert v11.verdict is Verdict.GUARANTEED


def test_virtio_mem_bitmap_on_72_loads_after_the_viommu() -> None:
    # 7.2: MIG_PRI_VIRTIO_MEM sits on the nested VMSD only; the bitmap loads at DEFAULT.
    vm = (
        "-machine q35 -m 4G,maxmem=8G,slots=2 -object memory-backend-ram,id=m0,size=2G "
        "-device intel-iommu -device virtio-mem-pci,memdev=m0,id=vm0 "
        "-device vfio-pci,host=0000:3b:00.0,id=nic0,x-enable-migration=on"
    )
    (v,) = _verdicts("7.2", vm, "virtio-mem-before-viommu")
    assert (v.verdict, v.by) == (Verdict.VIOLATED, "priority")
    assert v.evidence is not None
    assert v.evidence.first.section.idstr.endswith("/virtio-mem")
    assert v.rule.consequence is Consequence.ERROR
    # 10.0 with a current machine type: the early_setup section carries the bitmap.
    (early,) = _verdicts("10.0", vm.replace("x-enable-migration=on", "enable-migration=on"), "virtio-mem-before-viommu")
    assert (early.verdict, early.by) == (Verdict.GUARANTEED, "phase")
    assert early.evidence is not None
    assert early.evidence.first.section.idstr.endswith("/virtio-mem-device-early")
    # The same binary with machine type pc-q35-7.2 (hw_compat_7_2: x-early-migration=off).
    (compat,) = _verdicts("10.0", vm.replace("q35", "pc-q35-7.2").replace("x-enable-migration=on", "enable-migration=on"), "virtio-mem-before-viommu")
    assert (compat.verdict, compat.by) == (Verdict.VIOLATED, "priority")


def test_gicv3_before_its_only_on_arm() -> None:
    (v,) = _verdicts("7.2", "-machine virt,gic-version=3,its=on -smp 2", "gicv3-before-its")
    assert (v.verdict, v.by) == (Verdict.GUARANTEED, "priority")
    (x86,) = _verdicts("7.2", "-machine q35", "gicv3-before-its")
    assert x86.verdict is Verdict.NOT_LIVE
    (noits,) = _verdicts("7.2", "-machine virt,gic-version=3,its=off", "gicv3-before-its")
    assert noits.verdict is Verdict.NOT_LIVE


def test_bridges_before_viommu_only_when_a_dma_device_is_behind_them() -> None:
    empty = _verdicts("7.2", "-machine q35 -device intel-iommu -device pcie-root-port,id=rp1", "pci-bus-before-viommu")
    assert [v.verdict for v in empty] == [Verdict.NOT_LIVE]
    live = _verdicts(
        "7.2",
        "-machine q35 -device intel-iommu -device pcie-root-port,id=rp1 -device virtio-net-pci,bus=rp1",
        "pci-bus-before-viommu",
    )
    assert [(v.verdict, v.by) for v in live] == [(Verdict.GUARANTEED, "priority")]
    assert live[0].evidence is not None
    assert live[0].evidence.first.section.vmsd == "pcie-root-port"  # not its PCIBUS section


def test_every_verdict_carries_evidence_and_provenance() -> None:
    for rel in K.releases.values():
        result = check(K, rel, read_scenario(K.scenarios["default"]))
        for v in result.verdicts:
            assert v.rule.provenance
            if v.verdict is not Verdict.NOT_LIVE:
                assert v.evidence is not None
                assert v.by in ("phase", "priority", "registration", "observed order")
                assert v.evidence.describe()


def test_the_virtio_mem_claim_is_ineffective_in_every_release() -> None:
    for rel in K.releases.values():
        result = check(K, rel, read_scenario(K.scenarios["default"]))
        (claim,) = [c for c in result.claims if c.claim.level.name == "MIG_PRI_VIRTIO_MEM"]
        assert claim.holds
        assert not claim.effective
        assert claim.nested == ("virtio-mem-device (inside virtio-mem)",)


def test_a_conflicting_rule_makes_a_cycle_with_every_edge_named() -> None:
    extra = Rule(
        id="my-bad-rule", title="x", first="viommu", then="pci-bridge", condition="always",
        consequence=Consequence.SILENT, symptom="x", mechanism="", provenance=("test",),
    )
    k = replace(K, rules=(*K.rules, extra))
    vm = parse_command_line(
        "-nodefaults -machine q35 -device intel-iommu -device pcie-root-port,id=rp1 -device virtio-net-pci,bus=rp1"
    )
    result = check(k, k.release("7.2"), vm)
    assert result.exit_code == 1
    assert [c.describe() for c in result.kind_cycles] == [
        "pci-bridge → viommu (pci-bus-before-viommu) → pci-bridge (my-bad-rule)"
    ]
    assert [c.describe() for c in result.section_cycles] == [
        "0000:00:01.0/pcie-root-port → iommu-intel (pci-bus-before-viommu) → 0000:00:01.0/pcie-root-port (my-bad-rule)"
    ]


def test_unmigratable_device_blocks_on_72_not_on_111() -> None:
    vm = parse_command_line("-nodefaults -machine q35 -device nvme,serial=x")
    blocked = check(K, K.release("7.2"), vm)
    assert [b.message for b in blocked.blockers] == ["State blocked by non-migratable device '0000:00:01.0/nvme'"]
    assert blocked.exit_code == 1
    assert check(K, K.release("11.1"), vm).blockers == ()


def _shuffled(order: LoadOrder, seed: int) -> LoadOrder:
    steps = list(order.steps)
    random.Random(seed).shuffle(steps)
    return replace(order, steps=tuple(steps))


DEVICES = [
    "-device intel-iommu",
    "-device pcie-root-port,id=rp1,chassis=1 -device virtio-net-pci,bus=rp1,disable-legacy=on,iommu_platform=on",
    "-device pcie-root-port,id=rp2,chassis=2",
    "-device vfio-pci,host=0000:3b:00.0,id=nic0",
    "-device e1000e",
    "-object memory-backend-ram,id=m0,size=1G -device virtio-mem-pci,memdev=m0",
]


@given(
    devices=st.lists(st.sampled_from(DEVICES), unique=True, min_size=1),
    release=st.sampled_from(sorted(K.releases)),
    seed=st.integers(0, 2**16),
    cpus=st.integers(1, 4),
)
def test_verdicts_agree_with_every_pair_on_any_order(devices: list[str], release: str, seed: int, cpus: int) -> None:
    devices = sorted(devices, key=DEVICES.index)  # buses before the devices on them
    vm = parse_command_line(f"-nodefaults -machine q35 -smp {cpus} " + " ".join(devices))
    order = _shuffled(derive(K.release(release), vm), seed)
    where = placements(order)
    for v in judge(order, K.rules):
        if v.instance is None:
            continue
        then = where[v.instance.then.section_id].position
        late = [f for f in v.instance.firsts if where[f.section_id].position > then]
        assert (v.verdict is Verdict.VIOLATED) == bool(late)
        assert v.evidence is not None
        assert v.evidence.violating == len(late)


@given(
    devices=st.lists(st.sampled_from(DEVICES), unique=True, min_size=1),
    release=st.sampled_from(sorted(K.releases)),
)
def test_derived_order_is_priority_then_registration_within_each_phase(devices: list[str], release: str) -> None:
    devices = sorted(devices, key=DEVICES.index)
    vm = parse_command_line("-nodefaults -machine q35 -smp 2 " + " ".join(devices))
    order = derive(K.release(release), vm)
    full = [s for s in order.steps if s.type.value == "FULL" and s.phase.value == "complete"]
    keys = [(-s.section.priority.value, s.section.section_id) for s in full]
    assert keys == sorted(keys)
    result = check_order(K, order)
    assert result.exit_code in (0, 1)


def test_ivshmem_peer_mode_blocks_in_every_release() -> None:
    base = "-nodefaults -machine q35 -object memory-backend-ram,id=s,size=1M,share=on -device ivshmem-plain,memdev=s"
    for rel in K.releases.values():
        peer = check(K, rel, parse_command_line(base))
        assert [b.message for b in peer.blockers] == [
            "Migration is disabled when using feature 'peer mode' in device 'ivshmem'"
        ]
        assert check(K, rel, parse_command_line(base + ",master=on")).blockers == ()


def test_amd_iommu_is_blocked_in_every_release() -> None:
    # Without pci-id= it is blocked everywhere; 10.1+ migrate it when pci-id= names its
    # AMDVI-PCI function (captured on 11.1), and refuse a pci-id naming no device.
    plain = parse_command_line("-nodefaults -machine q35 -device amd-iommu")
    linked = parse_command_line("-nodefaults -machine q35 -device AMDVI-PCI,id=x -device amd-iommu,pci-id=x")
    dangling = parse_command_line("-nodefaults -machine q35 -device amd-iommu,pci-id=x")
    for rel in K.releases.values():
        assert [b.message for b in check(K, rel, plain).blockers] == [
            "State blocked by non-migratable device 'amd-iommu'"
        ]
        if rel.version >= (10, 2):
            assert not check(K, rel, linked).blockers
            with pytest.raises(ScenarioError, match="Cannot find PCI device 'x'"):
                check(K, rel, dangling)
    # the binaries before 10.2 have no pci-id property (-device amd-iommu,help)
    with pytest.raises(ScenarioError, match=r"Property 'amd-iommu\.pci-id' not found"):
        check(K, K.release("10.0"), linked)


def test_multifd_makes_vfio_config_load_unordered_where_qemu_does_not_hold_it_back() -> None:
    arm = "-machine virt,gic-version=3 -accel kvm -cpu host -smp 2 -device vfio-pci,host=0000:01:00.0,id=v0"
    x86 = "-machine q35 -smp 2 -device vfio-pci,host=0000:01:00.0,id=v0"

    def verdict(release: str, args: str, rule: str, multifd: bool) -> tuple[str, str]:
        vm = parse_command_line("-nodefaults " + args)
        if multifd:
            vm = replace(vm, migration={"multifd": "on"})
        (v,) = [v for v in check(K, K.release(release), vm).verdicts if v.rule.id == rule]
        return v.verdict.value, v.by

    # Without multifd (QEMU's default): the classic order.
    assert verdict("10.2", x86, "apic-before-vfio", False) == ("guaranteed", "priority")
    # With it, the config load runs in vfio_load_bufs_thread: x86 has no after-iter wait.
    assert verdict("10.2", x86, "apic-before-vfio", True) == ("violated", "concurrency")
    # ARM: 10.0 has no wait; 10.2 waits (AUTO = on for ARM) unless the machine type is <= 10.0.
    assert verdict("10.0", arm, "its-before-msi-devices", True) == ("violated", "concurrency")
    assert verdict("10.2", arm, "its-before-msi-devices", True) == ("guaranteed", "priority")
    assert verdict("10.2", arm.replace("virt,", "virt-10.0,"), "its-before-msi-devices", True) == (
        "violated",
        "concurrency",
    )
    # 7.2 has no load thread at all.
    assert verdict("7.2", x86.replace("id=v0", "id=v0,x-enable-migration=on"), "apic-before-vfio", True)[1] != "concurrency"


def test_multifd_reaches_every_rule_on_the_vfio_config_load_and_respects_qemus_exceptions() -> None:
    args = (
        "-nodefaults -machine q35 -device intel-iommu,intremap=on -device pcie-root-port,id=rp1 "
        "-device vfio-pci,host=0000:01:00.0,id=v0,bus=rp1"
    )
    vm = replace(parse_command_line(args), migration={"multifd": "on"})
    got = {(v.rule.id, v.verdict.value, v.by) for v in check(K, K.release("11.1"), vm).verdicts if v.instance}
    assert ("viommu-before-dma-devices", "violated", "concurrency") in got
    assert ("pci-bus-before-dma-devices", "violated", "concurrency") in got
    # multifd_device_state_supported: compression or mapped-ram keep the config on the main channel
    for extra in ({"multifd-compression": "zstd"}, {"mapped-ram": "on"}):
        other = replace(vm, migration={"multifd": "on", **extra})
        assert all(v.by != "concurrency" for v in check(K, K.release("11.1"), other).verdicts)


def test_qemu_boolean_spellings() -> None:
    vm = parse_command_line("-nodefaults -machine q35 -smp 2 -device vfio-pci,host=0000:01:00.0,x-enable-migration=true")
    result = check(K, K.release("7.2"), vm)
    assert result.blockers == ()
    assert any(v.rule.id == "apic-before-vfio" and v.verdict is Verdict.TIE_FRAGILE for v in result.verdicts)


def test_global_on_an_abstract_virtio_class_reaches_every_virtio_device() -> None:
    vm = parse_command_line(
        "-nodefaults -machine q35 -device intel-iommu -global virtio-device.iommu_platform=on "
        "-device virtio-net-pci,disable-legacy=on,id=n0"
    )
    assert vm.devices[1].props["iommu_platform"] == "on"
    live = [v for v in check(K, K.release("10.2"), vm).verdicts if v.rule.id == "viommu-before-dma-devices"]
    assert [v.verdict for v in live] == [Verdict.GUARANTEED]


def test_default_bus_bypass_iommu_takes_devices_out_of_the_viommu() -> None:
    base = (
        "-nodefaults -machine q35{opt} -device intel-iommu -device pcie-root-port,id=rp1 "
        "-device vfio-pci,host=0000:01:00.0,id=v0,bus=rp1"
    )
    behind = check(K, K.release("10.2"), parse_command_line(base.format(opt="")))
    assert behind.blockers
    bypass = check(K, K.release("10.2"), parse_command_line(base.format(opt=",default-bus-bypass-iommu=on")))
    assert bypass.blockers == ()
    live = {v.rule.id for v in bypass.verdicts if v.instance}
    assert not live & {"viommu-before-dma-devices", "pci-bus-before-viommu", "pci-bus-before-dma-devices"}


def test_check_leaves_the_cycle_collector_as_it_found_it() -> None:
    bad = parse_command_line("-nodefaults -machine q35 -device virtio-net-pci,bus=nosuchbus")
    assert gc.isenabled()
    with pytest.raises(ScenarioError):
        check(K, K.newest, bad)
    assert gc.isenabled(), "a failed check must turn the collector back on"
    gc.disable()
    try:
        check(K, K.newest, parse_command_line("-nodefaults -machine q35"))
        assert not gc.isenabled(), "a caller that paused the collector keeps it paused"
    finally:
        gc.enable()


def test_why_names_the_device_of_each_instance() -> None:
    vm = (
        "-machine q35 -device intel-iommu -device pcie-root-port,id=rp0,chassis=1 "
        "-device pcie-root-port,id=rp1,chassis=2 "
        "-device virtio-net-pci,id=n0,bus=rp0,iommu_platform=on,disable-legacy=on "
        "-device virtio-net-pci,id=n1,bus=rp1,iommu_platform=on,disable-legacy=on"
    )
    whys = sorted(v.instance.why for v in _verdicts("10.2", vm, "pci-bus-before-dma-devices") if v.instance)
    assert whys == [
        "n0 is behind rp0 and DMA is translated",
        "n1 is behind rp1 and DMA is translated",
    ]
