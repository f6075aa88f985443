"""A release from anywhere: ``--qemu FILE`` (written by ``scan --out``) and ``--qemu-tree DIR``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ordering.cli import main
from ordering.sources.models import load_knowledge
from ordering.sources.release_file import cache_dir, release_from_tree

BASIC = Path(__file__).parent / "fixtures/qemu-trees/basic"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_scan_out_file_is_a_release_for_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "rel.toml"
    run(capsys, "scan", str(BASIC), "--out", str(out))
    code, text, err = run(capsys, "check", "--qemu", str(out))
    assert err == ""
    assert code in (0, 1)
    assert text.startswith("migorder check: default from a QEMU 7.2 source")
    assert "Assumes the machine layouts of bundled models/machines/7.2" in text
    assert "release features not read from source, borrowed from bundled 7.2" in text
    assert "no_hpet_no_acpi_flags=on" in text


@pytest.mark.parametrize("command", ["check", "order", "simulate", "diagram", "timeline"])
def test_every_vm_command_takes_a_tree(capsys: pytest.CaptureFixture[str], command: str, tmp_path: Path) -> None:
    extra = ["-o", str(tmp_path / "x.txt"), "--format", "ascii"] if command in ("diagram", "timeline") else []
    code, _, err = run(capsys, command, "--qemu-tree", str(BASIC), *extra)
    assert err == ""
    assert code in (0, 1)


def test_prove_and_history_take_files_and_trees(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, text, _ = run(capsys, "prove", "apic-before-vfio", "--qemu", "7.2", "--qemu-tree", str(BASIC))
    assert code == 1
    assert text.count("apic-before-vfio on QEMU 7.2") == 2
    out = tmp_path / "rel.toml"
    run(capsys, "scan", str(BASIC), "--out", str(out))
    code, text, _ = run(capsys, "history", "--qemu", str(out))
    assert code == 0
    assert "7.2:file" in text


def test_tree_scan_is_cached_by_content(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(BASIC, tree)
    k = load_knowledge()
    first = release_from_tree(tree, k)
    cached = list(cache_dir().glob("*.toml"))
    assert len(cached) == 1
    assert release_from_tree(tree, k).scheme == first.scheme
    assert len(list(cache_dir().glob("*.toml"))) == 1
    header = tree / "include/migration/vmstate.h"
    header.write_text(header.read_text().replace("MIG_PRI_IOMMU,", "MIG_PRI_IOMMU,\n    MIG_PRI_NEW,"))
    changed = release_from_tree(tree, k)
    assert changed.scheme.has("MIG_PRI_NEW")
    assert len(list(cache_dir().glob("*.toml"))) == 2


def test_bad_release_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("release = 7\n")
    code, _, err = run(capsys, "check", "--qemu", str(bad))
    assert code == 2
    assert err.count("\n") == 1
    assert str(bad) in err


def test_file_and_tree_together_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--qemu", "7.2", "--qemu-tree", str(BASIC))
    assert code == 2
    assert "not both" in err


def test_simulate_source_release_from_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "rel.toml"
    run(capsys, "scan", str(BASIC), "--out", str(out))
    code, text, err = run(capsys, "simulate", "--qemu", "7.2", "--source-qemu", str(out))
    assert err == ""
    assert code in (0, 1)
    assert "7.2" in text
