"""A fresh clone is enough: the test data is committed, and no file names a path of the
machine it was written on."""

from __future__ import annotations

import re
from pathlib import Path

from stream_helpers import BUNDLED, ground_truth_path

REPO = Path(__file__).resolve().parents[1]
TRACKED = ("ordering", "tests", "models", "benchmarks", "docs", "notebooks", "proofs", ".ci")
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", "local"}
# Home and work folders of the machines migorder was written on; built so that this file
# does not match itself.
MACHINE_PATH = re.compile("(?<![\\w.])/" + "(?:work|root|home/[^/\\s]+)" + "/")


def _text_files() -> list[Path]:
    files = [REPO / name for name in ("README.md", "Makefile", "pyproject.toml") if (REPO / name).is_file()]
    for top in TRACKED:
        for path in sorted((REPO / top).rglob("*")):
            if path.is_file() and not SKIP_DIRS & set(path.relative_to(REPO).parts):
                files.append(path)
    return files


def test_no_file_holds_a_machine_path() -> None:
    found = []
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary data (.mig.xz, .png)
        for n, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:120]}")
    assert not found, "\n".join(found)


def test_the_real_streams_are_committed_beside_the_tests() -> None:
    streams = sorted(BUNDLED.glob("*.mig.xz"))
    assert len(streams) >= 9
    for s in streams:
        assert ground_truth_path(s).is_file(), s
    assert any(s.name.startswith("qemu11.1-") for s in streams)


def test_no_test_reads_beside_the_repository() -> None:
    beside = re.compile(r"parents\[2\]|\.\./shared|\"shared\" /")
    offenders = [
        p.name for p in sorted((REPO / "tests").glob("*.py")) if p.name != Path(__file__).name and beside.search(p.read_text())
    ]
    assert not offenders
