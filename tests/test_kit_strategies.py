"""The kit's strategies and the gaps a new user hit: unknown kinds, one-call kinds and rules,
vms() parameters, the 7.2 helper, release files loaded once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordering import strategies as ms
from ordering.check import check
from ordering.errors import InvalidArgument, MigOrderError
from ordering.model.rule import Consequence, Kind, Rule
from ordering.model.vm import Vm
from ordering.order import LoadOrder
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.sources.qemu_tree import scan_tree
from ordering.sources.user_rules import knowledge_with_rule_file
from ordering.space import OrderSpace
from ordering.verdict import Verdict

K = load_knowledge()
FIXTURES = Path(__file__).parent / "fixtures"
BASIC = FIXTURES / "qemu-trees" / "basic"
MINE = FIXTURES / "rules" / "mine.toml"


def _rule(first: str, then: str, rid: str = "mine") -> Rule:
    return Rule(rid, f"{first} before {then}", first, then, "always", Consequence.ERROR, "x", "", ("me",))


def test_a_rule_naming_an_unknown_kind_is_an_error_not_a_silent_pass() -> None:
    vm = parse_command_line("-nodefaults -machine q35 -device virtio-net-pci")
    with pytest.raises(InvalidArgument, match="'virtio-net' is not a kind"):
        check(
            type(K)(K.releases, K.kinds, (*K.rules, _rule("apic", "virtio-net")), K.scenarios, K.root),
            K.release("10.0"),
            vm,
        )
    with pytest.raises(InvalidArgument, match="with_kind"):
        K.with_rules(_rule("apic", "virtio-net"))


def test_one_call_adds_a_kind_and_a_rule_that_is_then_live() -> None:
    k = K.with_kind(Kind("virtio-net", "virtio NICs", (), ("virtio-net-pci",))).with_rules(
        _rule("pci-bridge", "virtio-net")
    )
    vm = parse_command_line(
        "-nodefaults -machine q35 -device pcie-root-port,id=rp0,chassis=1 -device virtio-net-pci,bus=rp0"
    )
    mine = [v for v in check(k, k.release("10.0"), vm).verdicts if v.rule.id == "mine"]
    assert mine
    assert {v.verdict for v in mine} == {Verdict.GUARANTEED}  # MIG_PRI_PCI_BUS above DEFAULT
    with pytest.raises(InvalidArgument, match="exists already"):
        k.with_kind(Kind("apic", "", ("apic",), ()))
    with pytest.raises(InvalidArgument, match="id is taken"):
        k.with_rules(_rule("apic", "vfio"))


def test_a_users_rule_file_adds_kinds_and_rules() -> None:
    k = knowledge_with_rule_file(K, MINE)
    vm = parse_command_line("-nodefaults -machine q35 -smp 2 -device virtio-net-pci")
    verdicts = {v.rule.id: v.verdict for v in check(k, k.release("10.0"), vm).verdicts}
    # 10.0: both at DEFAULT, the APICs register at machine init, the NIC after: a tie.
    assert verdicts["apic-before-virtio-net"] is Verdict.TIE_FRAGILE
    # 10.2 loads the APICs at MIG_PRI_APIC, above DEFAULT.
    verdicts = {v.rule.id: v.verdict for v in check(k, k.release("10.2"), vm).verdicts}
    assert verdicts["apic-before-virtio-net"] is Verdict.GUARANTEED


@given(ms.vms(devices=["vfio-pci", "intel-iommu"]))
def test_vms_hold_the_devices_asked_for(vm: Vm) -> None:
    drivers = {d.driver for d in vm.devices}
    assert {"vfio-pci", "intel-iommu"} <= drivers


@given(ms.vms(machine="virt", release="7.2"))
def test_vms_of_a_machine_and_release(vm: Vm) -> None:
    assert vm.machine == "virt"
    assert vm.devices_for["7.2"][-1].props.get("x-enable-migration") == "on" or any(
        d.props.get("x-enable-migration") == "on" for d in vm.devices_for["7.2"]
    )


def test_vms_refuse_what_no_machine_holds() -> None:
    with pytest.raises(InvalidArgument, match="no machine holds"):
        ms.vms(devices=["intel-iommu", "virtio-iommu-pci"])
    with pytest.raises(InvalidArgument, match="x86_vms cannot hold"):
        ms.vms(machine="q35", devices=["e1000"])


def test_vfio_migration_on_is_public_and_changes_only_7_2() -> None:
    vm = ms.vfio_migration_on(parse_command_line("-nodefaults -machine q35 -device vfio-pci,host=01:00.0"))
    assert vm.devices[0].props.get("x-enable-migration") is None
    assert vm.devices_for["7.2"][0].props["x-enable-migration"] == "on"


DEFAULT = load_knowledge().scenarios["default"]


@given(st.data())
def test_load_orders_come_from_the_space(data: st.DataObject) -> None:
    from ordering.sources.scenario import read_scenario

    vm = read_scenario(DEFAULT)
    space = OrderSpace(K.release("10.1"), K.release("10.1"), vm=vm, hotplug_bound=2)
    order = data.draw(ms.load_orders(space))
    assert isinstance(order, LoadOrder)
    assert order.release.name == "10.1"
    assert sorted(d.driver for d in order.vm.devices) == sorted(d.driver for d in vm.devices)
    ids = [d.id for d in order.vm.devices]
    for i, d in enumerate(order.vm.devices):
        if d.bus and d.bus in ids:
            assert ids.index(d.bus) < i, "a device before the port whose bus it names"
    assert len(order.vm.hotplug) - len(vm.hotplug) <= 2
    assert len(repr(order)) < 4000


@given(ms.patches(BASIC, new_levels=["MIG_PRI_APIC"]))
def test_patches_apply_and_the_scanner_sees_them(patch: ms.Patch) -> None:
    assert patch.diff.startswith("--- a/")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(BASIC, tree)
        patch.apply(tree)
        scanned = scan_tree(tree)
    if "add MIG_PRI_APIC" in patch.summary:
        assert "MIG_PRI_APIC" in scanned.enum.names
    for e in patch.edits:
        if ".priority" in e.summary and "→" in e.summary:
            name = e.summary.split("'")[1]
            level = e.summary.rsplit("→ ", 1)[1]
            assert any(d.name == name and d.priority == level for d in scanned.vmsds)
    assert repr(patch).startswith("<Patch: ")


@given(ms.release_files("10.0", vmsds=["apic", "iommu-intel"], new_levels=["MIG_PRI_APIC"]))
def test_release_files_read_once_and_say_what_changed(f: ms.ReleaseFile) -> None:
    rel = f.release()
    assert f.release() is rel  # cached: no second read per example
    for part in f.summary.split("; "):
        if part.startswith("VMSD"):
            name = part.split("'")[1]
            assert rel.priority_of(name).name == part.rsplit("→ ", 1)[1]


def test_load_release_caches_a_release_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text((K.root / "releases" / "10.0.toml").read_text(encoding="utf-8"), encoding="utf-8")
    assert ms.load_release(path) is ms.load_release(str(path))
    assert ms.load_release("10.0") is K.release("10.0")


@given(ms.rule_bases(path=MINE))
def test_rule_bases_from_a_users_file(rules: tuple[Rule, ...]) -> None:
    assert rules
    assert {r.id for r in rules} <= {"apic-before-virtio-net", "bridge-before-virtio-net"}


def test_rule_bases_refuse_unknown_kinds() -> None:
    with pytest.raises(InvalidArgument, match="unknown kind 'nic'"):
        ms.rule_bases(("apic", "nic"))
    with pytest.raises(MigOrderError):
        ms.rule_bases(path=FIXTURES / "missing.toml")
