"""A scenario file's ``command`` is parsed, never executed, by every command that takes a VM.

The command names a script that would leave a marker file if it ran; every subcommand taking
a scenario (found from the parser, so a new one is covered too) is run on it, with process
creation watched.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ordering.cli import build_parser, main


def _vm_commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for name, p in sub.choices.items():
        if any(a.dest == "scenario" for a in p._actions):
            out.append(name)
    return sorted(set(out))


def test_some_commands_take_a_scenario() -> None:
    assert {"check", "order", "simulate", "explore"} <= set(_vm_commands())


@pytest.mark.parametrize("command", _vm_commands())
def test_scenario_command_is_never_executed(tmp_path: Path, command: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    fake = tmp_path / "qemu-system-x86_64"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)
    scenario = tmp_path / "vm.toml"
    scenario.write_text(f'command = "{fake} -nodefaults -machine q35 -m 128"\n')
    started: list[Any] = []
    real_popen = subprocess.Popen.__init__

    def watch(self: subprocess.Popen[Any], args: Any, *a: Any, **k: Any) -> None:
        started.append(args)
        real_popen(self, args, *a, **k)

    def system(cmd: str) -> int:
        started.append(cmd)
        return 1

    monkeypatch.setattr(subprocess.Popen, "__init__", watch)
    monkeypatch.setattr(os, "system", system)
    monkeypatch.chdir(tmp_path)
    code = main([command, str(scenario)])
    capsys.readouterr()
    assert code in (0, 1, 2)
    assert not marker.exists()
    assert not [a for a in started if str(fake) in str(a)]
