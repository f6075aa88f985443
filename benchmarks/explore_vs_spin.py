"""migorder's engines against SPIN on one model family, and a realistic VM.

The family (generated here, in Promela and as a migorder space, at benchmark time): N sections
in one precopy phase. Section 3 (a vIOMMU) has a higher priority than the rest, so every other
section loads after it; the others tie at MIG_PRI_DEFAULT, where registration order decides.
Registration is free except for bus parents: section 1 (a switch port) sits behind section 0
(a bridge), section 2 (a device) behind section 1, and every section k >= 6 with k % 3 == 0
behind section k-1. One guarded rule: when ``guard`` holds (the rule's liveness condition,
left free), section 0 loads before section 2. It holds for every N, by registration.

SPIN (Debian package ``spin``: ``apt-get install spin``) checks the Promela model exhaustively:
``spin -a``, ``gcc -O2 -DSAFETY``, ``./pan`` under a time limit (a run it cannot finish is
``timeout``) and a memory limit (``-DMEMLIM``: pan stops with "Search not completed", recorded
as ``out of memory``). migorder's graph engine
(and its z3 engine) decide the same space.

Then a realistic VM: q35 with 4096 hot-pluggable vCPUs (4 at boot, 4092 hot-plugged, any
number unplugged and replugged), 64 VFIO devices behind PCIe root ports, an intel-iommu and
virtio-mem, judged by the graph engine for every rule of the rule base, from a 10.1, a 10.2
and an 11.1 source to an 11.1 destination (10.0-10.2 refuse VFIO behind a vIOMMU: the reason
says so), over migorder's order space (``order_space``: every machine type up to the source);
the explicit engine runs on the same space for comparison.

Prints a table and writes explore_vs_spin.json (benchmarks/_results.py says where). Never asserts a time.
Usage: python benchmarks/explore_vs_spin.py [--spin-timeout SECONDS] [--sizes 12,16,20]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _results, also when loaded by a test
from _results import machine, results_path

RESULTS = results_path("explore_vs_spin")
SIZES = (12, 16, 20, 24, 100)
SOURCES = ("10.1", "10.2", "11.1")
"""Source releases the realistic VM migrates from (the source decides the order)."""
DESTINATION = "11.1"
FIRST, PORT, THEN, HIGH = 0, 1, 2, 3


def parent_of(k: int, *, broken: bool = False) -> int:
    """The bus parent of section ``k`` in the family (-1: none). ``broken`` takes the device
    off the port: the rule then fails (a check that both sides can find a counterexample)."""
    if k == THEN:
        return -1 if broken else PORT
    if k == PORT:
        return FIRST
    if k >= 6 and k % 3 == 0:
        return k - 1
    return -1


def promela(n: int, *, broken: bool = False) -> str:
    """The family at size ``n`` in Promela: one process loads any section whose sort key and
    bus parent allow it; the guarded rule is an assertion at ``then``'s load."""
    lines = [
        f"/* migorder explore_vs_spin: {n} sections, QEMU's sort-key freedom, one guarded rule */",
        f"bit loaded[{n}];",
        "bool guard;",
        "init {",
        "  if",
        "  :: guard = true",
        "  :: guard = false",
        "  fi;",
        "  do",
    ]
    for k in range(n):
        ready = [f"!loaded[{k}]"]
        if k != HIGH:
            ready.append(f"loaded[{HIGH}]")  # a higher priority loads first
        parent = parent_of(k, broken=broken)
        if parent >= 0:
            ready.append(f"loaded[{parent}]")  # its bus parent registered (and loads) first
        body = f"loaded[{k}] = 1"
        if k == THEN:
            body = f"assert(!guard || loaded[{FIRST}]); " + body
        lines.append(f"  :: {' && '.join(ready)} -> {body}")
    lines += ["  :: else -> break", "  od", "}", ""]
    return "\n".join(lines)


def run_spin(n: int, timeout: float, memlim_mb: int, *, broken: bool = False) -> dict[str, Any]:
    """spin -a, gcc, ./pan on the family at size ``n``: time, states, memory, outcome."""
    with tempfile.TemporaryDirectory(prefix="migorder-spin-") as tmp:
        work = Path(tmp)
        (work / "family.pml").write_text(promela(n, broken=broken))
        t0 = time.perf_counter()
        subprocess.run(["spin", "-a", "family.pml"], cwd=work, check=True, capture_output=True)
        subprocess.run(
            ["gcc", "-O2", "-DSAFETY", "-DNOFAIR", f"-DMEMLIM={memlim_mb}", "-o", "pan", "pan.c"],
            cwd=work, check=True, capture_output=True,
        )
        compile_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        try:
            out = subprocess.run(
                ["./pan", "-m100000", "-w24"], cwd=work, capture_output=True, text=True, timeout=timeout
            )
            text = out.stdout + out.stderr
            seconds = time.perf_counter() - t1
        except subprocess.TimeoutExpired:
            return {"spin_seconds": timeout, "spin_states": None, "spin_outcome": "timeout",
                    "spin_memory_mb": None, "spin_compile_seconds": compile_seconds}
    states = re.search(r"([\d.e+]+) states, stored", text)
    memory = re.search(r"([\d.]+)\s+total actual memory usage", text)
    errors = re.search(r"errors: (\d+)", text)
    if errors is not None and errors.group(1) != "0":
        outcome = "counterexample"  # pan stops at the first assertion violation
    elif "Search not completed" in text or "out of memory" in text:
        outcome = "out of memory"  # pan stopped at -DMEMLIM: what it stored is not the space
    elif errors is None:
        outcome = "error"
    else:
        outcome = "proved"
    return {
        "spin_seconds": seconds,
        "spin_states": int(float(states.group(1))) if states else None,
        "spin_outcome": outcome,
        "spin_memory_mb": float(memory.group(1)) if memory else None,
        "spin_compile_seconds": compile_seconds,
    }


