"""One error hierarchy for migorder.

Every error a user can cause is a :class:`MigOrderError`; the CLI prints its message on one
line and exits 2. Messages say where the problem is (file, line, byte offset) and what was
expected instead.
"""

from __future__ import annotations


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
