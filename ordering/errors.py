"""One error hierarchy for migorder.

Every error a user can cause is a :class:`MigOrderError`; the CLI prints its message on one
line and exits 2. Messages say where the problem is (file, line, byte offset) and what was
expected instead.
"""

from __future__ import annotations

import re

SHOWN_CHARS = 200
"""An echoed value is cut to about this many characters in an error message."""
_LINE_CHARS = 1000
_LONG_RUN = re.compile(rf"\S{{{SHOWN_CHARS + 1},}}")


def one_line(message: str) -> str:
    """``message`` as one printable line of bounded length: control characters (newlines
    included) escaped as ``repr`` shows them, any run of more than ``SHOWN_CHARS``
    non-blank characters cut, and the whole cut in the middle past ``_LINE_CHARS``.

    Every message the CLI prints goes through here, so a value echoed from the input (a
    name, a 10 MB argument) can neither break the line nor flood the terminal.

    >>> one_line("bad id 'a\\nb'")
    "bad id 'a\\\\nb'"
    >>> len(one_line("-smp " + "9" * 10_000)) < 600
    True
    """
    if len(message) > 8 * _LINE_CHARS:  # keep the work bounded on a 10 MB message
        dropped = len(message) - 8 * _LINE_CHARS
        head, tail = message[: 4 * _LINE_CHARS], message[-4 * _LINE_CHARS :]
        text = f"{_escaped(head)}…[{dropped} characters cut]…{_escaped(tail)}"
    else:
        text = _escaped(message)

    def cut(m: re.Match[str]) -> str:
        run = m.group(0)
        return f"{run[:SHOWN_CHARS]}…[{len(run) - SHOWN_CHARS} more characters]"

    text = _LONG_RUN.sub(cut, text)
    if len(text) > _LINE_CHARS:
        half = _LINE_CHARS // 2
        text = f"{text[:half]}…[{len(text) - 2 * half} characters cut]…{text[-half:]}"
    return text


def _escaped(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class MigOrderError(Exception):
    """Root of every error migorder raises on purpose."""


class InputError(MigOrderError, ValueError):
    """Bad input in a file: the message names the file, the line (or byte offset) and what was expected."""

    def __init__(self, where: str, expected: str) -> None:
        self.where = where
        self.expected = expected
        super().__init__(f"{where}: {expected}")


class ModelError(InputError):
    """A mistake in a models/ TOML file (or a user's own model file)."""


class ScenarioError(InputError):
    """A VM description (scenario TOML or QEMU command line) that cannot be built."""


class StreamFormatError(InputError):
    """A migration stream that is truncated or does not follow QEMU's format."""


class SourceTreeError(InputError):
    """A QEMU source tree, header or patch that cannot be read as expected."""


class UsageError(MigOrderError, ValueError):
    """A command line to migorder itself that does not make sense."""


class InvalidArgument(MigOrderError, ValueError):
    """An argument given through the library (a rule, a kind, a strategy's parameter) that
    migorder cannot use: a rule side naming no known kind, an unknown condition, a taken id,
    a device no generated VM can hold."""


class QemuRefused(MigOrderError):
    """QEMU refused to do what was asked; the message is QEMU's own reason."""


class UnknownName(MigOrderError, KeyError):
    """A name (release, rule, scenario, device type) that is not bundled; lists what is."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
