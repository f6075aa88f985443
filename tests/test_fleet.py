"""`migorder fleet`: libvirt logs, command-line files and running QEMUs, each shape judged once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ordering.cli import main
from ordering.fleet import shape_id
from ordering.sources.fleet_inputs import parse_libvirt_log, read_inputs, read_running, shell_words

DATA = Path(__file__).parent / "data" / "fleet"
LOGS = DATA / "logs"
CMDLINES = DATA / "cmdlines.txt"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["fleet", "--no-progress", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# --- reading ---------------------------------------------------------------------------


def test_a_log_gives_its_last_start_with_continuations_environment_and_json_options() -> None:
    rec = next(read_inputs([LOGS / "web-01.log"]))
    assert rec.problem == ""
    assert rec.name == "web-01"
    assert rec.qemu_version == "8.2.2"  # the last start's header, not the first's 7.2.0
    assert rec.where.endswith("web-01.log:4")
    argv = rec.argv
    assert argv[0] == "/usr/bin/qemu-system-x86_64"  # LC_ALL=, PATH=, HOME=, XDG_* dropped
    assert not any(a.startswith(("LC_ALL=", "PATH=", "XDG_")) for a in argv)
    assert argv[argv.index("-m") + 1] == "2048"  # the first start had -m 1024
    assert '{"driver":"vfio-pci","host":"0000:5e:00.2","id":"hostdev0","bus":"pcie.0","addr":"0x3"}' in argv
    blockdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-blockdev"]
    assert len(blockdevs) == 2
    assert json.loads(blockdevs[0])["filename"] == "/var/lib/libvirt/images/web-01.qcow2"
    assert argv[-1] == "timestamp=on"  # the "char device redirected" line after it is not part of it


def test_the_one_line_form_of_older_libvirt_is_read_too() -> None:
    text = (LOGS / "web-01.log").read_text().split("\n")
    first_start = "\n".join(text[:2]) + "\n"
    rec = parse_libvirt_log(first_start, "web-01.log", "web-01")
    assert rec.qemu_version == "7.2.0"
    assert rec.argv[rec.argv.index("-m") + 1] == "1024"
    assert rec.argv[0] == "/usr/bin/qemu-system-x86_64"


def test_a_log_without_a_command_line_is_a_problem_not_a_crash() -> None:
    rec = next(read_inputs([LOGS / "broken.log"]))
    assert rec.argv == ()
    assert "expected QEMU's command line" in rec.problem


def test_shell_words_agrees_with_shlex_on_libvirt_quoting() -> None:
    import shlex

    for line in CMDLINES.read_text().splitlines()[1:]:
        assert shell_words(line) == shlex.split(line)
    tricky = """a 'b c'"d\\"e" f\\ g "" h'i'j"""
    assert shell_words(tricky) == shlex.split(tricky)
    with pytest.raises(ValueError, match="closing quotation"):
        shell_words("-device '{\"driver\":\"e1000e\"}")


# --- shapes -------------------------------------------------------------------------------


def _lines() -> list[list[str]]:
    return [shell_words(line) for line in CMDLINES.read_text().splitlines()[1:]]


def test_vms_differing_only_in_names_uuids_macs_paths_and_fds_are_one_shape() -> None:
    app1, app2, gpu1, gpu2, _, db = _lines()
    assert app1 != app2
    assert shape_id(app1) == shape_id(app2)
    assert shape_id(gpu1) == shape_id(gpu2)  # their VFIO host addresses differ too
    assert shape_id(db) != shape_id(gpu1)  # a vIOMMU more


def test_one_more_device_is_another_shape() -> None:
    app1, _, gpu1, *_ = _lines()
    assert shape_id(app1) != shape_id(gpu1)
    more = [*app1, "-device", '{"driver":"virtio-balloon-pci","id":"balloon0","bus":"pcie.0","addr":"0x4"}']
    assert shape_id(more) != shape_id(app1)
    other_smp = [a.replace("-smp", "-smp") for a in app1]
    other_smp[other_smp.index("-smp") + 1] = "2,maxcpus=8,sockets=8,cores=1,threads=1"
    assert shape_id(other_smp) != shape_id(app1)


def test_the_fleet_checks_each_shape_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(CMDLINES), "--from", "10.0", "--to", "11.1", "--json-lines")
    vms = json_lines(out)
    assert code == 1
    assert [v["vm"] for v in vms] == ["app-01", "app-02", "gpu-01", "gpu-02", "legacy-01", "db-02"]
    assert vms[0]["shape"] == vms[1]["shape"] != vms[2]["shape"] == vms[3]["shape"]
    for v in vms:
        assert set(v) == {"vm", "source", "shape", "from", "to", "exit", "findings"}
        assert (v["from"], v["to"]) == ("10.0", "11.1")
    assert [v["exit"] for v in vms] == [0, 0, 1, 1, 1, 1]
    assert vms[2]["source"].endswith("cmdlines.txt:4")


