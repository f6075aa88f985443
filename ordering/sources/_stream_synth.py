"""Write small or very large synthetic-but-valid migration streams (for tests and benchmarks).

The layout follows the facts the reader relies on (``shared/qemu/DOSSIER.md`` §2): header,
configuration, a ``ram`` START with the MEM_SIZE block list, PART sections of PAGE/ZERO records,
an optional SWITCHOVER_START command, the ``ram`` END, FULL device sections whose payloads match
the vmdesc, EOF, then the vmdesc trailer. Written piece by piece, so a 1 GiB stream costs no
memory.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any


@dataclass(frozen=True)
class SynthSubsection:
    """A subsection of a synthetic device: name (must start with the VMSD name), field sizes."""

    name: str
    version: int = 1
    field_sizes: tuple[int, ...] = (4,)


@dataclass(frozen=True)
class SynthDevice:
    """A synthetic FULL section."""

    idstr: str
    instance_id: int = 0
    version_id: int = 1
    field_sizes: tuple[int, ...] = (4, 8)
    array: tuple[int, int] | None = None
    """(element size, array_len) for one compressed-array field."""
    subsections: tuple[SynthSubsection, ...] = ()
    early: bool = False
    """Sent in the setup phase (an early_setup VMSD), after the RAM START."""

    @property
    def vmsd_name(self) -> str:
        """The idstr after its last ``/``."""
        return self.idstr.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SynthSpec:
    """What to put in a synthetic stream."""

    machine: str = "pc-q35-7.2"
    target_page_bits: int | None = None
    page_size: int = 4096
    pages: int = 8
    zero_pages: int = 8
    parts: int = 1
    switchover_start: bool = False
    devices: tuple[SynthDevice, ...] = field(
        default_factory=lambda: (
            SynthDevice("timer", 0, 2, (8, 8, 8)),
            SynthDevice("cpu", 0, 12, (8, 4), (8, 16),
                        (SynthSubsection("cpu/async_pf_msr", 1, (8,)),)),
        )
    )
    vmdesc: bool = True
    ram_section_id: int = 2


def _be32(v: int) -> bytes:
    return struct.pack(">I", v)


def _be64(v: int) -> bytes:
    return struct.pack(">Q", v)


def _name(s: str) -> bytes:
    raw = s.encode()
    return bytes([len(raw)]) + raw


def _header(kind: int, sid: int, idstr: str, inst: int, ver: int) -> bytes:
    return bytes([kind]) + _be32(sid) + _name(idstr) + _be32(inst) + _be32(ver)


def _footer(sid: int) -> bytes:
    return b"\x7e" + _be32(sid)


def _payload(dev: SynthDevice) -> tuple[bytes, dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    out = bytearray()
    for i, size in enumerate(dev.field_sizes):
        out += bytes((i + j) & 0xFF for j in range(size))
        fields.append({"name": f"f{i}", "type": "buffer", "size": size})
    if dev.array is not None:
        elem, count = dev.array
        out += b"\xa5" * (elem * count)
        fields.append({"name": "arr", "array_len": count, "type": "uint8", "size": elem})
    subs: list[dict[str, Any]] = []
    for sub in dev.subsections:
        out += b"\x05" + _name(sub.name) + _be32(sub.version)
        sfields = []
        for k, size in enumerate(sub.field_sizes):
            out += b"\x5a" * size
            sfields.append({"name": f"s{k}", "type": "buffer", "size": size})
        subs.append({"vmsd_name": sub.name, "version": sub.version, "fields": sfields})
    desc: dict[str, Any] = {"name": dev.idstr, "instance_id": dev.instance_id,
                            "vmsd_name": dev.vmsd_name, "version": dev.version_id,
                            "fields": fields}
    if subs:
        desc["subsections"] = subs
    return bytes(out), desc


def write_synthetic(out: IO[bytes], spec: SynthSpec) -> int:
    """Write a synthetic stream to ``out``; return the number of bytes written.

    Parameters
    ----------
    out : binary file
        Where to write.
    spec : SynthSpec
        What the stream holds.

    Returns
    -------
    int
        Bytes written.

    Examples
    --------
    >>> import io
    >>> buf = io.BytesIO()
    >>> n = write_synthetic(buf, SynthSpec(pages=1, zero_pages=1))
    >>> buf.getvalue()[:4], n == len(buf.getvalue())
    (b'QEVM', True)
    """
    written = 0

    def put(b: bytes) -> None:
        nonlocal written
        out.write(b)
        written += len(b)

    page = spec.page_size
    rid = spec.ram_section_id
    put(b"QEVM" + _be32(3))
    put(b"\x07" + _be32(len(spec.machine.encode())) + spec.machine.encode())
    if spec.target_page_bits is not None:
        put(b"\x05" + _name("configuration/target-page-bits") + _be32(1)
            + _be32(spec.target_page_bits))
    total_pages = max(1, spec.pages + spec.zero_pages)
    block = "pc.ram"
    put(_header(1, rid, "ram", 0, 4))
    put(_be64(total_pages * page | 0x04) + _name(block) + _be64(total_pages * page))
    put(_be64(0x10) + _footer(rid))
    descs: list[dict[str, Any]] = []
    next_sid = rid + 1
    late: list[tuple[int, SynthDevice]] = []
    for dev in spec.devices:
        sid = next_sid
        next_sid += 1
        if dev.early:
            payload, desc = _payload(dev)
            put(_header(4, sid, dev.idstr, dev.instance_id, dev.version_id) + payload
                + _footer(sid))
            descs.append(desc)
        else:
            late.append((sid, dev))
    page_data = bytes(range(256)) * (page // 256) + bytes(page % 256)
    parts = max(spec.parts, 0)
    addr = 0
    first = True
    for p in range(parts):
        put(bytes([2]) + _be32(rid))
        lo = spec.pages * p // parts
        hi = spec.pages * (p + 1) // parts
        zlo = spec.zero_pages * p // parts
        zhi = spec.zero_pages * (p + 1) // parts
        for _ in range(hi - lo):
            flags = 0x08 if first else 0x28
            put(_be64(addr | flags) + (_name(block) if first else b"") + page_data)
            first = False
            addr += page
        for _ in range(zhi - zlo):
            flags = 0x02 if first else 0x22
            put(_be64(addr | flags) + (_name(block) if first else b"") + b"\x00")
            first = False
            addr += page
        put(_be64(0x10) + _footer(rid))
    if spec.switchover_start:
        put(b"\x08" + struct.pack(">HH", 11, 0))
    put(bytes([3]) + _be32(rid) + _be64(0x10) + _footer(rid))
    for sid, dev in late:
        payload, desc = _payload(dev)
        put(_header(4, sid, dev.idstr, dev.instance_id, dev.version_id) + payload + _footer(sid))
        descs.append(desc)
    put(b"\x00")
    if spec.vmdesc:
        text = json.dumps({"page_size": page, "devices": descs}).encode()
        put(b"\x06" + _be32(len(text)) + text)
    return written


def synthetic_bytes(spec: SynthSpec | None = None, **kw: Any) -> bytes:
    """A whole synthetic stream in memory (small specs only).

    Examples
    --------
    >>> synthetic_bytes(pages=0, zero_pages=1, devices=())[:4]
    b'QEVM'
    """
    import io

    buf = io.BytesIO()
    write_synthetic(buf, spec or SynthSpec(**kw))
    return buf.getvalue()


def device_names(spec: SynthSpec) -> Sequence[str]:
    """The idstrs of ``spec``'s devices in stream order (early ones first)."""
    return [d.idstr for d in spec.devices if d.early] + [
        d.idstr for d in spec.devices if not d.early
    ]
