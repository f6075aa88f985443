"""The z3 proofs: each script in proofs/ runs and says what QEMU's releases guarantee."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ordering.cli import main
from ordering.smt import candidates, prove
from ordering.sources.models import load_knowledge

PROOFS = sorted((Path(__file__).resolve().parents[1] / "proofs").glob("*.py"))
K = load_knowledge()


@pytest.mark.parametrize("script", PROOFS, ids=[p.stem for p in PROOFS])
def test_proof_script(script: Path) -> None:
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PROVED" in out.stdout or "COUNTEREXAMPLE" in out.stdout


def test_there_are_proofs() -> None:
    assert len(PROOFS) >= 3


def test_apic_counterexample_is_the_registration_tie() -> None:
    proof = prove(K.release("10.0"), K.rule("apic-before-vfio"))
    assert not proof.proved
    assert proof.counterexample is not None
    assert proof.counterexample.first.priority.name == proof.counterexample.then.priority.name == "MIG_PRI_DEFAULT"
    assert proof.counterexample.first_registered > proof.counterexample.then_registered


def test_unmigratable_vmsds_are_no_counterexample() -> None:
    # amd-iommu is unmigratable in 7.2: a VM with it never migrates, so it is not a candidate.
    assert "amd-iommu" not in {c.vmsd for c in candidates(K.release("7.2"), "viommu")}
    # from 10.1 it migrates with pci-id= naming its AMDVI-PCI function (captured on 11.1), so
    # a VM may hold it: there it is a candidate.
    assert "amd-iommu" in {c.vmsd for c in candidates(K.release("10.2"), "viommu")}


def test_prove_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "gicv3-before-its"]) == 0
    assert main(["prove", "apic-before-vfio", "--qemu", "10.0"]) == 1
    out = capsys.readouterr().out
    assert "apic-before-vfio on QEMU 10.0: COUNTEREXAMPLE: tie at MIG_PRI_DEFAULT" in out


def test_a_rule_only_live_in_blocked_vms_is_vacuous() -> None:
    proof = prove(K.release("10.0"), K.rule("virtio-mem-before-viommu"))
    assert proof.proved
    assert "Migration is currently not supported with vIOMMU enabled" in proof.blocked
    seven = prove(K.release("7.2"), K.rule("virtio-mem-before-viommu"))
    assert not seven.proved
    assert seven.requires == "vfio-pci x-enable-migration=on"
