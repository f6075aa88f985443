"""Read QEMU's ``-dump-vmstate`` JSON and compare a source dump with a destination dump.

``qemu-system-x86_64 -M q35 -dump-vmstate FILE`` writes one JSON object: the machine type
(``"vmschkmachine": {"Name": ...}``) and, for every device class with a ``dc->vmsd``, an
entry keyed by the QOM type name::

    "intel-iommu": {"Name": "intel-iommu", "version_id": 1, "minimum_version_id": 1,
                    "Description": {"name": "iommu-intel", "version_id": 1,
                                    "minimum_version_id": 1, "Fields": [...],
                                    "Subsections": [...]}}

(``"Name"`` repeats the type name; the VMSD name, the one the stream carries, is
``Description.name``.) A dump says nothing about priority, instances or registration order.

:func:`compare_dumps` reports what the destination's ``vmstate_load_state`` would refuse, in
QEMU's own words: a section it does not know, and a version above its ``version_id`` or below
its ``minimum_version_id`` (sections and, recursively, subsections).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ordering.errors import InputError
from ordering.sources._limits import (
    MAX_NESTING,
    FileRefused,
    LimitError,
    json_loads,
    place,
    read_text,
    shown,
)

__all__ = [
    "DumpEntry",
    "DumpFinding",
    "VmsdVersion",
    "VmstateDump",
    "compare_dumps",
    "iter_sections",
    "parse_dump",
    "read_dump",
]

MACHINE_KEY = "vmschkmachine"

TOO_NEW = "{name}: incoming version_id {incoming} is too new for local version_id {local}"
"""``migration/vmstate.c: vmstate_load_state`` (every release)."""

TOO_OLD = (
    "{name}: incoming version_id {incoming} is too old for local minimum version_id{sp}{local}"
)
"""Same function; QEMU up to 10.1 prints two spaces before the last number."""

UNKNOWN_SECTION = (
    "Unknown savevm section or instance '{idstr}' {instance}. Make sure that your current VM "
    "setup matches your saved VM setup, including any hotplugged devices"
)
"""``migration/savevm.c: qemu_loadvm_section_start_full``."""

LOAD_ERROR = "error while loading state for instance 0x{instance:x} of device '{idstr}'"
"""``migration/savevm.c: qemu_loadvm_section_start_full`` after a failed ``vmstate_load``."""

MACHINE_MISMATCH = "Machine type received is '{src}' and local is '{dst}'"
"""``migration/savevm.c``: the configuration section's ``pre_load`` check."""


@dataclass(frozen=True)
class VmsdVersion:
    """A VMSD's versions as a dump describes them, with its subsections.

    Attributes
    ----------
    name : str
        The VMSD name (``Description.name``); a subsection's is ``"outer/part"``.
    version_id, minimum_version_id : int
        The VMSD's versions.
    subsections : tuple of VmsdVersion
        ``Description.Subsections``, recursively.
    line : int
        Line of the description in the dump (1-based; approximate for repeated names).
    """

    name: str
    version_id: int
    minimum_version_id: int
    subsections: tuple[VmsdVersion, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class DumpEntry:
    """One device class of a dump: its QOM type and its top-level VMSD."""

    type_name: str
    vmsd: VmsdVersion
    line: int = 0


@dataclass(frozen=True)
class VmstateDump:
    """A parsed ``-dump-vmstate`` file."""

    file: str
    machine: str
    entries: tuple[DumpEntry, ...]

    def entry(self, type_name: str) -> DumpEntry | None:
        """The entry of QOM type ``type_name`` (None if absent)."""
        for e in self.entries:
            if e.type_name == type_name:
                return e
        return None

    def by_vmsd_name(self, name: str) -> DumpEntry | None:
        """The first entry whose top-level VMSD is called ``name``."""
        for e in self.entries:
            if e.vmsd.name == name:
                return e
        return None


@dataclass(frozen=True)
class DumpFinding:
    """One incompatibility between a source dump and a destination dump.

    Attributes
    ----------
    kind : str
        ``"machine"``, ``"missing"``, ``"too_new"``, ``"too_old"`` or ``"subsection_missing"``.
    severity : str
        ``"error"`` (the destination refuses the stream whenever the section is sent) or
        ``"warning"`` (only when it is sent: a machine type that differs, a subsection whose
        ``needed`` is true).
    type_name : str
        The QOM type of the source entry ("" for the machine).
    vmsd : str
        The VMSD (or subsection) concerned.
    message : str
        What the destination QEMU prints, in its own words.
    detail : str
        What migorder adds (where the numbers came from).
    """

    kind: str
    severity: str
    type_name: str
    vmsd: str
    message: str
    detail: str = ""


_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)?')
"""Every JSON string token in order (consumed whole, so a match never starts inside one);
group 2 is set for an object key."""


