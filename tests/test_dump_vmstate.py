"""Reading -dump-vmstate JSON and comparing a source dump with a destination dump."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ordering.errors import InputError
from ordering.sources.dump_vmstate import (
    compare_dumps,
    iter_sections,
    parse_dump,
    read_dump,
)

FX = Path(__file__).parent / "fixtures" / "dump-vmstate"


def test_trimmed_real_dump() -> None:
    d = read_dump(FX / "q35-7.2-trimmed.json")
    assert d.machine == "pc-q35-7.2"
    assert [e.type_name for e in d.entries] == [
        "intel-iommu", "pcie-root-port", "mc146818rtc", "kvmclock", "nvme",
        "virtio-net-device", "pci-bridge", "usb-hub",
    ]
    # the type name keys the entry; the VMSD name is what the stream carries
    assert d.entry("intel-iommu").vmsd.name == "iommu-intel"  # type: ignore[union-attr]
    assert d.entry("virtio-net-device").vmsd.name == "virtio-net"  # type: ignore[union-attr]
    rows = [(t, v.name, v.version_id, v.minimum_version_id, depth)
            for t, v, depth in iter_sections(d)]
    assert ("mc146818rtc", "mc146818rtc", 3, 1, 0) in rows
    assert ("mc146818rtc", "mc146818rtc/irq_reinject_on_ack_count", 1, 1, 1) in rows
    assert ("virtio-net-device", "virtio-net", 11, 11, 0) in rows
    assert len(rows) == 11
    rtc = d.entry("mc146818rtc")
    assert rtc is not None
    assert (rtc.line, rtc.vmsd.line, rtc.vmsd.subsections[0].line) == (243, 248, 333)
    assert compare_dumps(d, d) == []


def test_compare_small_dumps() -> None:
    src = read_dump(FX / "src-small.json")
    dst = read_dump(FX / "dst-small.json")
    found = [(f.kind, f.severity, f.type_name, f.vmsd, f.message)
             for f in compare_dumps(src, dst)]
    assert found == [
        ("machine", "warning", "", "",
         "Machine type received is 'pc-q35-7.2' and local is 'pc-q35-10.0'"),
        ("too_new", "error", "fx-new", "fx-new",
         "fx-new: incoming version_id 3 is too new for local version_id 2"),
        ("too_old", "error", "fx-old", "fx-old",
         "fx-old: incoming version_id 1 is too old for local minimum version_id  2"),
        ("too_new", "error", "fx-ok", "fx-ok/extra",
         "fx-ok/extra: incoming version_id 2 is too new for local version_id 1"),
        ("subsection_missing", "warning", "fx-ok", "fx-ok/gone",
         "error while loading state for instance 0x0 of device 'fx-ok'"),
        ("missing", "error", "fx-gone", "fx-gone",
         "Unknown savevm section or instance 'fx-gone' 0. Make sure that your current VM "
         "setup matches your saved VM setup, including any hotplugged devices"),
    ]


def test_reverse_direction() -> None:
    src = read_dump(FX / "dst-small.json")
    dst = read_dump(FX / "src-small.json")
    kinds = {(f.kind, f.vmsd) for f in compare_dumps(src, dst)}
    assert ("missing", "fx-only-dst") in kinds
    assert ("too_new", "fx-old") in kinds  # 3 > 1
    assert ("subsection_missing", "fx-ok/gone") not in kinds


@pytest.mark.parametrize(
    ("release", "spaces"), [(None, "  "), ((7, 2), "  "), ((10, 1), "  "), ((10, 2), " ")]
)
def test_too_old_wording_by_release(release: tuple[int, int] | None, spaces: str) -> None:
    src = read_dump(FX / "src-small.json")
    dst = read_dump(FX / "dst-small.json")
    old = next(f for f in compare_dumps(src, dst, dst_release=release) if f.kind == "too_old")
    assert old.message.endswith(f"minimum version_id{spaces}2")


def test_malformed_json_names_file_and_line() -> None:
    with pytest.raises(InputError) as info:
        read_dump(FX / "malformed.json")
    assert info.value.where == f"{FX / 'malformed.json'}:8"


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("[]", "x.json:1", "JSON object"),
        ('{"a": 1}', "x.json:1", "vmschkmachine"),
        ('{"vmschkmachine": {"Name": "m"},\n "d": 3}', "x.json:2", "object for device 'd'"),
        ('{"vmschkmachine": {"Name": "m"},\n "d": {}}', "x.json:2", "'Description'"),
        ('{"vmschkmachine": {"Name": "m"},\n "d": {"Description":\n {"name": "n",\n'
         ' "version_id": "1", "minimum_version_id": 1}}}', "x.json:3", "integer 'version_id'"),
        ('{"vmschkmachine": {"Name": "m"}, "d": {"Description": {"name": "n", '
         '"version_id": 1, "minimum_version_id": 1, "Subsections": {}}}}', "x.json:1",
         "'Subsections'"),
        ("{\n\n  oops", "x.json:3", "expected JSON"),
    ],
)
def test_shape_errors(text: str, where: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        parse_dump(text, "x.json")
    assert info.value.where == where
    assert words in info.value.expected


def test_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="readable"):
        read_dump(tmp_path / "absent.json")


@pytest.mark.qemu
def test_real_qemu_dump(tmp_path: Path) -> None:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        if os.environ.get("CI") == "true":
            pytest.fail("qemu-system-x86_64 missing (apt-get install qemu-system-x86)")
        pytest.skip("qemu-system-x86_64 not installed")
    out = tmp_path / "q35.json"
    subprocess.run(
        [qemu, "-M", "q35", "-nodefaults", "-display", "none", "-dump-vmstate", str(out)],
        check=True, capture_output=True, timeout=60,
    )
    d = read_dump(out)
    assert d.machine.startswith("pc-q35-")
    assert len(d.entries) > 100
    names = {e.vmsd.name for e in d.entries}
    assert {"iommu-intel", "pcie-root-port", "nvme"} <= names
    assert compare_dumps(d, d) == []
    # a destination that lost one section and bumped another's minimum
    raw = json.loads(out.read_text())
    del raw["intel-iommu"]
    raw["pcie-root-port"]["Description"]["minimum_version_id"] = 99
    dst = parse_dump(json.dumps(raw, indent=2), "dst.json")
    kinds = [(f.kind, f.vmsd) for f in compare_dumps(d, dst)]
    assert kinds == [("missing", "iommu-intel"), ("too_old", "pcie-root-port")]


def _big_dump(n: int) -> str:
    lines = ['{', '  "vmschkmachine": {', '    "Name": "pc-q35-7.2"', '  },']
    for i in range(n):
        lines += [f'  "dev{i}": {{', f'    "Name": "dev{i}",', '    "Description": {',
                  f'      "name": "vmsd{i}",', '      "version_id": 2,',
                  '      "minimum_version_id": 1,', '      "Fields": [',
                  '        {"field": "x", "version_id": 0, "field_exists": false, "size": 4}',
                  '      ],', '      "Subsections": [',
                  f'        {{"name": "vmsd{i}/sub", "version_id": 1, "minimum_version_id": 1}}',
                  '      ]', '    }', f'  }}{"," if i < n - 1 else ""}']
    return "\n".join([*lines, "}"])


def test_a_4_mb_dump_is_read_in_one_pass() -> None:
    """Lines were counted from the start of the text for each entry (4 MB took 27 s)."""
    text = _big_dump(20000)
    assert len(text) > 4_000_000
    d = parse_dump(text, "big.json")
    last = d.entries[-1]
    assert last.type_name == "dev19999"
    assert last.line == text[: text.index('"dev19999": {')].count("\n") + 1
    assert last.vmsd.line == last.line + 3
    assert last.vmsd.subsections[0].line == last.line + 10


def test_keys_spelled_unlike_qemu_still_get_their_lines() -> None:
    text = ('{"vmschkmachine": {"Name": "m"},\n"d" :\n {"Description": {"name" : "n\\u0041",\n'
            '"version_id": 1, "minimum_version_id": 1,\n "Subsections": [\n{"name":"nA/s",'
            '"version_id":1,"minimum_version_id":1}]}}}')
    d = parse_dump(text, "x.json")
    e = d.entries[0]
    assert (e.line, e.vmsd.name, e.vmsd.line, e.vmsd.subsections[0].line) == (2, "nA", 3, 6)


def test_duplicate_keys_keep_lines_approximate_not_slow() -> None:
    text = _big_dump(3).replace('"dev0": {', '"dev0": {"Description": 1}, "dev0": {', 1)
    d = parse_dump(text, "x.json")
    assert [e.type_name for e in d.entries] == ["dev0", "dev1", "dev2"]


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('{"vmschkmachine": {"Name": "m"},\n "d": ' + "[" * 50000 + "]" * 50000 + "}",
         "x.json:2", "nested at most 64 deep"),
        ('{"vmschkmachine": {"Name": "m"},\n\n "d": ' + "7" * 5000 + "}",
         "x.json:3", "an integer of at most 4300 digits"),
    ],
)
def test_limits(text: str, where: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        parse_dump(text, "x.json")
    assert info.value.where == where
    assert words in info.value.expected


def test_bad_dst_release_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from ordering.cli import main

    code = main(["dump-vmstate", str(FX / "src-small.json"), str(FX / "dst-small.json"),
                 "--dst-release", "banana"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("migorder: error: --dst-release 'banana': expected a QEMU release such as "
                   "7.2 or 10.0\n")
