"""What a simulated load did: each step's reads, and the failures a real destination would show."""

from __future__ import annotations

from dataclasses import dataclass

from ordering.model.rule import Consequence
from ordering.model.section import LoadStep, Section
from ordering.order import LoadOrder


@dataclass(frozen=True)
class Read:
    """One read of another device's **current** destination state during a load.

    ``loaded`` says whether that device's section had been loaded yet; when it had not, the
    value read is the device's reset value.
    """

    what: str
    section: Section
    loaded: bool
    value: str


@dataclass(frozen=True)
class TraceStep:
    """One section as the destination loads it, with the behaviour it ran and what it read."""

    index: int
    step: LoadStep
    behaviour: str
    """The QEMU function whose post-load behaviour ran (``""``: none modelled)."""
    reads: tuple[Read, ...] = ()


@dataclass(frozen=True)
class Failure:
    """A failure the destination shows (or silently suffers) at one section's load.

    ``message`` is QEMU's (or the kernel's) own wording when ``qemu_prints``; otherwise it
    describes the silent or degraded state in brackets.
    """

    consequence: Consequence
    message: str
    section: Section
    """The section whose load failed."""
    needs: Section
    """The section that should have been loaded first."""
    mechanism: str
    """The QEMU (or KVM) function modelled, with its file."""
    qemu_prints: bool = True
    fatal: bool = False
    """The destination aborts here (``&error_abort``): nothing after it is loaded."""


@dataclass(frozen=True)
class Trace:
    """A simulated load of ``order`` on a destination running ``behaviour_release``."""

    order: LoadOrder
    behaviour_release: str
    steps: tuple[TraceStep, ...]
    failures: tuple[Failure, ...]
    aborted: bool = False

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 otherwise."""
        return 1 if self.failures else 0
