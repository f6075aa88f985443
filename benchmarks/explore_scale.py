"""How the explicit engine scales on a realistic VM: bounds 1 to 4.

The VM is the issue's realistic one: q35 with 4096 hot-pluggable vCPUs (one present), 64 VFIO
devices behind root ports, an intel-iommu and a virtio-mem device, from a QEMU 10.1 source
(apic-before-vfio breaks there) and a 10.2 one (it is proved there). Each run is in a fresh
subprocess (peak RSS is its own). Records orders explored, move sequences QEMU refused, time,
peak memory and the outcomes.

Prints a table and writes benchmarks/results/explore_scale.json. Never asserts a time.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Any

from _results import machine, results_path, write_results

RESULTS = results_path("explore_scale")
RUNS = [(release, bound) for release in ("10.1", "10.2") for bound in (1, 2, 3, 4)]


def command_line() -> list[str]:
    """q35, 4096 possible vCPUs (1 present), 64 VFIO devices on root ports, vIOMMU, virtio-mem."""
    args = ["-nodefaults", "-machine", "q35", "-smp", "1,maxcpus=4096", "-cpu", "max", "-m", "4G,maxmem=20G,slots=2",
            "-object", "memory-backend-ram,id=mem0,size=16G",
            "-device", "intel-iommu,intremap=on,caching-mode=on"]
    for i in range(65):
        slot, fn = 1 + i // 8, i % 8
        multi = ",multifunction=on" if fn == 0 else ""
        args += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1},addr={slot:#x}.{fn}{multi}"]
    for i in range(64):
        args += ["-device", f"vfio-pci,host=0000:{0x40 + i // 8:02x}:00.{i % 8},id=vf{i},bus=rp{i}"]
    args += ["-device", "virtio-mem-pci,memdev=mem0,id=vmem0,requested-size=4G,bus=rp64"]
    return args


def _child(release: str, bound: int) -> dict[str, Any]:
    from ordering.explore import explore
    from ordering.order_space import order_space
    from ordering.sources.cmdline import parse_command_line
    from ordering.sources.models import load_knowledge

    k = load_knowledge()
    vm = parse_command_line(command_line(), name="realistic")
    rel = k.release(release)
    space = order_space(rel, rel, vm, releases=list(k.releases.values()), hotplug_bound=bound)
    t0 = time.perf_counter()
    r = explore(space, k.rules, max_states=100_000, timeout=600)
    seconds = time.perf_counter() - t0
    return {
        "release": release,
        "bound": bound,
        "devices": len(vm.devices),
        "orders": r.states,
        "refused": r.refused,
        "stopped": r.stopped or None,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "outcomes": {v.subject: v.outcome.value for v in r.verdicts},
    }


def main() -> None:
    """Run every (release, bound) in a subprocess, print the table, write the JSON."""
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], int(sys.argv[3]))))
        return
    rows = []
    for release, bound in RUNS:
        out = subprocess.run([sys.executable, __file__, "--child", release, str(bound)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout))
    print(f"{'release':>7} {'bound':>5} {'orders':>7} {'refused':>7} {'seconds':>8} {'RSS MB':>7}  apic-before-vfio")
    for r in rows:
        print(f"{r['release']:>7} {r['bound']:>5} {r['orders']:>7} {r['refused']:>7} {r['seconds']:>8.2f} "
              f"{r['peak_rss_mb']:>7.0f}  {r['outcomes'].get('apic-before-vfio')}")
    write_results(RESULTS, {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
