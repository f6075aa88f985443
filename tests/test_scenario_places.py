"""A scenario's mistakes name the file and line; `check` reads `[guest]` as `simulate` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordering.cli import main

COMMAND = 'command = "qemu-system-x86_64 -nodefaults -machine q35 -device pcie-root-port,id=rp0 -device e1000e,id=nic0,bus=rp0"\n'


def _err(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


@pytest.mark.parametrize("command", ["check", "simulate"])
@pytest.mark.parametrize(("guest", "words"), [
    ('x2apic = "maybe"', "x2apic: expected true or false, got 'maybe'"),
    ("frobnicate = 1", "unknown knob(s) frobnicate"),
    ('[guest.device.nic9]\nmsi-targets = [0]', "device.nic9: the VM has no device with that id"),
])
def test_a_broken_guest_table_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, guest: str, words: str
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'description = "x"\n{COMMAND}\n[guest]\n{guest}\n')
    err = _err(capsys, command, "--qemu", "10.0", str(scenario))
    assert f"{scenario}:4 [guest]" in err
    assert words in err


def test_release_globals_naming_an_unknown_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'{COMMAND}[release_globals]\n"banana" = ["vfio-pci.x-enable-migration=on"]\n')
    err = _err(capsys, "check", str(scenario))
    assert "[release_globals]: no bundled QEMU release 'banana'" in err


def test_a_negative_hotplug_cpu_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('command = "-nodefaults -machine q35 -smp 1,maxcpus=2"\n[[hotplug]]\ncpu = -1\n')
    err = _err(capsys, "check", str(scenario))
    assert f"{scenario}:3: cpu: expected a vCPU index of 0 or more, got -1" in err


@pytest.mark.parametrize(("text", "where"), [
    ("command = 5\n", ":1: command: expected a string"),
    ('command = "-nodefaults -machine q35"\nfrob = 1\n', ":2: unknown key 'frob'"),
    ('command = "-nodefaults -machine q35 -device frob"\n', ":1 (command): argument 4 (-device): unknown device type 'frob'"),
    ('command = "-nodefaults -machine q35"\n[[hotplug]]\ndevice = "frob"\n', ":3: unknown device type 'frob'"),
])
def test_scenario_errors_name_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(text)
    assert f"{scenario}{where}" in _err(capsys, "check", str(scenario))


def test_a_10_mb_scenario_command_is_refused_without_hanging(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "big.toml"
    scenario.write_text('command = "-nodefaults -machine q35 -device e1000e,id=' + "a" * 10_000_000 + '"\n')
    err = _err(capsys, "check", str(scenario))
    assert f"{scenario}:1 (command): argument 5: 10000011 bytes" in err
    assert len(err) < 1100


def test_a_scenario_command_splits_as_a_shell_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    # a backslash-newline continues the line, as in a shell script
    lines = ["qemu-system-x86_64 -nodefaults \\\\", "  -machine q35 \\\\", "  -device 'e1000e,id=n0'"]
    scenario.write_text('command = """' + "\n".join(lines) + '"""\n')
    assert main(["order", "--json", str(scenario)]) == 0
    assert "/e1000e" in capsys.readouterr().out
