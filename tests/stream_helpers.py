"""Shared helpers for the stream reader's tests: where the real streams are, and temp copies."""

from __future__ import annotations

import gzip
import json
import lzma
import os
from pathlib import Path
from typing import Any

ENV = "MIGORDER_REAL_STREAMS"


def real_streams_dir() -> Path | None:
    """``$MIGORDER_REAL_STREAMS``, else ``shared/real-streams`` next to the repository."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "shared" / "real-streams"
    return here if here.is_dir() else None


def real_streams() -> list[Path]:
    """Every ``*.mig.xz`` with its ``*.order.json`` beside it, sorted by name."""
    d = real_streams_dir()
    if d is None or not d.is_dir():
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
