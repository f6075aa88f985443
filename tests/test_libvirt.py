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


@pytest.mark.parametrize("machine", ["vexpress-a9", "versatilepb", "realview-pbx-a9"])
def test_a_board_outside_the_modelled_families_is_refused_as_unmodelled_not_as_qemus_refusal(machine: str) -> None:
    # captured: 10.0 and 11.1 have these boards (they refuse libvirt's lines only for RAM size or CPU)
    text = _refusal("11.1", f"qemu-system-aarch64 -nodefaults -machine {machine}")
    assert f"-machine {machine}: migorder does not model this machine type" in text
    assert "unsupported machine type" not in text


def test_run_with_registers_nothing_where_qemu_has_it() -> None:
    line = "qemu-system-x86_64 -nodefaults -machine pc -run-with async-teardown=on"
    assert _order("11.1", line) == _order("11.1", "qemu-system-x86_64 -nodefaults -machine pc")
    assert "'-run-with: invalid option' (added in 8.1)" in _refusal("7.2", line)


@pytest.mark.parametrize(
    ("option", "words", "since"),
    [
        ('{"id":"audio1","driver":"pipewire"}', "Parameter 'driver' does not accept value 'pipewire'", "8.1"),
        ("acpi-generic-initiator,id=gi0,pci-dev=hostdev0,node=1", "Parameter 'qom-type' does not accept value 'acpi-generic-initiator'", "9.0"),
    ],
)
def test_a_backend_or_object_type_newer_than_the_release_is_refused_in_qemus_words(option: str, words: str, since: str) -> None:
    flag = "-audiodev" if "pipewire" in option else "-object"
    line = f"qemu-system-x86_64 -nodefaults -machine pc {flag} '{option}'"
    text = _refusal("7.2", line)
    assert words in text
    assert f"(added in {since})" in text
    # the same sections as with a backend 7.2 has (an -audiodev registers one) or no object
    same = line.replace("pipewire", "none") if flag == "-audiodev" else line.split(" -object")[0]
    assert _order("10.0", line) == _order("10.0", same)


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


# ---- devices libvirt writes (captured: tests/data/captured/*-lv-dev-*.order.json) ----------


def _idstrs(release: str, line: str) -> list[str]:
    return [i for _, i, _ in _order(release, line)]


@pytest.mark.parametrize(
    "devices",
    [
        "-m 128,slots=2,maxmem=1G -object memory-backend-ram,id=m1,size=128M -device pc-dimm,memdev=m1",
        "-m 128,slots=2,maxmem=1G -object memory-backend-ram,id=m1,size=128M -device nvdimm,memdev=m1",
        "-blockdev node-name=f0 -device floppy,unit=0,drive=f0",
    ],
)
def test_devices_without_a_section_change_no_section_id(devices: str) -> None:
    plain = _order("10.0", "-nodefaults -machine q35,nvdimm=on")
    assert _order("10.0", f"-nodefaults -machine q35,nvdimm=on {devices}") == plain


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("-machine pc -device pc-dimm,memdev=m", "no slots where allocated"),
        ("-machine pc,acpi=off -m 128,slots=2,maxmem=1G -device pc-dimm,memdev=m", "missing acpi device or acpi disabled"),
        ("-machine pc -m 128,slots=2,maxmem=1G -device nvdimm,memdev=m", "nvdimm is not enabled: missing 'nvdimm' in '-M'"),
        ("-machine virt -m 128,slots=2,maxmem=1G -device pc-dimm,memdev=m", "missing acpi-ged device"),
    ],
)
def test_dimms_need_memory_hotplug_as_qemu_says(line: str, words: str) -> None:
    assert words in _refusal("10.0", f"-nodefaults {line}")


def test_virtio_pmem_takes_a_slot_but_no_section() -> None:
    line = "-nodefaults -machine q35 -device virtio-pmem-pci,memdev=m1 -device e1000e"
    assert "0000:00:02.0/e1000e" in _idstrs("10.0", line)
    assert not any("pmem" in i for i in _idstrs("10.0", line))


def test_qemus_type_aliases_resolve_as_qemu_resolves_them() -> None:
    assert _order("10.0", "-nodefaults -machine q35 -device virtio-iommu") == _order(
        "10.0", "-nodefaults -machine q35 -device virtio-iommu-pci"
    )
    assert "0000:00:01.0/virtio-net" in _idstrs("7.2", "-nodefaults -machine q35 -device virtio-net")
    # a name migorder knows as a type stays that type
    assert "0000:00:01.0/ich9_ahci" in _idstrs("10.0", "-nodefaults -machine q35 -device ahci")


