"""Opening a migration stream file: special files refused, pipes spooled, xz/gz decompressed.

Private helpers of :mod:`ordering.sources.stream`. The decompressor is migorder's own loop over
:mod:`lzma` / :mod:`zlib` so that it can (a) name the offset in the *decompressed* stream where
the compressed data went wrong, (b) refuse bytes after the last compressed stream that are
neither another stream nor zero padding (``gzip`` refuses them; ``lzma.open`` silently drops
them), and (c) never produce more than the bytes asked for, so a small file that expands to
gigabytes costs no memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from ordering.errors import StreamFormatError
from ordering.sources._limits import place

RAW_CHUNK = 64 << 10
"""Compressed bytes read from the file at a time."""

STEP = 64 << 10
"""Decompressed bytes asked of the codec at a time: an error's offset is exact to this much."""

XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b"

_FD_PATH = re.compile(r"/dev/(?:fd/\d+|stdin)|/proc/(?:self|\d+)/fd/\d+")
"""Paths a shell's process substitution ``<(...)`` (or ``/dev/stdin``) hands over."""


def fail(path: str, offset: int, expected: str) -> StreamFormatError:
    """Build the one error the stream reader raises: ``PATH: byte OFFSET: expected ...``."""
    return StreamFormatError(f"{place(path)}: byte {offset}", f"expected {expected}")


def _kind_of(mode: int) -> str | None:
    """What a special file is, in words; None for a regular file or a FIFO."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


@contextlib.contextmanager
def local_file(path: str) -> Iterator[str]:
    """The path to read ``path``'s bytes from, several times over.

    A regular file is itself. A pipe handed over as ``/dev/fd/N`` (the shell's ``<(xz -dc
    ...)``) or ``/dev/stdin`` is copied to a temporary file first, a chunk at a time (the
    reader needs two passes). Directories, devices, sockets and named FIFOs are refused before
    they are opened, so none of them can block or run forever.

    Raises
    ------
    StreamFormatError
        ``PATH: byte 0: expected a regular file ...``.

    Examples
    --------
    >>> with local_file("/dev/null") as p:
    ...     pass
    Traceback (most recent call last):
    ...
    ordering.errors.StreamFormatError: /dev/null: byte 0: expected a migration stream in a regular file or a pipe from <(...), found a character device
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise fail(path, 0, f"a readable migration stream file ({exc.strerror})") from None
    what = _kind_of(mode)
    if what is not None:
        raise fail(path, 0, f"a migration stream in a regular file or a pipe from <(...), "
                   f"found {what}")
    if not stat.S_ISFIFO(mode):
        yield path
        return
    if not _FD_PATH.fullmatch(path):
        raise fail(path, 0, "a migration stream in a regular file or a pipe from <(...), found "
                   "a named FIFO (migorder does not wait for a writer; give a file, or "
                   "<(cat FIFO))")
    with tempfile.TemporaryDirectory(prefix="migorder-") as d:
        copy = os.path.join(d, "stream")
        try:
            with open(path, "rb") as src, open(copy, "wb") as dst:
                shutil.copyfileobj(src, dst, RAW_CHUNK)
        except OSError as exc:
            raise fail(path, 0, f"a readable pipe ({exc.strerror or exc})") from None
        yield copy


class _Codec(Protocol):
    """One compressed member (an xz stream, a gzip member) being decompressed."""

    eof: bool

    def feed(self, data: bytes, n: int) -> bytes: ...

    def wants_input(self) -> bool: ...

    def leftover(self) -> bytes: ...


class _Lzma:
    def __init__(self) -> None:
        import lzma

        self._d = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        self.eof = False

    def feed(self, data: bytes, n: int) -> bytes:
        out = self._d.decompress(data, n)
        self.eof = self._d.eof
        return out

    def wants_input(self) -> bool:
        return self._d.needs_input

    def leftover(self) -> bytes:
        return self._d.unused_data