def family_model(n: int, *, broken: bool = False) -> Any:
    """The same family as a migorder space (every section a slot of the -device stage)."""
    from ordering.engines.slots import Instance, Slot, SpaceModel
    from ordering.model.section import Phase

    slots = tuple(
        Slot(
            f"s{k}", f"s{k}", f"dev{k}", Phase.COMPLETE,
            3 if k == HIGH else 2, "MIG_PRI_IOMMU" if k == HIGH else "MIG_PRI_DEFAULT",
            1, parent_of(k, broken=broken),
        )
        for k in range(n)
    )
    return SpaceModel(slots, (Instance((FIRST,), THEN),), 0, f"the explore_vs_spin family at N={n}")


def run_ours(n: int) -> dict[str, Any]:
    """The graph engine (and z3) on the family at size ``n``."""
    from ordering.engines import graph, smt_space
    from ordering.sources.models import load_knowledge

    rule = load_knowledge().rule("pci-bus-before-dma-devices")
    t0 = time.perf_counter()
    model = family_model(n)
    witness, compared = graph.find_witness(model)
    seconds = time.perf_counter() - t0
    tracemalloc.start()  # memory on a second run: tracing slows the timed one
    graph.find_witness(family_model(n))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t1 = time.perf_counter()
    smt = smt_space.decide(model, rule)
    smt_seconds = time.perf_counter() - t1
    # The same end to end in a fresh interpreter (start, imports, decision), as SPIN's pan is.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from explore_vs_spin import family_model; "
        "from ordering.engines.graph import find_witness; find_witness(family_model(int(sys.argv[2])))"
    )
    t2 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(n)], check=True)
    process_seconds = time.perf_counter() - t2
    return {
        "ours_seconds": seconds,
        "ours_process_seconds": process_seconds,
        "ours_states": compared,
        "ours_memory_mb": peak / 2**20,
        "engine": "graph",
        "outcome": "proved" if witness is None else "counterexample",
        "smt_seconds": smt_seconds,
        "smt_outcome": smt.outcome.value,
    }


