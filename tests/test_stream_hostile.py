"""Hostile stream files: each is refused in one error naming a byte, never a crash or a hang."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import struct
import threading
from pathlib import Path

import pytest
from stream_helpers import write_variant

from ordering.errors import StreamFormatError
from ordering.sources import _stream_codec
from ordering.sources._stream_synth import SynthSpec, synthetic_bytes
from ordering.sources.stream import TRAILER_LIMIT, read_stream

DATA = Path(__file__).parent / "data" / "vmdesc06"
HEADER = b"QEVM" + struct.pack(">I", 3)


def _fails(path: Path | str, match: str) -> StreamFormatError:
    with pytest.raises(StreamFormatError, match=match) as info:
        read_stream(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{path}: byte ")
    return info.value


def _byte(err: StreamFormatError) -> int:
    return int(err.where.rsplit("byte ", 1)[1])


def _real() -> bytes:
    return lzma.decompress((DATA / "7.2-q35-devices.mig.xz").read_bytes())


def test_vmdesc_page_size_of_2_to_the_40(tmp_path: Path) -> None:
    """Was a MemoryError: the RAM walker buffered a whole 1 TiB 'page'."""
    raw = synthetic_bytes(SynthSpec())
    at = raw.rindex(b'{"page_size"')
    text = json.loads(raw[at:])
    text["page_size"] = 1 << 40
    body = json.dumps(text).encode()
    err = _fails(_write(tmp_path, raw[: at - 5] + b"\x06" + struct.pack(">I", len(body)) + body),
                 "page_size: a power of two from 512 to 1073741824, found 1099511627776")
    assert _byte(err) == at


def _write(tmp_path: Path, raw: bytes, name: str = "s.mig") -> Path:
    p = tmp_path / name
    p.write_bytes(raw)
    return p


def test_trailer_over_the_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    """A 512 MiB trailer (a sparse file here) is refused by its length, never loaded."""
    raw = synthetic_bytes(SynthSpec(vmdesc=False, devices=()))
    length = 512 << 20
    p = tmp_path / "big.mig"
    with p.open("wb") as f:
        f.write(raw + b"\x06" + struct.pack(">I", length))
        f.truncate(len(raw) + 5 + length)
    err = _fails(p, f"a vmdesc of at most {TRAILER_LIMIT} bytes")
    assert _byte(err) == len(raw) + 1


def test_small_xz_expanding_to_1_gib_fails_at_its_first_bad_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 concatenated xz streams of 16 MiB of zeros: the error at byte 9 comes after reading a
    bounded prefix, not the whole GiB (counted by wrapping the decompressor)."""
    block = lzma.compress(bytes(16 << 20), preset=0)
    p = tmp_path / "bomb.mig.xz"
    p.write_bytes(lzma.compress(HEADER + bytes(1000), preset=0) + block * 64)
    assert p.stat().st_size < 300_000
    produced: list[int] = []
    real_read = _stream_codec.Decompressed.read

    def counting(self: _stream_codec.Decompressed, n: int = 1 << 16) -> bytes:
        out = real_read(self, n)
        produced.append(len(out))
        return out

    monkeypatch.setattr(_stream_codec.Decompressed, "read", counting)
    err = _fails(p, "end of stream or a VMDESCRIPTION trailer")
    assert _byte(err) == 9
    assert sum(produced) <= 32 << 20


@pytest.mark.parametrize("kind", ["xz", "gz"])
def test_garbage_after_the_compressed_stream_is_refused(tmp_path: Path, kind: str) -> None:
    raw = synthetic_bytes(SynthSpec())
    p = write_variant(raw, tmp_path / "s.bin", kind)
    p.write_bytes(p.read_bytes() + b"garbage!")
    err = _fails(p, f"end of the {kind} file after its compressed stream, found 8\\+ bytes")
    assert _byte(err) == len(raw)


@pytest.mark.parametrize("kind", ["xz", "gz"])
def test_concatenated_streams_and_zero_padding_are_read(tmp_path: Path, kind: str) -> None:
    raw = synthetic_bytes(SynthSpec())
    half = len(raw) // 2
    pack = (lambda b: lzma.compress(b, preset=0)) if kind == "xz" else gzip.compress
    p = _write(tmp_path, pack(raw[:half]) + bytes(8) + pack(raw[half:]) + bytes(4), "s.bin")
    s = read_stream(p)
    assert s.compression == kind
    assert s.size == len(raw)


@pytest.mark.parametrize("kind", ["xz", "gz"])
def test_truncated_compressed_stream_names_the_decompressed_offset(tmp_path: Path,
                                                                    kind: str) -> None:
    """Was ``byte 0`` for any stream under 1 MiB."""
    raw = _real()
    data = write_variant(raw, tmp_path / "full.bin", kind).read_bytes()
    err = _fails(_write(tmp_path, data[: len(data) * 2 // 3], "cut.bin"),
                 f"more {kind} data: the compressed file ends before its stream does")
    assert 0 < _byte(err) < len(raw)


def test_corrupt_xz_names_a_decompressed_offset(tmp_path: Path) -> None:
    raw = synthetic_bytes(SynthSpec(pages=64))
    data = bytearray(lzma.compress(raw, preset=0))
    data[len(data) - 40] ^= 0xFF
    err = _fails(_write(tmp_path, bytes(data), "bad.xz"), "expected")
    assert _byte(err) > 0


def _pipe_path(payload: bytes) -> tuple[str, threading.Thread]:
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(payload)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return f"/dev/fd/{r}", t


@pytest.mark.parametrize("kind", ["plain", "xz"])
def test_a_pipe_from_process_substitution_is_read(tmp_path: Path, kind: str) -> None:
    """``migorder stream <(xz -dc FILE)`` hands over ``/dev/fd/N``; it was "(None)" before."""
    raw = _real()
    payload = write_variant(raw, tmp_path / "s.bin", kind).read_bytes()
    path, t = _pipe_path(payload)
    try:
        s = read_stream(path)
    finally:
        t.join(10)
        os.close(int(path.rsplit("/", 1)[1]))
    assert s.compression == kind
    assert s.path == path
    assert s.size == len(raw)


def _in_thread(path: Path | str) -> BaseException | None:
    """Read ``path`` in a thread; fail the test if it blocks (a FIFO with no writer would)."""
    got: list[BaseException | None] = []

    def run() -> None:
        try:
            read_stream(path)
            got.append(None)
        except BaseException as exc:
            got.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    assert got, f"reading {path} blocked"
    return got[0]


def test_a_named_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    exc = _in_thread(fifo)
    assert isinstance(exc, StreamFormatError)
    assert str(exc).startswith(f"{fifo}: byte 0: expected a migration stream in a regular file")
    assert "named FIFO" in str(exc)


@pytest.mark.parametrize(("path", "what"), [("/dev/zero", "a character device"),
                                            (".", "a directory")])
def test_special_files_are_refused(path: str, what: str) -> None:
    exc = _in_thread(path)
    assert isinstance(exc, StreamFormatError)
    assert str(exc).endswith(f"found {what}")


def test_huge_vmdesc_values_are_cut_in_errors(tmp_path: Path) -> None:
    raw = synthetic_bytes(SynthSpec())
    at = raw.rindex(b'{"page_size"')
    text = json.loads(raw[at:])
    text["devices"][0]["fields"][0]["size"] = "\n" + "x" * 1_000_000
    body = json.dumps(text).encode()
    err = _fails(_write(tmp_path, raw[: at - 5] + b"\x06" + struct.pack(">I", len(body)) + body),
                 "a non-negative integer 'size', found '\\\\nxxx")
    assert len(str(err)) < 600
