"""The MigrationPriority enum parser, in every layout QEMU has used, and its errors."""

from __future__ import annotations

import pytest

from ordering.errors import SourceTreeError
from ordering.sources.cheader import (
    blank_comments_and_strings,
    blank_if0,
    comment_text,
    parse_claims,
    parse_priority_enum,
)

HEADER_7_2_SHAPE = """\
typedef enum {
    MIG_PRI_DEFAULT = 0,
    MIG_PRI_IOMMU,              /* Must happen before PCI devices */
    MIG_PRI_PCI_BUS,            /* Must happen before IOMMU */
    MIG_PRI_VIRTIO_MEM,         /* Must happen before IOMMU */
    MIG_PRI_GICV3_ITS,          /* Must happen before PCI devices */
    MIG_PRI_GICV3,              /* Must happen before the ITS */
    MIG_PRI_MAX,
} MigrationPriority;
"""


def test_implied_values_and_comments() -> None:
    e = parse_priority_enum(HEADER_7_2_SHAPE, "vmstate.h")
    assert [(lv.name, lv.value) for lv in e.levels] == [
        ("MIG_PRI_DEFAULT", 0), ("MIG_PRI_IOMMU", 1), ("MIG_PRI_PCI_BUS", 2),
        ("MIG_PRI_VIRTIO_MEM", 3), ("MIG_PRI_GICV3_ITS", 4), ("MIG_PRI_GICV3", 5),
        ("MIG_PRI_MAX", 6),
    ]
    assert e.levels[5].comment == "Must happen before the ITS"
    assert e.levels[0].explicit
    assert not e.levels[1].explicit
    assert [lv.line for lv in e.levels] == list(range(2, 9))
    assert e.line == 1
    assert e.value("MIG_PRI_PCI_BUS") == 2


def test_tagged_enum_explicit_values_and_comment_placements() -> None:
    text = """\
// header comment mentioning MIG_PRI_DEFAULT { in passing
enum MigrationPriority
{
    MIG_PRI_UNINITIALIZED = 0,  /* An uninitialized priority field maps to */
                                /* MIG_PRI_DEFAULT in save_state_priority */

    MIG_PRI_LOW = 0x1,          // Must happen after default
    /* about the next one */
    MIG_PRI_DEFAULT = 2,
    MIG_PRI_IOMMU /* Must happen before PCI devices */ = 3,
    MIG_PRI_PCI_BUS = 4 /* Must happen before IOMMU */,
    MIG_PRI_APIC,
    MIG_PRI_MAX = MIG_PRI_APIC + 1
};
"""
    e = parse_priority_enum(text)
    assert [(lv.name, lv.value) for lv in e.levels] == [
        ("MIG_PRI_UNINITIALIZED", 0), ("MIG_PRI_LOW", 1), ("MIG_PRI_DEFAULT", 2),
        ("MIG_PRI_IOMMU", 3), ("MIG_PRI_PCI_BUS", 4), ("MIG_PRI_APIC", 5), ("MIG_PRI_MAX", 6),
    ]
    by = {lv.name: lv for lv in e.levels}
    assert by["MIG_PRI_UNINITIALIZED"].comment == (
        "An uninitialized priority field maps to MIG_PRI_DEFAULT in save_state_priority"
    )
    assert by["MIG_PRI_LOW"].comment == "Must happen after default"
    assert by["MIG_PRI_DEFAULT"].comment == ""
    assert by["MIG_PRI_DEFAULT"].leading == "about the next one"
    assert by["MIG_PRI_IOMMU"].comment == "Must happen before PCI devices"
    assert by["MIG_PRI_PCI_BUS"].comment == "Must happen before IOMMU"
    assert by["MIG_PRI_APIC"].explicit is False
    assert e.line == 2


