"""The benchmarks as a user without QEMU's source meets them: one line saying what is needed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_stream_read_without_deb_src_says_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("stream_read")
    monkeypatch.delenv("QEMU_SRC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no apt-get, as on a machine without deb-src
    monkeypatch.setattr(bench, "DEFAULT_QEMU_SRC", tmp_path / "none")
    monkeypatch.setattr(bench, "CACHE", tmp_path / "cache")
    assert bench.main(["--out", str(tmp_path / "out.json")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("stream_read.py: needs QEMU's scripts/analyze-migration.py: set QEMU_SRC")
    assert not (tmp_path / "out.json").exists()


def test_results_go_to_an_untracked_folder_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    results = _load("_results")
    monkeypatch.delenv(results.UPDATE_ENV, raising=False)
    assert results.results_path("x").parent == BENCH / "results" / "local"
    assert results.results_path("x", update=True) == BENCH / "results" / "x.json"
    monkeypatch.setenv(results.UPDATE_ENV, "1")
    assert results.results_path("x") == BENCH / "results" / "x.json"
    ignored = (BENCH.parent / ".gitignore").read_text().splitlines()
    assert "benchmarks/results/local/" in ignored
