"""The vmdesc trailer is found whatever its length, even when the be32 length holds a 0x06.

The trailer is ``0x06, be32 length, JSON`` at the very end of the stream. JSON text holds no
raw 0x06, but the four length bytes may: QEMU 11.1's q35 with ``-smp 4`` writes a vmdesc of
67,212 bytes (``00 01 06 8c``). The fixtures in ``tests/data/vmdesc06`` are real streams
captured from QEMU 7.2 and 11.1 with a 0x06 in each position of the length.
"""

from __future__ import annotations

import json
import lzma
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stream_helpers import write_variant

from ordering.sources import _stream_io
from ordering.sources._stream_synth import SynthSpec, synthetic_bytes
from ordering.sources.capture import capture_stream
from ordering.sources.stream import read_stream

DATA = Path(__file__).parent / "data" / "vmdesc06"
META: dict[str, dict[str, Any]] = json.loads((DATA / "streams.json").read_text())
NAMES = sorted(META)


def _full(path: Path) -> list[str]:
    return [f"{s.idstr}#{s.instance_id}" for s in read_stream(path).full_sections]


@pytest.mark.parametrize("name", NAMES)
def test_real_streams_with_0x06_in_the_vmdesc_length(name: str) -> None:
    meta = META[name]
    assert "06" in [meta["vmdesc_length_be32"][i : i + 2] for i in range(0, 8, 2)]
    s = read_stream(DATA / name)
    assert s.vmdesc_offset == meta["vmdesc_offset"]
    assert s.size == meta["size"]
    assert s.vmdesc is not None
    assert [f"{s.idstr}#{s.instance_id}" for s in s.full_sections] == meta["full"]


@pytest.mark.parametrize("kind", ["plain", "gz"])
@pytest.mark.parametrize("name", NAMES)
def test_plain_and_gz_copies_read_alike(tmp_path: Path, name: str, kind: str) -> None:
    raw = lzma.decompress((DATA / name).read_bytes())
    path = write_variant(raw, tmp_path / "copy.mig", kind)
    s = read_stream(path)
    assert s.vmdesc_offset == META[name]["vmdesc_offset"]
    assert _full(path) == META[name]["full"]


@pytest.mark.parametrize("chunk", [7, 1000, 4099])
def test_small_chunks_split_the_length_bytes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              chunk: int) -> None:
    """Chunk boundaries fall inside the marker and the length in one of these reads."""
    name = "11.1-q35-smp4.mig.xz"
    raw = lzma.decompress((DATA / name).read_bytes())
    monkeypatch.setattr(_stream_io, "CHUNK", chunk)
    monkeypatch.setattr(_stream_io, "PREFETCH_LIMIT", 4096)
    for kind in ("plain", "xz"):
        path = write_variant(raw, tmp_path / f"s.{kind}", kind)
        assert read_stream(path).vmdesc_offset == META[name]["vmdesc_offset"]


def _padded(length: int) -> bytes:
    """A synthetic stream whose vmdesc JSON is exactly ``length`` bytes (padded with spaces)."""
    raw = synthetic_bytes(SynthSpec(parts=1, pages=1, zero_pages=1))
    at = raw.rindex(b"\x06")
    while struct.unpack(">I", raw[at + 1 : at + 5])[0] != len(raw) - at - 5:
        at = raw.rindex(b"\x06", 0, at)
    body = raw[at + 5 :]
    assert len(body) <= length
    body = body[:-1] + b" " * (length - len(body)) + body[-1:]
    return raw[:at] + b"\x06" + struct.pack(">I", length) + body


@given(st.sampled_from([0x306, 0x0600, 0x0606, 0x1068C, 0x10006, 0x10600, 0x60000, 0x6028B,
                        0x60606, 0x6FF06]),
       st.sampled_from(["plain", "gz", "xz"]))
def test_any_vmdesc_length_is_found(tmp_path_factory: pytest.TempPathFactory, length: int,
                                    kind: str) -> None:
    assert 0x06 in struct.pack(">I", length)
    raw = _padded(length)
    path = write_variant(raw, tmp_path_factory.mktemp("pad") / "s.mig", kind)
    s = read_stream(path)
    assert s.vmdesc_offset == len(raw) - length - 5
    assert len(s.full_sections) == 2


@pytest.mark.qemu
def test_capture_on_72_with_0x06_in_the_low_byte(tmp_path: Path) -> None:
    """Captured at test time with Debian's 7.2 (what ``.ci/run`` installs)."""
    from conftest import qemu_binary

    binary = qemu_binary("qemu-system-x86_64")
    bios = tmp_path / "zero64k.bin"
    bios.write_bytes(bytes(65536))
    args = ["-nodefaults", "-display", "none", "-accel", "tcg", "-machine", "q35", "-m", "16",
            "-smp", "1", "-device", "i6300esb", "-device", "virtio-rng-pci",
            "-device", "virtio-rng-pci", "-device", "virtio-balloon-pci",
            "-device", "e1000e,romfile="]
    out = tmp_path / "c.mig"
    capture_stream([binary, *args, "-bios", os.fspath(bios)], out, timeout=60)
    s = read_stream(out)
    assert s.vmdesc_offset is not None
    raw = out.read_bytes()
    assert b"\x06" in raw[s.vmdesc_offset + 1 : s.vmdesc_offset + 5]
    assert [f"{x.idstr}#{x.instance_id}" for x in s.full_sections] == \
        META["7.2-q35-devices.mig.xz"]["full"]


@given(st.binary(max_size=64), st.integers(0, 3000), st.lists(st.integers(1, 700), max_size=12),
       st.booleans())
def test_scanner_and_backward_search_agree(prefix: bytes, length: int, cuts: list[int],
                                           valid: bool) -> None:
    """Any prefix (0x06 bytes included), any JSON length, any chunking: the forward scanner
    (compressed streams) finds what the in-memory search finds, and a valid trailer is found
    at its offset."""
    from ordering.sources._stream_trailer import TailScanner, find_trailer, trailer_in_memory

    body = b"{" + b" " * max(0, length - 2) + b"}" if length >= 2 else b"{}"[:length]
    declared = len(body) if valid else len(body) + 1
    data = prefix + b"\x06" + struct.pack(">I", declared) + body
    scanner = TailScanner()
    at = 0
    for n in [*cuts, len(data)]:
        scanner.feed(data[at : at + n])
        at += n
    if at < len(data):
        scanner.feed(data[at:])
    got = scanner.result()
    assert got == trailer_in_memory(data)
    if valid:
        assert got is not None
        assert (got.offset, got.json) == (len(prefix), body)
    else:
        assert got is None or got.offset < len(prefix)
    assert find_trailer(data, 0, len(data)) == got
