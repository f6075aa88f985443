"""The migration stream reader against real QEMU streams and hand-made broken ones."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from stream_helpers import (
    decompressed,
    ground_truth,
    real_streams,
    real_streams_dir,
    write_variant,
)

from ordering.errors import MigOrderError, StreamFormatError
from ordering.sources import _stream_io
from ordering.sources._stream_synth import SynthDevice, SynthSpec, SynthSubsection, synthetic_bytes
from ordering.sources.stream import Phase, SectionType, Stream, read_stream

REAL = real_streams()
REAL_IDS = [p.name.removesuffix(".mig.xz") for p in REAL]
needs_real = pytest.mark.skipif(
    not REAL, reason=f"no real streams in {real_streams_dir()} (set MIGORDER_REAL_STREAMS to a folder of them)"
)
ITERABLE_PHASE = {"START": "setup", "PART": "iterate", "END": "complete"}


def _write(tmp_path: Path, raw: bytes, name: str = "s.mig") -> Path:
    p = tmp_path / name
    p.write_bytes(raw)
    return p


def _fails(path: Path) -> StreamFormatError:
    with pytest.raises(StreamFormatError) as info:
        read_stream(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: byte "), msg
    assert ": expected " in msg, msg
    return info.value


def _byte(err: StreamFormatError) -> int:
    return int(err.where.rsplit("byte ", 1)[1])


# -- real streams -------------------------------------------------------------------------------


@needs_real
@pytest.mark.parametrize("stream", REAL, ids=REAL_IDS)
def test_real_stream_sections_match_ground_truth(stream: Path) -> None:
    truth = ground_truth(stream)
    got = read_stream(stream)
    assert got.version == truth["stream_version"] == 3
    assert got.machine_type == truth["machine"]
    assert got.compression == "xz"
    assert len(got.sections) == len(truth["sections"])
    for sec, want in zip(got.sections, truth["sections"], strict=True):
        row = {
            "type": str(sec.type), "section_id": sec.section_id, "idstr": sec.idstr,
            "instance_id": sec.instance_id, "version_id": sec.version_id,
            "phase": str(sec.phase), "vmsd_name": sec.vmsd_name,
        }
        expected = {k: v for k, v in want.items() if k in row}
        expected.setdefault("phase", ITERABLE_PHASE.get(want["type"], "complete"))
        assert {k: row[k] for k in expected} == expected


@needs_real
@pytest.mark.parametrize("stream", REAL, ids=REAL_IDS)
def test_real_stream_details(stream: Path) -> None:
    s = read_stream(stream)
    machine = s.machine_type or ""
    assert s.vmdesc is not None
    assert s.vmdesc_offset == s.eof_offset + 1
    assert [d["name"] for d in s.vmdesc["devices"]] == [x.idstr for x in s.full_sections]
    assert s.ram is not None
    assert s.ram.page_size == 4096
    assert s.ram.pages + s.ram.zero_pages == s.ram.records - 3 - 1  # 3 EOS + MEM_SIZE
    assert sum(b.length for b in s.ram.blocks) > 64 << 20
    offsets = [x.offset for x in s.sections]
    assert offsets == sorted(offsets)
    for x in s.sections:
        if x.type is SectionType.FULL:
            assert x.vmsd_name == x.idstr.rsplit("/", 1)[-1] or "/" not in x.vmsd_name
    if stream.name.startswith("qemu11.1"):
        assert [(c.name, c.cmd, c.length) for c in s.commands] == [("SWITCHOVER_START", 11, 0)]
        cmd = s.commands[0]
        assert s.sections[cmd.before_section].type is SectionType.END
        assert s.sections[cmd.before_section - 1].type is SectionType.PART
        assert s.full_sections[0].idstr == "apic" or machine.startswith("virt")
    else:
        assert s.commands == ()
    if machine.startswith("virt"):
        assert s.configuration is not None
        assert s.configuration.target_page_bits == 12


@needs_real
@pytest.mark.parametrize("kind", ["plain", "gz"])
def test_plain_and_gz_read_like_xz(tmp_path: Path, kind: str) -> None:
    for stream in REAL[:3]:
        base = read_stream(stream)
        other = read_stream(write_variant(decompressed(stream), tmp_path / "v.bin", kind))
        assert other.compression == kind
        assert other.sections == base.sections
        assert other.commands == base.commands
        assert other.ram == base.ram
        assert other.size == base.size
        assert other.vmdesc == base.vmdesc


@needs_real
def test_compressed_two_pass_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams longer than the prefetch limit are scanned, then decompressed a second time."""
    base = [read_stream(s) for s in REAL[:2]]
    monkeypatch.setattr(_stream_io, "PREFETCH_LIMIT", 4096)
    monkeypatch.setattr(_stream_io, "CHUNK", 1000)
    again = [read_stream(s) for s in REAL[:2]]
    assert [s.sections for s in again] == [s.sections for s in base]