ICH9_USB2 = (
    "-device ich9-usb-ehci1,id=usb,bus=pcie.0,addr=0x4.0x7 "
    "-device ich9-usb-uhci1,masterbus=usb.0,firstport=0,bus=pcie.0,multifunction=on,addr=0x4 "
    "-device ich9-usb-uhci2,masterbus=usb.0,firstport=2,bus=pcie.0,addr=0x4.0x1 "
    "-device ich9-usb-uhci3,masterbus=usb.0,firstport=4,bus=pcie.0,addr=0x4.0x2"
)


def test_libvirts_ich9_usb2_layout_is_taken_and_its_reverse_refused() -> None:
    names = _idstrs("10.0", f"-nodefaults -machine q35 {ICH9_USB2} -device usb-tablet,bus=usb.0 -device usb-kbd,bus=usb.0")
    at = names.index("0000:00:04.7/ehci")
    assert names[at : at + 4] == ["0000:00:04.7/ehci", "0000:00:04.0/uhci", "0000:00:04.1/uhci", "0000:00:04.2/uhci"]
    assert "0000:00:04.7/1/usb-ptr" in names
    assert "0000:00:04.7/2/usb-kbd" in names
    reverse = "-device ich9-usb-uhci1,masterbus=usb.0,firstport=0,addr=0x4,multifunction=on -device ich9-usb-ehci1,id=usb,addr=0x4.0x7"
    assert "\"USB bus 'usb.0' not found\"" in _refusal("10.0", f"-nodefaults -machine q35 {reverse}")
    # a function already taken is still refused
    assert "not available" in _refusal("10.0", "-nodefaults -machine q35 -device e1000e,addr=0x4 -device e1000e,addr=0x4")


def test_pci_expanders_bring_a_root_bus_numbered_bus_nr() -> None:
    pxb = _idstrs("10.0", "-nodefaults -machine pc -device pxb,bus_nr=100,id=pci.1,numa_node=0 -device e1000,bus=pci.1")
    assert "0000:64:02.0:00.0/pci_bridge" in pxb
    assert "0000:64:02.0:00.0:00.0/e1000" in pxb
    pcie = _idstrs(
        "11.1",
        "-nodefaults -machine q35 -device pxb-pcie,bus_nr=254,id=pci.1,numa_node=0,bus=pcie.0,addr=0x4 "
        "-device pcie-root-port,id=pci.2,bus=pci.1,chassis=2 -device e1000e,bus=pci.2",
    )
    assert "0000:fe:04.0:00.0/pcie-root-port" in pcie
    assert "0000:fe:04.0:00.0:00.0/e1000e" in pcie


def test_usb_audio_blocks_migration_in_qemus_words() -> None:
    from ordering.check import blockers

    line = "-nodefaults -machine q35 -audiodev none,id=a0 -device qemu-xhci,id=usb -device usb-audio,audiodev=a0,bus=usb.0"
    order = derive(K.release("10.0"), parse_command_line(line))
    assert [b.message for b in blockers(order)] == ["State blocked by non-migratable device '0000:00:01.0/1/usb-audio'"]


def test_amd_iommu_with_its_pci_function_migrates_on_11_1_only() -> None:
    from ordering.check import blockers

    line = "-nodefaults -machine q35 -device AMDVI-PCI,id=iommu0,addr=0x1 -device amd-iommu,pci-id=iommu0,intremap=on"
    order = derive(K.release("11.1"), parse_command_line(line))
    assert "amd-iommu" in [s.section.idstr for s in order.full]
    assert not blockers(order)
    assert "Property 'amd-iommu.pci-id' not found" in _refusal("10.0", line)


@pytest.mark.parametrize(("device", "idstr"), [("vhost-vsock-pci,guest-cid=3", "0000:00:01.0/virtio-vhost_vsock"), ("tpm-tis,tpmdev=t0", "tpm-tis"), ("tpm-crb,tpmdev=t0", "tpm-crb")])
def test_devices_not_captured_here_say_so(device: str, idstr: str) -> None:
    assert idstr in _idstrs("10.0", f"-nodefaults -machine q35 -tpmdev emulator,id=t0,chardev=c0 -device {device}")
    dtype = K.release("10.0").device(device.split(",")[0])
    assert dtype.source.startswith("inferred: not captured")


# ---- aarch64 and the accelerator ---------------------------------------------------------


