"""Find the VMDESCRIPTION trailer at the end of a migration stream, whatever its length.

Private to :mod:`ordering.sources.stream`. The trailer is ``0x06``, a be32 length, then that
many bytes of JSON reaching exactly to the end of the stream. JSON text holds no raw control
byte, so the stream's *last* 0x06 is either the trailer's marker or one of the four length
bytes after it (a vmdesc of 67,212 bytes has the length ``00 01 06 8c``). Each of the (at most
five) positions from four bytes before that last 0x06 up to it is therefore a candidate; the
one holding a 0x06 whose length reaches exactly to the end, with JSON text after it, is the
trailer.

The candidate is unique: the trailer is at most :data:`TRAILER_LIMIT` bytes, below
``0x06000000``, so the length's first byte is never 0x06; a 0x06 in its second, third or fourth
byte read as a marker would give a length of at least ``0x06000000``, too long.
"""

from __future__ import annotations

import io
import re
import struct
from typing import NamedTuple

from ordering.sources._stream_codec import fail, open_decompressed

TRAILER_LIMIT = 64 << 20
"""Longest vmdesc JSON read (64 MiB). QEMU writes about 7.6 KB per x86 vCPU plus ~40 KB for
the rest of a small VM (measured on 7.2 and 11.1: 43.5 KB at ``-smp 1``, 67 KB at ``-smp 4``):
about 31 MB for 4096 vCPUs."""

_JSON_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BE32 = struct.Struct(">I")
_SCAN = 1 << 20


class Trailer(NamedTuple):
    """Where the VMDESCRIPTION trailer was found: offset of its 0x06 byte and its JSON bytes."""

    offset: int
    json: bytes
    total: int
    """Length of the whole decompressed stream."""


def find_trailer(tail: bytes, tail_at: int, total: int) -> Trailer | None:
    """The trailer in ``tail``, the bytes of a ``total``-byte stream from offset ``tail_at``.

    ``tail`` must reach the end of the stream and start at most four bytes before the stream's
    last 0x06 (or earlier).

    Examples
    --------
    >>> body = b'{"devices": []}'
    >>> find_trailer(b"\\x00\\x06" + _BE32.pack(len(body)) + body, 10, 10 + 2 + 4 + len(body))
    Trailer(offset=11, json=b'{"devices": []}', total=31)
    >>> body = b" " * (0x0106 - 2) + b"{}"   # the length 00 00 01 06 holds a 0x06
    >>> find_trailer(b"\\x06" + _BE32.pack(len(body)) + body, 0, 5 + len(body)).offset
    0
    >>> find_trailer(b"\\x06\\x00\\x00\\x00\\x03{}", 0, 7) is None
    True
    """
    last = tail.rfind(b"\x06")
    for at in range(last, max(last - 5, -1), -1):
        if tail[at] != 0x06 or at + 5 > len(tail):
            continue
        (length,) = _BE32.unpack_from(tail, at + 1)
        if length > TRAILER_LIMIT or tail_at + at + 5 + length != total:
            continue
        body = tail[at + 5 :]
        if _JSON_CONTROL.search(body):
            return None
        return Trailer(tail_at + at, bytes(body), total)
    return None


class TailScanner:
    """Follow a stream from start to end, keeping only the bytes from 4 before its last 0x06.

    A candidate whose bytes after the length hold a control byte, or that grows past
    :data:`TRAILER_LIMIT`, cannot hold the trailer and is dropped at once, so memory stays
    bounded by the limit.
    """

    def __init__(self) -> None:
        self.total = 0
        self._recent = b""
        self._cand_at = -1
        self._cand = bytearray()
        self._json_from = 0
        """Index in the candidate from which bytes must be JSON text (5 after its last 0x06)."""

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream."""
        i = data.rfind(b"\x06")
        checked = 0
        if i >= 0:
            joined = self._recent + data
            q = len(self._recent) + i
            start = max(0, q - 4)
            self._cand_at = self.total - len(self._recent) + start
            self._cand = bytearray(joined[start:])
            self._json_from = q - start + 5
            checked = self._json_from
        elif self._cand_at >= 0:
            checked = max(self._json_from, len(self._cand))
            self._cand += data
        self.total += len(data)
        self._recent = (self._recent + data)[-4:]
        if self._cand_at >= 0 and (len(self._cand) > TRAILER_LIMIT + 9
                                   or _JSON_CONTROL.search(self._cand, checked)):
            self._cand_at = -1
            self._cand = bytearray()

    def result(self) -> Trailer | None:
        """The trailer, once every byte was fed."""
        if self._cand_at < 0:
            return None
        return find_trailer(bytes(self._cand), self._cand_at, self.total)


def trailer_in_memory(whole: bytes) -> Trailer | None:
    """The trailer of a stream held in memory."""
    last = whole.rfind(b"\x06", max(0, len(whole) - TRAILER_LIMIT - 9))
    if last < 0:
        return None
    start = max(0, last - 4)
    return find_trailer(whole[start:], start, len(whole))


def trailer_of_plain(path: str, name: str) -> Trailer | None:
    """The trailer of a plain file, read backwards from its end a chunk at a time.

    Reads no further back than :data:`TRAILER_LIMIT` (plus the marker and length) from the end.
    """
    try:
        with open(path, "rb") as f:
            size = f.seek(0, io.SEEK_END)
            floor = max(0, size - TRAILER_LIMIT - 9)
            end = size
            while end > floor:
                start = max(floor, end - _SCAN)
                f.seek(start)
                i = f.read(end - start).rfind(b"\x06")
                if i >= 0:
                    at = max(0, start + i - 4)
                    f.seek(at)
                    return find_trailer(f.read(size - at), at, size)
                end = start
    except OSError as exc:
        raise fail(name, 0, f"a readable file ({exc.strerror or exc})") from None
    return None


def trailer_by_scan(path: str, kind: str, name: str) -> Trailer | None:
    """The trailer of a compressed stream, decompressing it once from the start (memory bounded
    by :data:`TRAILER_LIMIT`); decompression errors name their decompressed offset."""
    scanner = TailScanner()
    f = open_decompressed(path, kind, name)
    try:
        while data := f.read(_SCAN):
            scanner.feed(data)
    finally:
        f.close()
    return scanner.result()
