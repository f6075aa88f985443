"""A sample of command lines in the form libvirt writes them (JSON -device, libvirt's
-machine options, the pcie-root-port layout, UEFI flash, ICH9 USB companions ...), written for
migorder's differential tests. Files a line needs are placeholders: ``{code}`` and ``{vars}``
(flash images), ``{disk}`` (a raw image), ``{dir}`` (a directory).

Each case says which releases refuse it and in what words (QEMU's, as captured), and which
cases cannot run on a build machine (a host device, a TPM emulator) and are judged without a
capture.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


def dev(**props: object) -> str:
    """One ``-device`` in libvirt's JSON form."""
    return json.dumps(props, separators=(",", ":"))


def rp(n: int, addr: str, *, bus: str = "pcie.0", first: bool = False) -> list[str]:
    """libvirt's pcie-root-port ``pci.<n>`` (port 0x8+n, chassis n), multifunction on the first."""
    props: dict[str, object] = {"driver": "pcie-root-port", "port": 7 + n, "chassis": n, "id": f"pci.{n}", "bus": bus}
    if first:
        props["multifunction"] = True
    props["addr"] = addr
    return ["-device", dev(**props)]


X86_COMMON = ["-accel", "tcg", "-cpu", "qemu64", "-m", "size=131072k", "-overcommit", "mem-lock=off",
              "-no-user-config", "-nodefaults", "-rtc", "base=utc", "-no-shutdown", "-boot", "strict=on"]
ARM_COMMON = ["-accel", "tcg", "-m", "size=131072k", "-overcommit", "mem-lock=off", "-no-user-config",
              "-nodefaults", "-rtc", "base=utc", "-no-shutdown", "-boot", "strict=on"]
AUDIO = ["-audiodev", dev(id="audio1", driver="none")]
FLASH_X86 = [
    "-blockdev", dev(driver="file", filename="{code}", **{"node-name": "libvirt-pflash0-storage", "read-only": True}),
    "-blockdev", dev(**{"node-name": "libvirt-pflash0-format", "read-only": True}, driver="raw", file="libvirt-pflash0-storage"),
    "-blockdev", dev(driver="file", filename="{vars}", **{"node-name": "libvirt-pflash1-storage", "read-only": False}),
]
DISK = ["-blockdev", dev(driver="file", filename="{disk}", **{"node-name": "libvirt-1-storage", "read-only": False})]


@dataclass(frozen=True)
class Line:
    """One sample command line."""

    name: str
    arch: str
    args: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    """Release → QEMU's words when that release refuses the line (captured)."""
    runnable: bool = True
    """Whether a build machine can start it (no host device, no TPM emulator, no vhost)."""
    blocked: str = ""
    """QEMU's words when it starts the VM and refuses to migrate it (captured)."""

    @property
    def binary(self) -> str:
        return f"qemu-system-{self.arch}"


def _x86(name: str, machine: str, *args: str | list[str], **kw: object) -> Line:
    flat: list[str] = []
    for a in args:
        flat.extend(a if isinstance(a, list) else [a])
    return Line(name, "x86_64", ("-machine", machine, *X86_COMMON, *flat, *AUDIO), **kw)  # type: ignore[arg-type]


def _arm(name: str, machine: str, *args: str | list[str], **kw: object) -> Line:
    flat: list[str] = []
    for a in args:
        flat.extend(a if isinstance(a, list) else [a])
    return Line(name, "aarch64", ("-machine", machine, *ARM_COMMON, *flat, *AUDIO), **kw)  # type: ignore[arg-type]


