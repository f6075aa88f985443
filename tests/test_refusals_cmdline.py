"""What QEMU refuses on the command line, migorder refuses, in QEMU's words, per release.

Each message was seen from the real binaries (Debian 7.2; 10.0 and 11.1 in chroots).
"""

from __future__ import annotations

import pytest

from ordering.errors import ScenarioError
from ordering.model.machine import qemu_size
from ordering.order import derive
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge

K = load_knowledge()


def _derive(release: str, *args: str) -> int:
    return len(derive(K.release(release), parse_command_line(["-nodefaults", *args])).steps)


def _refused(release: str, *args: str) -> str:
    with pytest.raises(ScenarioError) as info:
        _derive(release, *args)
    return str(info.value)


@pytest.mark.parametrize(("release", "machine", "limit", "machine_type"), [
    ("7.2", "q35", 288, "pc-q35-7.2"), ("7.2", "pc", 255, "pc-i440fx-7.2"), ("10.0", "q35", 4096, "pc-q35-10.0"),
    ("11.1", "pc", 255, "pc-i440fx-11.1"), ("11.1", "virt", 512, "virt-11.1"),
])
def test_maxcpus_above_the_machine_types_max_cpus(release: str, machine: str, limit: int, machine_type: str) -> None:
    msg = _refused(release, "-machine", machine, "-smp", f"1,maxcpus={limit + 1}")
    assert f"'Invalid SMP CPUs {limit + 1}. The max CPUs supported by machine '{machine_type}' is {limit}'" in msg


def test_a_billion_vcpus_is_refused_before_anything_is_made() -> None:
    # parsing costs nothing per vCPU; the release refuses before registering any
    vm = parse_command_line(["-nodefaults", "-machine", "q35", "-smp", "1000000000"])
    assert vm.topology.maxcpus == 1_000_000_000
    with pytest.raises(ScenarioError, match="Invalid SMP CPUs 1000000000"):
        derive(K.release("7.2"), vm)


@pytest.mark.parametrize("smp", ["2,threads=0", "0", "2,sockets=0", "4,cores=0,threads=2"])
def test_a_zero_warns_on_72_and_is_refused_from_10_0(smp: str) -> None:
    assert _derive("7.2", "-machine", "q35", "-smp", smp) > 0  # 7.2: read as omitted, starts
    for release in ("10.0", "11.1"):
        assert "'Invalid CPU topology: CPU topology parameters must be greater than zero'" in _refused(
            release, "-machine", "q35", "-smp", smp)


def test_a_zero_is_read_as_omitted_never_divided_by() -> None:
    vm = parse_command_line(["-nodefaults", "-machine", "q35", "-smp", "4,cores=0,threads=2"])
    t = vm.topology
    # as 7.2 reads it on q35 (captured, query-cpus-fast: socket 0, cores 0-1, threads 0-1)
    assert (t.cpus, t.sockets, t.cores, t.threads, vm.smp_zero) == (4, 1, 2, 2, ("cores",))
    vm = parse_command_line(["-nodefaults", "-machine", "q35", "-smp", "2,threads=0"])
    assert (vm.topology.cpus, vm.topology.threads, vm.smp_zero) == (2, 1, ("threads",))


@pytest.mark.parametrize("smp", ["-1", "2,cores=-1", "2,maxcpus=-4"])
def test_negative_topology_values_are_refused(smp: str) -> None:
    with pytest.raises(ScenarioError, match="QEMU refuses a negative"):
        parse_command_line(["-nodefaults", "-machine", "q35", "-smp", smp])


def test_maxcpus_below_cpus() -> None:
    with pytest.raises(ScenarioError, match="'Invalid CPU topology: maxcpus must be equal to or greater than smp'"):
        parse_command_line(["-nodefaults", "-machine", "q35", "-smp", "4,maxcpus=2"])


@pytest.mark.parametrize("bad", ["1abc", "né", "a b", "-x", "_x"])
def test_ids_qemu_rejects(bad: str) -> None:
    assert "\"Parameter 'id' expects an identifier\"" in _refused("10.0", "-machine", "q35", "-device", f"e1000e,id={bad}")


def test_ids_qemu_takes() -> None:
    assert _derive("10.0", "-machine", "q35", "-device", "e1000e,id=a.b-c_D9") > 0


@pytest.mark.parametrize(("option", "value", "words"), [
    ("hpet", "maybe", "\"Parameter 'hpet' expects 'on' or 'off'\""),
    ("hpet", "auto", "\"Parameter 'hpet' expects 'on' or 'off'\""),
    ("pit", "maybe", "\"Parameter 'pit' does not accept value 'maybe'\""),
    ("acpi", "yes", "\"Parameter 'acpi' does not accept value 'yes'\""),
])
def test_machine_option_values_qemu_rejects(option: str, value: str, words: str) -> None:
    assert words in _refused("7.2", "-machine", f"q35,{option}={value}")


@pytest.mark.parametrize(("option", "value"), [("hpet", "yes"), ("hpet", "off"), ("pit", "auto"), ("acpi", "off")])
def test_machine_option_values_qemu_takes(option: str, value: str) -> None:
    assert _derive("7.2", "-machine", f"q35,{option}={value}") > 0


@pytest.mark.parametrize("size", ["zz", "1e400G", "1.5", "16E", ""])
def test_object_sizes_qemu_rejects(size: str) -> None:
    with pytest.raises(ScenarioError, match="\"Parameter 'size' expects a size value\""):
        parse_command_line(["-nodefaults", "-machine", "q35", "-object", f"memory-backend-ram,id=m,size={size}"])


def test_sizes() -> None:
    assert qemu_size("1G") == 1 << 30
    assert qemu_size("1.5G") == 3 << 29
    assert qemu_size("15E") == 15 << 60
    assert qemu_size("16E") is None
    with pytest.raises(ScenarioError, match="below 2\\^64"):
        parse_command_line(["-nodefaults", "-machine", "q35", "-m", "1e400G"])


def test_a_negative_hotplug_cpu_index_is_refused() -> None:
    from dataclasses import replace

    from ordering.model.vm import HotplugStep

    vm = parse_command_line(["-nodefaults", "-machine", "q35", "-smp", "1,maxcpus=4"])
    with pytest.raises(ScenarioError, match="hot-plug of vCPU -1: expected an absent vCPU index below maxcpus=4"):
        derive(K.release("10.0"), replace(vm, hotplug=(HotplugStep(cpu=-1),)))


@pytest.mark.parametrize("device", ["amd-iommu", "intel-iommu", "virtio-vga", "isa-serial", "pvpanic"])
@pytest.mark.parametrize("release", ["7.2", "11.1"])
def test_an_x86_device_on_arm_is_not_a_device_model_there(device: str, release: str) -> None:
    msg = _refused(release, "-machine", "virt", "-device", device)
    assert f"\"'{device}' is not a valid device model name\"" in msg
    assert "argument" in msg  # the place: the -device's argument number


def test_a_device_both_binaries_have_is_taken_on_both() -> None:
    assert _derive("11.1", "-machine", "virt", "-device", "e1000e") > 0
    assert _derive("11.1", "-machine", "q35", "-device", "e1000e") > 0
