"""Fidelity: ``derive`` predicts what Debian's real QEMU 7.2 sends, section for section.

Each configuration is started on the real binary, captured with ``capture_stream``, read back
with ``read_stream``, and compared with ``derive(7.2, parse_command_line(same args))``: every
section (START/PART/END/FULL) in stream order with its section_id, idstr and instance_id.
Where QEMU refuses to migrate, the tool must report QEMU's reason and ``check_order``'s
blockers must name the same device. Each capture takes well under a second (-m 64, TCG).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import qemu_binary
from real_orders import collapse_parts, vm_of

from ordering.check import check_order
from ordering.errors import QemuRefused
from ordering.model.knowledge import Knowledge
from ordering.order import LoadOrder, derive
from ordering.sources.capture import capture_stream
from ordering.sources.models import load_knowledge
from ordering.sources.observed import disagreements, observed_order
from ordering.sources.stream import read_stream

pytestmark = pytest.mark.qemu

BASE = ["-nodefaults", "-display", "none", "-accel", "tcg", "-monitor", "none", "-serial", "none",
        "-m", "64"]
X86 = "qemu-system-x86_64"
ARM = "qemu-system-aarch64"
RP1 = "-device pcie-root-port,id=rp1,chassis=1"
RP2 = "-device pcie-root-port,id=rp2,chassis=2"
BLK = "-blockdev driver=null-co,node-name=null0,size=1048576 -device virtio-blk-pci,drive=null0"
VMEM = ("-m 64,maxmem=256M -object memory-backend-ram,id=mem0,size=64M "
        "-device virtio-mem-pci,id=vm0,memdev=mem0")


@dataclass(frozen=True)
class Config:
    name: str
    binary: str
    args: str
    hotplug: tuple[dict[str, Any], ...] = field(default=())


CONFIGS = [
    Config("q35-bridges", X86, f"-machine q35 {RP1} -device pcie-pci-bridge,id=pb1,bus=rp1 "
           "-device pci-bridge,id=br1,bus=pb1,chassis_nr=2,addr=1 -device e1000,bus=br1,addr=1 "
           "-device e1000,bus=pb1,addr=2"),
    Config("q35-dmi-bridge", X86, "-machine q35 -device i82801b11-bridge,id=dmi "
           "-device pci-bridge,id=br,bus=dmi,chassis_nr=1 -device e1000,bus=br "
           "-device virtio-rng-pci,bus=dmi"),
    Config("q35-pcie-switch", X86, f"-machine q35 {RP1} -device x3130-upstream,id=up,bus=rp1 "
           "-device xio3130-downstream,id=dn1,bus=up,chassis=2 "
           "-device xio3130-downstream,id=dn2,bus=up,chassis=3 "
           "-device virtio-net-pci,bus=dn1 -device e1000e,bus=dn2"),
    Config("q35-intel-iommu-smp3", X86, f"-machine q35 -smp 3 -device intel-iommu,intremap=on "
           f"-device e1000e {RP1} -device virtio-net-pci,bus=rp1 {RP2} "
           "-device pcie-pci-bridge,id=pb1,bus=rp2 -device e1000,bus=pb1,addr=1"),
    Config("q35-virtio-iommu", X86, f"-machine q35 -device virtio-iommu-pci {RP1} "
           f"-device virtio-net-pci,bus=rp1 {BLK}"),
    Config("q35-virtio-mem-iommu", X86, f"-machine q35 {VMEM} -device intel-iommu "
           f"{RP1} -device virtio-net-pci,bus=rp1"),
    Config("q35-smp6-2s3c", X86, "-machine q35 -smp 6,sockets=2,cores=3 -device e1000e"),
    Config("q35-smp4-threads", X86, "-machine q35 -smp 4,maxcpus=8,sockets=2,cores=2,threads=2"),
    Config("q35-hotplug-cpu-dev", X86, f"-machine q35 -smp 2,maxcpus=4 -device intel-iommu "
           f"{RP1} {RP2} -device virtio-net-pci,bus=rp1",
           ({"driver": "qemu64-x86_64-cpu", "id": "cpu3", "socket-id": 0, "core-id": 3,
             "thread-id": 0},
            {"driver": "e1000e", "id": "nic9", "bus": "rp2"})),
    Config("q35-order-A", X86, f"-machine q35 -device intel-iommu {RP1} {RP2} "
           f"-device e1000e,addr=3 -device virtio-net-pci,addr=4 {BLK},addr=5 "
           "-device virtio-net-pci,bus=rp1 -device e1000e,bus=rp2"),
    Config("q35-order-B", X86, f"-machine q35 {BLK},addr=5 -device virtio-net-pci,addr=4 "
           f"-device e1000e,addr=3 {RP2} -device e1000e,bus=rp2 {RP1} "
           "-device virtio-net-pci,bus=rp1 -device intel-iommu"),
    Config("pc-pci-bridge-smp2", X86, f"-machine pc -smp 2 {BLK} -device pci-bridge,id=br1,"
           "chassis_nr=1 -device virtio-net-pci,bus=br1,addr=1 -device e1000,bus=br1,addr=2"),
    Config("pc-order-swapped", X86, "-machine pc -device e1000,addr=5 -device pci-bridge,id=br1,"
           "chassis_nr=1,addr=3 -device virtio-rng-pci,bus=br1,addr=1 -device qemu-xhci"),
    # BASE's -serial none keeps index 0 empty: the two backends are ports 1 and 2.
    Config("pc-serial-parallel", X86, "-machine pc -serial null -serial null -parallel null "
           "-device e1000"),
    Config("q35-netdev-user", X86, "-machine q35 -netdev user,id=n0 -device e1000,netdev=n0 "
           "-netdev user,id=n1 -device virtio-net-pci,netdev=n1"),
    Config("virt-two-uarts", ARM, "-machine virt -cpu max -serial null -device e1000e"),
    Config("virt-gicv3-its-smp3", ARM, f"-machine virt,gic-version=3,its=on -cpu max -smp 3 "
           f"{RP1} -device virtio-net-pci,bus=rp1 -device virtio-rng-pci"),
    Config("virt-gicv3-noits", ARM, "-machine virt,gic-version=3,its=off -cpu max -smp 2 "
           "-device e1000e"),
    Config("virt-smmuv3", ARM, f"-machine virt,gic-version=3,iommu=smmuv3 -cpu max {RP1} "
           "-device virtio-net-pci,bus=rp1"),
    Config("virt-virtio-iommu-bridges", ARM, f"-machine virt -cpu max -device virtio-iommu-pci "
           f"{RP1} -device e1000e,bus=rp1 -device pci-bridge,id=pb,chassis_nr=2 "
           "-device virtio-rng-pci,bus=pb,addr=1"),
    Config("virt-virtio-mem", ARM, f"-machine virt,gic-version=3 -cpu max {VMEM}"),
]

REFUSED = [
    Config("q35-nvme", X86, f"-machine q35 {RP1} -device nvme,serial=n1,bus=rp1"),
    Config("q35-amd-iommu", X86, "-machine q35 -device amd-iommu -device e1000e"),
]


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_knowledge()


def _argv(c: Config) -> list[str]:
    return [qemu_binary(c.binary), *BASE, *c.args.split()]


def _data(c: Config, argv: list[str]) -> dict[str, Any]:
    return {"command": argv, "hotplug": [{"arguments": dict(h)} for h in c.hotplug]}


@pytest.mark.parametrize("c", CONFIGS, ids=[c.name for c in CONFIGS])
def test_derive_matches_real_qemu(k: Knowledge, c: Config, tmp_path: Path) -> None:
    argv = _argv(c)
    out = tmp_path / f"{c.name}.mig"
    result = capture_stream(argv, out, timeout=30, hotplug=c.hotplug)
    assert result.release == "7.2"
    stream = read_stream(out)
    real = [(s.type.value, s.section_id, s.idstr, s.instance_id) for s in stream.sections]
    order = derive(k.release("7.2"), vm_of(_data(c, argv)))
    predicted = [(s.type.value, s.section.section_id, s.section.idstr, s.section.instance_id)
                 for s in order.steps]
    assert collapse_parts(predicted) == collapse_parts(real)
    assert stream.machine_type == order.machine_type
    observed = observed_order(k, stream)
    assert disagreements(observed) == []
    # The rules judged on what QEMU really sent agree with the rules judged on the prediction.
    assert _verdicts(k, observed) == _verdicts(k, order)


def _verdicts(k: Knowledge, order: LoadOrder) -> list[tuple[str, ...]]:
    return sorted(
        (v.rule.id, v.verdict.value, v.by, v.instance.then.idstr if v.instance else "",
         v.first_label)
        for v in check_order(k, order).verdicts
    )


@pytest.mark.parametrize("c", REFUSED, ids=[c.name for c in REFUSED])
def test_refusal_is_qemus_and_matches_blockers(k: Knowledge, c: Config, tmp_path: Path) -> None:
    argv = _argv(c)
    with pytest.raises(QemuRefused) as info:
        capture_stream(argv, tmp_path / "x.mig", timeout=30)
    reason = str(info.value)
    assert reason.startswith("State blocked by non-migratable device '")
    result = check_order(k, derive(k.release("7.2"), vm_of(_data(c, argv))))
    assert [b.message for b in result.blockers] == [reason]
    assert result.exit_code == 1


def test_bad_device_reason_is_qemus(tmp_path: Path) -> None:
    argv = [qemu_binary(X86), *BASE, "-machine", "q35", "-device", "e1000e,bus=nosuch"]
    with pytest.raises(QemuRefused, match="Bus 'nosuch' not found"):
        capture_stream(argv, tmp_path / "x.mig", timeout=30)


def test_bad_hotplug_reason_is_qemus(tmp_path: Path) -> None:
    argv = [qemu_binary(X86), *BASE, "-machine", "q35"]
    with pytest.raises(QemuRefused, match="does not support hotplugging"):
        capture_stream(argv, tmp_path / "x.mig", timeout=30, hotplug=[{"driver": "e1000e"}])
