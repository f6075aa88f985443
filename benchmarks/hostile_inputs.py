"""Hostile inputs from issue #11, each run as a fresh ``migorder`` process: wall time, peak RSS,
exit code and the first line of stderr.

Cases (all generated in a temporary folder):

- ``xz-bomb-1gib``: a 160 KB ``.xz`` of a stream header then 1 GiB of zero bytes;
- ``xz-bomb-1gib-ram``: the same after a configuration and a ``ram`` START section (the page
  size then comes from the vmdesc, so the whole file is scanned for the trailer);
- ``plain-trailer-512mib``: a stream whose vmdesc trailer claims and holds 512 MiB of JSON;
- ``real-11.1-smp4``: the QEMU 11.1 stream whose vmdesc length holds a 0x06 (a fixture);
- ``dump-vmstate-4mb``: a 4 MB ``-dump-vmstate`` file of 20,000 entries;
- ``scan-1000-vmsds``: a source tree with 1,000 VMSDs in one file.

Prints a table and writes hostile_inputs.json (``benchmarks/_results.py`` says where). Never
asserts a time. ``PYTHONPATH=OTHER_CHECKOUT`` runs an older migorder on the same inputs (each
run is killed after :data:`LIMIT_S`).
"""

from __future__ import annotations

import json
import lzma
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _results import results_path

REPO = Path(__file__).resolve().parents[1]
RESULTS = results_path("hostile_inputs")
HEADER = b"QEVM" + struct.pack(">I", 3)


def _bomb(path: Path, prefix: bytes) -> None:
    block = lzma.compress(bytes(16 << 20), preset=0)
    path.write_bytes(lzma.compress(prefix, preset=0) + block * 64)


def _ram_start() -> bytes:
    config = b"\x07" + struct.pack(">I", 6) + b"pc-q35"
    start = b"\x01" + struct.pack(">I", 2) + b"\x03ram" + struct.pack(">II", 0, 4)
    mem = struct.pack(">Q", 8192 | 0x04) + b"\x06pc.ram" + struct.pack(">Q", 8192)
    return HEADER + config + start + mem


def _trailer(path: Path) -> None:
    n = 512 << 20
    with path.open("wb") as f:
        f.write(HEADER + b"\x00\x06" + struct.pack(">I", n) + b"{")
        chunk = b" " * (1 << 20)
        left = n - 2
        while left:
            left -= f.write(chunk[: min(left, len(chunk))])
        f.write(b"}")


def _dump(path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from test_dump_vmstate import _big_dump

    path.write_text(_big_dump(20000))


def _tree(root: Path) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from test_scan_hostile import BASIC, DEVICE

    shutil.copytree(BASIC, root)
    (root / "hw" / "many.c").write_text(
        "".join(DEVICE.format(i=i, priority="MIG_PRI_IOMMU") for i in range(1000)))


LIMIT_S = 120.0
"""A run still going after this long is killed and reported as such."""


def _run(argv: list[str], cwd: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    # cwd outside the checkout: ``python -m`` puts the cwd first on sys.path
    proc = subprocess.Popen([sys.executable, "-m", "ordering.cli", *argv], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timer = threading.Timer(LIMIT_S, proc.kill)
    timer.start()
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return {
        "seconds": round(seconds, 3),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": proc.returncode,
        "stderr": (f"killed after {LIMIT_S:g} s" if seconds >= LIMIT_S
                   else (lines[-1] if lines else "").replace(f"{cwd}/", "").replace(
                       f"{REPO}/", "")[:160]),
        "stderr_lines": len(lines),
    }


def main() -> None:
    """Build each input, run migorder on it, print a table, write the JSON."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="migorder-bench-") as tmp:
        d = Path(tmp)
        def bomb() -> list[str]:
            _bomb(d / "b.xz", HEADER)
            return ["stream", str(d / "b.xz")]

        def bomb_ram() -> list[str]:
            _bomb(d / "r.xz", _ram_start())
            return ["stream", str(d / "r.xz")]

        def trailer() -> list[str]:
            _trailer(d / "t.mig")
            return ["stream", str(d / "t.mig")]

        def real() -> list[str]:
            return ["stream", str(REPO / "tests/data/vmdesc06/11.1-q35-smp4.mig.xz")]

        def dump() -> list[str]:
            _dump(d / "d.json")
            return ["dump-vmstate", str(d / "d.json")]

        def tree() -> list[str]:
            _tree(d / "tree")
            return ["scan", str(d / "tree")]

        cases: list[tuple[str, Callable[[], list[str]]]] = [
            ("xz-bomb-1gib", bomb), ("xz-bomb-1gib-ram", bomb_ram),
            ("plain-trailer-512mib", trailer), ("real-11.1-smp4", real),
            ("dump-vmstate-4mb", dump), ("scan-1000-vmsds", tree),
        ]
        for name, make in cases:
            argv = make()
            row = {"case": name, **_run(argv, d)}
            rows.append(row)
            print(f"{name:<22} {row['seconds']:>7.2f} s {row['max_rss_mb']:>8.1f} MB  exit "
                  f"{row['exit']}  {row['stderr'][:70]}", flush=True)
    RESULTS.write_text(json.dumps({
        "machine": {"nproc": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "pythonpath": bool(os.environ.get("PYTHONPATH")),
        "rows": rows,
    }, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
