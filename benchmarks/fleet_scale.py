"""How `migorder fleet` scales: 100,000 VMs in libvirt's form, built from 1,000 shapes.

Each VM is one line of a command-line file as libvirt writes its command lines (``-name
guest=...``, ``-uuid``, ``-blockdev`` with the disk's path, JSON ``-device`` with MACs and
host addresses, ``-netdev`` with fds): what differs between VMs of a shape is exactly what
libvirt makes unique per domain. The shapes vary vCPUs, NICs, disks, a VFIO device and memory.

``migorder fleet FILE --from 10.0 --to 11.1 --summary-only`` runs in a fresh process for
``--jobs 1`` and ``--jobs 2``: wall time, CPU time (the process and its workers), the peak RSS
of the largest process and of the whole process tree (sampled every 50 ms).

Prints a table and writes fleet_scale.json (benchmarks/_results.py says where). Never asserts a time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import machine, results_path, write_results

RESULTS = results_path("fleet_scale")
VMS = int(os.environ.get("FLEET_VMS", "100000"))
SHAPES = 1000
JOBS = (1, 2)


def shape_args(i: int) -> dict[str, int]:
    """Shape ``i`` of 1,000: 5 vCPU counts × 4 NIC counts × 5 disk counts × VFIO or not × 5 memory sizes."""
    return {
        "cpus": 1 + i % 5,
        "nics": 1 + (i // 5) % 4,
        "disks": 1 + (i // 20) % 5,
        "vfio": (i // 100) % 2,
        "mem": 1024 * (1 + (i // 200) % 5),
    }


def command_line(vm: int, shape: int) -> str:
    """VM number ``vm`` of shape ``shape``, as one shell-quoted line in libvirt's form."""
    s = shape_args(shape)
    name = f"vm-{vm:06d}"
    uuid = f"{vm:08x}-5a1e-4c3b-9d2f-{shape:012x}"
    ports = s["nics"] + s["disks"]
    a = [
        "/usr/bin/qemu-system-x86_64", "-name", f"guest={name},debug-threads=on", "-S",
        "-object", f"'{{\"qom-type\":\"secret\",\"id\":\"masterKey0\",\"format\":\"raw\",\"file\":\"/var/lib/libvirt/qemu/domain-{vm}-{name}/master-key.aes\"}}'",
        "-machine", "pc-q35-10.0,usb=off,vmport=off,dump-guest-core=off", "-accel", "kvm",
        "-cpu", "host,migratable=on", "-m", str(s["mem"]),
        "-smp", f"{s['cpus']},maxcpus=8,sockets=8,cores=1,threads=1",
        "-uuid", uuid, "-no-user-config", "-nodefaults",
        "-chardev", f"socket,id=charmonitor,fd={30 + vm % 7},server=on,wait=off",
        "-mon", "chardev=charmonitor,id=monitor,mode=control",
        "-rtc", "base=utc,driftfix=slew", "-global", "kvm-pit.lost_tick_policy=delay",
        "-no-shutdown", "-boot", "strict=on",
    ]
    for p in range(ports):  # eight functions to a slot, as libvirt places root ports
        multi = ',"multifunction":true' if p % 8 == 0 else ""
        addr = f"0x{2 + p // 8:x}.0x{p % 8:x}"
        a += ["-device", f"'{{\"driver\":\"pcie-root-port\",\"port\":{16 + p},\"chassis\":{p + 1},\"id\":\"pci.{p + 1}\",\"bus\":\"pcie.0\"{multi},\"addr\":\"{addr}\"}}'"]
    for d in range(s["disks"]):
        node = f"libvirt-{d + 1}"
        a += ["-blockdev", f"'{{\"driver\":\"file\",\"filename\":\"/var/lib/libvirt/images/{name}-{d}.qcow2\",\"node-name\":\"{node}-storage\",\"auto-read-only\":true,\"discard\":\"unmap\"}}'",
              "-blockdev", f"'{{\"node-name\":\"{node}-format\",\"read-only\":false,\"driver\":\"qcow2\",\"file\":\"{node}-storage\"}}'",
              "-device", f"'{{\"driver\":\"virtio-blk-pci\",\"bus\":\"pci.{s['nics'] + d + 1}\",\"addr\":\"0x0\",\"drive\":\"{node}-format\",\"id\":\"virtio-disk{d}\",\"bootindex\":{d + 1}}}'"]
    for n in range(s["nics"]):
        mac = f"52:54:00:{vm >> 16 & 255:02x}:{vm >> 8 & 255:02x}:{(vm + n) & 255:02x}"
        a += ["-netdev", f"'{{\"type\":\"tap\",\"fd\":\"{40 + n}\",\"vhost\":true,\"vhostfd\":\"{50 + n}\",\"id\":\"hostnet{n}\"}}'",
              "-device", f"'{{\"driver\":\"virtio-net-pci\",\"netdev\":\"hostnet{n}\",\"id\":\"net{n}\",\"mac\":\"{mac}\",\"bus\":\"pci.{n + 1}\",\"addr\":\"0x0\"}}'"]
    a += ["-chardev", "pty,id=charserial0",
          "-device", "'{\"driver\":\"isa-serial\",\"chardev\":\"charserial0\",\"id\":\"serial0\",\"index\":0}'"]
    if s["vfio"]:
        a += ["-device", f"'{{\"driver\":\"vfio-pci\",\"host\":\"0000:{0x3b + vm % 64:02x}:00.{vm % 8}\",\"id\":\"hostdev0\",\"bus\":\"pcie.0\",\"addr\":\"0x6\"}}'"]
    a += ["-audiodev", "'{\"id\":\"audio1\",\"driver\":\"none\"}'",
          "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
          "-msg", "timestamp=on"]
    return " ".join(a)