# --- findings -----------------------------------------------------------------------------


def test_a_registration_tie_is_said_per_vm_with_the_hot_plug_that_breaks_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(CMDLINES), "--from", "10.0", "--to", "11.1")
    assert code == 1
    assert "TIE-FRAGILE [10.0→11.1] apic-before-vfio: 3 VM(s) (decided by the source)\n    e.g. gpu-01, gpu-02, db-02" in out
    assert (
        "gpu-02 (" in out
    )
    assert (
        "[10.0→11.1] tie-fragile: a vCPU hot-plugged after VFIO device hostdev0 would break "
        "apic-before-vfio on this source (10.0)" in out
    )
    # 10.0 refuses VFIO behind a vIOMMU; 11.1 only for a device without its own dirty tracking
    assert (
        "BLOCKER [10.0→11.1] <host>: Migration is currently not supported with vIOMMU enabled: 1 VM(s) "
        "(decided by the source)\n    e.g. db-02" in out
    )
    # a line without -nodefaults is not understood, not a crash
    assert "NOT UNDERSTOOD expected -nodefaults" in out
    assert "e.g. legacy-01" in out
    assert "migorder fleet: 6 VM(s), 4 distinct shape(s) checked; 4 VM(s) with findings, 2 clean" in out


def test_logs_give_the_source_release_and_say_how(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(LOGS), "--to", "10.0", "--summary-only")
    assert code == 1
    # 8.2 is not bundled: judging it as 7.2 gave 7.2's false "VFIO device doesn't support migration"
    assert "NOT UNDERSTOOD QEMU 8.2.2 is not a bundled release (7.2, 10.0, 10.1, 10.2, 11.1): migorder cannot judge it" in out
    assert "why: migorder holds no model of the QEMU release its log names" in out
    assert "--from 7.2 for 1 VM(s) whose log names QEMU 8.2.2" not in out
    assert "--from 7.2 for 1 VM(s) whose log names QEMU 7.2.0\n" in out
    assert "NOT UNDERSTOOD expected QEMU's command line after the last 'starting up' line" in out
    assert "VMs with findings" not in out
    # 7.2's vfio-pci has no migration without x-enable-migration=on; 10.0 refuses VFIO behind a vIOMMU
    assert "BLOCKER [7.2→10.0] VFIO device doesn't support migration: 1 VM(s) (decided by the source)" in out
    assert (
        "BLOCKER [7.2→10.0] <host>: Migration is currently not supported with vIOMMU enabled: 1 VM(s) "
        "(decided by the destination)" in out
    )


def test_both_ways_adds_the_rollback(capsys: pytest.CaptureFixture[str]) -> None:
    _code, out, _ = run(capsys, str(LOGS / "db-01.log"), "--to", "10.0", "--both-ways", "--json-lines")
    (vm,) = json_lines(out)
    directions = {f["direction"] for f in vm["findings"]}
    assert directions == {"7.2→10.0", "10.0→7.2"}
    back = [f for f in vm["findings"] if f["direction"] == "10.0→7.2" and f["kind"] == "refusal"]
    # 7.2 registers no vfio section without x-enable-migration: the rollback's destination refuses it
    assert back
    assert back[0]["decided_by"] == "destination"
    assert back[0]["detail"].startswith("Unknown savevm section or instance '0000:00:02.2:00.0/vfio' 0.")
    # -no-hpet: the rollback's source (10.0) runs the VM as libvirt starts it there (hpet=off)
    assert not any("-no-hpet" in f["detail"] for f in vm["findings"])


def test_jobs_2_agrees_with_jobs_1(capsys: pytest.CaptureFixture[str]) -> None:
    _, one, _ = run(capsys, str(LOGS), str(CMDLINES), "--from", "10.0", "--to", "10.2", "--jobs", "1", "--json-lines")
    _, two, _ = run(capsys, str(LOGS), str(CMDLINES), "--from", "10.0", "--to", "10.2", "--jobs", "2", "--json-lines")
    assert one == two
    assert len(json_lines(one)) == 9


def test_clean_fleet_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "vms.txt"
    f.write_text("\n".join(CMDLINES.read_text().splitlines()[1:3]) + "\n")
    code, out, _ = run(capsys, str(f), "--from", "10.0", "--to", "11.1")
    assert code == 0
    assert out.endswith("no findings\n")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "give libvirt logs"),
        ([str(CMDLINES), "--to", "11.1"], "is a file of command lines: give --from R"),
        (["--running"], "--running needs --from R"),
        ([str(CMDLINES), "--from", "10.0", "--jobs", "0"], "--jobs 0: expected 1 or more"),
        ([str(CMDLINES), "--from", "9.9"], "no bundled QEMU release '9.9'"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert expected in err
    assert err.count("\n") == 1


def test_a_missing_input_is_a_finding_about_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, str(tmp_path / "nope.log"), str(CMDLINES), "--from", "10.0", "--to", "10.0", "--json-lines")
    vms = json_lines(out)
    assert code == 1
    assert vms[0]["findings"][0]["kind"] == "not-understood"
    assert "no such file or directory" in vms[0]["findings"][0]["detail"]
    assert len(vms) == 7


