"""``migorder synthesize``: the smallest MIG_PRI change, the unsat core as a cycle, the round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ordering.cli import main
from ordering.sources.models import load_knowledge
from ordering.synthesize import synthesize

RULES = Path(__file__).parent / "data/rules"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_10_1_needs_one_vmsd_and_reuses_a_level(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "synthesize", "--qemu", "10.1", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["satisfiable"]
    assert not data["already"]
    assert [c["vmsd"] for c in data["changes"]] == ["apic"]
    change = data["changes"][0]
    assert change["before"] == "MIG_PRI_DEFAULT"
    assert change["after"] in change["existing_levels"]
    assert "MIG_PRI_GICV3" in change["existing_levels"]
    assert data["new_levels"] == []
    assert "MIG_PRI_DEFAULT < new < MIG_PRI_IOMMU" in change["new_level_positions"]
    assert data["round_trip"].startswith("BETTER (every rule guaranteed")
    assert "virtio-mem-before-viommu" in data["vacuous"]


def test_10_2_needs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "synthesize", "--qemu", "10.2")
    assert code == 0
    assert out.rstrip().endswith("NO CHANGE NEEDED")


def test_conflicting_rules_are_shown_as_a_cycle(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "synthesize", "--qemu", "11.1", "--json")
    assert code == 1
    data = json.loads(out)
    assert not data["satisfiable"]
    cycle = data["cycle"]
    assert {c["rule"] for c in cycle} == {"virtio-mem-before-viommu", "viommu-before-dma-devices"}
    assert cycle[0]["then"] == cycle[1]["first"]
    assert cycle[1]["then"] == cycle[0]["first"]


def test_a_new_level_with_its_only_position_and_the_patch_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "synthesize", "--qemu", "10.1", "--rules", str(RULES / "apic-between.toml"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["new_levels"] == ["MIG_PRI_APIC"]
    (change,) = data["changes"]
    assert change["existing_levels"] == []
    assert change["new_level_positions"] == ["MIG_PRI_IOMMU < new < MIG_PRI_PCI_BUS"]
    assert "+    MIG_PRI_APIC," in data["patch"]
    assert "+    .priority = MIG_PRI_APIC," in data["patch"]
    assert data["round_trip"] == "BETTER (every rule guaranteed for every VM)"


def test_the_core_directly() -> None:
    k = load_knowledge()
    s = synthesize(k.release("7.2"), [k.rule("gicv3-before-its")])
    assert s.already


def test_bad_rules_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nid = "x"\nfirst = "nosuchkind"\n')
    code, _, err = run(capsys, "synthesize", "--qemu", "10.1", "--rules", str(bad))
    assert code == 2
    assert err.count("\n") == 1


def test_on_the_real_7_2_tree_the_patch_applies_and_verifies(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tree = os.environ.get("MIGORDER_QEMU_SRC_7_2", "")
    if not tree or not (Path(tree) / "VERSION").is_file():
        from conftest import IN_CI

        if IN_CI:
            pytest.fail("MIGORDER_QEMU_SRC_7_2 must name a QEMU 7.2 tree under CI=true")
        pytest.skip("set MIGORDER_QEMU_SRC_7_2 to a QEMU 7.2 source tree")
    rules = tmp_path / "apic.toml"
    rules.write_text(
        '[[rule]]\nid = "apic-first"\ntitle = "t"\nfirst = "apic"\nthen = "vfio"\ncondition = "always"\n'
        'consequence = "degraded"\nsymptom = "t"\nprovenance = ["test"]\n'
    )
    code, out, _ = run(capsys, "synthesize", "--qemu-tree", tree, "--rules", str(rules), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["patch"].startswith("--- a/hw/intc/apic_common.c")
    assert data["round_trip"].startswith("BETTER")


def test_never_proposes_uninitialized_which_qemu_sorts_as_default(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # vfio (a handler, fixed at DEFAULT) before apic, apic before the ITS: the ITS must go
    # below LOW. MIG_PRI_UNINITIALIZED (0) is not below LOW: save_state_priority maps it to
    # DEFAULT (10.1+), so only a new level between UNINITIALIZED and LOW serves.
    rules = tmp_path / "low.toml"
    rules.write_text(
        '[[rule]]\nid = "vfio-first"\ntitle = "t"\nfirst = "vfio"\nthen = "apic"\n'
        'consequence = "degraded"\nsymptom = "t"\nprovenance = ["test"]\n\n'
        '[[rule]]\nid = "apic-first"\ntitle = "t"\nfirst = "apic"\nthen = "its"\n'
        'consequence = "degraded"\nsymptom = "t"\nprovenance = ["test"]\n'
    )
    code, out, _ = run(capsys, "synthesize", "--qemu", "10.1", "--rules", str(rules), "--json")
    data = json.loads(out)
    assert code == 0
    assert "MIG_PRI_UNINITIALIZED" not in {c["after"] for c in data["changes"]}
    assert data["round_trip"] == "BETTER (every rule guaranteed for every VM)"
