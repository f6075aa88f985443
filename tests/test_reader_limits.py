"""Nesting and number limits of the TOML and JSON readers: a one-line error naming the place.

Before, a deeply nested TOML array or inline table, or a nested JSON ``-device``, raised
RecursionError, and an integer of more than 4300 digits raised ValueError (tracebacks, exit 1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ordering.cli import main
from ordering.errors import ModelError, ScenarioError, UsageError
from ordering.sources._limits import MAX_DIGITS, MAX_NESTING
from ordering.sources._toml import TomlDoc
from ordering.sources.cmdline import parse_command_line
from ordering.sources.scenario import read_scenario

DEEP_ARRAY = "[" * 5000 + "]" * 5000
DEEP_TABLE = "{a = " * 3000 + "1" + "}" * 3000
LONG_INT = "7" * 5000
CMD = 'command = "qemu-system-x86_64 -nodefaults -machine q35"\n'


@pytest.mark.parametrize("value", [DEEP_ARRAY, DEEP_TABLE, "[1, [2, " + DEEP_ARRAY + "]]"])
def test_deep_toml_names_file_and_line(tmp_path: Path, value: str) -> None:
    p = tmp_path / "s.toml"
    p.write_text(CMD + "[guest]\n# a comment [[[[\nx = 'a [ string'\ny = " + value + "\n")
    with pytest.raises(ScenarioError) as info:
        read_scenario(p)
    assert info.value.where == f"{p}:5"
    assert info.value.expected == f"expected arrays and tables nested at most {MAX_NESTING} deep"


def test_long_toml_integer_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text(CMD + "[guest]\nx = 1_000\ny = " + LONG_INT + "\n")
    with pytest.raises(ScenarioError) as info:
        read_scenario(p)
    assert info.value.where == f"{p}:4"
    assert info.value.expected == f"expected an integer of at most {MAX_DIGITS} digits"


def test_models_toml_gets_the_same_limits() -> None:
    with pytest.raises(ModelError, match=r"^m\.toml:2: expected arrays and tables nested"):
        TomlDoc.from_text("m.toml", "a = 1\nb = " + DEEP_TABLE)
    with pytest.raises(ModelError, match=r"^m\.toml:1: expected an integer of at most"):
        TomlDoc.from_text("m.toml", "b = " + LONG_INT)


@pytest.mark.parametrize(("value", "words"), [
    (DEEP_ARRAY, f"nested at most {MAX_NESTING} deep"),
    (LONG_INT, f"an integer of at most {MAX_DIGITS} digits"),
])
def test_json_device_names_its_argument(value: str, words: str) -> None:
    argv = ["qemu-system-x86_64", "-nodefaults", "-machine", "q35",
            "-device", '{"driver": "e1000", "x": ' + value + "}"]
    with pytest.raises(ScenarioError) as info:
        parse_command_line(argv)
    assert "argument 5 (-device)" in info.value.where
    assert words in info.value.expected
    assert len(str(info.value)) < 400


def test_cli_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "s.toml"
    p.write_text(CMD + "[guest]\nx = " + DEEP_ARRAY + "\n")
    assert main(["check", str(p)]) == 2
    err = capsys.readouterr().err
    assert err == (f"migorder: error: {p}:3: expected arrays and tables nested at most "
                   f"{MAX_NESTING} deep\n")
    assert main(["check", "--", "qemu-system-x86_64", "-nodefaults", "-device",
                 '{"driver": ' + DEEP_ARRAY + "}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "nested at most" in err


def test_capture_hotplug_json_limits() -> None:
    from ordering.commands.capture import _hotplug

    with pytest.raises(UsageError, match="nested at most"):
        _hotplug(["{\"a\": " + DEEP_ARRAY + "}"])


def test_release_file_gets_the_same_limits(tmp_path: Path) -> None:
    from ordering.sources.models import load_knowledge
    from ordering.sources.release_file import read_release_file

    p = tmp_path / "r.toml"
    p.write_text('release = "7.2"\nx = ' + DEEP_ARRAY + "\n")
    with pytest.raises(ModelError) as info:
        read_release_file(p, load_knowledge())
    assert info.value.where == f"{p}:2"
    assert "nested at most" in info.value.expected


def _refused_in_time(run: Any) -> BaseException:
    """Run ``run`` in a thread; a FIFO opened for reading would block it forever."""
    import threading

    got: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:
            got.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(20)
    assert got, "blocked (or raised nothing)"
    return got[0]


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_special_files_are_refused_by_text_readers(tmp_path: Path, kind: str) -> None:
    """``dump-vmstate /dev/zero`` grew to 6 GB; a FIFO blocked for ever."""
    from ordering.errors import InputError
    from ordering.sources.dump_vmstate import read_dump

    if kind == "fifo":
        path = tmp_path / "f"
        os.mkfifo(path)
        words = "found a FIFO"
    elif kind == "device":
        path = Path("/dev/zero")
        words = "found a character device"
    else:
        path = tmp_path
        words = "found a folder"
    exc = _refused_in_time(lambda: read_dump(path))
    assert isinstance(exc, InputError)
    assert str(exc) == f"{path}:0: expected a -dump-vmstate file: a regular file, {words}"
    exc = _refused_in_time(lambda: TomlDoc.read(path))
    assert isinstance(exc, ModelError)
    assert str(exc).endswith(words)


def test_text_files_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ordering.sources import _limits

    p = tmp_path / "big.toml"
    p.write_text("a = 1\n" * 100)
    monkeypatch.setattr(_limits, "MAX_TEXT_BYTES", 64)
    monkeypatch.setattr(_limits.read_text, "__defaults__", (64,))
    with pytest.raises(ModelError, match="a file of at most 64 bytes"):
        TomlDoc.read(p)


def test_file_names_with_control_characters_stay_on_one_line(tmp_path: Path) -> None:
    from ordering.errors import MigOrderError
    from ordering.sources.dump_vmstate import read_dump
    from ordering.sources.stream import read_stream

    bad = tmp_path / "a\nb\x1b[31m"
    bad.write_text("not = [valid\n")
    for read in (read_stream, read_dump, TomlDoc.read):
        with pytest.raises(MigOrderError) as info:
            read(bad)
        msg = str(info.value)
        assert "\n" not in msg, msg
        assert "\x1b" not in msg, msg
        assert msg.startswith(repr(str(bad))), msg