def write_fleet(path: Path) -> int:
    """Write ``VMS`` lines (shape ``vm % SHAPES``); return the bytes written."""
    with path.open("w") as f:
        for vm in range(VMS):
            f.write(command_line(vm, vm % SHAPES) + "\n")
    return path.stat().st_size


def _tree_rss_kb(pid: int) -> int:
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def measure(path: Path, jobs: int) -> dict[str, Any]:
    """One run in a fresh process tree."""
    cmd = [sys.executable, "-m", "ordering.cli", "fleet", str(path), "--from", "10.0", "--to", "11.1",
           "--jobs", str(jobs), "--summary-only", "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        peak_tree = 0
        while proc.poll() is None:
            peak_tree = max(peak_tree, _tree_rss_kb(proc.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"fleet exited {proc.returncode}:\n{text}")
    if "NOT UNDERSTOOD" in text:
        raise SystemExit(f"the generated fleet is not all understood, so its timing would mean little:\n{text}")
    head = text.splitlines()[0]
    groups = [line for line in text.splitlines() if line[:1].isupper() and "[" in line]
    shapes = int(head.split(" distinct shape")[0].rsplit(" ", 1)[1])
    return {
        "vms": VMS,
        "shapes": shapes,
        "jobs": jobs,
        "seconds": round(seconds, 2),
        "cpu_seconds": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "peak_rss_tree_mb": round(peak_tree / 1024, 1),
        "summary": head,
        "groups": groups,
    }


def main() -> None:
    """Generate the fleet, run each --jobs, print the table, write the JSON."""
    with tempfile.TemporaryDirectory(prefix="migorder-fleet-") as tmp:
        path = Path(tmp) / "fleet.txt"
        t = time.perf_counter()
        size = write_fleet(path)
        print(f"{VMS} command lines, {SHAPES} shapes, {size / 1e6:.0f} MB, written in {time.perf_counter() - t:.1f} s")
        rows = [measure(path, jobs) for jobs in JOBS]
    print(f"{'vms':>8} {'shapes':>6} {'jobs':>4} {'wall s':>7} {'cpu s':>7} {'rss MB':>7} {'tree MB':>8}")
    for r in rows:
        print(f"{r['vms']:>8} {r['shapes']:>6} {r['jobs']:>4} {r['seconds']:>7} {r['cpu_seconds']:>7} "
              f"{r['peak_rss_mb']:>7} {r['peak_rss_tree_mb']:>8}")
    write_results(RESULTS, {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
