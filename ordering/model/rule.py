"""Must-load-before rules and the device kinds their selectors name."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Consequence(StrEnum):
    """What a violation does."""

    ERROR = "error"
    """The migration fails (or the destination aborts)."""
    DEGRADED = "degraded"
    """It works, slower or less capable."""
    SILENT = "silent"
    """Wrong state, no message."""


@dataclass(frozen=True)
class Kind:
    """A device kind: which VMSDs (section names) and ``-device`` types belong to it."""

    name: str
    description: str
    vmsds: tuple[str, ...]
    devices: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """``first`` must be loaded before ``then`` on the destination, when ``condition`` holds.

    Both sides are kind selectors (keys of ``kinds.toml``). ``condition`` names when an
    instance of the rule is live in a VM (see :mod:`ordering.conditions`).
    """

    id: str
    title: str
    first: str
    then: str
    condition: str
    consequence: Consequence
    symptom: str
    mechanism: str
    provenance: tuple[str, ...]
    since: str = ""
    arch: str = ""
    line: int = 0
