"""The `migorder` command as a user meets it: exit codes, JSON shapes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ordering.cli import main

Run = tuple[int, str, str]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_arguments_checks_the_default_scenario_on_the_newest_release(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert out.startswith("migorder check: default from a QEMU 11.1 source")
    assert code == 0


def test_check_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--qemu", "10.0", "--json")
    data = json.loads(out)
    assert code == 1
    assert data["release"] == "10.0"
    for entry in data["rules"]:
        assert {"rule", "verdict", "by", "first", "then", "evidence", "provenance"} <= set(entry)
        assert entry["provenance"]
    tie = [r for r in data["rules"] if r["rule"] == "apic-before-vfio"]
    assert tie
    assert {r["verdict"] for r in tie} == {"tie-fragile"}
    assert tie[0]["evidence"]["first"]["priority"] == "MIG_PRI_DEFAULT"
    assert "registration order decides" in tie[0]["evidence"]["text"]
    assert [b["message"] for b in data["blockers"]] == [
        "0000:3b:00.0: Migration is currently not supported with vIOMMU enabled",
        "0000:3b:00.1: Migration is currently not supported with vIOMMU enabled",
    ]


def test_check_text_groups_by_verdict_with_evidence(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--qemu", "10.0")
    assert code == 1
    assert out.index("TIE-FRAGILE") < out.index("GUARANTEED") < out.index("NOT LIVE")
    assert "source: commit d943cef76090" in out
    assert "[INEFFECTIVE] MIG_PRI_VIRTIO_MEM" in out


def test_check_a_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "check", "--qemu", "7.2", "--", "qemu-system-aarch64", "-nodefaults", "-machine",
        "virt,gic-version=3,its=on", "-smp", "2", "-device", "virtio-net-pci",
    )
    assert code == 0
    assert "gicv3-before-its" in out
    assert "its-before-msi-devices" in out


def test_order_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "order", "--qemu", "7.2", "--json", "--", "-nodefaults", "-machine", "q35", "-m", "128")
    assert code == 0
    sections = json.loads(out)["sections"]
    assert {"idstr", "instance_id", "section_id", "phase", "priority", "vmsd", "kind"} <= set(sections[0])
    assert [(s["type"], s["idstr"]) for s in sections[:3]] == [("START", "ram"), ("PART", "ram"), ("END", "ram")]
    assert sections[-1]["idstr"] == "globalstate"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "nosuch"], "no scenario 'nosuch'"),
        (["check", "--qemu", "9.9"], "no bundled QEMU release '9.9'"),
        (["check", "default", "--", "-machine", "q35"], "not both"),
        (["order", "--", "-nodefaults", "-machine", "q35", "-device", "frob"], "unknown device type 'frob'"),
        (["explain", "nosuch-rule"], "no rule 'nosuch-rule'"),
        (["check", "--stream", "/nonexistent.mig"], "/nonexistent.mig"),
    ],
)
def test_user_mistakes_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err + out


def test_unknown_subcommand_is_usage_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_releases_rules_explain(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "releases")
    assert code == 0
    assert "QEMU 10.2" in out
    assert "MIG_PRI_APIC" in out
    assert "priority on a nested VMSD only (no effect): virtio-mem-device (in virtio-mem)" in out
    code, out, _ = run(capsys, "rules", "--json")
    assert {r["rule"] for r in json.loads(out)} >= {"pci-bus-before-viommu", "apic-before-vfio", "gicv3-before-its"}
    code, out, _ = run(capsys, "explain", "apic-before-vfio", "--json")
    rows = {r["release"]: (r["verdict"], r["by"]) for r in json.loads(out)["by_release"]}
    assert rows["10.0"] == ("tie-fragile", "registration")
    assert rows["10.2"] == ("guaranteed", "priority")


def test_scenario_file_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('command = "-nodefaults -machine q35 -smp 2,maxcpus=4 -device vfio-pci,host=0000:01:00.0,id=v0"\n[[hotplug]]\ncpu = 3\n')
    code, out, _ = run(capsys, "check", str(path), "--qemu", "10.0")
    assert code == 1
    assert "VIOLATED" in out
    assert "apic#3" in out


FIXTURES = Path(__file__).parent / "fixtures"


def test_scan_lints_and_writes_a_loadable_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "release.toml"
    code, text, _ = run(capsys, "scan", str(FIXTURES / "qemu-trees" / "basic"), "--out", str(out))
    assert code == 1  # the fixture puts a priority on a nested VMSD
    assert "cannot take effect" in text
    assert "hw/virtio/virtio-mem.c:" in text
    from ordering.sources.device_models import read_devices
    from ordering.sources.models import bundled_models_dir, read_kinds, read_release

    models = bundled_models_dir()
    kinds = read_kinds(models / "kinds.toml")
    rel = read_release(out, models / "machines", read_devices(models / "devices.toml"), kinds)
    assert rel.priority_of("iommu-intel").name == "MIG_PRI_IOMMU"
    assert rel.priority_of("virtio-mem-device").name == "MIG_PRI_DEFAULT"  # nested: no effect


def test_scan_of_a_tree_without_enum_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan", str(FIXTURES / "qemu-trees" / "no-enum"))
    assert code == 2
    assert "vmstate.h" in err


def test_dump_vmstate_compare_in_qemu_words(capsys: pytest.CaptureFixture[str]) -> None:
    d = FIXTURES / "dump-vmstate"
    code, text, _ = run(capsys, "dump-vmstate", str(d / "src-small.json"), str(d / "dst-small.json"))
    assert code == 1
    assert "fx-new: incoming version_id 3 is too new for local version_id 2" in text
    assert "too old for local minimum version_id  2" in text  # QEMU <= 10.1: two spaces
    code, text, _ = run(capsys, "dump-vmstate", str(d / "src-small.json"))
    assert code == 0
    code, _, err = run(capsys, "dump-vmstate", str(d / "malformed.json"))
    assert code == 2
    assert "malformed.json:" in err


def test_order_says_what_kvm_adds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "order", "--json", "--", "-nodefaults", "-machine", "q35", "-enable-kvm")
    assert code == 0
    assert "captured under TCG" in json.loads(out)["notes"][0]
    code, out, _ = run(capsys, "order", "--json", "--", "-nodefaults", "-machine", "q35", "-accel", "tcg")
    assert json.loads(out)["notes"] == []


def test_not_live_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--qemu", "10.2", "--json")
    assert code == 1  # 10.2 blocks VFIO with a vIOMMU
    reasons = {r["rule"]: r["evidence"]["text"] for r in json.loads(out)["rules"] if r["verdict"] == "not-live"}
    assert reasons["gicv3-before-its"] == "not live: the rule is about aarch64 machines; this is x86_64"
    assert reasons["vfio-before-container"] == "not live: the VM has no vfio-container section"


def test_simulate_reports_qemus_blocker_first(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "simulate", "hazard-iommu-discarded", "--qemu", "10.0", "--json")
    assert [b["message"] for b in json.loads(out)["blockers"]] == [
        "0000:3b:00.0: Migration is currently not supported with vIOMMU enabled"
    ]
    code, out, _ = run(capsys, "simulate", "hazard-iommu-discarded", "--qemu", "7.2")
    assert code == 1
    assert not out.startswith("BLOCKED")


def test_simulate_with_multifd_replays_the_worst_interleaving(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "simulate", "hazard-msi-before-its", "--qemu", "10.0", "--multifd")
    assert code == 1
    assert out.startswith("multifd: 0000:00:01.0/vfio's config load replayed")
    code, out, _ = run(capsys, "simulate", "hazard-msi-before-its", "--qemu", "10.2", "--multifd")
    assert code == 0  # ARM 10.2: x-migration-load-config-after-iter holds the config load back
