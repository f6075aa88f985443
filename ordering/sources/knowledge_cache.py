"""The parsed models, kept on disk between runs: a command starts without parsing ~30 TOML files.

Reading ``models/`` takes ~150 ms of TOML parsing; unpickling the result takes a few. The
file is keyed by the path, size and modification time of every file under the models folder
*and* of every module of the ``ordering`` package (a changed loader or model class never
meets an old pickle), plus the Python version. It lives in ``$XDG_CACHE_HOME/migorder`` (else
``~/.cache/migorder``); when that cannot be written, or ``MIGORDER_NO_CACHE=1``, the models
are simply parsed each time. A broken or foreign file is ignored and rewritten.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from ordering.model.knowledge import Knowledge

NO_CACHE_ENV = "MIGORDER_NO_CACHE"
_PACKAGE = Path(__file__).resolve().parents[1]


def _cache_dir() -> Path | None:
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no passwd entry
            return None
    return Path(base) / "migorder"


def _key(models_dir: Path) -> bytes:
    """Every input's path, size and mtime: stored whole in the file and compared (the file
    name is only its CRC, so that no hash library is imported at start-up)."""
    parts = [sys.version, str(models_dir)]
    for root in (models_dir, _PACKAGE):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".toml", ".py") and path.is_file():
                st = path.stat()
                parts.append(f"{path}\0{st.st_size}\0{st.st_mtime_ns}")
    return "\n".join(parts).encode("utf-8", "surrogateescape")


def cached_knowledge(models_dir: Path, read: Callable[[Path], Knowledge]) -> Knowledge:
    """``read(models_dir)``, or the same result from the disk cache when nothing changed."""
    folder = _cache_dir()
    if folder is None or os.environ.get(NO_CACHE_ENV, "") not in ("", "0"):
        return read(models_dir)
    try:
        key = _key(models_dir)
    except OSError:
        return read(models_dir)
    path = folder / f"knowledge-{zlib.crc32(key):08x}.pickle"
    with contextlib.suppress(Exception):  # missing, truncated or from elsewhere: parse again
        if path.stat().st_uid == os.getuid():
            with open(path, "rb") as f:
                stored_key, loaded = pickle.load(f)
            if stored_key == key and isinstance(loaded, Knowledge):
                return loaded
    knowledge = read(models_dir)
    with contextlib.suppress(Exception):  # an unwritable cache only costs the next run's time
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("knowledge-*.pickle"):
            old.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".knowledge-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump((key, knowledge), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return knowledge