def _unquote(raw: str) -> str:
    if "\\" not in raw:
        return raw
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


class _Places:
    """Lines of keys in the dump's text, found in one forward pass (linear in the text).

    Keys are looked up in the order the parser meets them, which is text order; a key that is
    not found (duplicate keys, say) stops the search, and later places fall back to the last
    line found: lines are approximate then, never slow.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _STRING.finditer(text)
        self._pending: list[tuple[int, str, int]] = []
        self._at = 0
        self._line = 1
        self._line_pos = 0
        self._lost = False

    def _line_at(self, pos: int) -> int:
        if pos < self._line_pos:
            self._line, self._line_pos = 1, 0
        self._line += self._text.count("\n", self._line_pos, pos)
        self._line_pos = pos
        return self._line

    def line(self) -> int:
        """Line of the last key found."""
        return self._line_at(self._at)

    def find(self, key: str, value: str | None = None) -> int:
        """Line of the next key ``key`` (whose string value is ``value``, when given), or 0."""
        if self._lost:
            return 0
        for m in self._tokens:
            if m.group(2) is None or _unquote(m.group(1)) != key:
                continue
            if value is not None:
                v = _STRING.match(self._text, m.end())
                if v is None or v.group(2) is not None or _unquote(v.group(1)) != value:
                    continue
            self._at = m.start()
            return self._line_at(m.start())
        self._lost = True
        return 0


def _int(obj: dict[str, Any], key: str, where: str) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(where, f"expected an integer {key!r}, found {shown(v)}")
    return v


def _vmsd(obj: Any, places: _Places, filename: str, depth: int = 0) -> VmsdVersion:
    if depth > MAX_NESTING:
        raise InputError(f"{filename}:{places.line()}",
                         f"expected subsections nested at most {MAX_NESTING} deep")
    if not isinstance(obj, dict):
        raise InputError(f"{filename}:{places.line()}",
                         f"expected a VMSD description object, found {type(obj).__name__}")
    name = obj.get("name")
    line = places.find("name", name) if isinstance(name, str) else 0
    where = f"{filename}:{line or places.line()}"
    if not isinstance(name, str):
        raise InputError(where, f"expected a string 'name' in a VMSD description, found "
                         f"{shown(name)}")
    version = _int(obj, "version_id", where)
    minimum = _int(obj, "minimum_version_id", where)
    subs_raw = obj.get("Subsections", [])
    if not isinstance(subs_raw, list):
        raise InputError(where, "expected 'Subsections' to be a list")
    subs = tuple(_vmsd(raw, places, filename, depth + 1) for raw in subs_raw)
    return VmsdVersion(name, version, minimum, subs, line)


def parse_dump(text: str, filename: str = "<dump>") -> VmstateDump:
    """Parse the text of a ``-dump-vmstate`` file.

    Parameters
    ----------
    text : str
        The JSON text QEMU wrote.
    filename : str
        Used in error messages and kept in the result.

    Returns
    -------
    VmstateDump
        Machine type and one entry per device class, in file order.

    Raises
    ------
    InputError
        ``file:line`` for malformed JSON or a shape that is not a vmstate dump.

    Examples
    --------
    >>> d = parse_dump('''{"vmschkmachine": {"Name": "pc-q35-7.2"},
    ...   "kvmclock": {"Name": "kvmclock", "version_id": 1, "minimum_version_id": 1,
    ...     "Description": {"name": "kvmclock", "version_id": 1, "minimum_version_id": 1,
    ...       "Subsections": [{"name": "kvmclock/clock_is_reliable", "version_id": 1,
    ...                        "minimum_version_id": 1}]}}}''')
    >>> d.machine, d.entries[0].vmsd.subsections[0].name
    ('pc-q35-7.2', 'kvmclock/clock_is_reliable')
    """
    try:
        data = json_loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{filename}:{exc.lineno}",
                         f"expected JSON as -dump-vmstate writes it: {exc.msg} "
                         f"(column {exc.colno})") from None
    except LimitError as exc:
        raise InputError(f"{filename}:{exc.line}",
                         f"expected {exc.expected} (column {exc.column})") from None
    if not isinstance(data, dict):
        raise InputError(f"{filename}:1", "expected a JSON object at the top of the dump")
    machine_obj = data.get(MACHINE_KEY)
    if not isinstance(machine_obj, dict) or not isinstance(machine_obj.get("Name"), str):
        raise InputError(f"{filename}:1",
                         f"expected \"{MACHINE_KEY}\": {{\"Name\": ...}}: not a -dump-vmstate file")
    entries: list[DumpEntry] = []
    places = _Places(text)
    for key, value in data.items():
        if key == MACHINE_KEY:
            continue
        line = places.find(key)
        where = f"{filename}:{line or places.line()}"
        if not isinstance(value, dict):
            raise InputError(where, f"expected an object for device {shown(key)}")
        desc = value.get("Description")
        if desc is None:
            raise InputError(where, f"expected a 'Description' in device {shown(key)}")
        entries.append(DumpEntry(key, _vmsd(desc, places, filename), line))
    return VmstateDump(filename, machine_obj["Name"], tuple(entries))


def read_dump(path: str | Path) -> VmstateDump:
    """Read a ``-dump-vmstate`` file.

    Raises
    ------
    InputError
        When the file cannot be read, is not JSON or is not a vmstate dump (``file:line``).

    Examples
    --------
    >>> from pathlib import Path
    >>> fx = Path(__file__).parents[2] / "tests/fixtures/dump-vmstate/q35-7.2-trimmed.json"
    >>> read_dump(fx).entry("intel-iommu").vmsd.name  # type: ignore[union-attr]
    'iommu-intel'
    """
    p = Path(path)
    try:
        text = read_text(p)
    except FileRefused as exc:
        raise InputError(f"{place(p)}:0", f"expected a -dump-vmstate file: {exc.args[0]}") from None
    return parse_dump(text, place(p))


def iter_sections(dump: VmstateDump) -> Iterator[tuple[str, VmsdVersion, int]]:
    """Every (type name, VMSD or subsection, depth), depth 0 for the top-level VMSD.

    Examples
    --------
    >>> from pathlib import Path
    >>> fx = Path(__file__).parents[2] / "tests/fixtures/dump-vmstate/q35-7.2-trimmed.json"
    >>> for t, v, depth in iter_sections(read_dump(fx)):
    ...     if t == "mc146818rtc":
    ...         print("  " * depth + v.name, v.version_id, v.minimum_version_id)
    mc146818rtc 3 1
      mc146818rtc/irq_reinject_on_ack_count 1 1
    """

    def walk(t: str, v: VmsdVersion, depth: int) -> Iterator[tuple[str, VmsdVersion, int]]:
        yield t, v, depth
        for s in v.subsections:
            yield from walk(t, s, depth + 1)

    for e in dump.entries:
        yield from walk(e.type_name, e.vmsd, 0)


def _versions(
    t: str, src: VmsdVersion, dst: VmsdVersion, sp: str, out: list[DumpFinding]
) -> None:
    if src.version_id > dst.version_id:
        out.append(DumpFinding(
            "too_new", "error", t, dst.name,
            TOO_NEW.format(name=dst.name, incoming=src.version_id, local=dst.version_id),
            f"source sends version {src.version_id}, destination knows up to "
            f"{dst.version_id}",
        ))
    elif src.version_id < dst.minimum_version_id:
        out.append(DumpFinding(
            "too_old", "error", t, dst.name,
            TOO_OLD.format(name=dst.name, incoming=src.version_id, sp=sp,
                           local=dst.minimum_version_id),
            f"source sends version {src.version_id}, destination accepts from "
            f"{dst.minimum_version_id}",
        ))
    subs = {s.name: s for s in dst.subsections}
    for s in src.subsections:
        d = subs.get(s.name)
        if d is None:
            out.append(DumpFinding(
                "subsection_missing", "warning", t, s.name,
                LOAD_ERROR.format(instance=0, idstr=src.name),
                f"the destination's '{dst.name}' has no subsection '{s.name}': loading fails "
                "(vmstate_subsection_load, -ENOENT) whenever the source sends it (its "
                ".needed is true)",
            ))
        else:
            _versions(t, s, d, sp, out)


def compare_dumps(
    src: VmstateDump,
    dst: VmstateDump,
    *,
    dst_release: tuple[int, int] | None = None,
) -> list[DumpFinding]:
    """What the destination would refuse when loading from the source, by the two dumps.

    Parameters
    ----------
    src, dst : VmstateDump
        ``-dump-vmstate`` of the source and the destination binary.
    dst_release : (int, int), optional
        The destination's QEMU release; picks the wording of the "too old" message
        (two spaces before the number up to 10.1, the default, one after).

    Returns
    -------
    list of DumpFinding
        In source dump order: the machine type first, then per device class.

    Examples
    --------
    >>> s = parse_dump('{"vmschkmachine": {"Name": "m"}, "d": {"Description": '
    ...                '{"name": "dev", "version_id": 3, "minimum_version_id": 1}}}')
    >>> d = parse_dump('{"vmschkmachine": {"Name": "m"}, "d": {"Description": '
    ...                '{"name": "dev", "version_id": 2, "minimum_version_id": 1}}}')
    >>> [f.message for f in compare_dumps(s, d)]
    ['dev: incoming version_id 3 is too new for local version_id 2']
    """
    sp = "  " if dst_release is None or dst_release <= (10, 1) else " "
    out: list[DumpFinding] = []
    if src.machine != dst.machine:
        out.append(DumpFinding(
            "machine", "warning", "", "",
            MACHINE_MISMATCH.format(src=src.machine, dst=dst.machine),
            "the dumps describe each binary's default machine type; a migration passes only "
            "when both sides run the same -machine",
        ))
    for e in src.entries:
        d = dst.entry(e.type_name) or dst.by_vmsd_name(e.vmsd.name)
        if d is None:
            out.append(DumpFinding(
                "missing", "error", e.type_name, e.vmsd.name,
                UNKNOWN_SECTION.format(idstr=e.vmsd.name, instance=0),
                f"device type '{e.type_name}' (VMSD '{e.vmsd.name}') is absent from the "
                "destination dump; the idstr the stream carries is the VMSD name, prefixed "
                "with the device path for devices that have one",
            ))
            continue
        if d.vmsd.name != e.vmsd.name:
            out.append(DumpFinding(
                "missing", "error", e.type_name, e.vmsd.name,
                UNKNOWN_SECTION.format(idstr=e.vmsd.name, instance=0),
                f"device type '{e.type_name}' saves VMSD '{e.vmsd.name}' on the source but "
                f"'{d.vmsd.name}' on the destination",
            ))
            continue
        _versions(e.type_name, e.vmsd, d.vmsd, sp, out)
    return out