def test_running_reads_proc_cmdlines(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, argv in (
        ("11", ["/usr/bin/qemu-system-x86_64", "-name", "guest=vm-a,debug-threads=on", "-nodefaults"]),
        ("12", ["/bin/bash", "-c", "qemu-system-x86_64"]),
        ("13", ["qemu-kvm", "-nodefaults"]),
    ):
        (proc / pid).mkdir(parents=True)
        (proc / pid / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (proc / "self").mkdir()
    found = list(read_running(proc))
    assert [(r.name, r.argv[0]) for r in found] == [("vm-a", "/usr/bin/qemu-system-x86_64"), ("pid 13", "qemu-kvm")]


@pytest.mark.qemu
def test_running_finds_a_real_qemu(capsys: pytest.CaptureFixture[str]) -> None:
    binary = shutil.which("qemu-system-x86_64")
    if binary is None:
        pytest.skip("qemu-system-x86_64 not on PATH")
    name = f"migorder-fleet-test-{os.getpid()}"
    proc = subprocess.Popen(
        [binary, "-name", f"guest={name},debug-threads=on", "-S", "-nodefaults", "-machine", "pc-q35-7.2",
         "-smp", "2", "-m", "128", "-display", "none", "-device", "virtio-net-pci,id=net0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/proc/{proc.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.1)
        code, out, _ = run(capsys, "--running", "--from", "7.2", "--to", "10.0", "--json-lines")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    mine = [v for v in json_lines(out) if v["vm"] == name]
    assert len(mine) == 1, out
    assert mine[0]["source"] == f"/proc/{proc.pid}/cmdline"
    assert mine[0]["exit"] == 0
    assert mine[0]["findings"] == []
    assert code in (0, 1)  # other QEMUs on this host may have findings of their own


def test_the_readme_example_is_what_the_tool_prints(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    section = readme.split("## Before a QEMU upgrade", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    command, shown = block[0], block[1:]
    assert command.startswith("$ migorder fleet ")
    monkeypatch.chdir(root)
    code = main([*command.split()[2:], "--no-progress"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == shown


def test_what_migorder_does_not_model_is_a_finding_in_qemus_terms(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = "qemu-system-x86_64 -name guest={} -nodefaults -machine pc-q35-10.0"
    f = tmp_path / "vms.txt"
    f.write_text(
        "\n".join([
            base.format("a") + " -device '{\"driver\":\"no-such-device\",\"id\":\"x0\"}'",
            base.format("b") + " -frobnicate on",
            base.format("c") + " -device '{\"driver\":\"e1000e\"",  # unbalanced quote
            base.format("d") + " -device e1000e,id=n0 -device e1000e,id=n0",  # QEMU refuses the id
        ]) + "\n"
    )
    code, out, _ = run(capsys, str(f), "--from", "10.0", "--to", "11.1", "--json-lines")
    assert code == 1
    kinds = {v["vm"]: (v["findings"][0]["kind"], v["findings"][0]["detail"]) for v in json_lines(out)}
    assert kinds["a"][0] == "not-understood"
    assert "unknown device type 'no-such-device'" in kinds["a"][1]
    assert kinds["b"][0] == "not-understood"
    assert "'-frobnicate'" in kinds["b"][1]
    assert kinds["vms.txt:3"][0] == "not-understood"
    assert "shell-quoted" in kinds["vms.txt:3"][1]
    assert kinds["d"] == ("refusal", "refused by QEMU 10.0: -device e1000e,id=n0: QEMU refuses it: the id is in use")


def test_summary_only_json_lines_are_the_groups(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(CMDLINES), "--from", "10.0", "--json-lines", "--summary-only")
    groups = json_lines(out)
    assert code == 1
    tie = next(g for g in groups if g["kind"] == "tie-fragile")
    assert tie == {
        "kind": "tie-fragile", "group": "apic-before-vfio", "direction": "10.0→11.1", "decided_by": "source",
        "count": 3, "examples": ["gpu-01", "gpu-02", "db-02"],
        "why": "every LAPIC loads before VFIO sets up its interrupts: holds only by registration order (degraded if broken)",
    }
    code, out, _ = run(capsys, str(CMDLINES), "--from", "10.0", "--summary-only")
    assert out.splitlines()[1] == "  from QEMU 10.0 to QEMU 11.1 (--to: the newest bundled release)"
