"""The pytest plugin, as a QEMU developer runs it: ``pytest --migorder-tree=. --migorder-baseline=R``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import find

from ordering import strategies as ms
from ordering.sources.qemu_tree import scan_tree, to_release_toml

pytest_plugins = ["pytester"]

IN_CI = os.environ.get("CI", "").lower() == "true"
BASIC = Path(__file__).parent / "fixtures" / "qemu-trees" / "basic"
REAL_7_2 = os.environ.get("MIGORDER_QEMU_SRC_7_2", "")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_without_its_options_the_plugin_does_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_mine():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "migorder" not in result.stdout.str()
    help_text = pytester.runpytest("--help").stdout.str()
    assert "--migorder-tree=DIR" in help_text
    assert "--migorder-baseline=R" in help_text


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "qemu"
    shutil.copytree(BASIC, tree)
    return tree


def test_an_unchanged_tree_is_no_worse_than_itself(pytester: pytest.Pytester, tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    baseline = tmp_path / "baseline.toml"
    baseline.write_text(to_release_toml(scan_tree(tree), machines="7.2"), encoding="utf-8")
    pytester.makepyfile(test_qemus_own="def test_never_collected():\n    assert False\n")
    result = pytester.runpytest("-p", "no:cacheprovider", f"--migorder-tree={tree}", f"--migorder-baseline={baseline}",
                                "-k", "no-worse-than")
    result.assert_outcomes(passed=1, deselected=15)


def test_a_tree_patched_to_break_a_rule_fails_naming_it(pytester: pytest.Pytester, tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    baseline = tmp_path / "baseline.toml"
    baseline.write_text(to_release_toml(scan_tree(tree), machines="7.2"), encoding="utf-8")
    patch = find(ms.priority_edits(tree, vmsds=["iommu-intel"]), lambda p: "drop" in p.summary)
    patch.apply(tree)  # the vIOMMU loses MIG_PRI_IOMMU: it ties with the devices that DMA through it
    result = pytester.runpytest("-p", "no:cacheprovider", f"--migorder-tree={tree}", f"--migorder-baseline={baseline}",
                                "-k", "no-worse-than or viommu-before-dma")
    result.assert_outcomes(failed=2, deselected=14)
    out = result.stdout.str()
    assert f"QEMU 7.2 ({tree}) is worse than the baseline 7.2 ({baseline})" in out
    assert "viommu-before-dma-devices (default): guaranteed → tie-fragile" in out
    assert "source: " in out


def test_a_bad_tree_is_one_line_per_property(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", f"--migorder-tree={tmp_path / 'nowhere'}",
                                "--migorder-baseline=10.2", "-k", "no-worse-than")
    result.assert_outcomes(failed=1, deselected=15)
    assert "migorder: " in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def _real_tree() -> Path:
    if not REAL_7_2 or not (Path(REAL_7_2) / "VERSION").is_file():
        if IN_CI:
            pytest.fail("MIGORDER_QEMU_SRC_7_2 must name a QEMU 7.2 tree under CI=true")
        pytest.skip("set MIGORDER_QEMU_SRC_7_2 to a QEMU 7.2 source tree")
    return Path(REAL_7_2)


@pytest.mark.slow
def test_the_real_7_2_tree(pytester: pytest.Pytester) -> None:
    tree = _real_tree()
    same = pytester.runpytest("-p", "no:cacheprovider", f"--migorder-tree={tree}", "--migorder-baseline=7.2",
                              "-k", "no-worse-than or apic-before-vfio")
    # 7.2 as scanned is no worse than the bundled 7.2, and its APIC tie is a real hazard.
    same.assert_outcomes(passed=1, failed=1, deselected=14)
    assert "apic-before-vfio: counterexample over every VM of QEMU 7.2" in same.stdout.str()
    newer = pytester.runpytest("-p", "no:cacheprovider", f"--migorder-tree={tree}", "--migorder-baseline=10.2",
                               "-k", "no-worse-than")
    newer.assert_outcomes(failed=1, deselected=15)
    assert "apic-before-vfio (every VM): guaranteed → tie-fragile" in newer.stdout.str()
