"""The CLI's last guard: whatever goes wrong is one bounded line on stderr and exit 2.

Exit 1 means findings and nothing else; a crash, a full disk, a closed pipe, an argument no
process could be given, a `--` a subcommand does not take: each is exit 2 with one line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ordering.commands.info as info
from ordering import cli
from ordering.cli import main

MIGORDER = [sys.executable, "-m", "ordering.cli"]


def _one_line(err: str) -> str:
    assert err.endswith("\n"), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_an_unexpected_exception_is_an_internal_error_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(info, "_rules", boom)
    assert main(["rules"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err == "migorder: internal error: ZeroDivisionError: division by zero\n"


def test_deep_recursion_is_an_internal_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def deep(args: argparse.Namespace) -> int:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(info, "_rules", deep)
    assert main(["rules"]) == 2
    assert "internal error: RecursionError" in _one_line(capsys.readouterr().err)


def test_a_full_disk_on_stdout_is_one_line_exit_2() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full is missing on this system")
    with open("/dev/full", "w") as full:
        done = subprocess.run([*MIGORDER, "rules"], stdout=full, stderr=subprocess.PIPE, text=True, check=False)
    assert done.returncode == 2
    assert _one_line(done.stderr) == "migorder: error: cannot write the output: No space left on device\n"


def test_a_pipe_closed_early_ends_quietly_with_141() -> None:
    # `migorder rules | head -0`: the reader is gone before migorder writes
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([*MIGORDER, "rules"], stdout=write_end, stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == cli.CLOSED_PIPE
    assert done.stderr == ""


def _subcommands_without_qemu_args() -> list[tuple[str, list[str]]]:
    parser = cli.build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for name, sub in subs.choices.items():
        if sub.get_default(cli.QEMU_ARGS):
            continue
        needed = [a for a in sub._actions if not a.option_strings and a.nargs in (None, 1)]
        out.append((name, ["x"] * len(needed)))
    return out


@pytest.mark.parametrize(("name", "positional"), _subcommands_without_qemu_args())
def test_a_subcommand_without_qemu_args_never_drops_what_follows_dashdash(
    capsys: pytest.CaptureFixture[str], name: str, positional: list[str]
) -> None:
    try:
        code = main([name, *positional, "--", "rm", "-rf", "/"])
    except SystemExit as exc:  # argparse: unrecognized arguments
        code = int(str(exc.code))
    out, err = capsys.readouterr()
    # Refused (exit 2), or, for a subcommand taking any number of files, read as its files
    # as POSIX's `--` means (fleet, verify): never silently ignored.
    assert code in (1, 2)
    assert "rm" in out + err or "-rf /" in err
    if code == 2:
        _one_line(err)


def test_stream_with_dashdash_is_refused_before_reading(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["stream", "a.mig", "--", "rm", "-rf", "/"])
    assert exc.value.code == 2


def test_the_commands_that_take_a_vm_still_take_qemu_args(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["order", "--qemu", "7.2", "--", "-nodefaults", "-machine", "q35"]) == 0
    assert "machine pc-q35-7.2" in capsys.readouterr().out
    # no subcommand: check, which takes them too
    assert main(["--", "-nodefaults", "-machine", "q35"]) in (0, 1)
    assert "command-line" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["diagram", "timeline", "history"])
def test_format_and_output_suffix_that_disagree_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    out = tmp_path / "x.svg"
    assert main([command, "--format", "png", "-o", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "--format png with -o" in err
    assert "the suffix says svg" in err
    assert not out.exists()


def test_format_with_an_unknown_suffix_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.out"
    assert main(["diagram", "--format", "dot", "-o", str(out)]) == 0
    assert out.read_text().startswith("digraph")


def test_matplotlib_is_quiet_when_home_cannot_be_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env["HOME"] = os.devnull  # not a folder: nothing can be made under it, even by root
    env["TMPDIR"] = str(tmp_path)
    out = tmp_path / "d.png"
    done = subprocess.run([*MIGORDER, "diagram", "-o", str(out)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / f"migorder-matplotlib-{os.getuid()}").is_dir()


def test_control_characters_in_an_echoed_name_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "evil\nrule\x1b[31m"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "evil\\nrule\\x1b[31m" in err


def test_a_10_mb_argument_is_refused_in_one_short_line(capsys: pytest.CaptureFixture[str]) -> None:
    big = "a" * 10_000_000
    assert main(["order", "--", "-nodefaults", "-machine", "q35", "-device", "e1000e,id=" + big]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "argument 5: 10000011 bytes" in err
    assert "MAX_ARG_STRLEN" in err
    assert main(["explain", big]) == 2
    err = _one_line(capsys.readouterr().err)
    assert len(err) < 1100
    assert "more characters]" in err


def test_a_scenario_name_too_long_for_a_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "s" * 5000]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("migorder: error: ")
    assert "not a bundled scenario nor a readable file" in err


def test_unknown_device_type_names_the_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["order", "--", "-nodefaults", "-machine", "q35", "-device", "frob"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "command line: argument 4 (-device): unknown device type 'frob'" in err
    assert main(["order", "--", "-nodefaults", "-machine", "q35", "-device", '{"driver": ["e1000e"]}']) == 2
    err = _one_line(capsys.readouterr().err)
    assert "argument 4 (-device): 'driver': expected a string" in err
