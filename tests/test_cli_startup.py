"""`migorder` starts without what it does not need: ``--help`` imports no command module, a
command imports only its own, and networkx, z3 and matplotlib only where they are used.
(How fast that is, is measured in benchmarks/cli_startup.py, never asserted here.)"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from ordering import cli
from ordering.commands import prove

HEAVY = ("networkx", "z3", "matplotlib")


def _imported_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_help_imports_no_command_and_no_heavy_library() -> None:
    seen = _imported_after("from ordering import cli\ncli.build_parser(lazy=True)")
    assert not seen & set(HEAVY)
    probe = "import sys\nfrom ordering import cli\ncli.build_parser(lazy=True)\nprint([m for m in sys.modules if m.startswith('ordering.commands.')])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[0] == "[]"


@pytest.mark.parametrize("command", ["check", "order", "stream", "simulate", "diagram", "timeline", "history", "prove", "rules"])
def test_a_command_imports_no_heavy_library_before_it_runs(command: str) -> None:
    assert not _imported_after(f"from ordering import cli\ncli.build_parser({command!r}, lazy=True)") & set(HEAVY)


def test_the_summaries_are_what_the_modules_register() -> None:
    registered: dict[str, tuple[str, str]] = {}
    for module in cli.COMMANDS:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(f"ordering.commands.{module}").register(sub)
        for action in sub._choices_actions:
            registered[action.dest] = (module, str(action.help))
    assert registered == cli.SUMMARIES


def test_help_lists_every_command_and_a_typo_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name in cli.SUMMARIES:
        assert f"    {name}" in out
    with pytest.raises(SystemExit) as done:
        cli.main(["chek"])
    assert done.value.code == 2
    assert "invalid choice: 'chek'" in capsys.readouterr().err


def test_prove_default_timeout_is_smts() -> None:
    from ordering import smt

    assert prove.DEFAULT_TIMEOUT_S == smt.DEFAULT_TIMEOUT_MS / 1000
