"""Where a benchmark writes its JSON: an untracked folder, unless asked to update the
committed figures.

``make bench`` writes ``benchmarks/results/local/NAME.json`` (gitignored), so a run on a
laptop never dirties the checkout. ``MIGORDER_BENCH_UPDATE=1 make bench`` (or a script's
``--update``) writes ``benchmarks/results/NAME.json``, the figures the README quotes.
"""

from __future__ import annotations

import os
from pathlib import Path

UPDATE_ENV = "MIGORDER_BENCH_UPDATE"
RESULTS = Path(__file__).resolve().parent / "results"


def results_path(name: str, *, update: bool = False) -> Path:
    """The JSON file benchmark ``name`` writes (its folder created)."""
    committed = update or os.environ.get(UPDATE_ENV, "") not in ("", "0")
    folder = RESULTS if committed else RESULTS / "local"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.json"
