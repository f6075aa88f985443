"""``migorder stream`` and ``migorder capture`` on the command line."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest
from conftest import qemu_binary, require
from stream_helpers import real_streams

from ordering.cli import main

STREAMS = {p.name.removesuffix(".mig.xz"): p for p in real_streams()}


def _path(name: str) -> Path:
    require(name in STREAMS, f"real stream {name}")
    return STREAMS[name]


def test_stream_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream", str(_path("b-x86-q35-iommu-pci-smp4"))]) == 0
    out = capsys.readouterr().out
    assert "machine pc-q35-7.2, priorities of QEMU 7.2" in out
    line = next(ln for ln in out.splitlines() if " iommu-intel " in ln)
    assert line.split()[1:3] == ["FULL", "complete"]
    assert "IOMMU" in line
    assert "viommu" in line
    assert "intel-iommu" in line
    assert "warning" not in out


def test_stream_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream", "--json", str(_path("qemu11.1-a-x86-q35-minimal"))]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["machine"] == "pc-q35-11.1"
    assert data["release"] == "11.1"
    assert [c["name"] for c in data["commands"]] == ["SWITCHOVER_START"]
    first_full = next(s for s in data["sections"] if s["type"] == "FULL")
    assert set(first_full) >= {"idstr", "instance_id", "section_id", "phase", "priority",
                               "vmsd", "kind", "type"}
    assert (first_full["idstr"], first_full["priority"], first_full["kind"]) == (
        "apic", "MIG_PRI_APIC", "apic")
    assert data["disagreements"] == []


def test_stream_wrong_release_warns(capsys: pytest.CaptureFixture[str]) -> None:
    # A 7.2 stream read with 11.1's priorities (MIG_PRI_APIC): the apic section that comes
    # after a MIG_PRI_DEFAULT one contradicts them, and the tool says so. (The other way, 7.2
    # refuses the 11.1 stream's machine type pc-q35-11.1.)
    assert main(["stream", "--qemu", "11.1", str(_path("a-x86-q35-minimal"))]) == 0
    out = capsys.readouterr().out
    assert "warning: kvm-tpr-opt (MIG_PRI_DEFAULT, section_id 6) was sent before apic (MIG_PRI_APIC" in out
    assert main(["stream", "--qemu", "7.2", str(_path("qemu11.1-a-x86-q35-minimal"))]) == 2
    assert "QEMU 7.2 refuses -machine pc-q35-11.1" in capsys.readouterr().err


def test_stream_truncated_exits_2_with_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = lzma.decompress(_path("a-x86-q35-minimal").read_bytes())
    cut = tmp_path / "cut.mig"
    cut.write_bytes(raw[:5000])
    assert main(["stream", str(cut)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("migorder: error: ")
    assert "byte " in err
    assert "Traceback" not in err


def test_stream_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream", "/nonexistent/x.mig"]) == 2
    assert "byte 0" in capsys.readouterr().err


def test_stream_unknown_release_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream", "--qemu", "1.0", str(_path("a-x86-q35-minimal"))]) == 2
    assert "no bundled QEMU release" in capsys.readouterr().err


def test_capture_needs_a_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capture"]) == 2
    assert "after --" in capsys.readouterr().err


def test_capture_bad_hotplug_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capture", "--hotplug", "{nope", "--", "qemu-system-x86_64"]) == 2
    assert "--hotplug" in capsys.readouterr().err


BASE = ["-nodefaults", "-display", "none", "-accel", "tcg", "-monitor", "none", "-serial", "none"]


@pytest.mark.qemu
def test_capture_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qemu = qemu_binary("qemu-system-x86_64")
    out = tmp_path / "vm.mig"
    argv = [qemu, *BASE, "-machine", "q35", "-m", "64", "-device", "intel-iommu"]
    assert main(["capture", "--json", "--out", str(out), "--", *argv]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["file"] == str(out)
    assert data["order"][0] == "iommu-intel"
    assert data["release"] == data["qemu"].rsplit(".", 1)[0]
    assert main(["stream", str(out)]) == 0


@pytest.mark.qemu
def test_capture_cli_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qemu = qemu_binary("qemu-system-x86_64")
    argv = [qemu, *BASE, "-machine", "q35", "-m", "64", "-device", "amd-iommu"]
    assert main(["capture", "--out", str(tmp_path / "x.mig"), "--", *argv]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "migorder: error: State blocked by non-migratable device 'amd-iommu'"


@pytest.mark.parametrize("where", ["missing", "folder"])
def test_capture_out_is_checked_before_qemu_runs(tmp_path: Path, where: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """QEMU's own words were "Unable to write to command: Broken pipe"."""
    out = tmp_path / "missing" / "x.mig" if where == "missing" else tmp_path
    assert main(["capture", "--out", str(out), "--", "qemu-system-x86_64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"migorder: error: --out '{out}': expected a file")
    assert err.count("\n") == 1
