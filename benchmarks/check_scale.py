"""How `migorder check` scales: synthetic VMs of 100 to 100k sections, full rule base.

Each tier is a QEMU command line (q35, newest bundled release) built to reach a section count:
vCPUs bring cpu_common, cpu and apic sections; root ports a bridge and a PCIBUS section;
devices behind pci-bridges one section each; VFIO devices an iterable handler. Every tier is
checked in a fresh subprocess (so peak RSS is the tier's own), three times, best time kept
(every run is in the JSON; so is the best CPU time, which a busy virtual machine's stolen
time does not inflate).

The reference is one networkx topological sort of the same constraint graph: every
must-load-before pair of every live rule instance, expanded (4096 APICs × 64 VFIO devices
are 262144 edges), plus the hub-compressed graph migorder itself builds for cycles.

The floor column is the time to build as many named tuples as the result holds (one per
placed device, section, load step, placement, rule instance and verdict: 737k at 100k), with
their real classes and nothing else: no derive-and-judge that returns those objects can be
faster, so it says how much of ``check``'s time is logic.

Prints a table and writes check_scale.json (benchmarks/_results.py says where). Never asserts a time.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
from typing import Any

from _results import machine, results_path, write_results

RESULTS = results_path("check_scale")


def command_line(cpus: int, ports: int, vfio: int, bridged: int) -> list[str]:
    """A q35 command line with that many vCPUs, PCIe ports, VFIO devices and bridged NICs.

    Root ports sit eight to a slot (multifunction), as large q35 configurations do; ports
    beyond the root bus's 30 free slots hang off a PCIe switch. Bridged NICs fill trees of
    pcie-pci-bridge → pci-bridge → 31 devices on the ports the VFIO devices leave free
    (synthetic beyond QEMU's 256 buses, to reach 40k and 100k sections).
    """
    args = ["-machine", "q35", "-smp", f"{cpus},maxcpus={cpus}", "-cpu", "max", "-m", "4G",
            "-device", "intel-iommu,intremap=on,caching-mode=on"]
    names: list[str] = []
    on_root = min(ports, 30 * 8 - 1)
    for i in range(on_root):
        slot, fn = 1 + i // 8, i % 8
        multi = ",multifunction=on" if fn == 0 else ""
        args += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1},addr={slot:#x}.{fn}{multi}"]
        names.append(f"rp{i}")
    if ports > on_root:
        args += ["-device", f"pcie-root-port,id=rpsw,chassis={on_root + 1},addr=0x1e.7",
                 "-device", "x3130-upstream,id=up0,bus=rpsw"]
        for i in range(ports - on_root):
            args += ["-device", f"xio3130-downstream,id=dp{i},bus=up0,chassis={on_root + 2 + i},slot={i}"]
            names.append(f"dp{i}")
    for i in range(vfio):
        args += ["-device", f"vfio-pci,host=0000:{0x40 + i // 8:02x}:00.{i % 8},id=vf{i},bus={names[i]}"]
    free = iter(names[vfio:])
    placed = 0
    tree = 0
    while placed < bridged:
        port = next(free)
        args += ["-device", f"pcie-pci-bridge,id=pb{tree},bus={port}"]
        for b in range(31):
            if placed >= bridged:
                break
            args += ["-device", f"pci-bridge,id=br{tree}x{b},bus=pb{tree},addr={b + 1:#x},chassis_nr={tree * 32 + b + 1}"]
            for slot in range(min(31, bridged - placed)):
                args += ["-device", f"virtio-net-pci,bus=br{tree}x{b},addr={slot + 1:#x},disable-legacy=on,iommu_platform=on"]
                placed += 1
        tree += 1
    return args


TIERS: dict[str, tuple[int, int, int, int]] = {
    # name: (vCPUs, PCIe ports, VFIO devices, bridged virtio-net devices)
    "100": (8, 8, 4, 20),
    "1k": (200, 32, 16, 300),
    "13k": (4096, 255, 64, 0),
    "40k": (4096, 255, 64, 26300),
    "100k": (4096, 255, 64, 84700),
}


def _child(tier: str) -> dict[str, Any]:
    import networkx as nx

    from ordering.check import check
    from ordering.conditions import rule_instances
    from ordering.graph import section_graph
    from ordering.order import derive
    from ordering.sources.cmdline import parse_command_line
    from ordering.sources.models import load_knowledge

    k = load_knowledge()
    release = k.newest
    vm = parse_command_line(command_line(*TIERS[tier]), name=f"tier-{tier}")
    times: list[float] = []
    cpu_times: list[float] = []
    result = None
    for _ in range(3):
        # Each run alone, as one `migorder check` is: the previous result freed first.
        result = None
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        result = check(k, release, vm)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    assert result is not None
    # Peak RSS of parsing, deriving and checking, before the reference graphs are built.
    peak_check_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    order = derive(release, vm)
    instances = [i for v in rule_instances(k.rules, order.registered).values() for i in v]
    full = nx.DiGraph()
    full.add_nodes_from(s.section_id for s in order.registered.sections)
    for inst in instances:
        for f in inst.firsts:
            full.add_edge(f.section_id, inst.then.section_id)
    t0 = time.perf_counter()
    list(nx.topological_sort(full))
    topo_full = time.perf_counter() - t0
    hub = section_graph(instances)
    hub.add_nodes_from(s.label for s in order.registered.sections)
    t0 = time.perf_counter()
    list(nx.topological_sort(hub))
    topo_hub = time.perf_counter() - t0
    t0 = time.perf_counter()
    derive(release, vm)
    derive_s = time.perf_counter() - t0
    floor_s = _object_floor(result)
    return {
        "tier": tier,
        "sections": len(order.registered.sections),
        "sent": len(order.steps),
        "rule_verdicts": len(result.verdicts),
        "constraint_edges": full.number_of_edges(),
        "hub_edges": hub.number_of_edges(),
        "check_seconds": min(times),
        "check_seconds_runs": times,
        "check_cpu_seconds": min(cpu_times),
        "derive_seconds": derive_s,
        "topo_sort_seconds": topo_full,
        "topo_sort_hub_seconds": topo_hub,
        "ratio_to_topo_sort": min(times) / topo_full if topo_full else None,
        "result_objects": _result_objects(result),
        "object_floor_seconds": floor_s,
        "floor_ratio_to_topo_sort": floor_s / topo_full if topo_full else None,
        "peak_rss_mb": peak_check_mb,
        "peak_rss_with_reference_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "exit_code": result.exit_code,
    }


def _result_objects(result: Any) -> int:
    """The named tuples one check result holds: placed devices, sections, load steps, the
    placements judging reads, rule instances and verdicts."""
    order = result.order
    instances = sum(1 for v in result.verdicts if v.instance is not None)
    return (len(order.registered.devices) + len(order.registered.sections) + 2 * len(order.steps)
            + instances + len(result.verdicts))


def _object_floor(result: Any) -> float:
    """The time to build as many of the result's named tuples (:func:`_result_objects`), each
    with its real class and width and nothing else: what a derive-and-judge that returns one
    object per device, section, step, placement and verdict pays before any logic. Best of three."""
    from ordering.conditions import RuleInstance
    from ordering.model.section import LoadStep, Section
    from ordering.topology import PlacedDevice
    from ordering.verdict import Placement, RuleVerdict

    order = result.order
    devices, sections, steps = len(order.registered.devices), len(order.registered.sections), len(order.steps)
    instances = sum(1 for v in result.verdicts if v.instance is not None)
    verdicts = len(result.verdicts)
    new = tuple.__new__
    best = float("inf")
    for _ in range(3):
        gc.collect()
        gc.disable()
        t0 = time.perf_counter()
        kept = (
            [new(PlacedDevice, (i, 1, 2, 3, 4, 5, 6, 7, 8, 9)) for i in range(devices)],
            [new(Section, (i, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)) for i in range(sections)],
            [new(LoadStep, (i, 1, 2)) for i in range(steps)],
            [new(Placement, (i, 1, 2)) for i in range(steps)],
            [new(RuleInstance, (i, 1, 2, 3)) for i in range(instances)],
            [new(RuleVerdict, (i, 1, 2, 3, 4, 5, 6, 7)) for i in range(verdicts)],
        )
        best = min(best, time.perf_counter() - t0)
        del kept
        gc.enable()
    return best


def main() -> None:
    """Run every tier in a subprocess, print the table, write the JSON."""
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2])))
        return
    rows = []
    for tier in TIERS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", tier], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(out.stdout))
    header = (f"{'tier':>5} {'sections':>9} {'verdicts':>8} {'edges':>8} {'check s':>8} {'topo s':>8} {'ratio':>6} "
              f"{'floor s':>8} {'RSS MB':>7}")
    print(header)
    for r in rows:
        print(
            f"{r['tier']:>5} {r['sections']:>9} {r['rule_verdicts']:>8} {r['constraint_edges']:>8} "
            f"{r['check_seconds']:>8.3f} {r['topo_sort_seconds']:>8.3f} {r['ratio_to_topo_sort']:>6.2f} "
            f"{r['object_floor_seconds']:>8.3f} {r['peak_rss_mb']:>7.0f}"
        )
    write_results(RESULTS, {"machine": machine(), "tiers": rows})


if __name__ == "__main__":
    main()
