"""`derive` reproduces real QEMU streams exactly, from the same command line.

One test per real stream in tests/data/real-streams (QEMU 7.2 and 11.1), and one per order
captured from Debian's 7.2, 10.0 and 11.1 binaries in tests/data/captured.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require
from real_orders import CAPTURED, expected, load, release_of, vm_of
from stream_helpers import real_streams_dir

from ordering.order import derive
from ordering.sources.models import load_knowledge

_real = real_streams_dir()
REAL = sorted(_real.glob("*.order.json"))
CAPTURES = sorted(CAPTURED.glob("*.order.json"))


def _derived(path: Path, *, full_only: bool) -> tuple[list[tuple[str, int, str, int]], list[tuple[str, int, str, int]]]:
    data = load(path)
    knowledge = load_knowledge()
    order = derive(knowledge.release(release_of(data)), vm_of(data))
    got = [
        (s.type.value, s.section.section_id, s.section.idstr, s.section.instance_id)
        for s in order.steps
        if not full_only or s.type.value == "FULL"
    ]
    return got, expected(data, full_only=full_only)


def test_real_streams_are_there() -> None:
    require(REAL, f"real streams in {_real} (set MIGORDER_REAL_STREAMS to a folder of them)")
    assert len(REAL) >= 9


@pytest.mark.parametrize("path", REAL, ids=[p.name.removesuffix(".order.json") for p in REAL])
def test_full_order_of_real_stream(path: Path) -> None:
    got, want = _derived(path, full_only=True)
    assert [(g[2], g[3]) for g in got] == [(w[2], w[3]) for w in want]


@pytest.mark.parametrize("path", REAL, ids=[p.name.removesuffix(".order.json") for p in REAL])
def test_every_section_and_section_id_of_real_stream(path: Path) -> None:
    got, want = _derived(path, full_only=False)
    assert got == want


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name.removesuffix(".order.json") for p in CAPTURES])
def test_captured_order(path: Path) -> None:
    got, want = _derived(path, full_only=False)
    assert got == want
