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


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-qemu"
    path.write_text("#!/bin/sh\n" + body + "\n")
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
    with pytest.raises(QemuRefused, match=r"cannot start .*No such file"):
        capture_stream([str(tmp_path / "nope")], tmp_path / "x.mig")


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
