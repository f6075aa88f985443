"""Streams without section footers: pc machine types up to 2.3 turn them off
(``migration.send-section-footer=off``) and send no configuration section either.

The fixture was captured from Debian's QEMU 7.2.22 (``-machine pc-i440fx-2.3 -m 16`` with a
64 KiB BIOS of zeros); the ``qemu`` test captures one at test time and compares it with
``derive``.
"""

from __future__ import annotations

import lzma
import os
import struct
from pathlib import Path

import pytest

from ordering.errors import StreamFormatError
from ordering.order import derive
from ordering.sources.capture import capture_stream
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.sources.observed import observed_order
from ordering.sources.stream import read_stream

DATA = Path(__file__).parent / "data"
NO_FOOTER = DATA / "no-footer" / "7.2-pc-i440fx-2.3.mig.xz"
ARGS = ["-nodefaults", "-display", "none", "-accel", "tcg", "-machine", "pc-i440fx-2.3",
        "-m", "16"]


def _predicted() -> list[tuple[int, str, int]]:
    k = load_knowledge()
    order = derive(k.release("7.2"), parse_command_line(["qemu-system-x86_64", *ARGS]))
    return [(s.section.section_id, s.section.idstr, s.section.instance_id) for s in order.full]


def test_a_footerless_stream_is_read_whole() -> None:
    s = read_stream(NO_FOOTER)
    assert not s.footers
    assert s.configuration is None
    assert [(x.section_id, x.idstr, x.instance_id) for x in s.full_sections] == _predicted()


def test_its_machine_comes_from_the_host_bridge() -> None:
    k = load_knowledge()
    order = observed_order(k, read_stream(NO_FOOTER), k.release("7.2"))
    assert order.machine_type == "pc"


def test_a_stream_with_a_configuration_still_needs_its_footers(tmp_path: Path) -> None:
    """Only a stream without a configuration section may lack footers: elsewhere a missing
    footer is still an error naming its byte."""
    raw = lzma.decompress((DATA / "vmdesc06" / "7.2-q35-devices.mig.xz").read_bytes())
    first = read_stream(DATA / "vmdesc06" / "7.2-q35-devices.mig.xz").sections[0]
    at = raw.index(b"\x7e" + struct.pack(">I", first.section_id), first.offset)
    broken = tmp_path / "broken.mig"
    broken.write_bytes(raw[:at] + b"\x02" + raw[at + 1 :])
    with pytest.raises(StreamFormatError, match=f"byte {at}: expected section footer"):
        read_stream(broken)


@pytest.mark.qemu
def test_captured_footerless_stream_matches_derive(tmp_path: Path) -> None:
    from conftest import qemu_binary

    binary = qemu_binary("qemu-system-x86_64")
    bios = tmp_path / "zero64k.bin"
    bios.write_bytes(bytes(65536))
    out = tmp_path / "pc23.mig"
    capture_stream([binary, *ARGS, "-bios", os.fspath(bios)], out, timeout=60)
    s = read_stream(out)
    assert not s.footers
    assert [(x.section_id, x.idstr, x.instance_id) for x in s.full_sections] == _predicted()
