"""Where a benchmark writes its JSON: an untracked folder, unless asked to update the
committed figures.

``make bench`` writes ``benchmarks/results/local/NAME.json`` (gitignored), so a run on a
laptop never dirties the checkout. ``MIGORDER_BENCH_UPDATE=1 make bench`` (or a script's
``--update``) writes ``benchmarks/results/NAME.json``, the figures the README quotes.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

UPDATE_ENV = "MIGORDER_BENCH_UPDATE"
RESULTS = Path(__file__).resolve().parent / "results"


def results_path(name: str, *, update: bool = False) -> Path:
    """The JSON file benchmark ``name`` writes (its folder created)."""
    committed = update or os.environ.get(UPDATE_ENV, "") not in ("", "0")
    folder = RESULTS if committed else RESULTS / "local"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.json"


def machine(**extra: Any) -> dict[str, Any]:
    """What ran a benchmark: CPU model, cores, load, Python, platform (plus ``extra``)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "python": platform.python_version(),
        "platform": platform.platform(),
        **extra,
    }


def write_results(path: Path, payload: dict[str, Any]) -> None:
    """Write a benchmark's JSON (``{"machine": ..., ...}``) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
