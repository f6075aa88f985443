"""The patch reader and the model applier never crash: any text is patches or one clear error."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ordering.errors import MigOrderError
from ordering.sources.models import load_knowledge
from ordering.sources.patch import read_patches
from ordering.sources.patch_apply import apply_to_model

PATCHES = Path(__file__).parent / "data/patches"

_LINES = st.sampled_from([
    "diff --git a/include/migration/vmstate.h b/include/migration/vmstate.h",
    "--- a/include/migration/vmstate.h", "+++ b/include/migration/vmstate.h",
    "--- a/hw/intc/apic_common.c", "+++ b/hw/intc/apic_common.c",
    "@@ -1,3 +1,4 @@", "@@ -5 +5,2 @@ typedef enum {", "@@ -1,2 +1,3 @@ static const VMStateDescription v = {",
    "     MIG_PRI_DEFAULT = 0,", "+    MIG_PRI_NEW,", "-    MIG_PRI_IOMMU,", "     MIG_PRI_IOMMU,",
    "+    MIG_PRI_X = MIG_PRI_IOMMU + 1,", "+    MIG_PRI_Y = MIG_PRI_Q - 2,", "+    MIG_PRI_Z = 1 << 3,",
    '     .name = "apic",', "+    .priority = MIG_PRI_NEW,", "-    .priority = MIG_PRI_IOMMU,",
    "+    .early_setup = true,", " } MigrationPriority;", "+    vmstate_register(NULL, 0, &v, s);",
    "From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001",
    "Subject: [PATCH 1/2] x", "", "\\ No newline at end of file", "-- ", "garbage",
])


@given(st.lists(_LINES, max_size=30))
def test_any_diff_like_text_reads_or_fails_cleanly(lines: list[str]) -> None:
    k = load_knowledge()
    message = ""
    try:
        patches, _ = read_patches("\n".join(lines) + "\n", "fuzz.patch")
        apply_to_model(k.release("10.1"), patches)
    except MigOrderError as exc:
        message = str(exc)
    assert not message or message.startswith(("fuzz.patch", "include/", "hw/", "/dev/null"))


@given(st.binary(max_size=400))
def test_bytes_read_or_fail_cleanly(data: bytes) -> None:
    message = "fuzz.bin"
    try:
        read_patches(data.decode("utf-8", errors="replace"), "fuzz.bin")
    except MigOrderError as exc:
        message = str(exc)
    assert "fuzz.bin" in message


@given(st.integers(0, 2000), st.integers(0, 2000))
def test_a_real_patch_cut_anywhere(start: int, length: int) -> None:
    text = (PATCHES / "series-apic.mbox").read_text()
    piece = text[start:start + length]
    message = "cut.mbox"
    try:
        read_patches(piece, "cut.mbox")
    except MigOrderError as exc:
        message = str(exc)
    assert "cut.mbox" in message
