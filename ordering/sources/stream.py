"""Read a real QEMU migration stream: its sections in stream order, phases, commands and vmdesc.

A strict, streaming reader: plain, ``.xz`` and ``.gz`` files (recognised by their magic
bytes), never loaded whole, memory bounded whatever the stream's length. It checks every
section footer, walks RAM records without keeping pages, and skips FULL device payloads by the
sizes in the vmdesc JSON trailer (they carry no length on the wire). Anything truncated or
malformed raises :class:`ordering.errors.StreamFormatError` naming ``FILE: byte OFFSET`` (an
offset in the decompressed stream) and what was expected there.

Format facts (QEMU ``migration/savevm.c``, ``migration/vmstate.c``, ``migration/ram.c``; see
``shared/qemu/DOSSIER.md`` §2): header ``QEVM`` + be32 version 3; an optional CONFIGURATION
section (0x07, be32 length + machine type, then subsections); sections START 0x01 / FULL 0x04
(be32 section_id, u8 length + idstr, be32 instance_id, be32 version_id), PART 0x02 / END 0x03
(be32 section_id), each closed by a footer (0x7e, be32 section_id); COMMAND 0x08 (be16 cmd,
be16 length, data); EOF 0x00; then the VMDESCRIPTION trailer (0x06, be32 length, JSON).

This module is the public face; the work is done in small private modules:
:mod:`~ordering.sources._stream_codec` (special files, pipes, xz/gz),
:mod:`~ordering.sources._stream_io` (bounded byte access), :mod:`~ordering.sources._stream_trailer`
(the vmdesc trailer, at most :data:`TRAILER_LIMIT` bytes),
:mod:`~ordering.sources._stream_parse` (the pass), :mod:`~ordering.sources._stream_ram` (RAM
records), :mod:`~ordering.sources._stream_vmdesc` (FULL payload sizes) and
:mod:`~ordering.sources._stream_model` (the dataclasses).
"""

from __future__ import annotations

import os

from ordering.sources._stream_codec import local_file
from ordering.sources._stream_io import ByteReader, detect_compression, open_for_parse
from ordering.sources._stream_model import (
    COMMAND_NAMES,
    ConfigSubsection,
    Configuration,
    Phase,
    RamBlock,
    RamSummary,
    SectionType,
    Stream,
    StreamCommand,
    StreamSection,
)
from ordering.sources._stream_parse import Parser, RawSection
from ordering.sources._stream_trailer import (
    TRAILER_LIMIT,
    Trailer,
    trailer_by_scan,
    trailer_in_memory,
    trailer_of_plain,
)

__all__ = [
    "COMMAND_NAMES",
    "TRAILER_LIMIT",
    "ConfigSubsection",
    "Configuration",
    "Phase",
    "RamBlock",
    "RamSummary",
    "SectionType",
    "Stream",
    "StreamCommand",
    "StreamSection",
    "read_stream",
]


def _phases(raw: list[RawSection]) -> list[Phase]:
    """Phase of each section: FULL before the first PART/END is setup (early_setup VMSDs).

    A stream with no PART or END at all has no iterable phase: its FULL sections are the
    completion's.
    """
    first = next((i for i, s in enumerate(raw) if s.type in (SectionType.PART, SectionType.END)),
                 None)
    out: list[Phase] = []
    for i, s in enumerate(raw):
        if s.type is SectionType.START:
            out.append(Phase.SETUP)
        elif s.type is SectionType.PART:
            out.append(Phase.ITERATE)
        elif s.type is SectionType.END:
            out.append(Phase.COMPLETE)
        else:
            out.append(Phase.SETUP if first is not None and i < first else Phase.COMPLETE)
    return out


def read_stream(path: str | os.PathLike[str]) -> Stream:
    """Read a QEMU migration stream (plain, ``.xz`` or ``.gz``) into a :class:`Stream`.

    Parameters
    ----------
    path : str or os.PathLike
        The stream file, e.g. the output of ``migrate "exec:cat > FILE"``. Compression is
        recognised by magic bytes, whatever the suffix.

    Returns
    -------
    Stream
        Sections in stream order with phase, offsets and sizes; commands; the configuration;
        the RAM summary; the parsed vmdesc.

    Raises
    ------
    StreamFormatError
        ``FILE: byte N: expected ...`` for a truncated, corrupt or unsupported stream (offsets
        count bytes of the decompressed stream).

    Examples
    --------
    >>> import struct, tempfile, os
    >>> raw = b"QEVM" + struct.pack(">I", 3) + b"\\x07" + struct.pack(">I", 4) + b"pc-x" + b"\\x00"
    >>> with tempfile.NamedTemporaryFile(suffix=".mig", delete=False) as f:
    ...     _ = f.write(raw)
    >>> s = read_stream(f.name)
    >>> s.machine_type, s.sections, s.vmdesc
    ('pc-x', (), None)
    >>> os.unlink(f.name)
    """
    p = os.fspath(path)
    with local_file(p) as real:
        kind = detect_compression(real, p)
        f, whole = open_for_parse(real, kind, p)

        def trailer() -> Trailer | None:
            if whole is not None:
                return trailer_in_memory(whole)
            if kind == "plain":
                return trailer_of_plain(real, p)
            return trailer_by_scan(real, kind, p)

        try:
            reader = ByteReader(f, p, kind)
            parser = Parser(reader, trailer)
            version = parser.header()
            eof_at = parser.sections_loop()
            vmdesc_at = parser.finish(eof_at)
            size = reader.offset
        finally:
            f.close()
    phases = _phases(parser.sections)
    sections = tuple(
        StreamSection(s.type, s.section_id, s.idstr, s.instance_id, s.version_id, ph, s.offset,
                      s.payload_size, s.vmsd_name)
        for s, ph in zip(parser.sections, phases, strict=True)
    )
    commands = tuple(
        StreamCommand(cmd, name, at, length, before, phases[before - 1] if before else Phase.SETUP)
        for cmd, name, at, length, before in parser.commands
    )
    return Stream(p, version, kind, size, parser.config, sections, commands,
                  parser.ram_summary(), eof_at, vmdesc_at, parser.vmdesc,
                  footers=parser.footers is not False)
