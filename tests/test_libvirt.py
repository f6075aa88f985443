"""libvirt's command lines: machine types per release, QEMU's spellings, UEFI flash, old types.

Each expectation was captured on Debian's 7.2, 10.0 and 11.1 binaries (the orders are in
tests/data/captured/*-lv-*.order.json and checked by test_order_real.py); these tests pin the
refusals and the rules behind them without QEMU.
"""

from __future__ import annotations

import pytest

from ordering.errors import MigOrderError, ScenarioError
from ordering.order import derive
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge

K = load_knowledge()


def _order(release: str, line: str) -> list[tuple[int, str, int]]:
    vm = parse_command_line(line)
    return [(s.section.section_id, s.section.idstr, s.section.instance_id) for s in derive(K.release(release), vm).full]


def _refusal(release: str, line: str) -> str:
    with pytest.raises(MigOrderError) as info:
        derive(K.release(release), parse_command_line(line))
    return str(info.value)


@pytest.mark.parametrize(
    ("release", "machine", "words"),
    [
        ("7.2", "pc-q35-11.1", "'unsupported machine type'"),  # newer than the source
        ("7.2", "pc-q35-99.0", "'unsupported machine type'"),  # unknown
        ("10.0", "pc-q35-10.1", "'unsupported machine type: \"pc-q35-10.1\"'"),
        ("11.1", "pc-q35-4.0", "'unsupported machine type: \"pc-q35-4.0\"'"),  # gone from 11.1
        ("11.1", "pc-i440fx-2.12", "'unsupported machine type: \"pc-i440fx-2.12\"'"),
        ("11.1", "virt-4.2", "'unsupported machine type: \"virt-4.2\"'"),
    ],
)
def test_a_machine_type_the_binary_lacks_is_refused_in_qemus_words(release: str, machine: str, words: str) -> None:
    assert words in _refusal(release, f"-nodefaults -machine {machine}")


@pytest.mark.parametrize(("release", "machine"), [("7.2", "pc-q35-2.4"), ("10.0", "pc-q35-4.0.1"), ("11.1", "virt-5.2"), ("11.1", "pc-i440fx-5.2")])
def test_a_machine_type_the_binary_lists_is_taken(release: str, machine: str) -> None:
    assert _order(release, f"-nodefaults -machine {machine}")


def test_an_x86_binary_has_no_virt_machine() -> None:
    text = _refusal("11.1", "qemu-system-x86_64 -nodefaults -machine virt")
    assert "'unsupported machine type: \"virt\"'" in text
    assert "aarch64" in text
    assert "'unsupported machine type'" in _refusal("7.2", "qemu-system-aarch64 -nodefaults -machine q35")
    # a binary whose name gives no target (a wrapper) is not second-guessed
    assert _order("11.1", "/opt/wrapper -nodefaults -machine virt")


def test_machine_keys_take_underscores_as_qemu_does() -> None:
    vm = parse_command_line("-nodefaults -machine q35,kernel_irqchip=split,dump_guest_core=off")
    assert vm.machine_options == {"kernel-irqchip": "split", "dump-guest-core": "off"}
    assert _order("10.0", "-nodefaults -machine q35,kernel_irqchip=split") == _order("10.0", "-nodefaults -machine q35")


@pytest.mark.parametrize("release", ["7.2", "10.0", "11.1"])
@pytest.mark.parametrize("machine", ["pc", "q35"])
def test_uefi_flash_registers_one_section_per_unit_before_fw_cfg(release: str, machine: str) -> None:
    plain = _order(release, f"-nodefaults -machine {machine}")
    two = _order(release, f"-nodefaults -blockdev node-name=c -blockdev node-name=v -machine {machine},pflash0=c,pflash1=v")
    one = _order(release, f"-nodefaults -machine {machine} -drive if=pflash,format=raw,file=code.fd")
    for flashed, units in ((two, 2), (one, 1)):
        names = [idstr for _, idstr, _ in flashed]
        at = names.index("fw_cfg")
        assert names[at - units : at] == ["pflash_cfi01"] * units
        assert [i for _, idstr, i in flashed if idstr == "pflash_cfi01"] == list(range(units))
        # every section after the flash moved by one section_id per unit
        assert flashed[-1][0] == plain[-1][0] + units


def test_pflash1_without_pflash0_maps_no_flash() -> None:
    assert _order("10.0", "-nodefaults -machine q35,pflash1=v") == _order("10.0", "-nodefaults -machine q35")


@pytest.mark.parametrize("release", ["7.2", "10.0"])
@pytest.mark.parametrize(("machine", "old", "new"), [("q35", "5.0", "5.1"), ("pc", "5.0", "5.1")])
def test_machine_types_up_to_5_0_send_no_pcihost(release: str, machine: str, old: str, new: str) -> None:
    prefix = "pc-q35-" if machine == "q35" else "pc-i440fx-"
    before = _order(release, f"-nodefaults -machine {prefix}{old}")
    after = _order(release, f"-nodefaults -machine {prefix}{new}")
    assert "PCIHost" not in [i for _, i, _ in before]
    assert "PCIHost" in [i for _, i, _ in after]
    # registered all the same: it keeps its section_id, so nothing after it moves
    assert before[-1][0] == after[-1][0]


def test_virt_up_to_5_0_sends_no_pcihost() -> None:
    vm = "qemu-system-aarch64 -nodefaults -machine virt-5.0"
    assert "PCIHost" not in [i for _, i, _ in _order("10.0", vm)]
    assert "PCIHost" in [i for _, i, _ in _order("10.0", vm.replace("5.0", "5.1"))]


def test_machine_types_up_to_2_7_send_no_pcspk() -> None:
    assert "pcspk" not in [i for _, i, _ in _order("10.0", "-nodefaults -machine pc-q35-2.7")]
    assert "pcspk" in [i for _, i, _ in _order("10.0", "-nodefaults -machine pc-q35-2.8")]


def test_an_unknown_machine_option_is_still_refused() -> None:
    with pytest.raises(ScenarioError, match="does not know whether this option"):
        derive(K.release("10.0"), parse_command_line("-nodefaults -machine q35,frobnicate=on"))
