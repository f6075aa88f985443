"""USB, SCSI and HDA child buses: addresses, default buses and refusals, as Debian's real
7.2, 10.0 and 11.1 binaries showed them (the orders themselves: tests/data/captured/*-q35-usb,
-scsi, -hda)."""

from __future__ import annotations

import pytest

from ordering.errors import ScenarioError
from ordering.order import derive
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge

_BASE = "-nodefaults -machine q35 -m 128 "


def _sections(args: str, release: str = "7.2") -> list[tuple[str, int]]:
    """(idstr, instance_id) of what the devices register (after the machine's platform)."""
    vm = parse_command_line(_BASE + args)
    reg = derive(load_knowledge().release(release), vm).registered
    return [
        (s.idstr, s.instance_id)
        for s in reg.sections
        if s.owner != "machine" and not s.owner.startswith("cpu")
    ]


def _idstrs(args: str, release: str = "7.2") -> list[str]:
    return [i for i, _ in _sections(args, release)]


def _refused(args: str, release: str = "7.2") -> str:
    with pytest.raises(ScenarioError) as err:
        derive(load_knowledge().release(release), parse_command_line(_BASE + args))
    return str(err.value)


# -- USB ----------------------------------------------------------------------------------


@pytest.mark.parametrize("release", ["7.2", "10.0", "11.1"])
def test_usb_ports_first_free_and_a_hub_on_the_last_port(release: str) -> None:
    got = _idstrs(
        "-device qemu-xhci,id=x -device usb-tablet -device usb-kbd -device usb-storage,drive=d0 "
        "-device usb-mouse",
        release,
    )
    assert got == [
        "0000:00:01.0/xhci",
        "0000:00:01.0/1/usb-ptr",
        "0000:00:01.0/2/usb-kbd",
        "0000:00:01.0/3/0:0:0/scsi-disk",
        "0000:00:01.0/3/usb-storage",
        "0000:00:01.0/4/usb-hub",
        "0000:00:01.0/4.1/usb-ptr",
    ]


def test_port_overrides_and_the_id_less_bus_name() -> None:
    got = _idstrs(
        "-device qemu-xhci -device usb-tablet,port=3 -device usb-kbd,bus=usb-bus.0 "
        "-device usb-storage,drive=d0"
    )
    assert got == [
        "0000:00:01.0/xhci",
        "0000:00:01.0/3/usb-ptr",
        "0000:00:01.0/1/usb-kbd",
        "0000:00:01.0/2/0:0:0/scsi-disk",
        "0000:00:01.0/2/usb-storage",
    ]


def test_an_explicit_hub_adds_its_ports_at_the_end() -> None:
    got = _idstrs(
        "-device qemu-xhci,p2=8,p3=8 -device usb-hub -device usb-tablet,port=1.3 "
        + " ".join(["-device usb-kbd"] * 7)
    )
    assert got[1:3] == ["0000:00:01.0/1/usb-hub", "0000:00:01.0/1.3/usb-ptr"]
    assert got[3:] == [f"0000:00:01.0/{p}/usb-kbd" for p in range(2, 9)]


def test_the_default_usb_bus_is_the_newest() -> None:
    got = _idstrs(
        "-device qemu-xhci -device ich9-usb-ehci1 -device qemu-xhci,id=x3 "
        "-device usb-tablet,bus=usb-bus.1 -device usb-kbd -device usb-mouse,bus=usb-bus.0"
    )
    assert got[3:] == ["0000:00:02.0/1/usb-ptr", "0000:00:03.0/1/usb-kbd", "0000:00:01.0/1/usb-ptr"]


def test_ehci_has_six_high_speed_ports_and_no_hub() -> None:
    got = _idstrs("-device usb-ehci,id=e " + " ".join(["-device usb-kbd"] * 6))
    assert got == ["0000:00:01.0/ehci", *(f"0000:00:01.0/{p}/usb-kbd" for p in range(1, 7))]
    assert "no free ports" in _refused("-device usb-ehci " + " ".join(["-device usb-kbd"] * 7))
    assert "speed mismatch" in _refused("-device usb-ehci -device usb-hub")


def test_usb3_only_ports_take_only_super_speed_devices() -> None:
    message = _refused("-device qemu-xhci,id=x,p2=1,p3=4 -device usb-tablet -device usb-kbd")
    assert "speed mismatch" in message
    assert 'port "2" (super speed)' in message
    got = _idstrs("-device qemu-xhci,p2=1,p3=4 -device usb-kbd -device usb-storage,drive=d0")
    assert got[-1] == "0000:00:01.0/2/usb-storage"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ("-device qemu-xhci -device usb-tablet,port=9", "usb port 9 (bus usb-bus.0) not found (in use?)"),
        ("-device qemu-xhci -device usb-tablet,port=2 -device usb-kbd,port=2", "usb port 2 (bus usb-bus.0) not found"),
        ("-device usb-tablet", "No 'usb-bus' bus found for device 'usb-tablet'"),
        ("-device qemu-xhci -device usb-tablet,bus=usb-bus.1", "Bus 'usb-bus.1' not found"),
    ],
)
def test_usb_refusals_in_qemus_words(args: str, words: str) -> None:
    assert words in _refused(args)


