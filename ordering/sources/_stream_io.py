"""Bounded, offset-tracking byte access to a (possibly compressed) migration stream.

Private helpers of :mod:`ordering.sources.stream`. Offsets are always positions in the
*decompressed* stream, so an error in a ``.xz`` file names the same byte as in the plain file.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Callable
from typing import NamedTuple

from ordering.errors import StreamFormatError

CHUNK = 1 << 20
"""Bytes read from the underlying file at a time."""

PREFETCH_LIMIT = 16 << 20
"""A compressed stream at most this long (decompressed) is read once, into memory."""

XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b"
QEVM_MAGIC = b"QEVM"

_JSON_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")


def fail(path: str, offset: int, expected: str) -> StreamFormatError:
    """Build the one error this reader raises: ``PATH: byte OFFSET: expected ...``."""
    return StreamFormatError(f"{path}: byte {offset}", f"expected {expected}")


def detect_compression(path: str) -> str:
    """Return ``"xz"``, ``"gz"`` or ``"plain"`` from the file's first bytes (not its suffix)."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as exc:
        raise fail(path, 0, f"a readable migration stream file ({exc.strerror})") from None
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(GZIP_MAGIC):
        return "gz"
    return "plain"


def open_decompressed(path: str, kind: str) -> io.BufferedIOBase:
    """Open ``path`` for reading its decompressed bytes (codecs imported only when needed)."""
    if kind == "xz":
        import lzma

        return lzma.open(path, "rb")
    if kind == "gz":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def decompress_errors(kind: str) -> tuple[type[BaseException], ...]:
    """Exceptions a read of a ``kind`` file raises on corrupt or truncated data."""
    if kind == "xz":
        import lzma

        return (lzma.LZMAError, EOFError, OSError)
    if kind == "gz":
        import gzip
        import zlib

        return (gzip.BadGzipFile, zlib.error, EOFError, OSError)
    return (OSError,)


class ByteReader:
    """Sequential big-endian reads over a binary file with the absolute offset of each byte.

    Reads ``CHUNK`` bytes at a time, so memory stays bounded whatever the stream length.
    Every short read raises :class:`StreamFormatError` naming the offset and what was expected.
    """

    def __init__(self, f: io.BufferedIOBase, path: str, kind: str, start: int = 0) -> None:
        self._f = f
        self.path = path
        self._kind = kind
        self._buf = b""
        self._pos = 0
        self._base = start  # absolute offset of _buf[0]
        self._seekable = kind == "plain"
        self._errors = decompress_errors(kind)

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte to be read."""
        return self._base + self._pos

    def fail(self, expected: str, offset: int | None = None) -> StreamFormatError:
        """An error at ``offset`` (default: the current offset)."""
        return fail(self.path, self.offset if offset is None else offset, expected)

    def _raw_read(self, n: int) -> bytes:
        try:
            return self._f.read(n)
        except self._errors as exc:
            raise self.fail(
                f"valid {self._kind} data (decompression failed: {exc})",
                self._base + len(self._buf),
            ) from None

    def _gather(self, n: int) -> int:
        """Move the unread bytes to the buffer's start and read until ``n`` are buffered or
        the stream ends; return how many are buffered."""
        have = len(self._buf) - self._pos
        parts = [self._buf[self._pos :]] if have else []
        self._base += self._pos
        self._pos = 0
        while have < n:
            data = self._raw_read(max(CHUNK, n - have))
            if not data:
                break
            parts.append(data)
            have += len(data)
        self._buf = b"".join(parts)
        return have

    def _fill(self, n: int, what: str) -> None:
        """Make at least ``n`` unread bytes available or fail with ``what``."""
        have = self._gather(n)
        if have < n:
            raise self.fail(f"{what} ({n} bytes), found end of stream after {have}")

    def at_end(self) -> bool:
        """True when no byte is left."""
        if self._pos < len(self._buf):
            return False
        data = self._raw_read(CHUNK)
        self._base += len(self._buf)
        self._buf = data
        self._pos = 0
        return not data

    def take(self, n: int, what: str) -> bytes:
        """Read ``n`` bytes."""
        if len(self._buf) - self._pos < n:
            self._fill(n, what)
        p = self._pos
        self._pos = p + n
        return self._buf[p : p + n]

    def u8(self, what: str) -> int:
        """Read one byte."""
        if self._pos >= len(self._buf):
            self._fill(1, what)
        v = self._buf[self._pos]
        self._pos += 1
        return v

    def peek_u8(self) -> int | None:
        """The next byte without consuming it, or None at the end of the stream."""
        if self._pos >= len(self._buf) and self.at_end():
            return None
        return self._buf[self._pos]

    def _unpack(self, fmt: struct.Struct, what: str) -> int:
        """Read one unsigned integer in ``fmt``'s layout."""
        n = fmt.size
        if len(self._buf) - self._pos < n:
            self._fill(n, what)
        (v,) = fmt.unpack_from(self._buf, self._pos)
        self._pos += n
        return int(v)

    def be16(self, what: str) -> int:
        """Read a big-endian u16."""
        return self._unpack(_BE16, what)

    def be32(self, what: str) -> int:
        """Read a big-endian u32."""
        return self._unpack(_BE32, what)

    def be64(self, what: str) -> int:
        """Read a big-endian u64."""
        return self._unpack(_BE64, what)

    def name(self, what: str) -> str:
        """Read a u8 length and that many bytes of ASCII/UTF-8 text."""
        at = self.offset
        raw = self.take(self.u8(f"length of {what}"), what)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise self.fail(f"{what} as UTF-8 text, found {raw!r}", at) from None

    def skip(self, n: int, what: str) -> None:
        """Skip ``n`` bytes without keeping them."""
        have = len(self._buf) - self._pos
        if n <= have:
            self._pos += n
            return
        start = self.offset
        rest = n - have
        self._base += len(self._buf)
        self._buf = b""
        self._pos = 0
        if self._seekable and rest > CHUNK:
            end = self._f.seek(0, io.SEEK_END)
            if self._base + rest > end:
                self._base = end
                raise fail(self.path, end, f"{what} ({n} bytes from byte {start}), "
                           "found end of stream")
            self._f.seek(self._base + rest)
            self._base += rest
            return
        while rest:
            data = self._raw_read(min(rest, 4 * CHUNK))
            if not data:
                raise self.fail(f"{what} ({n} bytes from byte {start}), found end of stream")
            rest -= len(data)
            self._base += len(data)

    def window(self, n: int) -> tuple[bytes, int]:
        """The buffer and the position of the next byte in it, with ``n`` bytes buffered if
        the stream still has them (never fails; fewer bytes near the end).

        A caller may scan ``buffer[position:]`` itself, then :meth:`seek_window` to where it
        stopped.
        """
        if len(self._buf) - self._pos < n:
            self._gather(n)
        return self._buf, self._pos

    def seek_window(self, pos: int) -> None:
        """Set the position in the buffer returned by :meth:`window`."""
        self._pos = pos

    def skip_hot(self, n: int) -> bool:
        """Fast path of :meth:`skip`: True when the ``n`` bytes were already buffered."""
        p = self._pos + n
        if p <= len(self._buf):
            self._pos = p
            return True
        return False


