"""QEMU command lines and scenario files: what is modelled, and what is refused, with where."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from ordering.errors import ScenarioError
from ordering.model.vm import DeviceSpec, HotplugStep
from ordering.order import derive
from ordering.sources.cmdline import parse_command_line, split_props
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario


def test_options_that_register_nothing_are_accepted() -> None:
    vm = parse_command_line(
        "qemu-system-x86_64 -nodefaults -display none -S -accel tcg -monitor none -serial none "
        "-machine q35 -m 128 -name vm1 -blockdev driver=null-co,node-name=n0 "
        "-device virtio-blk-pci,drive=n0,id=d0"
    )
    assert vm.machine == "q35"
    assert [d.driver for d in vm.devices] == ["virtio-blk-pci"]
    assert vm.devices[0].props == {"drive": "n0"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("-nodefaults -machine q35 -nic user", "-nic is not modelled by migorder"),
        ("-nodefaults -machine q35 -frobnicate 1", "unknown or unmodelled QEMU option '-frobnicate'"),
        ("-nodefaults -device e1000", "expected -machine TYPE"),
        ("-nodefaults -machine q35 -smp 3,sockets=2,cores=2", "expected sockets*dies*cores*threads == maxcpus"),
        ("-nodefaults -machine q35 -device", "-device: expected an argument after it"),
        ("-nodefaults -machine q35 -device ,id=x", "expected a device type first"),
    ],
)
def test_refused_command_lines(args: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_command_line(args)
    assert message in str(err.value)
    assert str(err.value).startswith("command line")


def test_nodefaults_is_required_where_users_enter() -> None:
    with pytest.raises(ScenarioError, match="expected -nodefaults"):
        parse_command_line("-machine q35", require_nodefaults=True)


def test_comma_escaping() -> None:
    assert split_props("a,b=1,,2,c") == ["a", "b=1,2", "c"]


def test_unknown_device_and_bus_are_reported() -> None:
    k = load_knowledge()
    with pytest.raises(Exception, match="unknown device type 'frob-pci'"):
        derive(k.release("7.2"), parse_command_line("-nodefaults -machine q35 -device frob-pci"))
    with pytest.raises(ScenarioError, match="Bus 'rp9' not found"):
        derive(k.release("7.2"), parse_command_line("-nodefaults -machine q35 -device e1000e,bus=rp9"))


def test_a_pcie_port_takes_any_slot() -> None:
    # captured on 7.2, 10.0 and 11.1: 10.0+ only warn about a PCIe device off slot 0
    given = "-nodefaults -machine q35 -device pcie-root-port,id=rp -device e1000,bus=rp,addr=5 -device e1000e,bus=rp,addr=3"
    assert [x for x in _full("10.0", given) if x.endswith(("/e1000", "/e1000e"))] == [
        "0000:00:01.0:05.0/e1000", "0000:00:01.0:03.0/e1000e"]
    auto = "-nodefaults -machine q35 -device pcie-root-port,id=rp -device e1000,bus=rp -device e1000e,bus=rp"
    assert [x for x in _full("7.2", auto) if x.endswith(("/e1000", "/e1000e"))] == [
        "0000:00:01.0:00.0/e1000", "0000:00:01.0:01.0/e1000e"]


def test_device_del_takes_the_subtree() -> None:
    k = load_knowledge()
    vm = parse_command_line(
        "-nodefaults -machine q35 -device piix3-usb-uhci,id=usb0 -device usb-hub,id=h0,bus=usb0.0,port=1 "
        "-device usb-kbd,id=k0,bus=usb0.0,port=1.1"
    )
    full = [s.section.idstr for s in derive(k.release("10.0"), replace(vm, hotplug=(HotplugStep(unplug="h0"),))).full]
    assert not any(x.endswith(("/usb-hub", "/usb-kbd")) for x in full)


def test_apic_ids_follow_the_topology() -> None:
    k = load_knowledge()
    vm = parse_command_line("-nodefaults -machine q35 -smp 6,sockets=2,cores=3")
    apics = [s.instance_id for s in derive(k.release("7.2"), vm).registered.sections if s.idstr == "apic"]
    assert apics == [0, 1, 2, 4, 5, 6]


def test_scenario_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('description = "x"\ncommand = "-nodefaults -machine q35"\n[[hotplug]]\ncpu = 1\ndevice = "e1000"\n')
    with pytest.raises(ScenarioError, match=rf"{path}:3: hotplug: expected exactly one of cpu, device, unplug"):
        read_scenario(path)
    path.write_text('command = "-nodefaults -machine q35"\nhotplugs = []\n')
    with pytest.raises(Exception, match=rf"{path}:2: unknown key 'hotplugs'"):
        read_scenario(path)


def test_hotplugged_cpu_registers_after_everything() -> None:
    k = load_knowledge()
    vm = parse_command_line("-nodefaults -machine q35 -smp 2,maxcpus=4")
    from dataclasses import replace

    from ordering.model.vm import HotplugStep

    vm = replace(vm, hotplug=(HotplugStep(cpu=3),))
    sections = derive(k.release("7.2"), vm).registered.sections
    assert [(s.idstr, s.instance_id) for s in sections[-3:]] == [("cpu_common", 3), ("cpu", 3), ("apic", 3)]
    with pytest.raises(ScenarioError, match="expected an absent vCPU index below maxcpus=4"):
        derive(k.release("7.2"), replace(vm, hotplug=(HotplugStep(cpu=1),)))


def test_a_device_the_machine_refuses_is_refused_in_qemus_words() -> None:
    k = load_knowledge()
    vm = parse_command_line("-nodefaults -machine pc -device intel-iommu")
    with pytest.raises(ScenarioError, match="expects a dynamic sysbus device type for the machine"):
        derive(k.release("7.2"), vm)


def test_a_device_newer_than_the_release_is_refused() -> None:
    k = load_knowledge()
    vm = parse_command_line("-nodefaults -machine q35 -device igb")
    with pytest.raises(ScenarioError, match=r"'igb' is not a valid device model name in QEMU 7\.2"):
        derive(k.release("7.2"), vm)
    assert any(s.idstr == "0000:00:01.0/igb" for s in derive(k.release("10.0"), vm).registered.sections)


def test_libvirt_style_json_options_global_and_audiodev() -> None:
    vm = parse_command_line(
        "-nodefaults -machine q35 -audiodev '{\"id\":\"a0\",\"driver\":\"none\"}' -audiodev none,id=a1 "
        "-global virtio-net-pci.iommu_platform=on -global driver=virtio-net-pci,property=ats,value=on "
        "-device '{\"driver\":\"virtio-net-pci\",\"id\":\"n0\",\"iommu_platform\":false}'"
    )
    assert vm.audiodevs == ("a0", "a1")
    (dev,) = vm.devices
    assert (dev.driver, dev.id) == ("virtio-net-pci", "n0")
    assert dev.props == {"iommu_platform": "off", "ats": "on"}  # the device's own value wins
    with pytest.raises(ScenarioError, match="expected a JSON object"):
        parse_command_line("-nodefaults -machine q35 -device '{\"driver\": e1000}'")
    with pytest.raises(ScenarioError, match=r"expected DRIVER\.PROPERTY=VALUE"):
        parse_command_line("-nodefaults -machine q35 -global nodot")


def _full(release: str, args: str) -> list[str]:
    k = load_knowledge()
    return [s.section.label for s in derive(k.release(release), parse_command_line(args)).full]


def test_serial_and_parallel_backends_register_isa_ports() -> None:
    # vl.c serial_parse: `none` keeps its index empty; x86 boards create ports 0..3 only.
    args = "-nodefaults -machine q35 -serial null -serial none -serial stdio -serial none -serial pty -parallel null"
    vm = parse_command_line(args)
    assert vm.serials == ("null", "none", "stdio", "none", "pty")
    assert vm.parallels == ("null",)
    full = _full("10.0", args)
    i = full.index("pcspk")
    assert full[i + 1 : i + 5] == ["serial", "serial#1", "parallel_isa", "ps2kbd"]
    assert "serial" not in _full("10.0", "-nodefaults -machine q35 -serial none")


def test_virt_has_a_second_uart_only_from_9_1() -> None:
    args = "-nodefaults -machine virt -cpu max -serial null -serial null"
    assert _full("7.2", args).count("pl011") == 1
    assert [x for x in _full("10.0", args) if x.startswith("pl011")] == ["pl011", "pl011#1"]
    assert [x for x in _full("10.0", "-nodefaults -machine virt -cpu max -serial none -serial null") if x.startswith("pl011")] == ["pl011", "pl011#1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("-nodefaults -machine q35 -parallel null -parallel null -parallel null -parallel null",
         "too many parallel ports"),
        ("-nodefaults -machine q35 -drive file=a.img,if=virtio", "-drive if=virtio: QEMU creates a device"),
        ("-nodefaults -machine q35 -drive file=a.img,if=scsi", "-drive if=scsi: QEMU creates a device"),
        ("-nodefaults -machine virt -cpu max -drive file=a.img", "-drive if=virtio (the default on virt)"),
        ("-nodefaults -machine virt -cpu max -cdrom a.iso", "-drive if=virtio (the default on virt)"),
        ("-nodefaults -machine q35 -debugcon null", "-debugcon is not modelled"),
    ],
)
def test_drives_and_ports_migorder_cannot_place_are_refused(args: str, message: str) -> None:
    k = load_knowledge()
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        derive(k.release("10.0"), parse_command_line(args))


def test_ide_drives_on_x86_register_nothing() -> None:
    # Captured on 7.2, 10.0 and 11.1 (tests/data/captured/*-q35-idecd): the built-in
    # IDE/AHCI controller carries the drives' state in its own section.
    plain = _full("11.1", "-nodefaults -machine pc")
    assert _full("11.1", "-nodefaults -machine pc -hda a.img -cdrom b.iso -drive file=c.img,if=ide") == plain


def test_machine_options_are_modelled_inert_or_refused() -> None:
    k = load_knowledge()
    base = _full("10.0", "-nodefaults -machine q35")
    # captured inert: the same sections
    assert _full("10.0", "-nodefaults -machine q35,smm=off,graphics=off,kernel-irqchip=off") == base
    # modelled: hpet=off drops hpet, usb=on adds the ICH9 EHCI and its UHCI companions
    assert "hpet" not in _full("10.0", "-nodefaults -machine q35,hpet=off")
    usb = _full("10.0", "-nodefaults -machine q35,usb=on")
    assert usb[usb.index("0000:00:1f.2/ich9_ahci") + 1 :][:4] == [
        "0000:00:1d.7/ehci", "0000:00:1d.0/uhci", "0000:00:1d.1/uhci", "0000:00:1d.2/uhci"]
    # anything else is refused, never silently mis-predicted
    with pytest.raises(ScenarioError, match="does not know whether this option"):
        derive(k.release("10.0"), parse_command_line("-nodefaults -machine q35,nosuchoption=on"))


def test_legacy_flags_are_machine_options_on_7_2_and_refused_from_9_0() -> None:
    k = load_knowledge()
    assert "hpet" not in _full("7.2", "-nodefaults -machine q35 -no-hpet")
    with pytest.raises(ScenarioError, match="'-no-hpet: invalid option'"):
        derive(k.release("10.0"), parse_command_line("-nodefaults -machine q35 -no-hpet"))


def test_virt_gic_max_firmware_and_secure() -> None:
    k = load_knowledge()
    assert _full("10.0", "-nodefaults -machine virt,gic-version=max -cpu max")[:2] == ["arm_gicv3", "arm_gicv3_its"]
    with pytest.raises(ScenarioError, match="gic-version=host"):
        derive(k.release("10.0"), parse_command_line("-nodefaults -machine virt,gic-version=host -cpu max"))
    # -bios loads firmware: with ACPI on, the GED replaces the GPIO controller and its key
    fw = _full("11.1", "-nodefaults -machine virt -cpu max -bios efi.fd")
    assert "acpi-ged" in fw
    assert "pl061" not in fw
    assert "gpio-key" not in fw
    assert "acpi-ged" not in _full("11.1", "-nodefaults -machine virt -cpu max -kernel Image")
    secure = _full("11.1", "-nodefaults -machine virt,secure=on -cpu max -serial null -serial null")
    assert [x for x in secure if x.startswith(("pl011", "pl061"))] == ["pl011", "pl011#1", "pl061", "pl061#1"]


def test_netdev_user_registers_slirp_and_other_backends_nothing() -> None:
    vm = parse_command_line(["-nodefaults", "-machine", "q35", "-netdev", "user,id=n0",
                             "-netdev", '{"type":"socket","id":"s0"}'])
    assert vm.netdevs == ("user", "socket")
    assert [x for x in _full("10.0", "-nodefaults -machine q35 -netdev user,id=a -netdev user,id=b") if x.startswith("slirp")] == ["slirp", "slirp#1"]
    # 7.2 registered every slirp with instance_id 0 (net/slirp.c), so both read "slirp"
    assert [x for x in _full("7.2", "-nodefaults -machine q35 -netdev user,id=a -netdev user,id=b") if x.startswith("slirp")] == ["slirp", "slirp"]
    assert "slirp" not in _full("10.0", "-nodefaults -machine q35 -netdev hubport,id=h,hubid=0")


def test_device_properties_are_checked_against_the_release_binary() -> None:
    k = load_knowledge()
    typo = parse_command_line("-nodefaults -machine q35 -device virtio-net-pci,iommu_plaform=on")
    with pytest.raises(ScenarioError, match=r"\"Property 'virtio-net-pci\.iommu_plaform' not found\""):
        derive(k.release("10.0"), typo)
    # renamed between releases: 7.2's experimental x-enable-migration is enable-migration from 8.0
    with pytest.raises(ScenarioError, match=r"QEMU 7\.2 refuses it"):
        derive(k.release("7.2"), parse_command_line("-nodefaults -machine q35 -device vfio-pci,host=01:00.0,enable-migration=on"))
    derive(k.release("7.2"), parse_command_line("-nodefaults -machine q35 -device vfio-pci,host=01:00.0,x-enable-migration=on"))
    # 10.2 has no binary read: the properties are taken as given, and `check` says so
    from ordering.check import check
    from ordering.report import assumptions

    said = assumptions(check(k, k.release("10.2"), typo))
    assert any("-device properties as given" in a for a in said)


@pytest.mark.parametrize(
    ("release", "args", "words"),
    [
        # found by differential capture against Debian's 7.2, 10.0 and 11.1 binaries
        ("10.0", "-machine q35 -device virtio-balloon-pci -device virtio-balloon-pci-non-transitional",
         "Only one balloon device is supported"),
        ("11.1", "-machine virt,its=on -cpu max", "GICv2 + ITS is an invalid configuration."),
        ("7.2", "-machine pc,acpi=off -device pci-bridge,id=pb0,chassis_nr=1 -device e1000,bus=pb0",
         "Unsupported PCI slot 0 for standard hotplug controller"),
        ("10.0", "-machine virt -cpu max -device pci-bridge,id=pb0,chassis_nr=1 -device e1000,bus=pb0",
         "Unsupported PCI slot 0 for standard hotplug controller"),
    ],
)
def test_refusals_found_by_differential_capture(release: str, args: str, words: str) -> None:
    k = load_knowledge()
    with pytest.raises(ScenarioError, match=re.escape(words)):
        derive(k.release(release), parse_command_line("-nodefaults " + args))


def test_the_same_lines_qemu_accepts() -> None:
    # its=on with GICv2 is ignored before 11.x; slot 0 behind a bridge is fine with ACPI (or on q35)
    _full("10.0", "-nodefaults -machine virt,its=on -cpu max")
    _full("7.2", "-nodefaults -machine pc -device pci-bridge,id=pb0,chassis_nr=1 -device e1000,bus=pb0")
    _full("7.2", "-nodefaults -machine q35,acpi=off -device pci-bridge,id=pb0,chassis_nr=1 -device e1000,bus=pb0")


def test_store_global_state_off_sends_no_globalstate_from_10_0() -> None:
    args = "-nodefaults -machine q35 -global migration.store-global-state=off"
    assert parse_command_line(args).migration == {"store-global-state": "off"}
    assert "globalstate" not in _full("10.0", args)
    assert _full("10.0", "-nodefaults -machine q35")[-1] == "globalstate"


@pytest.mark.parametrize(
    ("release", "args", "step", "words"),
    [
        ("10.0", "-machine q35", HotplugStep(device=DeviceSpec("e1000", id="hp1")), "Bus 'pcie.0' does not support hotplugging"),
        ("7.2", "-machine pc,acpi=off", HotplugStep(device=DeviceSpec("e1000", id="hp1")), "Bus 'pci.0' does not support hotplugging"),
        ("11.1", "-machine q35 -device virtio-rng-pci,id=r0", HotplugStep(unplug="r0"), "Bus 'pcie.0' does not support hotplugging"),
        ("10.0", "-machine q35 -device pcie-root-port,id=rp0,chassis=1,hotplug=off",
         HotplugStep(device=DeviceSpec("e1000", id="hp1", bus="rp0")), "Bus 'rp0' does not support hotplugging"),
    ],
)
def test_hotplug_where_qemu_has_no_handler_is_refused(release: str, args: str, step: HotplugStep, words: str) -> None:
    k = load_knowledge()
    vm = replace(parse_command_line("-nodefaults " + args), hotplug=(step,))
    with pytest.raises(ScenarioError, match=re.escape(words)):
        derive(k.release(release), vm)


def test_hotplug_where_qemu_takes_it() -> None:
    k = load_knowledge()
    for args, step in (
        ("-machine pc", HotplugStep(device=DeviceSpec("e1000", id="hp1"))),
        ("-machine q35 -device pcie-root-port,id=rp0,chassis=1", HotplugStep(device=DeviceSpec("e1000", id="hp1", bus="rp0"))),
    ):
        vm = replace(parse_command_line("-nodefaults " + args), hotplug=(step,))
        assert derive(k.release("10.0"), vm).full[-1].section.idstr.endswith("/e1000")


def test_a_device_id_is_used_once() -> None:
    k = load_knowledge()
    with pytest.raises(ScenarioError, match="the id is in use"):
        derive(k.release("10.0"), parse_command_line("-nodefaults -machine q35 -device e1000,id=a -device e1000e,id=a"))
    vm = parse_command_line("-nodefaults -machine q35 -device pcie-root-port,id=rp,chassis=1 -device e1000,id=a,bus=rp")
    again = (HotplugStep(unplug="a"), HotplugStep(device=DeviceSpec("e1000e", id="a", bus="rp")))
    assert derive(k.release("10.0"), replace(vm, hotplug=again)).full[-1].section.idstr.endswith("/e1000e")


def test_hotplug_onto_a_taken_pcie_port() -> None:
    k = load_knowledge()
    vm = parse_command_line("-nodefaults -machine q35 -device pcie-root-port,id=rp0,chassis=1 -device e1000e,id=d0,bus=rp0")
    vm = replace(vm, hotplug=(HotplugStep(device=DeviceSpec("e1000", id="hp1", bus="rp0")),))
    # captured: 7.2 puts it at 01.0; 10.0 and 11.1 refuse it
    assert derive(k.release("7.2"), vm).full[-1].section.idstr == "0000:00:01.0:01.0/e1000"
    with pytest.raises(ScenarioError, match=re.escape("PCI: slot 0 function 0 already occupied by e1000e, new func e1000 cannot be exposed to guest.")):
        derive(k.release("11.1"), vm)