# -- SCSI ---------------------------------------------------------------------------------


def test_scsi_targets_and_luns() -> None:
    got = _idstrs(
        "-device virtio-scsi-pci,id=s -device scsi-hd,drive=d0 -device scsi-cd,drive=d1 "
        "-device scsi-hd,drive=d2,lun=3 -device scsi-hd,drive=d3,scsi-id=2 "
        "-device scsi-hd,drive=d4,scsi-id=0"
    )
    assert got == [
        "0000:00:01.0/virtio-scsi",
        "0000:00:01.0/0:0:0/scsi-disk",
        "0000:00:01.0/0:1:0/scsi-disk",
        "0000:00:01.0/0:0:3/scsi-disk",
        "0000:00:01.0/0:2:0/scsi-disk",
        "0000:00:01.0/0:0:1/scsi-disk",
    ]
    assert _sections("-device virtio-scsi-pci -device scsi-hd,drive=d0")[-1] == (
        "0000:00:01.0/0:0:0/scsi-disk",
        0,
    )


def test_lsi_has_eight_targets_of_one_lun() -> None:
    disks = " ".join(f"-device scsi-hd,drive=e{i}" for i in range(8))
    got = _idstrs("-device lsi53c895a " + disks)
    assert got[1:] == [f"0000:00:01.0/0:{t}:0/scsi-disk" for t in range(8)]
    assert "'no free target'" in _refused("-device lsi53c895a " + disks + " -device scsi-hd,drive=e8")


def test_scsi_bus_names_count_id_less_controllers() -> None:
    got = _idstrs(
        "-device lsi53c895a -device virtio-scsi-pci -device scsi-hd,drive=d0,bus=scsi.0 "
        "-device scsi-hd,drive=d1,bus=scsi.1 -device scsi-hd,drive=d2"
    )
    assert got[2:] == [
        "0000:00:01.0/0:0:0/scsi-disk",
        "0000:00:02.0/0:0:0/scsi-disk",
        "0000:00:02.0/0:1:0/scsi-disk",
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ("-device lsi53c895a -device scsi-hd,drive=d0,lun=1", "'bad scsi device lun: 1'"),
        ("-device lsi53c895a -device scsi-hd,drive=d0,scsi-id=8", "'bad scsi device id: 8'"),
        ("-device virtio-scsi-pci -device scsi-hd,drive=d0,scsi-id=256", "'bad scsi device id: 256'"),
        ("-device virtio-scsi-pci -device scsi-hd,drive=d0,lun=16384", "'bad scsi device lun: 16384'"),
        ("-device virtio-scsi-pci -device scsi-hd,drive=d0,channel=1", "'bad scsi channel id: 1'"),
        ("-device lsi53c895a -device scsi-hd,scsi-id=6 -device scsi-hd,scsi-id=6", "'no free lun'"),
        (
            "-device virtio-scsi-pci -device scsi-hd,drive=d0 -device scsi-hd,drive=d1,scsi-id=0,lun=0",
            "lun already used by '(null)'",
        ),
        ("-device scsi-hd,drive=d0", "No 'SCSI' bus found for device 'scsi-hd'"),
    ],
)
def test_scsi_refusals_in_qemus_words(args: str, words: str) -> None:
    assert words in _refused(args)


# -- HDA ----------------------------------------------------------------------------------


def test_hda_codecs_register_bare_and_count_across_the_vm() -> None:
    got = _sections(
        "-audiodev none,id=a0 -device ich9-intel-hda,id=h -device hda-duplex,audiodev=a0 "
        "-device intel-hda,id=h2 -device hda-micro,bus=h2.0,audiodev=a0 "
        "-device hda-output,bus=h.0,audiodev=a0",
        "11.1",
    )
    assert got == [
        ("0000:00:01.0/intel-hda", 0),
        ("hda-audio", 0),
        ("0000:00:02.0/intel-hda", 0),
        ("hda-audio", 1),
        ("hda-audio", 2),
    ]


def test_72_registers_one_default_audio_entry_at_the_first_codec() -> None:
    got = _idstrs("-device ich9-intel-hda -device hda-duplex -device intel-hda -device hda-micro")
    assert got == ["0000:00:01.0/intel-hda", "audio", "hda-audio", "0000:00:02.0/intel-hda", "hda-audio"]
    with_audiodev = _idstrs("-audiodev none,id=a0 -device ich9-intel-hda -device hda-duplex")
    assert "audio" not in with_audiodev


@pytest.mark.parametrize("release", ["10.0", "11.1"])
def test_newer_releases_refuse_a_codec_without_audiodev(release: str) -> None:
    message = _refused("-audiodev none,id=a0 -device ich9-intel-hda -device hda-duplex", release)
    assert "'no default audio driver available'" in message


def test_audiodev_must_name_an_audiodev() -> None:
    message = _refused("-device ich9-intel-hda -device hda-duplex,audiodev=zz", "11.1")
    assert "audiodev 'zz' not found" in message
    assert "No 'HDA' bus found for device 'hda-duplex'" in _refused("-device hda-duplex")