class Trailer(NamedTuple):
    """Where the VMDESCRIPTION trailer was found: offset of its 0x06 byte and its JSON bytes."""

    offset: int
    json: bytes
    total: int
    """Length of the whole decompressed stream."""


class _TailScanner:
    """Follow a stream from start to end, keeping only the bytes after the last 0x06.

    JSON text never holds a raw 0x06, so the last 0x06 of a stream that ends with a vmdesc
    trailer is the trailer's type byte. A candidate whose text holds a control byte, or runs
    past its declared length, cannot be that trailer and is dropped at once, so memory stays
    bounded by the real trailer's length.
    """

    def __init__(self) -> None:
        self.total = 0
        self.cand_at = -1
        self.cand = bytearray()

    def feed(self, data: bytes) -> None:
        i = data.rfind(b"\x06")
        if i >= 0:
            self.cand_at = self.total + i
            self.cand = bytearray(data[i:])
        elif self.cand_at >= 0:
            self.cand += data
        self.total += len(data)
        if self.cand_at >= 0:
            self._prune()

    def _prune(self) -> None:
        if len(self.cand) < 5:
            return
        (length,) = _BE32.unpack_from(self.cand, 1)
        if len(self.cand) - 5 > length or _JSON_CONTROL.search(self.cand, 5):
            self.cand_at = -1
            self.cand = bytearray()

    def result(self) -> Trailer | None:
        if self.cand_at < 0 or len(self.cand) < 5:
            return None
        (length,) = _BE32.unpack_from(self.cand, 1)
        if len(self.cand) - 5 != length:
            return None
        return Trailer(self.cand_at, bytes(self.cand[5:]), self.total)


def _trailer_plain(path: str) -> Trailer | None:
    """Find the trailer of a plain file by reading backwards from its end, a chunk at a time."""
    with open(path, "rb") as f:
        size = f.seek(0, io.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - CHUNK)
            f.seek(start)
            chunk = f.read(end - start)
            i = chunk.rfind(b"\x06")
            if i >= 0:
                at = start + i
                f.seek(at)
                head = f.read(5)
                if len(head) < 5:
                    return None
                (length,) = _BE32.unpack_from(head, 1)
                if at + 5 + length != size:
                    return None
                body = f.read(length)
                if _JSON_CONTROL.search(body):
                    return None
                return Trailer(at, body, size)
            end = start
    return None


def locate_trailer(
    path: str, kind: str, opener: Callable[[], io.BufferedIOBase]
) -> tuple[Trailer | None, bytes | None]:
    """Find the vmdesc trailer; also return the whole stream if it was small enough to keep.

    Plain files are read backwards from the end. A compressed stream is decompressed once
    into memory when it is at most :data:`PREFETCH_LIMIT` bytes (then the caller parses that
    copy: one decompression in all); a longer one is followed to its end by a scan that keeps
    only the candidate trailer, and the caller decompresses it a second time to parse it.
    """
    if kind == "plain":
        try:
            return _trailer_plain(path), None
        except OSError as exc:
            raise fail(path, 0, f"a readable file ({exc.strerror})") from None
    scanner = _TailScanner()
    kept: list[bytes] | None = []
    kept_len = 0
    errors = decompress_errors(kind)
    with opener() as f:
        while True:
            try:
                data = f.read(CHUNK)
            except errors:
                # Reported by the parsing pass, at its offset, which reads the file again.
                kept = None
                break
            if not data:
                break
            scanner.feed(data)
            if kept is not None:
                kept.append(data)
                kept_len += len(data)
                if kept_len > PREFETCH_LIMIT:
                    kept = None
    whole = b"".join(kept) if kept is not None else None
    return scanner.result(), whole


def opener_for(path: str, kind: str) -> Callable[[], io.BufferedIOBase]:
    """A function opening ``path`` decompressed."""

    def _open() -> io.BufferedIOBase:
        return open_decompressed(path, kind)

    return _open


def fspath(path: str | os.PathLike[str]) -> str:
    """``os.fspath`` restricted to text paths."""
    return os.fspath(path)
