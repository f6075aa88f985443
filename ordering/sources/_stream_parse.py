"""One pass over a migration stream: header, configuration, sections, commands, trailer.

Private to :mod:`ordering.sources.stream`, which turns the pass's result into a
:class:`~ordering.sources.stream.Stream`. RAM records are walked by
:mod:`~ordering.sources._stream_ram`; FULL payloads are sized by
:mod:`~ordering.sources._stream_vmdesc`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ordering.sources import _stream_vmdesc as vd
from ordering.sources._limits import cut, shown
from ordering.sources._stream_io import ByteReader, fail
from ordering.sources._stream_model import (
    COMMAND_NAMES,
    ConfigSubsection,
    Configuration,
    RamSummary,
    SectionType,
)
from ordering.sources._stream_ram import RamWalker, page_size_of
from ordering.sources._stream_trailer import TRAILER_LIMIT, Trailer

QEMU_VM_FILE_MAGIC = 0x5145564D
QEMU_VM_FILE_VERSION = 3
QEMU_VM_FILE_VERSION_COMPAT = 2

EOF, START, PART, END, FULL = 0x00, 0x01, 0x02, 0x03, 0x04
SUBSECTION, VMDESCRIPTION, CONFIGURATION, COMMAND, FOOTER = 0x05, 0x06, 0x07, 0x08, 0x7E

_TYPE_NAMES = "0x00 EOF, 0x01 START, 0x02 PART, 0x03 END, 0x04 FULL, 0x08 COMMAND"


class RawSection:
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
    """The VMSD name an idstr stands for when the vmdesc does not say: after its last ``/``."""
    return idstr.rsplit("/", 1)[-1]


_NEXT_TYPES = frozenset((EOF, START, PART, END, FULL, COMMAND))
"""What may follow a section when the stream carries no footers."""


class Parser:
    """One pass over the stream; state kept small (START index, vmdesc cursor, RAM walker).

    The vmdesc trailer is looked for (``find_trailer``) only when something needs it: the
    size of a FULL payload, the page size, a configuration subsection. A stream that goes wrong
    before that fails at once, without a pass over its end.
    """

    def __init__(self, r: ByteReader, find_trailer: Callable[[], Trailer | None]) -> None:
        self.r = r
        self._find_trailer: Callable[[], Trailer | None] | None = find_trailer
        self.trailer: Trailer | None = None
        self.vmdesc: dict[str, Any] | None = None
        self.devices: list[dict[str, Any]] | None = None
        self.device_next = 0
        self.config: Configuration | None = None
        self.sections: list[RawSection] = []
        self.commands: list[tuple[int, str, int, int, int]] = []
        self.started: dict[int, RawSection] = {}
        self.ram: RamWalker | None = None
        self.footers: bool | None = None
        """Whether sections end with a footer; decided by the first section (QEMU sends none
        when ``migration.send-section-footer`` is off: pc machine types up to 2.3)."""

    # -- vmdesc ---------------------------------------------------------------------------
    def _need_vmdesc(self) -> None:
        """Find and load the trailer, once."""
        if self._find_trailer is None:
            return
        find, self._find_trailer = self._find_trailer, None
        self.trailer = find()
        if self.trailer is not None:
            self._load_vmdesc(self.trailer)

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
            raise fail(path, t.offset + 5, cut(str(exc.args[0]))) from None
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
            elif name in (vm_subs := self._config_subsections()):
                try:
                    size = vd.vmsd_payload_size(vm_subs[name], f"vmdesc configuration {name}")
                except vd.VmdescShapeError as exc:
                    raise r.fail(cut(str(exc.args[0])), sat) from None
                r.skip(size, f"payload of configuration subsection {name!r}")
            else:
                raise r.fail(
                    "a known configuration subsection (target-page-bits, capabilities, uuid), "
                    f"found {name!r}",
                    sat,
                )
        return Configuration(machine, tuple(subs), page_bits, tuple(caps), uuid)

    def _config_subsections(self) -> dict[str, dict[str, Any]]:
        """The vmdesc's configuration subsections by name (to size ones this reader does not
        know)."""
        self._need_vmdesc()
        out: dict[str, dict[str, Any]] = {}
        if self.vmdesc is not None and isinstance(self.vmdesc.get("configuration"), dict):
            for s in self.vmdesc["configuration"].get("subsections") or []:
                if isinstance(s, dict) and isinstance(s.get("vmsd_name"), str):
                    out[s["vmsd_name"]] = s
        return out

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
                    sec = RawSection(SectionType.START, sid, idstr, inst, ver, at, 0, _base_name(idstr))
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
                sec = RawSection(SectionType.PART if t == PART else SectionType.END, sid, start.idstr,
                           start.instance_id, start.version_id, at, 0, start.vmsd_name)
                sec.payload_size = self._iterable_payload(sec)
                self.sections.append(sec)
                self._footer(sec)
            elif t == COMMAND:
                self._command(at)
            else:
                raise r.fail(f"a section type ({_TYPE_NAMES}), found 0x{t:02x}", at)

    def _footer(self, sec: RawSection) -> None:
        r = self.r
        at = r.offset
        what = (f"section footer (0x7e, be32 {sec.section_id}) closing {sec.type} section "
                f"{sec.section_id} {sec.idstr!r} instance {sec.instance_id} started at byte "
                f"{sec.offset}")
        if sec.type is SectionType.FULL:
            what += f" (payload {sec.payload_size} bytes from the vmdesc)"
        if self.footers is None:
            # A stream without a configuration section may come from a machine type that
            # turns footers off; then the first section is followed directly by the next one.
            nxt = r.peek_u8()
            self.footers = nxt == FOOTER or self.config is not None or nxt not in _NEXT_TYPES
        if not self.footers:
            return
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
    def _full(self, sid: int, idstr: str, inst: int, ver: int, at: int) -> RawSection:
        r = self.r
        label = f"FULL section {sid} {idstr!r} instance {inst}"
        self._need_vmdesc()
        if self.devices is None:
            raise r.fail(
                "a vmdesc trailer (0x06, be32 length, JSON) ending the stream, to size the "
                f"payload of {label} (none found: truncated stream, vmdesc not sent, or a "
                f"vmdesc longer than migorder's limit of {TRAILER_LIMIT} bytes)",
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
                f"({shown(dev['name'])} instance {dev['instance_id']})",
                at,
            )
        try:
            size = vd.vmsd_payload_size(dev, f"vmdesc device #{self.device_next - 1} ({idstr})")
        except vd.VmdescShapeError as exc:
            raise r.fail(cut(str(exc.args[0])), at) from None
        vmsd = dev.get("vmsd_name")
        sec = RawSection(SectionType.FULL, sid, idstr, inst, ver, at, size,
                   vmsd if isinstance(vmsd, str) else _base_name(idstr))
        r.skip(size, f"payload of {label} (size from the vmdesc)")
        return sec

    # -- iterable sections (RAM) ----------------------------------------------------------
    def _iterable_payload(self, sec: RawSection) -> int:
        if sec.idstr != "ram":
            raise self.r.fail(
                f"an iterable section this reader understands ('ram'); {sec.type} section "
                f"{sec.section_id} {sec.idstr!r} is not supported",
                sec.offset,
            )
        if self.ram is None:
            ignore_shared = (self.config is not None
                             and "x-ignore-shared" in self.config.capabilities)
            if self.config is None or self.config.target_page_bits is None:
                self._need_vmdesc()
            try:
                page = page_size_of(self.config, self.vmdesc)
            except vd.VmdescShapeError as exc:
                at = self.trailer.offset + 5 if self.trailer is not None else sec.offset
                raise self.r.fail(cut(str(exc.args[0])), at) from None
            self.ram = RamWalker(self.r, page, ignore_shared)
        return self.ram.section()

    # -- EOF and trailer --------------------------------------------------------------------
    def finish(self, eof_at: int) -> int | None:
        """Check what follows EOF: nothing, or the vmdesc trailer to the end; its offset."""
        r = self.r
        if self.devices is not None and self.device_next != len(self.devices):
            dev = self.devices[self.device_next]
            raise r.fail(f"FULL section {shown(dev['name'])} instance {dev['instance_id']} listed in "
                         "the vmdesc before EOF", eof_at)
        at = r.offset
        if r.at_end():
            return None
        b = r.u8("VMDESCRIPTION trailer")
        if b != VMDESCRIPTION:
            raise r.fail(f"end of stream or a VMDESCRIPTION trailer (0x06, be32 length, JSON "
                         f"to the end) after EOF, found 0x{b:02x}", at)
        length = r.be32("length of the vmdesc JSON")
        if length > TRAILER_LIMIT:
            raise r.fail(f"a vmdesc of at most {TRAILER_LIMIT} bytes (migorder's limit), found "
                         f"a length of {length}", at + 1)
        if self.trailer is not None:
            if self.trailer.offset != at:
                raise r.fail(f"the vmdesc trailer found at byte {self.trailer.offset} right "
                             "after EOF", at)
            r.skip(length, "vmdesc JSON")
        else:
            body = r.take(length, "vmdesc JSON")
            if r.at_end():
                self._load_vmdesc(Trailer(at, body, r.offset))
        if not r.at_end():
            raise r.fail("end of stream after the vmdesc JSON")
        return at

    def ram_summary(self) -> RamSummary | None:
        """What the walk over the ``ram`` sections counted (None when there were none)."""
        return self.ram.summary() if self.ram is not None else None