@pytest.mark.parametrize("release", ["7.2", "10.0", "11.1"])
def test_gicv2_serves_at_most_8_vcpus(release: str) -> None:
    line = "qemu-system-aarch64 -nodefaults -machine virt,gic-version=2 -smp 9"
    assert "exceeds max CPUs supported by machine 'mach-virt' (8)" in _refusal(release, line)
    assert "arm_gicv3" in _idstrs(release, line.replace("gic-version=2", "gic-version=3"))
    assert "arm_gic" in _idstrs(release, line.replace("-smp 9", "-smp 8"))


def test_without_gic_version_more_than_8_vcpus_take_gicv3_from_10_0() -> None:
    line = "qemu-system-aarch64 -nodefaults -machine virt -smp 9"
    assert "exceeds max CPUs" in _refusal("7.2", line)  # captured: 7.2 keeps GICv2 and refuses
    names = _idstrs("10.0", line)
    assert "arm_gicv3" in names
    assert "arm_gicv3_its" in names


def test_virt_with_uefi_flash_is_firmware_booted() -> None:
    flash = "qemu-system-aarch64 -nodefaults -machine virt,usb=off,pflash0=c,pflash1=v,acpi=on"
    names = _idstrs("10.0", flash)
    assert "acpi-ged" in names
    assert "pl061" not in names
    assert _idstrs("10.0", flash + ",ras=on") == names
    assert "Assertion `vms->acpi_dev' failed" in _refusal("10.0", "qemu-system-aarch64 -nodefaults -machine virt,ras=on")


def test_check_says_what_kvm_adds(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from ordering.cli import main

    main(["check", "--qemu", "10.0", "--", "qemu-system-x86_64", "-nodefaults", "-machine", "q35", "-accel", "kvm"])
    assert "note: the machine's built-in sections were captured under TCG" in capsys.readouterr().out
    main(["check", "--json", "--qemu", "10.0", "--", "qemu-system-x86_64", "-nodefaults", "-machine", "q35", "-enable-kvm"])
    assert any("kvmclock" in n for n in json.loads(capsys.readouterr().out)["notes"])
    main(["check", "--json", "--qemu", "10.0", "--", "qemu-system-x86_64", "-nodefaults", "-machine", "q35"])
    assert json.loads(capsys.readouterr().out)["notes"] == []


def test_virtio_mmio_devices_take_virts_transports_from_the_top() -> None:
    line = "qemu-system-aarch64 -nodefaults -machine virt -device virtio-balloon-device -device virtio-net-device"
    names = _idstrs("10.0", line)
    assert "virtio-mmio@000000000a003e00/virtio-balloon" in names
    assert "virtio-mmio@000000000a003c00/virtio-net" in names
    assert "No 'virtio-bus' bus found" in _refusal("10.0", "-nodefaults -machine q35 -device virtio-balloon-device")


def test_the_vdagent_chardev_blocks_until_it_migrates_then_registers_early() -> None:
    from ordering.check import blockers

    line = "-nodefaults -machine q35 -audiodev none,id=a0 -chardev qemu-vdagent,id=c0,name=vdagent -device virtio-serial-pci -device virtserialport,chardev=c0"
    old = derive(K.release("10.0"), parse_command_line(line))
    assert [b.message for b in blockers(old)] == ["The vdagent chardev doesn't yet support migration"]
    new = derive(K.release("11.1"), parse_command_line(line))
    assert not blockers(new)
    # right after timer, before the -audiodev entry, whatever the command-line order
    assert [(s.section_id, s.idstr) for s in new.registered.sections[:3]] == [(0, "timer"), (1, "vdagent"), (2, "audio")]


def test_options_libvirt_adds_that_register_nothing() -> None:
    plain = _order("10.0", "-nodefaults -machine pc")
    assert _order("10.0", "-nodefaults -machine pc -acpitable sig=SLIC,file=slic.dat -full-screen -mem-prealloc") == plain
    assert "'gic-version=host requires KVM'" in _refusal("10.0", "qemu-system-aarch64 -nodefaults -machine virt,gic-version=host")


def test_gic_version_host_under_kvm_is_taken_as_gicv3_and_said() -> None:
    from ordering.report import order_notes

    order = derive(K.release("11.1"), parse_command_line("qemu-system-aarch64 -nodefaults -machine virt,gic-version=host -accel kvm -cpu host"))
    assert "arm_gicv3" in [s.section.idstr for s in order.full]
    assert any("taken as GICv3" in n for n in order_notes(order))
