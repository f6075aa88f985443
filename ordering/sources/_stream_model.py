"""What a read migration stream is made of: sections, commands, configuration, RAM summary.

Frozen dataclasses and enums only, built by :func:`ordering.sources.stream.read_stream`;
import them from :mod:`ordering.sources.stream`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

COMMAND_NAMES: dict[int, str] = {
    1: "OPEN_RETURN_PATH",
    2: "PING",
    3: "POSTCOPY_ADVISE",
    4: "POSTCOPY_LISTEN",
    5: "POSTCOPY_RUN",
    6: "POSTCOPY_RAM_DISCARD",
    7: "PACKAGED",
    8: "ENABLE_COLO",
    9: "POSTCOPY_RESUME",
    10: "RECV_BITMAP",
    11: "SWITCHOVER_START",
}
"""``enum qemu_vm_cmd`` (migration/savevm.c); 0 is MIG_CMD_INVALID."""


class SectionType(StrEnum):
    """Section types on the wire (QEMU_VM_SECTION_*)."""

    START = "START"
    PART = "PART"
    END = "END"
    FULL = "FULL"


class Phase(StrEnum):
    """Precopy phase a section was sent in."""

    SETUP = "setup"
    ITERATE = "iterate"
    COMPLETE = "complete"


@dataclass(frozen=True)
class StreamSection:
    """One section as it sits in the stream.

    PART and END sections carry the idstr, instance_id and version_id of their START.
    """

    type: SectionType
    section_id: int
    idstr: str
    instance_id: int
    version_id: int
    phase: Phase
    offset: int
    """Byte offset of the section's type byte."""
    payload_size: int
    """Bytes between the header and the footer (for FULL: as computed from the vmdesc)."""
    vmsd_name: str
    """vmdesc ``vmsd_name`` when known, else the idstr after its last ``/``."""

    @property
    def key(self) -> tuple[str, int]:
        """``(idstr, instance_id)``: how a destination finds the entry."""
        return self.idstr, self.instance_id


@dataclass(frozen=True)
class StreamCommand:
    """A COMMAND (0x08) section: e.g. SWITCHOVER_START in 10.0+ streams."""

    cmd: int
    name: str
    offset: int
    length: int
    before_section: int
    """Index in :attr:`Stream.sections` of the section that follows it (``len`` if none)."""
    phase: Phase
    """Phase of the section before it (setup when it comes first)."""


@dataclass(frozen=True)
class ConfigSubsection:
    """A subsection of the configuration section (``configuration/target-page-bits`` ...)."""

    name: str
    version: int
    offset: int


@dataclass(frozen=True)
class Configuration:
    """The CONFIGURATION section: machine type and what its subsections said."""

    machine_type: str
    subsections: tuple[ConfigSubsection, ...] = ()
    target_page_bits: int | None = None
    capabilities: tuple[str, ...] = ()
    uuid: str | None = None


@dataclass(frozen=True)
class RamBlock:
    """A RAMBlock announced by the RAM MEM_SIZE record."""

    idstr: str
    length: int


@dataclass(frozen=True)
class RamSummary:
    """What the walk over the ``ram`` sections' records counted (no page is kept)."""

    page_size: int
    blocks: tuple[RamBlock, ...]
    pages: int
    zero_pages: int
    records: int
    bytes_walked: int
    multifd_flushes: int = 0
    hooks: int = 0


@dataclass(frozen=True)
class Stream:
    """A migration stream, read: pure data, in stream order."""

    path: str
    version: int
    compression: str
    """``plain``, ``xz`` or ``gz`` (from the magic bytes)."""
    size: int
    """Length of the decompressed stream in bytes."""
    configuration: Configuration | None
    sections: tuple[StreamSection, ...]
    commands: tuple[StreamCommand, ...]
    ram: RamSummary | None
    eof_offset: int
    vmdesc_offset: int | None
    vmdesc: dict[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)
    footers: bool = True
    """Whether sections end with a footer (0x7e); off for pc machine types up to 2.3
    (``migration.send-section-footer=off``)."""

    @property
    def full_sections(self) -> tuple[StreamSection, ...]:
        """The FULL (device state) sections, in stream order."""
        return tuple(s for s in self.sections if s.type is SectionType.FULL)

    @property
    def machine_type(self) -> str | None:
        """The machine type named in the configuration section."""
        return self.configuration.machine_type if self.configuration else None
