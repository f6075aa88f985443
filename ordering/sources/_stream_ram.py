"""Walk the records of the ``ram`` sections of a migration stream, keeping counts only.

Private to :mod:`ordering.sources.stream`. Record format (QEMU ``migration/ram.c``): a be64
header, the page-aligned offset in its block OR'd with flags in the low bits; PAGE and ZERO
records name their RAMBlock (u8 length + idstr) unless flag CONTINUE says "same block as
before"; MEM_SIZE lists every block (name, be64 length, plus be64 guest address with
``x-ignore-shared``); EOS ends a section.
"""

from __future__ import annotations

import struct
from typing import Any

from ordering.sources import _stream_vmdesc as vd
from ordering.sources._stream_io import ByteReader
from ordering.sources._stream_model import Configuration, RamBlock, RamSummary

# RAM record flags (migration/ram.c, the low bits of each be64 record header).
RAM_ZERO = 0x02
RAM_MEM_SIZE = 0x04
RAM_PAGE = 0x08
RAM_EOS = 0x10
RAM_CONTINUE = 0x20
RAM_XBZRLE = 0x40
RAM_HOOK = 0x80
RAM_COMPRESS_PAGE = 0x100
RAM_MULTIFD_FLUSH = 0x200

_BE64 = struct.Struct(">Q")

FAST_WINDOW = 4 << 20
"""Bytes buffered for the fast path; a page larger than this is skipped a chunk at a time."""


def page_size_of(config: Configuration | None, vmdesc: dict[str, Any] | None) -> int:
    """Target page size: from the configuration's page bits, else the vmdesc, else 4096.

    Raises
    ------
    VmdescShapeError
        The vmdesc's ``page_size`` is out of range (and the configuration has no page bits).
    """
    if config is not None and config.target_page_bits is not None:
        return 1 << config.target_page_bits
    return vd.page_size(vmdesc) or 4096


class RamWalker:
    """The RAM state of one pass: the block table and the counters of :class:`RamSummary`."""

    def __init__(self, r: ByteReader, page_size: int, ignore_shared: bool) -> None:
        self.r = r
        self.page_size = page_size
        self.ignore_shared = ignore_shared
        """``x-ignore-shared``: MEM_SIZE entries carry the block's guest address too."""
        self.blocks: dict[str, int] = {}
        self.block_order: list[RamBlock] = []
        self.block_len = -1
        self.pages = self.zero_pages = self.records = self.ram_bytes = 0
        self.flushes = self.hooks = 0

    def section(self) -> int:
        """Walk one ``ram`` section's records up to EOS; return its payload size."""
        start = self.r.offset
        self._walk_ram()
        size = self.r.offset - start
        self.ram_bytes += size
        return size

    def summary(self) -> RamSummary:
        """What the walk counted."""
        return RamSummary(self.page_size, tuple(self.block_order), self.pages, self.zero_pages,
                          self.records, self.ram_bytes, self.flushes, self.hooks)

    def _walk_ram(self) -> None:
        """Walk one RAM section's records up to EOS, keeping counts only.

        The common records (a PAGE or ZERO page of the current block, flag CONTINUE) are
        decoded straight from the reader's buffer; every other record, and any record near
        the end of the buffer, goes through :meth:`_ram_record`, which checks it fully.
        """
        r = self.r
        page = self.page_size
        mask = page - 1
        unpack = _BE64.unpack_from
        cont_zero = RAM_ZERO | RAM_CONTINUE
        cont_page = RAM_PAGE | RAM_CONTINUE
        longest = 8 + 1 + 255 + page
        window = min(longest, FAST_WINDOW)
        while True:
            buf, pos = r.window(window)
            end = len(buf) - longest
            block_len = self.block_len
            pages = zero = records = 0
            while pos <= end:
                (hdr,) = unpack(buf, pos)
                flags = hdr & mask
                if flags == cont_zero and hdr - flags < block_len:
                    pos += 9
                    zero += 1
                elif flags == cont_page and hdr - flags < block_len:
                    pos += 8 + page
                    pages += 1
                else:
                    break
                records += 1
            r.seek_window(pos)
            self.pages += pages
            self.zero_pages += zero
            self.records += records
            if self._ram_record():
                return

    def _ram_record(self) -> bool:
        """Read one RAM record with every check; True at EOS."""
        r = self.r
        page = self.page_size
        at = r.offset
        hdr = r.be64("RAM record header (be64 address | flags)")
        self.records += 1
        flags = hdr & (page - 1)
        kind = flags & ~RAM_CONTINUE
        if kind in (RAM_PAGE, RAM_ZERO):
            if not flags & RAM_CONTINUE:
                name_at = r.offset
                name = r.name("RAM block name")
                length = self.blocks.get(name)
                if length is None:
                    raise r.fail(f"a RAM block announced by MEM_SIZE, found {name!r}", name_at)
                self.block_len = length
            elif self.block_len < 0:
                raise r.fail("a RAM block name: CONTINUE with no previous block", at)
            if hdr - flags >= self.block_len:
                raise r.fail(f"a RAM offset below the block length {self.block_len}, "
                             f"found {hdr - flags}", at)
            if kind == RAM_PAGE:
                r.skip(page, "a RAM page")
                self.pages += 1
            else:
                r.u8("zero page fill byte")
                self.zero_pages += 1
        elif kind == RAM_EOS:
            return True
        elif kind == RAM_MEM_SIZE:
            self._mem_size(hdr - flags, at)
        elif kind == RAM_MULTIFD_FLUSH:
            self.flushes += 1
        elif kind == RAM_HOOK:
            self.hooks += 1
        elif kind & (RAM_XBZRLE | RAM_COMPRESS_PAGE):
            which = "XBZRLE" if kind & RAM_XBZRLE else "compressed (COMPRESS_PAGE)"
            raise r.fail(f"a plain RAM record: {which} pages are not supported "
                         f"(flags 0x{flags:x})", at)
        else:
            raise r.fail(f"a known combination of RAM flags, found 0x{flags:x}", at)
        return False

    def _mem_size(self, total: int, at: int) -> None:
        r = self.r
        remaining = total
        while remaining:
            bat = r.offset
            name = r.name("RAM block name in the MEM_SIZE list")
            length = r.be64(f"length of RAM block {name!r}")
            if self.ignore_shared:
                r.be64(f"guest address of RAM block {name!r} (x-ignore-shared)")
            if length > remaining:
                raise r.fail(f"RAM block lengths adding up to MEM_SIZE {total} (record at byte "
                             f"{at}), block {name!r} of {length} exceeds the {remaining} left",
                             bat)
            remaining -= length
            if name not in self.blocks:
                self.block_order.append(RamBlock(name, length))
            self.blocks[name] = length