def realistic() -> dict[str, Any]:
    """Every rule over the realistic VM's space, from each source in SOURCES, graph and explicit."""
    from ordering.engines.graph import graph_engine
    from ordering.engines.smt_space import smt_engine
    from ordering.explore import explore_verdicts
    from ordering.model.vm import HotplugStep
    from ordering.order_space import order_space
    from ordering.sources.cmdline import parse_command_line
    from ordering.sources.models import load_knowledge

    k = load_knowledge()
    args = [
        "-machine", "q35,kernel-irqchip=split", "-smp", "4,maxcpus=4096", "-cpu", "max", "-m", "4G,maxmem=20G,slots=2",
        "-object", "memory-backend-ram,id=vmem0,size=16G",
        "-device", "intel-iommu,intremap=on,caching-mode=on,eim=on",
    ]
    for i in range(65):
        slot, fn = 1 + i // 8, i % 8
        multi = ",multifunction=on" if fn == 0 else ""
        args += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1},addr={slot:#x}.{fn}{multi}"]
    for i in range(64):
        args += ["-device", f"vfio-pci,host=0000:{0x40 + i // 8:02x}:00.{i % 8},id=vf{i},bus=rp{i}"]
    args += ["-device", "virtio-mem-pci,memdev=vmem0,id=vmem0,requested-size=4G,bus=rp64"]
    vm = parse_command_line(args)
    vm = replace(vm, hotplug=tuple(HotplugStep(cpu=c) for c in range(4, 4096)))
    rows: list[dict[str, Any]] = []
    per_source: dict[str, float] = {}
    explicit_seconds: dict[str, float] = {}
    smt_seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    for source in SOURCES:
        ts = time.perf_counter()
        space = order_space(
            k.release(source), k.release(DESTINATION), vm, releases=list(k.releases.values()), hotplug_bound=1
        )
        for rule in k.rules:
            t = time.perf_counter()
            v = graph_engine(space, rule)
            rows.append({
                "source": source, "rule": rule.id, "outcome": v.outcome.value,
                "seconds": time.perf_counter() - t, "sections": v.covered.get("sections", 0),
                "pairs": v.covered.get("pairs", 0), "reason": v.reason,
            })
        per_source[source] = time.perf_counter() - ts
        # z3 on the same space (symmetric firsts collapsed), then the explicit engine
        # (migorder explore's default), for comparison.
        tz = time.perf_counter()
        for row in rows:
            if row["source"] == source:
                row["smt_outcome"] = smt_engine(space, k.rule(row["rule"]), timeout_ms=10_000).outcome.value
        smt_seconds[source] = time.perf_counter() - tz
        te = time.perf_counter()
        verdicts = explore_verdicts(space, list(k.rules), max_states=2000, timeout=120)
        explicit_seconds[source] = time.perf_counter() - te
        by_rule = {v.subject: v.outcome.value for v in verdicts}
        for row in rows:
            if row["source"] == source:
                row["explicit_outcome"] = by_rule.get(row["rule"], "")
    total = time.perf_counter() - t0
    return {
        "vm": "q35, 4096 vCPUs (4 at boot, 4092 hot-plugged, replug allowed), 64 VFIO behind root ports, intel-iommu, virtio-mem",
        "engine": "graph",
        "destination": DESTINATION,
        "space": "migorder's order_space: any registration order, one hot-plug step (a replug), every machine type up to the source",
        "seconds_per_source": per_source,
        "smt_seconds_per_source": smt_seconds,
        "explicit_seconds_per_source": explicit_seconds,
        "total_seconds": total,
        "rules": rows,
    }


def spin_machine() -> dict[str, Any]:
    """What ran it, with SPIN's version."""
    spin = subprocess.run(["spin", "-V"], capture_output=True, text=True).stdout.strip()
    return machine(spin=spin)


def main() -> int:
    """Run both on every size, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spin-timeout", type=float, default=120.0, help="seconds per SPIN run (default 120)")
    parser.add_argument("--spin-memory", type=int, default=2048, help="SPIN's memory limit in MB (default 2048)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated N (default 12,16,20,24,100)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    ns = parser.parse_args()
    if shutil.which("spin") is None or shutil.which("gcc") is None:
        print("explore_vs_spin: SPIN or gcc is missing; install them with: apt-get install spin gcc", file=sys.stderr)
        return 2
    try:
        sizes = [int(x) for x in ns.sizes.split(",") if x]
    except ValueError:
        print(f"explore_vs_spin: --sizes {ns.sizes!r}: expected comma-separated integers", file=sys.stderr)
        return 2
    rows = []
    print(
        f"{'N':>4} {'SPIN s':>9} {'SPIN states':>12} {'SPIN':>13} {'MB':>8} {'ours s':>10} "
        f"{'process s':>9} {'pairs':>6} {'ours':>7} {'speed-up':>9}"
    )
    for n in sizes:
        row: dict[str, Any] = {"n": n, **run_spin(n, ns.spin_timeout, ns.spin_memory), **run_ours(n)}
        rows.append(row)
        speed = row["spin_seconds"] / row["ours_seconds"] if row["ours_seconds"] else float("inf")
        states = row["spin_states"] if row["spin_states"] is not None else "-"
        mem = f"{row['spin_memory_mb']:.0f}" if row["spin_memory_mb"] is not None else "-"
        print(
            f"{n:>4} {row['spin_seconds']:>9.3f} {states:>12} {row['spin_outcome']:>13} {mem:>8} "
            f"{row['ours_seconds']:>10.6f} {row['ours_process_seconds']:>9.3f} {row['ours_states']:>6} "
            f"{row['outcome']:>7} {speed:>8.0f}x"
        )
    real = realistic()
    per = ", ".join(f"{src} source {sec:.2f} s" for src, sec in real["seconds_per_source"].items())
    explicit = ", ".join(f"{src} {sec:.2f} s" for src, sec in real["explicit_seconds_per_source"].items())
    smt = ", ".join(f"{src} {sec:.2f} s" for src, sec in real["smt_seconds_per_source"].items())
    print(
        f"realistic VM ({real['vm']}) to {real['destination']}: every rule, graph engine: {per}; "
        f"z3: {smt}; explicit engine: {explicit}"
    )
    for r in real["rules"]:
        print(
            f"  {r['source']:>5} {r['rule']:<28} {r['outcome']:<15} (z3: {r['smt_outcome']:<15} "
            f"explicit: {r['explicit_outcome']:<15}) "
            f"{r['seconds']:.3f} s  {r['sections']} sections"
        )
    ours_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "machine": spin_machine(),
        "family": "N sections in one phase: one above the rest in priority, the rest tied at DEFAULT "
        "with bus parents; rule: section 0 before section 2 when guard holds (holds by registration)",
        "ours_states_means": "pairs of sections the graph engine compared (it explores no state space)",
        "timing": "spin_seconds: the ./pan run (spin -a and gcc are spin_compile_seconds); ours_seconds: "
        "building the family's space and the graph engine's decision, in-process (interpreter start "
        "and imports excluded; ours_process_seconds includes them: a fresh python running it); both on "
        "the same shared machine, one run each",
        "ours_peak_rss_mb": ours_peak,
        "rows": rows,
        "realistic": real,
    }
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {ns.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
