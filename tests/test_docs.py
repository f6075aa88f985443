"""The README's examples hold: each ``$ migorder ...`` block is run and compared with the output
shown, and each ``python`` block is run (with the ``test_*`` functions it defines called).

How a shown output is compared with the real one:

* a line that is only ``...`` (any indentation) stands for any number of lines, none included;
* ``...`` inside a line stands for any text on that line;
* every other line must match exactly (trailing spaces ignored); a block that shows only the
  start of the output ends with a ``...`` line.

An example added to the README later must pass too; a failure names the example by its README
line and command, and shows the first shown line that the real output does not match.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from ordering.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@dataclass(frozen=True)
class Example:
    """One ``$ migorder ...`` command in a fenced block and the output shown under it."""

    line: int
    """README line of the ``$`` prompt (1-based)."""
    command: str
    expected: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"README.md:{self.line}: $ {self.command[:70]}"


@dataclass(frozen=True)
class PythonBlock:
    """A fenced ``python`` block."""

    line: int
    code: str


def _fences(text: str) -> list[tuple[int, str, list[str]]]:
    """``(line of first body line, info string, body lines)`` for every fenced block."""
    out: list[tuple[int, str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        info, start, body = m.group(1), i + 2, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        out.append((start, info, body))
        i += 1
    return out


def command_examples(text: str) -> list[Example]:
    """Every ``$ migorder`` command in a ``console`` or plain fenced block, with its output."""
    examples: list[Example] = []
    for start, info, body in _fences(text):
        if info not in ("", "console", "shell-session"):
            continue
        j = 0
        while j < len(body):
            if not body[j].startswith("$ migorder"):
                j += 1
                continue
            line = start + j
            cmd = body[j][2:]
            while cmd.endswith("\\") and j + 1 < len(body):
                j += 1
                cmd = cmd[:-1].rstrip() + " " + body[j].strip()
            j += 1
            out: list[str] = []
            while j < len(body) and not body[j].startswith("$ "):
                out.append(body[j])
                j += 1
            examples.append(Example(line, cmd, tuple(out)))
    return examples


def python_blocks(text: str) -> list[PythonBlock]:
    """Every fenced ``python`` block."""
    return [PythonBlock(start, "\n".join(body)) for start, info, body in _fences(text) if info == "python"]


def _line_pattern(shown: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in shown.rstrip().split("...")) + r"\Z")


def mismatch(expected: tuple[str, ...], actual: list[str]) -> str | None:
    """``None`` when ``actual`` matches ``expected`` (with ``...`` elisions), else why not.

    >>> mismatch(("a", "...", "z"), ["a", "b", "c", "z"]) is None
    True
    >>> mismatch(("a ...", "c"), ["a b", "d"])
    "shown line 2 'c' does not match real line 2 'd'"
    """
    expected = tuple(e for e in expected)
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    actual = [a.rstrip() for a in actual]
    while actual and not actual[-1]:
        actual.pop()
    pats = [None if e.strip() == "..." else _line_pattern(e) for e in expected]
    best = (-1, -1)  # furthest (shown line, real line) reached, for the message
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(pats):
            if j == len(actual):
                return None
            best = max(best, (i, j))
            continue
        pat = pats[i]
        if pat is None:
            stack.extend((i + 1, jj) for jj in range(len(actual), j - 1, -1))
            continue
        if j < len(actual) and pat.match(actual[j]):
            stack.append((i + 1, j + 1))
        else:
            best = max(best, (i, j))
    i, j = best
    real = repr(actual[j]) if j < len(actual) else "(end of output)"
    if i >= len(expected):
        return f"the real output goes on after the last shown line, with line {j + 1} {real} (end the block with '...')"
    return f"shown line {i + 1} {expected[i].rstrip()!r} does not match real line {j + 1} {real}"


def run_command(command: str) -> tuple[int, list[str]]:
    """Run ``migorder ...`` in this process: the exit code and stdout's lines."""
    argv = shlex.split(command)
    assert argv[0] == "migorder"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv[1:])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, (out.getvalue() + err.getvalue()).splitlines()


TEXT = README.read_text(encoding="utf-8")


def test_the_readme_has_examples_to_check() -> None:
    assert len(command_examples(TEXT)) >= 2
    assert python_blocks(TEXT)


@pytest.mark.parametrize("example", command_examples(TEXT), ids=lambda e: f"README:{e.line}")
def test_readme_command_example(example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, actual = run_command(example.command)
    assert code in (0, 1), f"{example.name}\n  exited {code}:\n" + "\n".join(actual[-5:])
    why = mismatch(example.expected, actual)
    assert why is None, (
        f"{example.name}\n  {why}\n  real output:\n" + "\n".join("    " + a for a in actual[:60])
    )


@pytest.mark.parametrize("block", python_blocks(TEXT), ids=lambda b: f"README:{b.line}")
def test_readme_python_example(block: PythonBlock) -> None:
    scope: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(block.code, f"README.md:{block.line}", "exec"), scope)
    tests = [f for name, f in scope.items() if name.startswith("test_") and callable(f)]
    for test in tests:
        test()


def test_the_matcher_names_what_differs() -> None:
    assert mismatch(("x", "..."), ["x", "y", "z"]) is None
    assert mismatch(("x", "...", "z"), ["x", "z"]) is None
    assert mismatch(("x ... y",), ["x and then y"]) is None
    assert mismatch(("x",), ["x", "y"]) == (
        "the real output goes on after the last shown line, with line 2 'y' (end the block with '...')"
    )
    assert mismatch(("x", "...", "w"), ["x", "y", "z"]) == "shown line 3 'w' does not match real line 4 (end of output)"


def test_help_texts_name_only_commands_that_exist() -> None:
    from ordering.cli import build_parser

    parser = build_parser()
    commands: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands |= set(action.choices)
    for name in sorted(commands):
        code, lines = run_command(f"migorder {name} --help")
        assert code == 0, name
        text = " ".join(" ".join(lines).split())
        for cited in re.findall(r"`migorder ([a-z-]+)", text):
            assert cited in commands, f"`migorder {name} --help` cites `migorder {cited}`, which does not exist"


def test_scenarios_list_whole_descriptions() -> None:
    from ordering.sources.models import load_knowledge
    from ordering.sources.scenario import read_scenario

    code, lines = run_command("migorder scenarios")
    assert code == 0
    shown: dict[str, list[str]] = {}
    for line in lines:
        if line[:1].strip():
            name, _, rest = line.partition(" ")
            shown[name] = [rest]
        else:
            shown[name].append(line)
    for name, path in load_knowledge().scenarios.items():
        want = " ".join(read_scenario(path).description.split())
        assert " ".join(" ".join(shown[name]).split()) == want, name
