"""Fuzzing the stream reader: whatever the bytes, only MigOrderError (naming a byte) escapes."""

from __future__ import annotations

import functools
import json
import lzma
import struct
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stream_helpers import decompressed, real_streams, write_variant

from ordering.errors import MigOrderError
from ordering.sources._stream_synth import SynthSpec, synthetic_bytes
from ordering.sources.stream import Stream, read_stream

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Bounded and derandomized: the same 200 examples on every run, in CI too."""

HEADER = b"QEVM" + struct.pack(">I", 3)


@functools.cache
def _base() -> bytes:
    """The smallest real stream if there is one, else a synthetic one with every feature."""
    streams = real_streams()
    if streams:
        return decompressed(min(streams, key=lambda p: p.stat().st_size))
    return synthetic_bytes(SynthSpec(parts=2, pages=4, zero_pages=4, switchover_start=True))


@functools.cache
def _landmarks() -> tuple[int, ...]:
    """Offsets where structure sits: section headers, footers, EOF, the vmdesc."""
    data = _base()
    with tempfile.TemporaryDirectory() as d:
        s = read_stream(write_variant(data, Path(d) / "base.mig", "plain"))
    marks = {0, 4, 8, 9, 13, s.eof_offset, len(data) - 1}
    if s.vmdesc_offset is not None:
        marks.update({s.vmdesc_offset, s.vmdesc_offset + 5})
    for sec in s.sections:
        marks.update({sec.offset, sec.offset + 5})
        if sec.type == "FULL":
            marks.add(sec.offset + 14 + len(sec.idstr) + sec.payload_size)
    return tuple(sorted(m for m in marks if 0 <= m < len(data)))


def _check(raw: bytes, suffix: str = ".mig", kind: str = "plain") -> Stream | None:
    with tempfile.TemporaryDirectory() as d:
        path = write_variant(raw, Path(d) / f"fuzz{suffix}", kind)
        try:
            return read_stream(path)
        except MigOrderError as exc:
            msg = str(exc)
            assert "byte" in msg, msg
            assert msg.startswith(str(path)), msg
            return None


def _apply(data: bytes, ops: list[tuple[str, int, int, bytes]]) -> bytes:
    b = bytearray(data)
    for op, at, n, blob in ops:
        if not b:
            break
        i = at % len(b)
        if op == "flip":
            b[i] ^= 1 << (n % 8)
        elif op == "set":
            b[i] = n & 0xFF
        elif op == "cut":
            del b[i:]
        elif op == "delete":
            del b[i : i + 1 + n % 16]
        else:
            b[i:i] = blob
    return bytes(b)


_OP = st.tuples(
    st.sampled_from(["flip", "set", "cut", "delete", "insert"]),
    st.integers(min_value=0, max_value=1 << 24),
    st.integers(min_value=0, max_value=255),
    st.binary(min_size=1, max_size=12),
)


@st.composite
def _near_structure(draw: st.DrawFn) -> tuple[str, int, int, bytes]:
    op, _, n, blob = draw(_OP)
    mark = draw(st.sampled_from(_landmarks()))
    return op, max(0, mark + draw(st.integers(min_value=-6, max_value=6))), n, blob


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(raw: bytes) -> None:
    _check(raw)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_after_a_valid_header(raw: bytes) -> None:
    _check(HEADER + raw)


@FUZZ
@given(st.lists(st.one_of(_OP, _near_structure()), min_size=1, max_size=4))
def test_mutated_stream(ops: list[tuple[str, int, int, bytes]]) -> None:
    _check(_apply(_base(), ops))


@settings(FUZZ, max_examples=60)
@given(st.lists(_OP, min_size=1, max_size=3), st.sampled_from(["xz", "gz"]))
def test_mutated_compressed_stream(ops: list[tuple[str, int, int, bytes]], kind: str) -> None:
    small = synthetic_bytes(SynthSpec(pages=2, zero_pages=2))
    packed = lzma.compress(small, preset=0) if kind == "xz" else None
    if packed is None:
        import gzip

        packed = gzip.compress(small, compresslevel=1)
    _check(_apply(packed, ops), suffix=f".mig.{kind}")


_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**40), max_value=2**40)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "instance_id", "fields", "size", "array_len", "subsections",
                         "vmsd_name", "version", "devices", "page_size", "index", "type"]),
        inner, max_size=6),
    max_leaves=30,
)


@FUZZ
@given(_JSON)
def test_hostile_vmdesc(desc: Any) -> None:
    raw = synthetic_bytes(SynthSpec(vmdesc=False))
    text = json.dumps(desc).encode()
    _check(raw + b"\x06" + struct.pack(">I", len(text)) + text)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["timer", "cpu", "x"]),
                          st.integers(min_value=0, max_value=40)), max_size=4))
def test_vmdesc_with_wrong_sizes(fields: list[tuple[str, int]]) -> None:
    raw = synthetic_bytes(SynthSpec(vmdesc=False))
    devices = [{"name": n, "instance_id": 0, "fields": [{"name": "f", "size": k}]}
               for n, k in fields]
    text = json.dumps({"page_size": 4096, "devices": devices}).encode()
    _check(raw + b"\x06" + struct.pack(">I", len(text)) + text)
