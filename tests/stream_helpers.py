"""Shared helpers for the stream reader's tests: where the real streams are, and temp copies."""

from __future__ import annotations

import gzip
import json
import lzma
import os
from pathlib import Path
from typing import Any

ENV = "MIGORDER_REAL_STREAMS"


BUNDLED = Path(__file__).parent / "data" / "real-streams"


def real_streams_dir() -> Path:
    """``$MIGORDER_REAL_STREAMS`` when set, else the streams committed in ``tests/data/real-streams``."""
    env = os.environ.get(ENV)
    return Path(env) if env else BUNDLED


def real_streams() -> list[Path]:
    """Every ``*.mig.xz`` with its ``*.order.json`` beside it, sorted by name."""
    d = real_streams_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("*.mig.xz") if ground_truth_path(p).exists())


def ground_truth_path(stream: Path) -> Path:
    """``NAME.order.json`` for ``NAME.mig.xz``."""
    return stream.with_name(stream.name.removesuffix(".mig.xz") + ".order.json")


def ground_truth(stream: Path) -> dict[str, Any]:
    """The parsed ``NAME.order.json``."""
    data: dict[str, Any] = json.loads(ground_truth_path(stream).read_text())
    return data


def decompressed(stream: Path) -> bytes:
    """The plain bytes of a real ``.mig.xz`` stream."""
    with lzma.open(stream, "rb") as f:
        return f.read()


def write_variant(raw: bytes, dest: Path, kind: str) -> Path:
    """Write ``raw`` to ``dest`` as ``plain``, ``gz`` or ``xz``; return ``dest``."""
    if kind == "gz":
        dest.write_bytes(gzip.compress(raw, compresslevel=1))
    elif kind == "xz":
        dest.write_bytes(lzma.compress(raw, preset=0))
    else:
        dest.write_bytes(raw)
    return dest
