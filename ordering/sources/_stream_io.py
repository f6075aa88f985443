"""Bounded, offset-tracking byte access to a (possibly compressed) migration stream.

Private helpers of :mod:`ordering.sources.stream`. Offsets are always positions in the
*decompressed* stream, so an error in a ``.xz`` file names the same byte as in the plain file.
"""

from __future__ import annotations

import io
import struct
from typing import Protocol

from ordering.errors import StreamFormatError
from ordering.sources._stream_codec import GZIP_MAGIC, XZ_MAGIC, fail, open_decompressed

__all__ = ["CHUNK", "PREFETCH_LIMIT", "ByteReader", "Prefixed", "Source", "detect_compression",
           "fail", "open_for_parse"]

CHUNK = 1 << 20
"""Bytes read from the underlying (decompressed) stream at a time."""

PREFETCH_LIMIT = 16 << 20
"""A compressed stream at most this long (decompressed) is decompressed once, into memory."""

QEVM_MAGIC = b"QEVM"

_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")


class Source(Protocol):
    """What :class:`ByteReader` reads from: a file, a decompressor or bytes in memory."""

    def read(self, n: int, /) -> bytes: ...

    def close(self) -> None: ...


def detect_compression(path: str, name: str) -> str:
    """Return ``"xz"``, ``"gz"`` or ``"plain"`` from the file's first bytes (not its suffix).

    ``path`` is read; ``name`` is how errors name it.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as exc:
        raise fail(name, 0, f"a readable migration stream file ({exc.strerror})") from None
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(GZIP_MAGIC):
        return "gz"
    return "plain"


class Prefixed:
    """Bytes already decompressed, then the rest of the same decompressor."""

    def __init__(self, head: bytes, rest: Source) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def read(self, n: int, /) -> bytes:
        """Up to ``n`` bytes."""
        return self._head.read(n) or self._rest.read(n)

    def close(self) -> None:
        """Close the decompressor."""
        self._rest.close()


def open_for_parse(path: str, kind: str, name: str) -> tuple[Source, bytes | None]:
    """Open the stream for the parsing pass; also return all of it when it is small.

    A compressed stream is decompressed into memory up to :data:`PREFETCH_LIMIT` bytes: when it
    ends within that, the whole stream comes back too (then the trailer is found in memory and
    nothing is decompressed twice); otherwise parsing goes on from the same decompressor.
    """
    f = open_decompressed(path, kind, name)
    if kind == "plain":
        return f, None
    parts: list[bytes] = []
    kept = 0
    try:
        while kept <= PREFETCH_LIMIT:
            data = f.read(CHUNK)
            if not data:
                whole = b"".join(parts)
                return io.BytesIO(whole), whole
            parts.append(data)
            kept += len(data)
    except BaseException:
        f.close()
        raise
    return Prefixed(b"".join(parts), f), None


class ByteReader:
    """Sequential big-endian reads over a binary file with the absolute offset of each byte.

    Reads ``CHUNK`` bytes at a time, so memory stays bounded whatever the stream length.
    Every short read raises :class:`StreamFormatError` naming the offset and what was expected.
    """

    def __init__(self, f: Source, path: str, kind: str, start: int = 0) -> None:
        self._f = f
        self.path = path
        self._kind = kind
        self._buf = b""
        self._pos = 0
        self._base = start  # absolute offset of _buf[0]
        self._seekable = isinstance(f, io.BufferedReader)

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
        except OSError as exc:
            raise self.fail(f"a readable file ({exc.strerror or exc})",
                            self._base + len(self._buf)) from None

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
            assert isinstance(self._f, io.BufferedReader)
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


