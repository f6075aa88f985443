"""Sizes of FULL section payloads, computed from the vmdesc JSON trailer.

Facts used (QEMU migration/vmstate.c, the vmdesc writer; checked on the real streams in
``tests/data/real-streams``):

- each field entry carries ``size``: the bytes that field wrote, structs (and their nested
  subsections) included;
- an array whose elements all have one layout is written once with ``array_len`` (the size is
  that of one element); otherwise every element is its own entry with ``index``;
- a subsection on the wire is a header (0x05, u8 name length, name, be32 version) then its
  fields and its own subsections; the vmdesc lists it under ``subsections`` with
  ``vmsd_name`` and ``version``;
- an old-style section (SaveVMHandlers ``save_state``, no VMSD) is one ``buffer`` field
  named ``data`` of the whole payload size;
- ``unused_buffer`` fields and null-pointer placeholders (``nullptr``, one marker byte) are
  ordinary fields with their written size.
"""

from __future__ import annotations

from typing import Any

from ordering.sources._limits import shown

SUBSECTION_HEADER_FIXED = 1 + 1 + 4
"""0x05, u8 name length, be32 version_id; plus the name's bytes."""


class VmdescShapeError(Exception):
    """The vmdesc JSON does not have the shape QEMU writes; ``args[0]`` says what was expected."""


def _int(obj: dict[str, Any], key: str, where: str) -> int:
    v = obj.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise VmdescShapeError(f"{where}: a non-negative integer {key!r}, found {shown(v)}")
    return v


def _list(obj: dict[str, Any], key: str, where: str, *, required: bool) -> list[Any]:
    v = obj.get(key)
    if v is None and not required:
        return []
    if not isinstance(v, list):
        raise VmdescShapeError(f"{where}: a list {key!r}, found {shown(v)}")
    return v


def _dict(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise VmdescShapeError(f"{where}: a JSON object, found {shown(v)}")
    return v


def vmsd_payload_size(desc: dict[str, Any], where: str, depth: int = 0) -> int:
    """Bytes a VMSD description (fields, then subsections) occupies on the wire.

    Parameters
    ----------
    desc : dict
        A vmdesc device entry, or one of its ``subsections`` entries.
    where : str
        How to name ``desc`` in an error.
    depth : int
        Nesting depth (guards against absurdly deep JSON).

    Returns
    -------
    int
        The payload size in bytes.

    Raises
    ------
    VmdescShapeError
        When a field lacks its size or the description is malformed.

    Examples
    --------
    >>> vmsd_payload_size({"fields": [{"name": "a", "type": "uint32", "size": 4},
    ...                               {"name": "b", "array_len": 3, "type": "uint8", "size": 1}],
    ...                    "subsections": [{"vmsd_name": "x/y", "version": 1,
    ...                                     "fields": [{"name": "c", "size": 8}]}]}, "x")
    24
    """
    if depth > 64:
        raise VmdescShapeError(f"{where}: subsections nested at most 64 deep")
    total = 0
    for i, raw in enumerate(_list(desc, "fields", where, required=True)):
        fwhere = f"{where} field #{i}"
        field = _dict(raw, fwhere)
        size = _int(field, "size", fwhere)
        count = _int(field, "array_len", fwhere) if "array_len" in field else 1
        total += size * count
    for i, raw in enumerate(_list(desc, "subsections", where, required=False)):
        swhere = f"{where} subsection #{i}"
        sub = _dict(raw, swhere)
        name = sub.get("vmsd_name")
        if not isinstance(name, str):
            raise VmdescShapeError(f"{swhere}: a string 'vmsd_name', found {shown(name)}")
        total += SUBSECTION_HEADER_FIXED + len(name.encode())
        total += vmsd_payload_size(sub, f"{swhere} ({shown(name, 80)})", depth + 1)
    return total


def device_entries(vmdesc: Any) -> list[dict[str, Any]]:
    """The ``devices`` list of a vmdesc, each entry checked to be an object with name/instance_id.

    Examples
    --------
    >>> device_entries({"page_size": 4096, "devices": [{"name": "timer", "instance_id": 0,
    ...                                                  "fields": []}]})[0]["name"]
    'timer'
    """
    top = _dict(vmdesc, "vmdesc")
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(_list(top, "devices", "vmdesc", required=True)):
        where = f"vmdesc device #{i}"
        dev = _dict(raw, where)
        if not isinstance(dev.get("name"), str):
            raise VmdescShapeError(f"{where}: a string 'name', found {shown(dev.get('name'))}")
        _int(dev, "instance_id", where)
        out.append(dev)
    return out


PAGE_SIZE_MAX = 1 << 30
"""Largest target page size accepted (as the configuration's target page bits: 9 to 30)."""


def page_size(vmdesc: Any) -> int | None:
    """The vmdesc's ``page_size`` (None when it has none).

    Raises
    ------
    VmdescShapeError
        A ``page_size`` that is not a power of two from 512 to :data:`PAGE_SIZE_MAX`.

    Examples
    --------
    >>> page_size({"page_size": 4096, "devices": []})
    4096
    >>> page_size({"page_size": 1 << 40})
    Traceback (most recent call last):
    ...
    ordering.sources._stream_vmdesc.VmdescShapeError: vmdesc page_size: a power of two from 512 to 1073741824, found 1099511627776
    """
    if not isinstance(vmdesc, dict) or "page_size" not in vmdesc:
        return None
    v = vmdesc["page_size"]
    if (isinstance(v, int) and not isinstance(v, bool) and 512 <= v <= PAGE_SIZE_MAX
            and v & (v - 1) == 0):
        return v
    raise VmdescShapeError(f"vmdesc page_size: a power of two from 512 to {PAGE_SIZE_MAX}, "
                           f"found {shown(v)}")
