"""Benchmark: ``migorder`` as a whole process, start-up included (median wall time).

* ``python -c pass``: the interpreter alone, for reference;
* ``migorder --help`` — target ≤ 100 ms;
* ``migorder stream FILE`` on the 2 MiB QEMU 7.2 stream ``b-x86-q35-iommu-pci-smp4`` (plain,
  decompressed to a temp dir), and the same stream read in-process by ``read_stream``: the
  difference is the command's overhead beyond the read — target ≤ 100 ms;
* ``migorder stream --json FILE`` against QEMU 7.2's ``scripts/analyze-migration.py -d state``
  on the same file, each a whole process — target ≥ 5× faster. QEMU's script is found as
  ``stream_read.py`` finds it (``$QEMU_SRC``, ``.cache/src72/qemu-7.2``, or ``apt-get source``);
  without it that row is skipped and says what it needs.

Every process runs with its bytecode cached (one unmeasured run first, and without
``PYTHONDONTWRITEBYTECODE``), as an installed package runs; compiling every module from source
at each start would add about 20 ms to each migorder row.

Writes a table to stdout and ``cli_startup.json`` as ``{"rows": [{"command", "median_seconds"}]}``
(each row also has ``median_cpu_seconds``: user + system time, steadier on a busy machine)
plus the machine and the derived figures (``benchmarks/_results.py`` says where: ``--update``
or ``MIGORDER_BENCH_UPDATE=1`` for the committed one). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _results import results_path  # noqa: E402
from stream_read import Missing, find_analyze_migration  # noqa: E402

from ordering.sources.stream import read_stream  # noqa: E402

STREAM = REPO / "tests" / "data" / "real-streams" / "b-x86-q35-iommu-pci-smp4.mig.xz"


def _migorder() -> list[str]:
    script = Path(sys.executable).parent / "migorder"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ordering.cli"]


RUN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""The environment of every measured process: bytecode cached, as for an installed package
(pip compiles it), even where the shell says PYTHONDONTWRITEBYTECODE."""


def _median(argv: list[str], repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system, from ``wait4``: less swayed by
    other processes on a busy machine) of ``repeat`` runs, after one unmeasured run that
    writes the bytecode."""
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=RUN_ENV, check=False)
    walls, cpus = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=RUN_ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t)
        cpus.append(usage.ru_utime + usage.ru_stime)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"cli_startup.py: {' '.join(argv[:3])} ... exited {proc.returncode}")
    return statistics.median(walls), statistics.median(cpus)


def _in_process_read(path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        read_stream(path)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Measure; print the table; write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--update", action="store_true", help="write the committed benchmarks/results/cli_startup.json")
    args = ap.parse_args(argv)
    out = results_path("cli_startup", update=args.update)
    migorder = _migorder()
    rows: list[dict[str, Any]] = []
    notes: dict[str, Any] = {"bytecode": "cached: one unmeasured run first, PYTHONDONTWRITEBYTECODE removed (as an installed package runs)"}
    with tempfile.TemporaryDirectory(prefix="migorder-bench-") as tmp:
        plain = Path(tmp) / STREAM.name.removesuffix(".xz")
        with lzma.open(STREAM) as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("migorder --help", [*migorder, "--help"]),
            ("migorder stream FILE", [*migorder, "stream", str(plain)]),
            ("migorder stream --json FILE", [*migorder, "stream", "--json", str(plain)]),
        ]
        try:
            script = find_analyze_migration()
            cases.append(("analyze-migration.py -d state FILE", [sys.executable, str(script), "-d", "state", "-f", str(plain)]))
        except Missing as exc:
            notes["analyze_migration"] = f"skipped: {exc}"
        for name, cmd in cases:
            wall, cpu = _median(cmd, args.repeat)
            rows.append({"command": name, "median_seconds": round(wall, 4), "median_cpu_seconds": round(cpu, 4)})
        read_s = _in_process_read(plain, args.repeat)
        stream_bytes = plain.stat().st_size
    by = {r["command"]: r["median_seconds"] for r in rows}
    derived: dict[str, Any] = {
        "stream": STREAM.name.removesuffix(".xz"),
        "stream_bytes": stream_bytes,
        "read_stream_in_process_seconds": round(read_s, 4),
        "stream_overhead_beyond_read_seconds": round(by["migorder stream FILE"] - read_s, 4),
        "help_target_seconds": 0.1,
        "overhead_target_seconds": 0.1,
    }
    qemu = by.get("analyze-migration.py -d state FILE")
    if qemu:
        derived["json_speedup_vs_analyze_migration"] = round(qemu / by["migorder stream --json FILE"], 2)
        derived["speedup_target"] = 5.0
    machine = {"nproc": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
               "python": platform.python_version(), "load_average_1m": round(os.getloadavg()[0], 2)}
    out.write_text(json.dumps({"machine": machine, "repeat": args.repeat, "rows": rows, "derived": derived, **notes}, indent=2) + "\n")

    print(f"machine: {machine['nproc']} CPUs, Python {machine['python']}, load {machine['load_average_1m']}; median of {args.repeat}")
    for r in rows:
        print(f"  {r['command']:40} {r['median_seconds'] * 1000:8.1f} ms wall {r['median_cpu_seconds'] * 1000:8.1f} ms CPU")
    print(f"  read_stream in process ({stream_bytes / 2**20:.1f} MiB)      {read_s * 1000:8.1f} ms")
    print(f"  stream overhead beyond the read: {derived['stream_overhead_beyond_read_seconds'] * 1000:.1f} ms (target ≤ 100)")
    if qemu:
        print(f"  stream --json vs analyze-migration.py -d state: {derived['json_speedup_vs_analyze_migration']:.1f}x (target ≥ 5)")
    for note in notes.values():
        print(f"  {note}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