LINES: tuple[Line, ...] = (
    _x86("q35-basic", "q35,usb=off,vmport=off,dump-guest-core=off,hpet=off,acpi=on",
         "-smp", "2,sockets=2,cores=1,threads=1", "-global", "ICH9-LPC.disable_s3=1",
         rp(1, "0x2", first=True), rp(2, "0x2.0x1"), rp(3, "0x2.0x2"), rp(4, "0x2.0x3"),
         "-device", dev(driver="qemu-xhci", p2=15, p3=15, id="usb", bus="pci.2", addr="0x0"),
         "-device", dev(driver="virtio-serial-pci", id="virtio-serial0", bus="pci.3", addr="0x0"),
         DISK, "-device", dev(driver="virtio-blk-pci", bus="pci.4", addr="0x0", drive="libvirt-1-storage", id="virtio-disk0", bootindex=1),
         "-netdev", dev(type="user", id="hostnet0"),
         "-device", dev(driver="virtio-net-pci", netdev="hostnet0", id="net0", mac="52:54:00:11:22:33", bus="pci.1", addr="0x0"),
         "-device", dev(driver="usb-tablet", id="input0", bus="usb.0", port="1"),
         "-global", "ICH9-LPC.noreboot=off", "-watchdog-action", "reset"),
    _x86("q35-uefi-split", "q35,usb=off,smm=on,kernel_irqchip=split,dump-guest-core=off,pflash0=libvirt-pflash0-format,pflash1=libvirt-pflash1-storage",
         FLASH_X86, "-global", "driver=cfi.pflash01,property=secure,value=on",
         rp(1, "0x1", first=True), rp(2, "0x1.0x1"),
         "-device", dev(driver="intel-iommu", id="iommu0", intremap="on", **{"caching-mode": True}),
         "-device", dev(driver="virtio-balloon-pci", id="balloon0", bus="pci.2", addr="0x0")),
    _x86("pc-legacy-usb2", "pc,usb=off,dump-guest-core=off,acpi=off",
         "-device", dev(driver="ich9-usb-ehci1", id="usb", bus="pci.0", addr="0x4.0x7"),
         "-device", dev(driver="ich9-usb-uhci1", masterbus="usb.0", firstport=0, bus="pci.0", multifunction=True, addr="0x4"),
         "-device", dev(driver="ich9-usb-uhci2", masterbus="usb.0", firstport=2, bus="pci.0", addr="0x4.0x1"),
         "-device", dev(driver="ich9-usb-uhci3", masterbus="usb.0", firstport=4, bus="pci.0", addr="0x4.0x2"),
         "-chardev", "null,id=charredir0",
         "-device", dev(driver="usb-redir", chardev="charredir0", id="redir0", bus="usb.0", port="1"),
         "-device", dev(driver="usb-ccid", id="smartcard0", bus="usb.0", port="3"),
         "-device", dev(driver="cirrus-vga", id="video0", bus="pci.0", addr="0x2"),
         "-device", dev(driver="virtio-balloon-pci", id="balloon0", bus="pci.0", addr="0x3")),
    _x86("pc-async-teardown", "pc,usb=off,dump-guest-core=off,acpi=off",
         "-device", dev(driver="piix3-usb-uhci", id="usb", bus="pci.0", addr="0x1.0x2"), DISK,
         "-device", dev(driver="ide-hd", bus="ide.0", unit=0, drive="libvirt-1-storage", id="ide0-0-0", bootindex=1),
         "-device", dev(driver="virtio-balloon-pci", id="balloon0", bus="pci.0", addr="0x2"),
         "-run-with", "async-teardown=on",
         refused={"7.2": "-run-with: invalid option"}),
    # from libvirt's boot-order: an isa-fdc bootindex global, IDE disk and CD, virtio-blk, a floppy
    # and virtio-net (null-co nodes stand in for the host's LV, ISO, NBD export and /dev/null)
    _x86("pc-boot-order", "pc,usb=off,dump-guest-core=off,acpi=off",
         "-device", dev(driver="piix3-usb-uhci", id="usb", bus="pci.0", addr="0x1.0x2"),
         "-global", "isa-fdc.bootindexB=4",
         DISK, "-device", dev(driver="ide-hd", bus="ide.0", unit=0, drive="libvirt-1-storage", id="ide0-0-0"),
         "-blockdev", dev(driver="null-co", **{"node-name": "libvirt-3-storage", "read-only": True}),
         "-device", dev(driver="ide-cd", bus="ide.1", unit=0, drive="libvirt-3-storage", id="ide0-1-0", bootindex=1),
         "-blockdev", dev(driver="null-co", **{"node-name": "libvirt-2-storage", "read-only": False}),
         "-device", dev(driver="virtio-blk-pci", bus="pci.0", addr="0x3", drive="libvirt-2-storage", id="virtio-disk0", bootindex=3),
         "-blockdev", dev(driver="null-co", **{"node-name": "libvirt-4-storage", "read-only": False}),
         "-device", dev(driver="floppy", unit=1, drive="libvirt-4-storage", id="fdc0-0-1"),
         "-netdev", dev(type="user", id="hostnet0"),
         "-device", dev(driver="virtio-net-pci", netdev="hostnet0", id="net0", mac="00:11:22:33:44:55", bootindex=2, bus="pci.0", addr="0x2"),
         "-device", dev(driver="virtio-balloon-pci", id="balloon0", bus="pci.0", addr="0x4")),
    # from libvirt's channel-virtio-auto: three virtio-serial buses, ports spread over them
    # (null chardevs stand in for libvirt's ptys)
    _x86("pc-virtio-serial-auto", "pc,usb=off,dump-guest-core=off,acpi=off",
         "-device", dev(driver="piix3-usb-uhci", id="usb", bus="pci.0", addr="0x1.0x2"),
         "-device", dev(driver="virtio-serial-pci", id="virtio-serial0", max_ports=16, vectors=4, bus="pci.0", addr="0x2"),
         "-device", dev(driver="virtio-serial-pci", id="virtio-serial1", bus="pci.0", addr="0xa"),
         "-device", dev(driver="virtio-serial-pci", id="virtio-serial2", bus="pci.0", addr="0x3"),
         *[["-chardev", f"null,id=charchannel{c}",
            "-device", dev(driver="virtserialport", bus=f"virtio-serial{b}.0", nr=nr, chardev=f"charchannel{c}", id=f"channel{c}", name=f"org.linux-kvm.port.{n}")]
           for c, b, nr, n in [(0, 0, 1, "0"), (1, 1, 1, "foo"), (2, 1, 3, "bar"), (3, 0, 2, "wizz"), (4, 1, 2, "ooh"), (5, 2, 1, "lla")]],
         "-device", dev(driver="virtio-balloon-pci", id="balloon0", bus="pci.0", addr="0x4")),
    # from libvirt's audio-many-backends, with the none backend for all (a build machine has no sound)
    _x86("pc-many-sound", "pc,usb=off,dump-guest-core=off,acpi=off",
         "-device", dev(driver="piix3-usb-uhci", id="usb", bus="pci.0", addr="0x1.0x2"),
         "-audiodev", dev(id="audio2", driver="none"),
         "-device", dev(driver="cirrus-vga", id="video0", bus="pci.0", addr="0x2"),
         "-device", dev(driver="AC97", id="sound0", audiodev="audio1", bus="pci.0", addr="0x3"),
         "-device", dev(driver="intel-hda", id="sound1", bus="pci.0", addr="0x4"),
         "-device", dev(driver="hda-duplex", id="sound1-codec0", bus="sound1.0", cad=0, audiodev="audio2"),
         "-device", dev(driver="ES1370", id="sound2", audiodev="audio1", bus="pci.0", addr="0x5")),
    _x86("pc-sound", "pc,usb=off,dump-guest-core=off,pcspk-audiodev=audio1,acpi=off",
         "-device", dev(driver="piix3-usb-uhci", id="usb", bus="pci.0", addr="0x1.0x2"),
         "-device", dev(driver="ES1370", id="sound1", audiodev="audio1", bus="pci.0", addr="0x2"),
         "-device", dev(driver="sb16", id="sound2", audiodev="audio1"),
         "-device", dev(driver="ich9-intel-hda", id="sound3", bus="pci.0", addr="0x3"),
         "-device", dev(driver="hda-duplex", id="sound3-codec0", bus="sound3.0", cad=0, audiodev="audio1")),
    _x86("pc-usb-audio", "pc,usb=off,dump-guest-core=off,acpi=off",
         "-device", dev(driver="piix3-usb-uhci", id="usb", bus="pci.0", addr="0x1.0x2"),
         "-device", dev(driver="usb-audio", id="sound0", audiodev="audio1", bus="usb.0", port="1"),
         blocked="State blocked by non-migratable device '0000:00:01.2/1/usb-audio'"),
    _x86("q35-pxb-pcie", "q35,usb=off,dump-guest-core=off,acpi=off",
         "-smp", "2,sockets=2,cores=1,threads=1",
         "-object", dev(**{"qom-type": "memory-backend-ram"}, id="ram-node0", size=134217728),
         "-numa", "node,nodeid=0,cpus=0-1,memdev=ram-node0",
         "-device", dev(driver="pxb-pcie", bus_nr=254, id="pci.1", numa_node=0, bus="pcie.0", addr="0x4"),
         rp(2, "0x0", bus="pci.1"),
         "-device", dev(driver="x3130-upstream", id="pci.3", bus="pci.2", addr="0x0"),
         "-device", dev(driver="xio3130-downstream", port=0, chassis=4, id="pci.4", bus="pci.3", addr="0x0"),
         "-device", dev(driver="e1000", id="net0", bus="pci.4", addr="0x0")),
    _x86("pc-pxb", "pc,usb=off,dump-guest-core=off,acpi=off",
         "-object", dev(**{"qom-type": "memory-backend-ram"}, id="ram-node0", size=134217728),
         "-numa", "node,nodeid=0,cpus=0,memdev=ram-node0",
         "-device", dev(driver="pxb", bus_nr=100, id="pci.1", numa_node=0, bus="pci.0", addr="0x3"),
         "-device", dev(driver="rtl8139", id="net0", bus="pci.1", addr="0x1")),
    _x86("pc-memory-floppy", "pc,usb=off,dump-guest-core=off,nvdimm=on,acpi=on", "-m", "size=131072k,slots=4,maxmem=1048576k",
         "-object", dev(**{"qom-type": "memory-backend-ram"}, id="memdimm0", size=134217728),
         "-device", dev(driver="pc-dimm", memdev="memdimm0", id="dimm0", slot=0),
         "-object", dev(**{"qom-type": "memory-backend-file"}, id="memnvdimm0", **{"mem-path": "{disk}"}, size=67108864),
         "-device", dev(driver="nvdimm", memdev="memnvdimm0", id="nvdimm0", slot=1),
         "-blockdev", dev(driver="file", filename="{disk}", **{"node-name": "libvirt-2-storage", "read-only": True}),
         "-device", dev(driver="floppy", unit=0, drive="libvirt-2-storage", id="fdc0-0-0")),
    _x86("q35-9p-vmcoreinfo", "q35,usb=off,dump-guest-core=off,acpi=on",
         rp(1, "0x1", first=True),
         "-fsdev", "local,security_model=mapped,id=fsdev-fs0,path={dir}",
         "-device", dev(driver="virtio-9p-pci", id="fs0", fsdev="fsdev-fs0", mount_tag="mnt", bus="pci.1", addr="0x0"),
         "-device", dev(driver="vmcoreinfo"),
         "-device", dev(driver="isa-fdc", bootindexA=1),
         "-device", dev(driver="virtio-iommu", id="iommu0", bus="pcie.0", addr="0x3")),
    _x86("q35-amd-iommu", "q35,usb=off,kernel_irqchip=split,dump-guest-core=off,acpi=on",
         "-device", dev(driver="AMDVI-PCI", id="iommu0", bus="pcie.0", addr="0x1"),
         "-device", dev(driver="amd-iommu", **{"pci-id": "iommu0"}, intremap="on", **{"device-iotlb": True}),
         refused={"7.2": "Property 'amd-iommu.pci-id' not found", "10.0": "Property 'amd-iommu.pci-id' not found"}),
    _x86("q35-5.0-old", "pc-q35-5.0,usb=off,dump-guest-core=off",
         rp(1, "0x1", first=True), "-device", dev(driver="e1000e", id="net0", bus="pci.1", addr="0x0"),
         refused={"11.1": 'unsupported machine type: "pc-q35-5.0"'}),
    _x86("q35-vsock-tpm", "q35,usb=off,dump-guest-core=off",
         "-chardev", "socket,id=chrtpm,path={dir}/swtpm.sock", "-tpmdev", "emulator,id=tpm-tpm0,chardev=chrtpm",
         "-device", dev(driver="tpm-crb", tpmdev="tpm-tpm0", id="tpm0"),
         "-device", dev(driver="vhost-vsock-pci", id="vsock0", **{"guest-cid": 4}, bus="pcie.0", addr="0x7"),
         runnable=False),
    _arm("virt-minimal-gic2", "virt,usb=off,gic-version=2,dump-guest-core=off,acpi=off",
         "-cpu", "cortex-a53", "-smp", "4,sockets=4,cores=1,threads=1"),
    _arm("virt-uefi-gic3", "virt,usb=off,gic-version=3,dump-guest-core=off,pflash0=libvirt-pflash0-format,pflash1=libvirt-pflash1-storage,acpi=on",
         FLASH_X86, "-cpu", "max,sve=off", "-smp", "2,sockets=1,cores=2,threads=1",
         rp(1, "0x1", first=True), rp(2, "0x1.0x1"), rp(3, "0x1.0x2"), rp(4, "0x1.0x3"), rp(5, "0x1.0x4"),
         "-device", dev(driver="qemu-xhci", p2=15, p3=15, id="usb", bus="pci.2", addr="0x0"),
         "-device", dev(driver="virtio-serial-pci", id="virtio-serial0", bus="pci.3", addr="0x0"),
         DISK, "-device", dev(driver="virtio-blk-pci", bus="pci.4", addr="0x0", drive="libvirt-1-storage", id="virtio-disk0", bootindex=1),
         "-netdev", dev(type="user", id="hostnet0"),
         "-device", dev(driver="virtio-net-pci", netdev="hostnet0", id="net0", mac="52:54:00:aa:bb:cc", bus="pci.1", addr="0x0"),
         "-device", dev(driver="usb-tablet", id="input0", bus="usb.0", port="1"),
         "-device", dev(driver="usb-kbd", id="input1", bus="usb.0", port="2"),
         "-device", dev(driver="virtio-gpu-pci", id="video0", max_outputs=1, bus="pci.5", addr="0x0")),
    _arm("virt-smmu-ras", "virt,usb=off,gic-version=3,iommu=smmuv3,ras=on,dump-guest-core=off,pflash0=libvirt-pflash0-format,pflash1=libvirt-pflash1-storage,acpi=on",
         FLASH_X86, "-cpu", "max", rp(1, "0x1", first=True), rp(2, "0x1.0x1"),
         "-device", dev(driver="pcie-pci-bridge", id="pci.3", bus="pci.1", addr="0x0"),
         "-device", dev(driver="pci-serial", id="serial0", bus="pci.3", addr="0x1", chardev="chr0"),
         "-chardev", "null,id=chr0"),
    _arm("virt-mmio", "virt,usb=off,gic-version=2,dump-guest-core=off,acpi=off", "-cpu", "cortex-a53",
         DISK, "-device", dev(driver="virtio-blk-device", drive="libvirt-1-storage", id="virtio-disk0"),
         "-device", dev(driver="virtio-balloon-device", id="balloon0", **{"deflate-on-oom": True})),
    _arm("virt-9cpus", "virt,usb=off,dump-guest-core=off,acpi=off", "-cpu", "max",
         "-smp", "9,sockets=9,cores=1,threads=1",
         refused={"7.2": "exceeds max CPUs supported by machine 'mach-virt' (8)"}),
    _arm("virt-4.2-old", "virt-4.2,usb=off,gic-version=2,dump-guest-core=off,acpi=off", "-cpu", "cortex-a57",
         rp(1, "0x1", first=True), "-device", dev(driver="virtio-rng-pci", id="rng0", bus="pci.1", addr="0x0"),
         refused={"11.1": 'unsupported machine type: "virt-4.2"'}),
)
