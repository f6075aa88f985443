"""Sections as QEMU registers and sends them, and the load order a destination sees."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from ordering.model.priority import PriorityLevel


class Phase(StrEnum):
    """Precopy phases in stream order. Priority orders sections only within a phase."""

    SETUP = "setup"
    ITERATE = "iterate"
    COMPLETE = "complete"

    @property
    def rank(self) -> int:
        """0, 1, 2 in stream order."""
        return _RANK[self.value]


_RANK = {"setup": 0, "iterate": 1, "complete": 2}


class SectionType(StrEnum):
    """Section types on the wire (QEMU_VM_SECTION_*)."""

    START = "START"
    PART = "PART"
    END = "END"
    FULL = "FULL"


class Section(NamedTuple):
    """One SaveStateEntry of a VM: what QEMU registered, with the priority it sorts by.

    A named tuple: cheap to build by the hundred thousand.
    """

    section_id: int
    idstr: str
    instance_id: int
    vmsd: str
    priority: PriorityLevel
    kind: str
    owner: str
    """The qdev id or type of the device that registered it (``machine`` for built-ins)."""
    iterable: bool = False
    full: bool = True
    sent: bool = True
    early_setup: bool = False
    hotplugged: bool = False

    @property
    def label(self) -> str:
        """``idstr`` with its instance_id when that is not 0 (``apic#3``)."""
        return self.idstr if self.instance_id == 0 else f"{self.idstr}#{self.instance_id}"


class LoadStep(NamedTuple):
    """One section as the destination reads it: its type and phase.

    A named tuple, not a dataclass: a 100k-section VM makes 100k of them per derivation.
    """

    section: Section
    type: SectionType
    phase: Phase

    @property
    def key(self) -> tuple[str, int]:
        """``(idstr, instance_id)``: how the destination finds the entry (``find_se``)."""
        return self.section.idstr, self.section.instance_id