def test_typedef_with_tag_and_no_trailing_comma() -> None:
    e = parse_priority_enum(
        "typedef enum MigrationPriority { MIG_PRI_DEFAULT, MIG_PRI_MAX } MigrationPriority;"
    )
    assert e.names == ("MIG_PRI_DEFAULT", "MIG_PRI_MAX")
    assert e.value("MIG_PRI_MAX") == 1


def test_other_enums_are_skipped() -> None:
    text = "enum VMStateFlags { VMS_SINGLE = 0x1, };\n" + HEADER_7_2_SHAPE
    assert parse_priority_enum(text).levels[0].name == "MIG_PRI_DEFAULT"


def test_claims() -> None:
    claims = parse_claims(parse_priority_enum(HEADER_7_2_SHAPE))
    assert [(c.level, c.relation, c.target, c.target_level) for c in claims] == [
        ("MIG_PRI_IOMMU", "before", "PCI devices", "MIG_PRI_DEFAULT"),
        ("MIG_PRI_PCI_BUS", "before", "IOMMU", "MIG_PRI_IOMMU"),
        ("MIG_PRI_VIRTIO_MEM", "before", "IOMMU", "MIG_PRI_IOMMU"),
        ("MIG_PRI_GICV3_ITS", "before", "PCI devices", "MIG_PRI_DEFAULT"),
        ("MIG_PRI_GICV3", "before", "the ITS", "MIG_PRI_GICV3_ITS"),
    ]
    low = parse_claims(parse_priority_enum(
        "enum MigrationPriority { MIG_PRI_LOW, /* Must happen after default */ MIG_PRI_DEFAULT };"
    ))
    assert [(c.level, c.relation, c.target_level) for c in low] == [
        ("MIG_PRI_LOW", "after", "MIG_PRI_DEFAULT")
    ]


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("/* nothing */\nint x;\n", "h.h:1", "found none"),
        ("struct S {\n  MigrationPriority priority;\n};\n", "h.h:2", "found none"),
        ("typedef enum {\n  MIG_PRI_DEFAULT = 0,\n  MIG_PRI_IOMMU\n  MIG_PRI_MAX,\n"
         "} MigrationPriority;\n", "h.h:4", "expected ',' after enumerator MIG_PRI_IOMMU"),
        ("typedef enum {\n  MIG_PRI_DEFAULT = 0,\n", "h.h:1", "expected '}'"),
        ("typedef enum {\n  MIG_PRI_DEFAULT = foo(3),\n} MigrationPriority;\n", "h.h:2",
         "expected an integer"),
        ("typedef enum {\n  MIG_PRI_A,\n  MIG_PRI_A,\n} MigrationPriority;\n", "h.h:3", "repeats"),
        ("typedef enum {\n  MIG_PRI_A,\n#ifdef X\n  MIG_PRI_B,\n#endif\n} MigrationPriority;\n",
         "h.h:3", "preprocessor"),
        ("typedef enum {\n  MIG_PRI_A, /* open\n} MigrationPriority;\n", "h.h:2", "'*/'"),
        ("typedef enum {\n} MigrationPriority;\n", "h.h:1", "at least one"),
    ],
)
def test_errors_name_file_and_line(text: str, where: str, words: str) -> None:
    with pytest.raises(SourceTreeError) as info:
        parse_priority_enum(text, "h.h")
    assert info.value.where == where
    assert words in info.value.expected


def test_blanking_keeps_offsets() -> None:
    text = 'a = "x{y";  /* { */\n// }\nb = \'}\';\n'
    blank = blank_comments_and_strings(text)
    assert len(blank) == len(text)
    assert blank.count("\n") == text.count("\n")
    assert "{" not in blank
    assert "}" not in blank


def test_if0_nesting() -> None:
    text = "#if 0\n#ifdef A\nx\n#endif\ny\n#else\nz\n#endif\nw\n"
    out = blank_if0(text)
    assert "x" not in out
    assert "y" not in out
    assert "z" in out
    assert "w" in out


def test_comment_text() -> None:
    assert comment_text("/*\n * one\n * two\n */") == "one two"