class _Zlib:
    def __init__(self) -> None:
        import zlib

        self._d = zlib.decompressobj(31)
        self._tail = b""
        self.eof = False

    def feed(self, data: bytes, n: int) -> bytes:
        out = self._d.decompress(self._tail + data, n)
        self._tail = self._d.unconsumed_tail
        self.eof = self._d.eof
        return out

    def wants_input(self) -> bool:
        return not self._tail

    def leftover(self) -> bytes:
        return self._d.unused_data


class Decompressed:
    """Read the decompressed bytes of an ``.xz`` or ``.gz`` file, ``n`` bytes at most a call.

    Concatenated streams (members) are read one after the other; zero bytes between or after
    them are padding. Anything else after a stream ends, a truncated file and corrupt data raise
    :class:`StreamFormatError` naming the offset in the decompressed stream.
    """

    def __init__(self, raw: BinaryIO, kind: str, name: str) -> None:
        self._raw = raw
        self._kind = kind
        self._name = name
        self._magic = XZ_MAGIC if kind == "xz" else GZIP_MAGIC
        self._codec: _Codec | None = self._new()
        self._pending = b""
        self._raw_eof = False
        self.produced = 0
        """Decompressed bytes returned so far."""
        self.consumed = 0
        """Compressed bytes read from the file so far."""

    def _new(self) -> _Codec:
        return _Lzma() if self._kind == "xz" else _Zlib()

    def _more_raw(self) -> bytes:
        if self._raw_eof:
            return b""
        try:
            data = self._raw.read(RAW_CHUNK)
        except OSError as exc:
            raise fail(self._name, self.produced,
                       f"a readable file ({exc.strerror or exc})") from None
        self.consumed += len(data)
        if not data:
            self._raw_eof = True
        return data

    def _between_members(self) -> bool:
        """After a member ended: start the next one; False at the end of the file."""
        assert self._codec is not None
        rest = self._codec.leftover() + self._pending
        self._codec = None
        while True:
            rest = rest.lstrip(b"\x00")
            if rest:
                break
            rest = self._more_raw()
            if not rest:
                return False
        while len(rest) < len(self._magic):
            more = self._more_raw()
            if not more:
                break
            rest += more
        if not rest.startswith(self._magic):
            at = self.consumed - len(rest)
            raise fail(self._name, self.produced,
                       f"end of the {self._kind} file after its compressed stream, found "
                       f"{len(rest)}+ bytes of other data at compressed byte {at} (garbage "
                       "appended to the file?)")
        self._codec = self._new()
        self._pending = rest
        return True

    def read(self, n: int = RAW_CHUNK) -> bytes:
        """Up to ``n`` decompressed bytes; ``b""`` at the end of the file."""
        parts: list[bytes] = []
        want = n
        while want > 0:
            out = self._step(min(want, STEP))
            if not out:
                break
            parts.append(out)
            want -= len(out)
        return b"".join(parts)

    def _step(self, n: int) -> bytes:
        import lzma
        import zlib

        while True:
            if self._codec is None:
                return b""
            if self._codec.eof:
                if not self._between_members():
                    return b""
                continue
            if not self._pending and self._codec.wants_input():
                self._pending = self._more_raw()
                if not self._pending:
                    raise fail(self._name, self.produced,
                               f"more {self._kind} data: the compressed file ends before its "
                               "stream does (truncated file?)")
            data, self._pending = self._pending, b""
            try:
                out = self._codec.feed(data, n)
            except (lzma.LZMAError, zlib.error) as exc:
                raise fail(self._name, self.produced,
                           f"valid {self._kind} data (decompression failed within "
                           f"{STEP} bytes of here: {exc})") from None
            if out:
                self.produced += len(out)
                return out

    def close(self) -> None:
        """Close the compressed file."""
        self._raw.close()


def open_decompressed(path: str, kind: str, name: str) -> BinaryIO | Decompressed:
    """Open ``path`` for its decompressed bytes (``kind``: ``xz``, ``gz`` or ``plain``)."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise fail(name, 0, f"a readable file ({exc.strerror})") from None
    if kind == "plain":
        return raw
    return Decompressed(raw, kind, name)
