"""Benchmark: migorder's stream reader vs QEMU's scripts/analyze-migration.py.

Times both, each as a fresh ``python3`` process (wall time, best of ``--repeat``; peak RSS from
``os.wait4``), on the real streams in ``tests/data/real-streams`` (decompressed to a temp dir).
Then writes a synthetic-but-valid stream of ``--size-gib`` GiB (header, configuration, ``ram``
START with MEM_SIZE, PART sections full of PAGE records, END, FULL sections matching the
vmdesc, EOF, vmdesc), and measures our reader's time and peak RSS on it, plain and
xz-compressed, and both readers on a smaller synthetic stream (``--compare-mib``).

QEMU's script is taken at run time from a QEMU source tree (``$QEMU_SRC``, else the 7.2 tree
``.ci/run`` unpacks into ``.cache/src72/qemu-7.2``); if absent it is fetched with
``apt-get source --download-only qemu`` + ``dpkg-source -x`` into ``~/.cache/migorder``, which
needs deb-src entries (without them: one line saying so, exit 2). It is never copied into this
repository. Writes a table to stdout and ``stream_read.json`` (``benchmarks/_results.py`` says
where); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _results import results_path  # noqa: E402

from ordering.sources._stream_synth import SynthSpec, write_synthetic  # noqa: E402

DEFAULT_QEMU_SRC = REPO / ".cache" / "src72" / "qemu-7.2"
NEEDS = ("needs QEMU's scripts/analyze-migration.py: set QEMU_SRC to a QEMU source tree, or add "
         "deb-src entries so that `apt-get source qemu` works (.ci/run shows them)")


class Missing(Exception):
    """What the benchmark needs and does not have: one line for the user."""
CACHE = Path.home() / ".cache" / "migorder" / "qemu-src"
HWM = """
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
"""
CHILD = HWM + """
import sys, time
t = time.perf_counter()
from ordering.sources.stream import read_stream
read_stream(sys.argv[1])
sys.stderr.write(f"\\nBENCH {time.perf_counter() - t} {_hwm()}\\n")
"""
QEMU_CHILD = HWM + """
import atexit, runpy, sys, time
t = time.perf_counter()
atexit.register(lambda: sys.stderr.write(f"\\nBENCH {time.perf_counter() - t} {_hwm()}\\n"))
script = sys.argv[1]
sys.argv = [script, *sys.argv[2:]]
runpy.run_path(script, run_name="__main__")
"""


@dataclass(frozen=True)
class Run:
    """One measured reader, best of the repeats.

    ``wall_s``: the whole process, interpreter start included; ``run_s``: from the first
    import of the reader to its end (for QEMU's script: its whole run, JSON output included);
    ``max_rss_mb``: the process's VmHWM (peak resident set).
    """

    wall_s: float
    run_s: float
    max_rss_mb: float
    ok: bool
    note: str = ""


def _measure(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> Run:
    best = best_run = float("inf")
    rss = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                              check=False)
        wall = time.perf_counter() - t
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        bench = [ln.split() for ln in lines if ln.startswith("BENCH ")]
        run_s, hwm = (float(bench[-1][1]), int(bench[-1][2])) if bench else (wall, 0)
        if proc.returncode != 0:
            errs = [ln for ln in lines if ln.strip() and not ln.startswith("BENCH ")]
            return Run(wall, run_s, hwm / 1024, False, errs[-1] if errs else "failed")
        best = min(best, wall)
        best_run = min(best_run, run_s)
        rss = max(rss, hwm / 1024)
    return Run(best, best_run, rss, True)


def _ours(path: Path, repeat: int) -> Run:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return _measure([sys.executable, "-c", CHILD, str(path)], repeat, env)


def _qemu(script: Path, path: Path, repeat: int) -> Run:
    # The same interpreter for both (a pyenv shim's start-up would be QEMU's script's loss).
    return _measure([sys.executable, "-c", QEMU_CHILD, str(script), "-f", str(path)], repeat)


def find_analyze_migration() -> Path:
    """Locate analyze-migration.py in a QEMU source tree, fetching Debian's source if needed."""
    env = os.environ.get("QEMU_SRC")
    candidates = [Path(env)] if env else []
    candidates += [DEFAULT_QEMU_SRC, *sorted(CACHE.glob("qemu-*"))]
    for root in candidates:
        script = root / "scripts" / "analyze-migration.py"
        if script.is_file():
            return script
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(["apt-get", "source", "--download-only", "qemu"], cwd=CACHE,
                                 capture_output=True, text=True, check=False)
        dsc = sorted(CACHE.glob("qemu_*.dsc"))
        if fetched.returncode != 0 or not dsc:
            raise Missing(NEEDS)
        subprocess.run(["dpkg-source", "-x", dsc[-1].name], cwd=CACHE, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise Missing(f"{NEEDS} ({exc})") from None
    found = sorted(CACHE.glob("qemu-*/scripts/analyze-migration.py"))
    if not found:
        raise Missing(NEEDS)
    return found[-1]


def _real_streams() -> list[Path]:
    env = os.environ.get("MIGORDER_REAL_STREAMS")
    d = Path(env) if env else REPO / "tests" / "data" / "real-streams"
    return sorted(d.glob("*.mig.xz"))


def _synthetic(path: Path, size: int) -> SynthSpec:
    pages = max(1, (size - 64 * 1024) // (4096 + 8))
    spec = SynthSpec(pages=pages, zero_pages=pages // 16, parts=16)
    with open(path, "wb", buffering=1 << 20) as f:
        write_synthetic(f, spec)
    return spec


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table; write the JSON results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size-gib", type=float, default=1.0)
    ap.add_argument("--compare-mib", type=int, default=256)
    ap.add_argument("--no-xz", action="store_true", help="skip the xz-compressed big stream")
    ap.add_argument("--out", type=Path, help="where to write the JSON (default: benchmarks/_results.py)")
    ap.add_argument("--update", action="store_true", help="write the committed benchmarks/results/stream_read.json")
    args = ap.parse_args(argv)
    args.out = args.out or results_path("stream_read", update=args.update)

    try:
        script = find_analyze_migration()
    except Missing as exc:
        print(f"stream_read.py: {exc}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="migorder-bench-"))
    try:
        for xz in _real_streams():
            plain = work / xz.name.removesuffix(".xz")
            with lzma.open(xz) as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            ours = _ours(plain, args.repeat)
            qemu = _qemu(script, plain, args.repeat)
            rows.append({"stream": plain.name, "bytes": plain.stat().st_size,
                         "ours": asdict(ours), "qemu": asdict(qemu)})
            plain.unlink()

        small = work / "synthetic-compare.mig"
        _synthetic(small, args.compare_mib << 20)
        rows.append({"stream": small.name, "bytes": small.stat().st_size,
                     "ours": asdict(_ours(small, args.repeat)),
                     "qemu": asdict(_qemu(script, small, max(1, args.repeat // 2)))})
        small.unlink()

        big = work / "synthetic-big.mig"
        t = time.perf_counter()
        _synthetic(big, int(args.size_gib * (1 << 30)))
        gen_s = time.perf_counter() - t
        big_rows: dict[str, Any] = {"bytes": big.stat().st_size, "generate_s": round(gen_s, 2),
                                    "plain": asdict(_ours(big, 2)),
                                    "qemu_plain": asdict(_qemu(script, big, 1))}
        if not args.no_xz and shutil.which("xz"):
            t = time.perf_counter()
            subprocess.run(["xz", "-T0", "-0", "-k", str(big)], check=True)
            big_rows["xz_compress_s"] = round(time.perf_counter() - t, 2)
            big_rows["xz_bytes"] = Path(f"{big}.xz").stat().st_size
            big.unlink()
            big_rows["xz"] = asdict(_ours(Path(f"{big}.xz"), 1))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    machine = {"nproc": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version(),
               "analyze_migration": f"{script.parent.parent.name}/scripts/{script.name}"}
    readable = [r for r in rows
                if r["qemu"]["ok"] and r["ours"]["ok"] and "synthetic" not in r["stream"]]
    aggregate = {
        "streams": len(readable),
        "ours_run_s": round(sum(r["ours"]["run_s"] for r in readable), 4),
        "qemu_run_s": round(sum(r["qemu"]["run_s"] for r in readable), 4),
    }
    if readable:
        aggregate["speedup_run"] = round(aggregate["qemu_run_s"] / aggregate["ours_run_s"], 2)
    result = {"machine": machine, "real_and_compare": rows, "aggregate_real": aggregate,
              "big_synthetic": big_rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")

    print(f"machine: {machine['nproc']} CPUs, {machine['cpu']}, Python {machine['python']}")
    print("run = from the reader's first import to its end; wall = whole process")
    print(f"{'stream':34} {'MiB':>6} {'ours run':>9} {'qemu run':>9} {'x run':>6} "
          f"{'ours wall':>9} {'qemu wall':>9} {'x wall':>6} {'ours MB':>7} {'qemu MB':>7}")
    for r in rows:
        o, q = r["ours"], r["qemu"]
        both = q["ok"] and o["ok"]
        xrun = f"{q['run_s'] / o['run_s']:.1f}" if both else "n/a"
        xwall = f"{q['wall_s'] / o['wall_s']:.1f}" if both else "n/a"
        qrun = f"{q['run_s']:.3f}" if q["ok"] else "FAIL"
        qwall = f"{q['wall_s']:.3f}" if q["ok"] else "FAIL"
        print(f"{r['stream']:34} {r['bytes'] / 2**20:6.1f} {o['run_s']:9.3f} {qrun:>9} "
              f"{xrun:>6} {o['wall_s']:9.3f} {qwall:>9} {xwall:>6} {o['max_rss_mb']:7.1f} "
              f"{q['max_rss_mb']:7.1f}" + ("" if q["ok"] else f"  qemu: {q['note'][:50]}"))
    if readable:
        print(f"real streams QEMU's script reads ({len(readable)}): ours {aggregate['ours_run_s']:.3f} s"
              f", qemu {aggregate['qemu_run_s']:.3f} s, {aggregate['speedup_run']:.1f}x")
    b = big_rows
    q = b["qemu_plain"]
    if q["ok"]:
        print(f"big synthetic, QEMU's script: {q['run_s']:.2f} s "
              f"({q['run_s'] / b['plain']['run_s']:.1f}x ours), peak RSS {q['max_rss_mb']:.1f} MB")
    print(f"big synthetic: {b['bytes'] / 2**30:.2f} GiB plain: {b['plain']['run_s']:.2f} s, "
          f"peak RSS {b['plain']['max_rss_mb']:.1f} MB")
    if "xz" in b:
        print(f"big synthetic .xz ({b['xz_bytes'] / 2**20:.1f} MiB): {b['xz']['run_s']:.2f} s, "
              f"peak RSS {b['xz']['max_rss_mb']:.1f} MB")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
