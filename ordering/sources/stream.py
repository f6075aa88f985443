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
"""

from __future__ import annotations

import io
import json
import os
import struct
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ordering.sources import _stream_vmdesc as vd
from ordering.sources._stream_io import (
    ByteReader,
    Trailer,
    detect_compression,
    fail,
    locate_trailer,
    open_decompressed,
    opener_for,
)

__all__ = [
    "COMMAND_NAMES",
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

QEMU_VM_FILE_MAGIC = 0x5145564D
QEMU_VM_FILE_VERSION = 3
QEMU_VM_FILE_VERSION_COMPAT = 2

EOF, START, PART, END, FULL = 0x00, 0x01, 0x02, 0x03, 0x04
SUBSECTION, VMDESCRIPTION, CONFIGURATION, COMMAND, FOOTER = 0x05, 0x06, 0x07, 0x08, 0x7E

# RAM record flags (migration/ram.c, the low bits of each be64 record header).
RAM_ZERO = 0x02
RAM_MEM_SIZE = 0x04
RAM_PAGE = 0x08
RAM_EOS = 0x10
RAM_CONTINUE = 0x20
RAM_XBZRLE = 0x40
RAM_HOOK = 0x80
RAM_COMPRESS_PAGE = 0x100
RAM_MULTIFD_FLUSH = 0x200

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

_BE64 = struct.Struct(">Q")
_TYPE_NAMES = "0x00 EOF, 0x01 START, 0x02 PART, 0x03 END, 0x04 FULL, 0x08 COMMAND"


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

    @property
    def full_sections(self) -> tuple[StreamSection, ...]:
        """The FULL (device state) sections, in stream order."""
        return tuple(s for s in self.sections if s.type is SectionType.FULL)

    @property
    def machine_type(self) -> str | None:
        """The machine type named in the configuration section."""
        return self.configuration.machine_type if self.configuration else None


class _Raw:
    """A section while the pass runs (payload size and phase are settled later)."""

    __slots__ = ("idstr", "instance_id", "offset", "payload_size", "section_id", "type",
                 "version_id", "vmsd_name")

    def __init__(self, type_: SectionType, section_id: int, idstr: str, instance_id: int,
                 version_id: int, offset: int, payload_size: int, vmsd_name: str) -> None:
        self.type = type_
        self.section_id = section_id
        self.idstr = idstr
        self.instance_id = instance_id
        self.version_id = version_id
        self.offset = offset
        self.payload_size = payload_size
        self.vmsd_name = vmsd_name


def _base_name(idstr: str) -> str:
    return idstr.rsplit("/", 1)[-1]


class _Parser:
    """One pass over the stream; state kept small (RAM block table, START index, counters)."""

    def __init__(self, r: ByteReader, trailer: Trailer | None) -> None:
        self.r = r
        self.trailer = trailer
        self.vmdesc: dict[str, Any] | None = None
        self.devices: list[dict[str, Any]] | None = None
        self.device_next = 0
        if trailer is not None:
            self._load_vmdesc(trailer)
        self.config: Configuration | None = None
        self.sections: list[_Raw] = []
        self.commands: list[tuple[int, str, int, int, int]] = []
        self.started: dict[int, _Raw] = {}
        # RAM walk state
        self.page_size = 0
        self.blocks: dict[str, int] = {}
        self.block_order: list[RamBlock] = []
        self.block_len = -1
        self.ram_seen = False
        self.pages = self.zero_pages = self.records = self.ram_bytes = 0
        self.flushes = self.hooks = 0

    # -- vmdesc ---------------------------------------------------------------------------
    def _load_vmdesc(self, t: Trailer) -> None:
        path = self.r.path
        try:
            data = json.loads(t.json)
        except (ValueError, RecursionError) as exc:
            pos = getattr(exc, "pos", 0) or 0
            raise fail(path, t.offset + 5 + pos, f"vmdesc JSON ({exc})") from None
        try:
            self.devices = vd.device_entries(data)
        except vd.VmdescShapeError as exc:
            raise fail(path, t.offset + 5, str(exc.args[0])) from None
        self.vmdesc = data

    # -- header and configuration ----------------------------------------------------------
    def header(self) -> int:
        r = self.r
        magic = r.be32("file magic QEVM (0x5145564d)")
        if magic != QEMU_VM_FILE_MAGIC:
            raise r.fail(f"file magic QEVM (0x5145564d), found 0x{magic:08x}", 0)
        version = r.be32("stream version")
        if version != QEMU_VM_FILE_VERSION:
            extra = " (version 2 is obsolete)" if version == QEMU_VM_FILE_VERSION_COMPAT else ""
            raise r.fail(f"stream version 3, found {version}{extra}", 4)
        if r.peek_u8() == CONFIGURATION:
            r.u8("configuration section type")
            self.config = self._configuration()
        return version

    def _configuration(self) -> Configuration:
        r = self.r
        at = r.offset
        n = r.be32("length of the machine type")
        if n > 256:
            raise r.fail(f"a machine type name of at most 256 bytes, found length {n}", at)
        raw = r.take(n, "machine type name")
        try:
            machine = raw.decode()
        except UnicodeDecodeError:
            raise r.fail(f"machine type name as text, found {raw!r}", at + 4) from None
        subs: list[ConfigSubsection] = []
        page_bits: int | None = None
        caps: list[str] = []
        uuid: str | None = None
        vm_subs: dict[str, dict[str, Any]] = {}
        if self.vmdesc is not None and isinstance(self.vmdesc.get("configuration"), dict):
            for s in self.vmdesc["configuration"].get("subsections") or []:
                if isinstance(s, dict) and isinstance(s.get("vmsd_name"), str):
                    vm_subs[s["vmsd_name"]] = s
        while r.peek_u8() == SUBSECTION:
            sat = r.offset
            r.u8("subsection type")
            name = r.name("configuration subsection name")
            version = r.be32("configuration subsection version")
            subs.append(ConfigSubsection(name, version, sat))
            if name == "configuration/target-page-bits":
                bits_at = r.offset
                page_bits = r.be32("target page bits")
                if not 9 <= page_bits <= 30:
                    raise r.fail(f"target page bits between 9 and 30, found {page_bits}",
                                 bits_at)
            elif name == "configuration/capabilities":
                count = r.be32("capability count")
                for _ in range(count):
                    caps.append(r.name("capability name"))
            elif name == "configuration/uuid":
                raw_uuid = r.take(16, "UUID (16 bytes)")
                uuid = raw_uuid.hex()
            elif name in vm_subs:
                try:
                    size = vd.vmsd_payload_size(vm_subs[name], f"vmdesc configuration {name}")
                except vd.VmdescShapeError as exc:
                    raise r.fail(str(exc.args[0]), sat) from None
                r.skip(size, f"payload of configuration subsection {name!r}")
            else:
                raise r.fail(
                    "a known configuration subsection (target-page-bits, capabilities, uuid), "
                    f"found {name!r}",
                    sat,
                )
        return Configuration(machine, tuple(subs), page_bits, tuple(caps), uuid)

    # -- the section loop -----------------------------------------------------------------
    def sections_loop(self) -> int:
        """Read sections up to and including EOF; return the EOF byte's offset."""
        r = self.r
        while True:
            at = r.offset
            t = r.u8(f"a section type ({_TYPE_NAMES})")
            if t == EOF:
                return at
            if t in (START, FULL):
                sid = r.be32("section_id")
                idstr = r.name("section idstr")
                inst = r.be32("instance_id")
                ver = r.be32("version_id")
                if t == START:
                    sec = _Raw(SectionType.START, sid, idstr, inst, ver, at, 0, _base_name(idstr))
                    self.started[sid] = sec
                    sec.payload_size = self._iterable_payload(sec)
                else:
                    sec = self._full(sid, idstr, inst, ver, at)
                self.sections.append(sec)
                self._footer(sec)
            elif t in (PART, END):
                sid_at = r.offset
                sid = r.be32("section_id")
                start = self.started.get(sid)
                if start is None:
                    known = ", ".join(str(k) for k in sorted(self.started)) or "none"
                    raise r.fail(
                        f"the section_id of a START section (known: {known}), found {sid}",
                        sid_at,
                    )
                sec = _Raw(SectionType.PART if t == PART else SectionType.END, sid, start.idstr,
                           start.instance_id, start.version_id, at, 0, start.vmsd_name)
                sec.payload_size = self._iterable_payload(sec)
                self.sections.append(sec)
                self._footer(sec)
            elif t == COMMAND:
                self._command(at)
            else:
                raise r.fail(f"a section type ({_TYPE_NAMES}), found 0x{t:02x}", at)

    def _footer(self, sec: _Raw) -> None:
        r = self.r
        at = r.offset
        what = (f"section footer (0x7e, be32 {sec.section_id}) closing {sec.type} section "
                f"{sec.section_id} {sec.idstr!r} instance {sec.instance_id} started at byte "
                f"{sec.offset}")
        if sec.type is SectionType.FULL:
            what += f" (payload {sec.payload_size} bytes from the vmdesc)"
        b = r.u8(what)
        if b != FOOTER:
            raise r.fail(f"{what}, found 0x{b:02x}", at)
        sid = r.be32(what)
        if sid != sec.section_id:
            raise r.fail(f"{what}, found footer section_id {sid}", at)

    def _command(self, at: int) -> None:
        r = self.r
        cmd = r.be16("command number")
        length = r.be16("command length")
        name = COMMAND_NAMES.get(cmd)
        if name is None:
            raise r.fail(f"a known command (1..11), found {cmd}", at + 1)
        if name == "PACKAGED":
            raise r.fail("a precopy stream: postcopy PACKAGED commands are not supported", at)
        r.skip(length, f"{length} bytes of {name} command data")
        self.commands.append((cmd, name, at, length, len(self.sections)))

    # -- FULL sections ----------------------------------------------------------------------
    def _full(self, sid: int, idstr: str, inst: int, ver: int, at: int) -> _Raw:
        r = self.r
        label = f"FULL section {sid} {idstr!r} instance {inst}"
        if self.devices is None:
            raise r.fail(
                "a vmdesc trailer (0x06, be32 length, JSON) ending the stream, to size the "
                f"payload of {label} (none found: truncated stream or vmdesc not sent)",
                at,
            )
        if self.device_next >= len(self.devices):
            raise r.fail(f"{label} to have an entry in the vmdesc, which lists only "
                         f"{len(self.devices)} devices", at)
        dev = self.devices[self.device_next]
        self.device_next += 1
        if dev["name"] != idstr or dev["instance_id"] != inst:
            raise r.fail(
                f"{label} to match vmdesc device #{self.device_next - 1} "
                f"({dev['name']!r} instance {dev['instance_id']})",
                at,
            )
        try:
            size = vd.vmsd_payload_size(dev, f"vmdesc device #{self.device_next - 1} ({idstr})")
        except vd.VmdescShapeError as exc:
            raise r.fail(str(exc.args[0]), at) from None
        vmsd = dev.get("vmsd_name")
        sec = _Raw(SectionType.FULL, sid, idstr, inst, ver, at, size,
                   vmsd if isinstance(vmsd, str) else _base_name(idstr))
        r.skip(size, f"payload of {label} (size from the vmdesc)")
        return sec

    # -- iterable sections (RAM) ----------------------------------------------------------
    def _iterable_payload(self, sec: _Raw) -> int:
        if sec.idstr != "ram":
            raise self.r.fail(
                f"an iterable section this reader understands ('ram'); {sec.type} section "
                f"{sec.section_id} {sec.idstr!r} is not supported",
                sec.offset,
            )
        if not self.ram_seen:
            self.ram_seen = True
            self.page_size = self._page_size()
        start = self.r.offset
        self._walk_ram()
        size = self.r.offset - start
        self.ram_bytes += size
        return size

    def _page_size(self) -> int:
        if self.config is not None and self.config.target_page_bits is not None:
            return 1 << self.config.target_page_bits
        return vd.page_size(self.vmdesc) or 4096

    def _walk_ram(self) -> None:
        """Walk one RAM section's records up to EOS, keeping counts only.

        The common records (a PAGE or ZERO page of the current block, flag CONTINUE) are
        decoded straight from the reader's buffer; every other record, and any record near
        the end of the buffer, goes through :meth:`_ram_record`, which checks it fully.
        """
        r = self.r
        page = self.page_size
        mask = page - 1
        unpack = _BE64.unpack_from
        cont_zero = RAM_ZERO | RAM_CONTINUE
        cont_page = RAM_PAGE | RAM_CONTINUE
        longest = 8 + 1 + 255 + page
        while True:
            buf, pos = r.window(longest)
            end = len(buf) - longest
            block_len = self.block_len
            pages = zero = records = 0
            while pos <= end:
                (hdr,) = unpack(buf, pos)
                flags = hdr & mask
                if flags == cont_zero and hdr - flags < block_len:
                    pos += 9
                    zero += 1
                elif flags == cont_page and hdr - flags < block_len:
                    pos += 8 + page
                    pages += 1
                else:
                    break
                records += 1
            r.seek_window(pos)
            self.pages += pages
            self.zero_pages += zero
            self.records += records
            if self._ram_record():
                return

    def _ram_record(self) -> bool:
        """Read one RAM record with every check; True at EOS."""
        r = self.r
        page = self.page_size
        at = r.offset
        hdr = r.be64("RAM record header (be64 address | flags)")
        self.records += 1
        flags = hdr & (page - 1)
        kind = flags & ~RAM_CONTINUE
        if kind in (RAM_PAGE, RAM_ZERO):
            if not flags & RAM_CONTINUE:
                name_at = r.offset
                name = r.name("RAM block name")
                length = self.blocks.get(name)
                if length is None:
                    raise r.fail(f"a RAM block announced by MEM_SIZE, found {name!r}", name_at)
                self.block_len = length
            elif self.block_len < 0:
                raise r.fail("a RAM block name: CONTINUE with no previous block", at)
            if hdr - flags >= self.block_len:
                raise r.fail(f"a RAM offset below the block length {self.block_len}, "
                             f"found {hdr - flags}", at)
            if kind == RAM_PAGE:
                r.skip(page, "a RAM page")
                self.pages += 1
            else:
                r.u8("zero page fill byte")
                self.zero_pages += 1
        elif kind == RAM_EOS:
            return True
        elif kind == RAM_MEM_SIZE:
            self._mem_size(hdr - flags, at)
        elif kind == RAM_MULTIFD_FLUSH:
            self.flushes += 1
        elif kind == RAM_HOOK:
            self.hooks += 1
        elif kind & (RAM_XBZRLE | RAM_COMPRESS_PAGE):
            which = "XBZRLE" if kind & RAM_XBZRLE else "compressed (COMPRESS_PAGE)"
            raise r.fail(f"a plain RAM record: {which} pages are not supported "
                         f"(flags 0x{flags:x})", at)
        else:
            raise r.fail(f"a known combination of RAM flags, found 0x{flags:x}", at)
        return False

    def _mem_size(self, total: int, at: int) -> None:
        r = self.r
        ignore_shared = self.config is not None and "x-ignore-shared" in self.config.capabilities
        remaining = total
        while remaining:
            bat = r.offset
            name = r.name("RAM block name in the MEM_SIZE list")
            length = r.be64(f"length of RAM block {name!r}")
            if ignore_shared:
                r.be64(f"guest address of RAM block {name!r} (x-ignore-shared)")
            if length > remaining:
                raise r.fail(f"RAM block lengths adding up to MEM_SIZE {total} (record at byte "
                             f"{at}), block {name!r} of {length} exceeds the {remaining} left",
                             bat)
            remaining -= length
            if name not in self.blocks:
                self.block_order.append(RamBlock(name, length))
            self.blocks[name] = length

    # -- EOF and trailer --------------------------------------------------------------------
    def finish(self, eof_at: int) -> int | None:
        r = self.r
        if self.devices is not None and self.device_next != len(self.devices):
            dev = self.devices[self.device_next]
            raise r.fail(f"FULL section {dev['name']!r} instance {dev['instance_id']} listed in "
                         "the vmdesc before EOF", eof_at)
        at = r.offset
        if r.at_end():
            if self.trailer is not None:
                raise r.fail("the vmdesc trailer found at byte "
                             f"{self.trailer.offset} right after EOF", at)
            return None
        if self.trailer is None or self.trailer.offset != at:
            b = r.u8("VMDESCRIPTION trailer")
            raise r.fail(f"end of stream or a VMDESCRIPTION trailer (0x06, be32 length, JSON "
                         f"to the end) after EOF, found 0x{b:02x}", at)
        r.skip(5 + len(self.trailer.json), "vmdesc trailer")
        if not r.at_end():
            raise r.fail("end of stream after the vmdesc JSON")
        return at

    def ram_summary(self) -> RamSummary | None:
        if not self.ram_seen:
            return None
        return RamSummary(self.page_size, tuple(self.block_order), self.pages, self.zero_pages,
                          self.records, self.ram_bytes, self.flushes, self.hooks)


def _phases(raw: list[_Raw]) -> list[Phase]:
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
    kind = detect_compression(p)
    trailer, whole = locate_trailer(p, kind, opener_for(p, kind))
    with _open_for_parse(p, kind, whole) as f:
        reader = ByteReader(f, p, kind)
        parser = _Parser(reader, trailer)
        version = parser.header()
        eof_at = parser.sections_loop()
        vmdesc_at = parser.finish(eof_at)
        size = reader.offset
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
                  parser.ram_summary(), eof_at, vmdesc_at, parser.vmdesc)


class _Closing:
    def __init__(self, f: io.BufferedIOBase) -> None:
        self.f = f

    def __enter__(self) -> io.BufferedIOBase:
        return self.f

    def __exit__(self, *exc: object) -> None:
        self.f.close()


def _open_for_parse(path: str, kind: str, whole: bytes | None) -> _Closing:
    if whole is not None:
        return _Closing(io.BytesIO(whole))
    try:
        return _Closing(open_decompressed(path, kind))
    except OSError as exc:
        raise fail(path, 0, f"a readable file ({exc.strerror})") from None
