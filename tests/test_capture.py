"""capture_stream: the argv it runs, QEMU's own refusal text, timeouts, and no process left."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import qemu_binary

from ordering.errors import QemuRefused, UsageError
from ordering.sources.capture import capture_stream, qemu_command
from ordering.sources.stream import read_stream

BASE = ["-nodefaults", "-display", "none", "-accel", "tcg", "-monitor", "none", "-serial", "none",
        "-m", "64"]


def _no_children() -> bool:
    """No child process left, running or zombie."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _script(tmp_path: Path, body: str, version: str = "QEMU emulator version 7.2.0") -> str:
    """A fake QEMU: answers ``--version`` with ``version``, else runs ``body``."""
    path = tmp_path / "fake-qemu"
    path.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo "{version}"; exit 0; fi\n'
                    + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_qemu_command_adds_paused_and_qmp() -> None:
    argv = qemu_command(["qemu", "-machine", "q35"], "/run/s")
    assert argv == ["qemu", "-machine", "q35", "-S", "-qmp", "unix:/run/s,server=on,wait=off"]
    assert qemu_command(["qemu", "-S"], "/run/s").count("-S") == 1


def test_empty_command_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="QEMU binary"):
        capture_stream([], tmp_path / "x.mig")
    with pytest.raises(UsageError):
        capture_stream(["-machine", "q35"], tmp_path / "x.mig")


def test_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"expected a QEMU binary to run \(No such file"):
        capture_stream([str(tmp_path / "nope")], tmp_path / "x.mig")


def test_only_a_binary_answering_like_qemu_is_run(tmp_path: Path) -> None:
    """``capture -- sh -c '...'`` ran sh; now ``BINARY --version`` must answer as QEMU does
    before anything else is started (the fake's body would create the marker)."""
    marker = tmp_path / "ran"
    fake = _script(tmp_path, f"touch {marker}", version="GNU bash, version 5.2")
    with pytest.raises(UsageError) as info:
        capture_stream([fake, "-machine", "q35"], tmp_path / "x.mig", timeout=10)
    assert str(info.value).endswith("expected a QEMU binary, which answers --version with "
                                    "'QEMU emulator version X.Y...', found 'GNU bash, version 5.2'")
    with pytest.raises(UsageError, match="expected a QEMU binary"):
        capture_stream(["sh", "-c", f"touch {marker}"], tmp_path / "x.mig", timeout=10)
    assert not marker.exists()
    assert _no_children()


@pytest.mark.parametrize("command", [["check", "--capture"], ["capture"]])
def test_cli_refuses_a_shell_as_qemu(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    command: list[str]) -> None:
    from ordering.cli import main

    marker = tmp_path / "ran"
    code = main([*command, "--", "sh", "-c", f"touch {marker}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("migorder: error: 'sh': expected a QEMU binary, which answers "
                          "--version")
    assert err.count("\n") == 1
    assert not marker.exists()


def test_startup_failure_reports_stderr(tmp_path: Path) -> None:
    fake = _script(tmp_path, 'echo "$0: -device frob: \'frob\' is not a valid device model name" >&2; '
                   "exit 1")
    with pytest.raises(QemuRefused) as info:
        capture_stream([fake, "-machine", "q35"], tmp_path / "x.mig", timeout=10)
    assert str(info.value) == "-device frob: 'frob' is not a valid device model name"
    assert _no_children()


def test_timeout_kills_qemu(tmp_path: Path) -> None:
    fake = _script(tmp_path, "exec sleep 30")
    with pytest.raises(QemuRefused, match="in time"):
        capture_stream([fake], tmp_path / "x.mig", timeout=0.3)
    assert _no_children()


@pytest.mark.qemu
def test_capture_result_and_cleanup(tmp_path: Path) -> None:
    qemu = qemu_binary("qemu-system-x86_64")
    out = tmp_path / "vm.mig"
    result = capture_stream([qemu, *BASE, "-machine", "q35"], out, timeout=30)
    assert result.out == out.resolve()
    assert result.version[:2] == (7, 2)
    assert result.release == "7.2"
    assert result.size == out.stat().st_size > 0
    assert "-S" in result.argv
    assert result.seconds < 10
    assert read_stream(out).machine_type == "pc-q35-7.2"
    assert _no_children()


@pytest.mark.qemu
def test_hotplug_with_execute_form(tmp_path: Path) -> None:
    qemu = qemu_binary("qemu-system-x86_64")
    out = tmp_path / "vm.mig"
    steps = [{"execute": "device_add",
              "arguments": {"driver": "e1000e", "id": "n1", "bus": "rp1"}}]
    capture_stream([qemu, *BASE, "-machine", "q35", "-device", "pcie-root-port,id=rp1,chassis=1"],
                   out, timeout=30, hotplug=steps)
    full = [s.idstr for s in read_stream(out).full_sections]
    assert full[-1] == "0000:00:01.0:00.0/e1000e"


@pytest.mark.qemu
def test_migration_blocker_in_qemus_words(tmp_path: Path) -> None:
    qemu = qemu_binary("qemu-system-x86_64")
    with pytest.raises(QemuRefused) as info:
        capture_stream([qemu, *BASE, "-machine", "q35", "-device", "nvme,serial=x"],
                       tmp_path / "x.mig", timeout=30)
    assert str(info.value) == "State blocked by non-migratable device '0000:00:01.0/nvme'"
    assert _no_children()
