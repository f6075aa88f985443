"""`--from R --to R`: the source decides the order, the destination what it accepts and which
rules are live; the report says which side decided each verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ordering.cli import main

VFIO_VM = ["-nodefaults", "-machine", "pc-q35-7.2", "-smp", "2,maxcpus=4", "-device", "intel-iommu", "-device", "pcie-root-port,id=rp0,chassis=1", "-device", "virtio-net-pci,bus=rp0", "-device", "vfio-pci,host=0000:3b:00.0,id=nic0"]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def test_the_destination_refuses_a_section_it_does_not_register(capsys: pytest.CaptureFixture[str]) -> None:
    # 7.2's vfio-pci registers no migration handler without x-enable-migration=on.
    code, data = run_json(capsys, "check", "--from", "10.0", "--to", "7.2", "--json", "--", *VFIO_VM)
    assert code == 1
    assert (data["from"], data["to"], data["release"]) == ("10.0", "7.2", "10.0")
    dest = data["destination"]
    assert isinstance(dest, dict)
    refused = dest["refused_sections"]
    assert [r["section"] for r in refused] == ["0000:00:02.0/vfio"]
    assert refused[0]["message"].startswith("Unknown savevm section or instance '0000:00:02.0/vfio' 0.")
    assert dest["version_ids"].startswith("unknown")
    sides = {(r["rule"], r["verdict"], r["decided_by"]) for r in data["rules"]}
    # The rule's then section is not registered on the destination: not live there.
    assert ("apic-before-vfio", "not-live", "destination") in sides
    assert ("pci-bus-before-viommu", "guaranteed", "source") in sides


def test_the_same_vm_the_other_way_is_decided_by_the_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", "--from", "7.2", "--to", "10.0", "--json", "--", *VFIO_VM)
    assert code == 1  # 7.2's VFIO blocker stops the migration at the source
    sides = {(r["rule"], r["decided_by"]) for r in data["rules"]}
    assert ("apic-before-vfio", "both") in sides  # not live on either: no vfio section from 7.2
    blockers = data["destination"]["blockers"]
    assert {(b["message"], b["decided_by"]) for b in blockers} >= {
        ("VFIO device doesn't support migration", "source"),
        ("0000:3b:00.0: Migration is currently not supported with vIOMMU enabled", "destination"),
    }


def test_a_newer_machine_type_is_refused_by_an_older_destination(capsys: pytest.CaptureFixture[str]) -> None:
    vm = ["-nodefaults", "-machine", "pc-q35-10.0", "-device", "virtio-net-pci"]
    code, data = run_json(capsys, "check", "--from", "10.0", "--to", "7.2", "--json", "--", *vm)
    assert code == 1
    assert data["destination"]["refused_command_line"].startswith(
        "QEMU 7.2 refuses -machine pc-q35-10.0: 'unsupported machine type'"
    )
    code, data = run_json(capsys, "check", "--from", "10.0", "--to", "11.1", "--json", "--", *vm)
    assert code == 0
    assert data["destination"]["refused_command_line"] is None


def test_an_unversioned_machine_type_is_the_sources_newest(capsys: pytest.CaptureFixture[str]) -> None:
    """``-machine q35`` on a 10.2 source is pc-q35-10.2; the migration keeps it, and a 10.1
    destination does not have it."""
    vm = ["-nodefaults", "-machine", "q35", "-device", "virtio-net-pci"]
    code, data = run_json(capsys, "check", "--from", "10.2", "--to", "10.1", "--json", "--", *vm)
    assert code == 1
    assert data["destination"]["refused_command_line"].startswith("QEMU 10.1 refuses -machine pc-q35-10.2")
    code, data = run_json(capsys, "check", "--from", "10.1", "--to", "10.2", "--json", "--", *vm)
    assert code == 0
    assert data["destination"]["refused_command_line"] is None


def test_a_rollback_keeps_the_first_sources_machine_type() -> None:
    from ordering.fleet import judge_vm
    from ordering.sources.models import load_knowledge

    k = load_knowledge()
    argv = ["qemu-system-x86_64", "-nodefaults", "-machine", "q35", "-device", "virtio-net-pci"]
    # Started on 10.0 (pc-q35-10.0), moved to 11.1 and back: 10.0 has its own machine type.
    assert judge_vm(k, argv, "vm1", k.release("10.0"), k.release("11.1"), both_ways=True) == ()
    # Started on 11.1 (pc-q35-11.1), moved to 10.0: 10.0 refuses it.
    found = judge_vm(k, argv, "vm1", k.release("11.1"), k.release("10.0"))
    assert [f.kind.value for f in found] == ["refusal"]


def test_qemu_is_shorthand_for_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--qemu", "10.0", "--json"]) == 1
    short, _ = capsys.readouterr()
    assert main(["check", "--from", "10.0", "--to", "10.0", "--json"]) == 1
    both, _ = capsys.readouterr()
    assert main(["check", "--from", "10.0", "--json"]) == 1
    one, _ = capsys.readouterr()
    assert short == both == one
    assert "destination" not in json.loads(short)


def test_text_says_which_side_decided(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--from", "10.0", "--to", "7.2", "--", *VFIO_VM]) == 1
    out, _ = capsys.readouterr()
    assert "from a QEMU 10.0 source to a QEMU 7.2 destination" in out
    assert "REFUSES 1 section(s) the source sends (decided by the destination)" in out
    assert "apic-before-vfio: apic#1 → 0000:00:02.0/vfio" in out.split("DESTINATION QEMU 7.2")[1]


def test_order_and_simulate_take_from_and_to(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["order", "--from", "10.0", "--to", "7.2", "--", *VFIO_VM]) == 0
    out, _ = capsys.readouterr()
    assert "Destination QEMU 7.2:\n  refuses 0000:00:02.0/vfio: Unknown savevm section" in out
    code, data = run_json(capsys, "simulate", "hazard-posted-remapped", "--from", "10.1", "--to", "10.2", "--json")
    assert code == 1
    assert (data["source_release"], data["destination_release"]) == ("10.1", "10.2")
    assert "destination" in data
    # --source-qemu stays an alias of --from
    code, data = run_json(capsys, "simulate", "hazard-posted-remapped", "--source-qemu", "10.1", "--to", "10.2", "--json")
    assert data["source_release"] == "10.1"


def test_from_and_to_take_a_release_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from ordering.sources.models import load_knowledge

    release = tmp_path / "my-10.0.toml"
    release.write_text((load_knowledge().root / "releases" / "10.0.toml").read_text())
    code, data = run_json(capsys, "check", "--from", str(release), "--to", "7.2", "--json", "--", *VFIO_VM)
    assert code == 1
    assert (data["from"], data["to"]) == ("10.0", "7.2")
    assert [r["section"] for r in data["destination"]["refused_sections"]] == ["0000:00:02.0/vfio"]


def test_simulate_says_a_refused_migration_is_a_finding(capsys: pytest.CaptureFixture[str]) -> None:
    """As check does: a migration QEMU will not do exits 1, whatever the trace shows."""
    q35 = ["--", "qemu-system-x86_64", "-nodefaults", "-machine", "q35"]
    assert main(["simulate", "--from", "10.2", "--to", "10.1", *q35]) == 1  # pc-q35-10.2 on 10.1
    assert main(["simulate", "--from", "10.1", "--to", "10.2", *q35]) == 0
    assert main(["simulate", "default", "--qemu", "10.0"]) == 1  # VFIO behind a vIOMMU: blocked
    out, _ = capsys.readouterr()
    assert "BLOCKED: " in out