@needs_real
def test_truncation_at_many_offsets(tmp_path: Path) -> None:
    stream = REAL[0]
    raw = decompressed(stream)
    s = read_stream(stream)
    cuts = {1, 3, 4, 7, 8, 9, 12, 20, len(raw) - 1, len(raw) - 2, s.eof_offset,
            s.eof_offset + 1, s.eof_offset + 3}
    for sec in s.sections:
        cuts.update({sec.offset, sec.offset + 1, sec.offset + 5, sec.offset + 9})
    cuts.update(range(0, len(raw), max(1, len(raw) // 40)))
    cuts.discard(0)
    for n in sorted(cuts):
        p = _write(tmp_path, raw[:n])
        err = _fails(p)
        assert _byte(err) <= len(raw)
    # an empty file
    _fails(_write(tmp_path, b""))


@needs_real
def test_truncated_xz_is_a_stream_error(tmp_path: Path) -> None:
    data = REAL[0].read_bytes()
    for n in (20, len(data) // 2, len(data) - 10):
        _fails(_write(tmp_path, data[:n], "cut.mig.xz"))


@needs_real
def test_corrupt_footer_names_offset_and_section(tmp_path: Path) -> None:
    raw = bytearray(decompressed(REAL[0]))
    s = read_stream(REAL[0])
    sec = s.full_sections[3]
    header = 1 + 4 + 1 + len(sec.idstr.encode()) + 4 + 4
    footer_at = sec.offset + header + sec.payload_size
    assert raw[footer_at] == 0x7E
    raw[footer_at] = 0x7D
    err = _fails(_write(tmp_path, bytes(raw)))
    assert _byte(err) == footer_at
    assert repr(sec.idstr) in str(err)
    assert "footer" in str(err)
    raw[footer_at] = 0x7E
    raw[footer_at + 4] ^= 0x01  # footer section_id
    err = _fails(_write(tmp_path, bytes(raw)))
    assert _byte(err) == footer_at
    assert "footer section_id" in str(err)


@needs_real
def test_vmdesc_size_mismatch_is_caught_at_the_footer(tmp_path: Path) -> None:
    raw = decompressed(REAL[0])
    s = read_stream(REAL[0])
    assert s.vmdesc_offset is not None
    text = raw[s.vmdesc_offset + 5:]
    first = s.full_sections[0]
    bad = text.replace(b'"size": 8', b'"size": 9', 1)
    assert bad != text
    assert len(bad) == len(text)
    err = _fails(_write(tmp_path, raw[: s.vmdesc_offset + 5] + bad))
    assert repr(first.idstr) in str(err)
    assert "footer" in str(err)


@needs_real
def test_unknown_section_type(tmp_path: Path) -> None:
    raw = bytearray(decompressed(REAL[0]))
    sec = read_stream(REAL[0]).full_sections[1]
    raw[sec.offset] = 0x09
    err = _fails(_write(tmp_path, bytes(raw)))
    assert _byte(err) == sec.offset
    assert "found 0x09" in str(err)


def test_wrong_magic_and_version(tmp_path: Path) -> None:
    raw = synthetic_bytes()
    err = _fails(_write(tmp_path, b"QEVX" + raw[4:]))
    assert _byte(err) == 0
    assert "QEVM" in str(err)
    err = _fails(_write(tmp_path, raw[:4] + struct.pack(">I", 2) + raw[8:]))
    assert _byte(err) == 4
    assert "obsolete" in str(err)
    err = _fails(_write(tmp_path, b"hello world, not a stream"))
    assert _byte(err) == 0


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(MigOrderError, match="byte 0"):
        read_stream(tmp_path / "absent.mig")


# -- synthetic streams: phases, commands, configuration ---------------------------------------


def _read(tmp_path: Path, spec: SynthSpec, kind: str = "plain") -> Stream:
    return read_stream(write_variant(synthetic_bytes(spec), tmp_path / "syn.bin", kind))


def _types_phases(s: Stream) -> list[tuple[str, str, str]]:
    return [(str(x.type), x.idstr, str(x.phase)) for x in s.sections]


@pytest.mark.parametrize("kind", ["plain", "gz", "xz"])
def test_synthetic_stream_round_trip(tmp_path: Path, kind: str) -> None:
    spec = SynthSpec(parts=3, pages=7, zero_pages=5, switchover_start=True)
    s = _read(tmp_path, spec, kind)
    assert _types_phases(s) == [
        ("START", "ram", "setup"),
        ("PART", "ram", "iterate"), ("PART", "ram", "iterate"), ("PART", "ram", "iterate"),
        ("END", "ram", "complete"),
        ("FULL", "timer", "complete"), ("FULL", "cpu", "complete"),
    ]
    assert s.ram is not None
    assert (s.ram.pages, s.ram.zero_pages) == (7, 5)
    assert [(c.name, c.before_section, c.phase) for c in s.commands] == [
        ("SWITCHOVER_START", 4, Phase.ITERATE)
    ]
    cpu = s.full_sections[1]
    assert cpu.payload_size == 8 + 4 + 8 * 16 + (1 + 1 + len("cpu/async_pf_msr") + 4 + 8)


def test_stream_without_part(tmp_path: Path) -> None:
    s = _read(tmp_path, SynthSpec(parts=0))
    assert _types_phases(s) == [
        ("START", "ram", "setup"), ("END", "ram", "complete"),
        ("FULL", "timer", "complete"), ("FULL", "cpu", "complete"),
    ]


def test_early_setup_full_sections(tmp_path: Path) -> None:
    devices = (SynthDevice("0000:00:03.0/virtio-mem-device-early", early=True),
               *SynthSpec().devices)
    for parts in (0, 2):
        s = _read(tmp_path, SynthSpec(parts=parts, devices=devices))
        early = s.sections[1]
        assert (early.type, early.phase, early.vmsd_name) == (
            SectionType.FULL, Phase.SETUP, "virtio-mem-device-early")
        assert [x.phase for x in s.full_sections[1:]] == [Phase.COMPLETE] * 2


def test_large_target_pages(tmp_path: Path) -> None:
    s = _read(tmp_path, SynthSpec(target_page_bits=14, page_size=16384, pages=3))
    assert s.configuration is not None
    assert s.configuration.target_page_bits == 14
    assert s.ram is not None
    assert (s.ram.page_size, s.ram.pages) == (16384, 3)


def test_nested_subsections_and_arrays(tmp_path: Path) -> None:
    dev = SynthDevice("0000:00:02.0/dev", 3, 7, (1, 2, 3), (10, 5),
                      (SynthSubsection("dev/a", 2, (4, 4)), SynthSubsection("dev/b", 1, ())))
    s = _read(tmp_path, SynthSpec(devices=(dev,)))
    (full,) = s.full_sections
    assert (full.instance_id, full.version_id, full.vmsd_name) == (3, 7, "dev")
    assert full.payload_size == 6 + 50 + (6 + 5 + 8) + (6 + 5)


def test_full_section_without_vmdesc(tmp_path: Path) -> None:
    p = _write(tmp_path, synthetic_bytes(SynthSpec(vmdesc=False)))
    err = _fails(p)
    assert "vmdesc" in str(err)
    assert "'timer'" in str(err)
    # no FULL section, no vmdesc: fine
    s = read_stream(_write(tmp_path, synthetic_bytes(SynthSpec(vmdesc=False, devices=()))))
    assert s.vmdesc is None
    assert s.vmdesc_offset is None


def test_vmdesc_that_does_not_match_the_sections(tmp_path: Path) -> None:
    raw = synthetic_bytes()
    bad = raw.replace(b'"name": "timer"', b'"name": "tymer"')
    err = _fails(_write(tmp_path, bad))
    assert "'timer'" in str(err)
    assert "'tymer'" in str(err)
    broken_json = raw[:-1] + b"]"
    assert "vmdesc JSON" in str(_fails(_write(tmp_path, broken_json)))


def test_garbage_after_eof(tmp_path: Path) -> None:
    raw = synthetic_bytes(SynthSpec(vmdesc=False, devices=()))
    err = _fails(_write(tmp_path, raw + b"\x01\x02"))
    assert _byte(err) == len(raw)


def _ram_stream(records: bytes) -> bytes:
    """A stream whose ram START carries ``records`` after the MEM_SIZE list."""
    head = b"QEVM" + struct.pack(">I", 3)
    start = b"\x01" + struct.pack(">I", 2) + b"\x03ram" + struct.pack(">II", 0, 4)
    mem = struct.pack(">Q", 8192 | 0x04) + b"\x06pc.ram" + struct.pack(">Q", 8192)
    return head + start + mem + records


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (0x40, "XBZRLE pages are not supported"),
        (0x100, "compressed (COMPRESS_PAGE) pages are not supported"),
        (0x01, "known combination of RAM flags"),
        (0x0A, "known combination of RAM flags"),
    ],
)
def test_unsupported_ram_records(tmp_path: Path, flags: int, words: str) -> None:
    raw = _ram_stream(struct.pack(">Q", flags) + b"\x06pc.ram")
    err = _fails(_write(tmp_path, raw + bytes(4096)))
    assert words in str(err)
    assert _byte(err) == len(_ram_stream(b""))


def test_ram_record_checks(tmp_path: Path) -> None:
    base = len(_ram_stream(b""))
    err = _fails(_write(tmp_path, _ram_stream(struct.pack(">Q", 0x22) + b"\x00")))
    assert "CONTINUE with no previous block" in str(err)
    assert _byte(err) == base
    err = _fails(_write(tmp_path, _ram_stream(struct.pack(">Q", 0x02) + b"\x03foo\x00")))
    assert "'foo'" in str(err)
    err = _fails(_write(tmp_path, _ram_stream(struct.pack(">Q", 8192 | 0x02) + b"\x06pc.ram\x00")))
    assert "below the block length" in str(err)
    ok = struct.pack(">Q", 0x200) + struct.pack(">Q", 0x80) + struct.pack(">Q", 0x10)
    ok += b"\x7e" + struct.pack(">I", 2) + b"\x00"
    s = read_stream(_write(tmp_path, _ram_stream(ok)))
    assert s.ram is not None
    assert (s.ram.multifd_flushes, s.ram.hooks) == (1, 1)


def test_part_with_unknown_section_id(tmp_path: Path) -> None:
    raw = b"QEVM" + struct.pack(">I", 3) + b"\x02" + struct.pack(">I", 9)
    err = _fails(_write(tmp_path, raw))
    assert "known: none" in str(err)
    assert _byte(err) == 9


def test_other_iterable_sections_are_refused(tmp_path: Path) -> None:
    raw = (b"QEVM" + struct.pack(">I", 3) + b"\x01" + struct.pack(">I", 4)
           + b"\x05block" + struct.pack(">II", 0, 1))
    err = _fails(_write(tmp_path, raw))
    assert "'block' is not supported" in str(err)
    assert _byte(err) == 8


def test_commands(tmp_path: Path) -> None:
    head = b"QEVM" + struct.pack(">I", 3)
    s = read_stream(_write(tmp_path, head + b"\x08" + struct.pack(">HHI", 2, 4, 7) + b"\x00"))
    assert [(c.name, c.length, c.before_section, c.phase) for c in s.commands] == [
        ("PING", 4, 0, Phase.SETUP)
    ]
    err = _fails(_write(tmp_path, head + b"\x08" + struct.pack(">HH", 99, 0) + b"\x00"))
    assert "known command" in str(err)
    err = _fails(_write(tmp_path, head + b"\x08" + struct.pack(">HHI", 7, 4, 10) + b"\x00"))
    assert "PACKAGED" in str(err)


def test_configuration_subsections(tmp_path: Path) -> None:
    head = b"QEVM" + struct.pack(">I", 3) + b"\x07" + struct.pack(">I", 4) + b"pc-x"
    caps = (b"\x05" + bytes([len(b"configuration/capabilities")]) + b"configuration/capabilities"
            + struct.pack(">II", 1, 1) + b"\x0fx-ignore-shared")
    uuid = (b"\x05" + bytes([len(b"configuration/uuid")]) + b"configuration/uuid"
            + struct.pack(">I", 1) + bytes(range(16)))
    s = read_stream(_write(tmp_path, head + caps + uuid + b"\x00"))
    assert s.configuration is not None
    assert s.configuration.capabilities == ("x-ignore-shared",)
    assert s.configuration.uuid == bytes(range(16)).hex()
    assert [c.name for c in s.configuration.subsections] == [
        "configuration/capabilities", "configuration/uuid"]
    unknown = b"\x05\x11configuration/zzz" + struct.pack(">I", 1) + b"\x00"
    err = _fails(_write(tmp_path, head + unknown))
    assert "configuration/zzz" in str(err)
    assert _byte(err) == len(head)
