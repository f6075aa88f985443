"""Write what a source-tree scan found: lint findings and the release model (dict and TOML).

:func:`lint` reports priorities that cannot take effect or are not in the enum;
:func:`release_model` and :func:`to_release_toml` give the ``models/releases/<R>.toml``
schema. All three take a :class:`~ordering.sources.qemu_tree.ScannedRelease` and are also
importable from :mod:`ordering.sources.qemu_tree`.
"""

from __future__ import annotations

from ordering.sources._tree_model import ScannedRelease
from ordering.sources.cheader import HEADER

__all__ = ["lint", "release_model", "to_release_toml"]


def lint(scanned: ScannedRelease) -> list[str]:
    """Findings about priorities that cannot take effect or are not in the enum.

    Parameters
    ----------
    scanned : ScannedRelease
        A result of :func:`~ordering.sources.qemu_tree.scan_tree`.

    Returns
    -------
    list of str
        ``"FILE:LINE: ..."`` lines, in file order.

    Examples
    --------
    >>> from pathlib import Path
    >>> from ordering.sources.qemu_tree import scan_tree
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> for finding in lint(scan_tree(tree)):
    ...     print(finding)  # doctest: +NORMALIZE_WHITESPACE
    hw/virtio/virtio-mem.c:12: priority MIG_PRI_VIRTIO_MEM on VMSD 'virtio-mem-device' cannot
    take effect: it is never registered as a section of its own (only inside 'virtio-mem')
    """
    out: list[tuple[str, int, str]] = []
    names = set(scanned.enum.names)
    values = {lv.name: lv.value for lv in scanned.enum.levels}
    top = values.get("MIG_PRI_MAX")
    for u in scanned.priority_users:
        d = u.vmsd
        line = d.priority_line or d.line
        if d.priority and d.priority_value is None and d.priority not in names:
            out.append((d.file, line, f"priority {d.priority} on VMSD '{d.name}' is not an "
                        f"enumerator of MigrationPriority in {HEADER}"))
        if (d.priority_value is not None and top is not None and d.priority_value > top
                and u.takes_effect):
            out.append((d.file, line, f"error: priority {d.priority_expr} (= "
                        f"{d.priority_value}) on VMSD '{d.name}' is above MIG_PRI_MAX ({top}): "
                        "QEMU aborts on assert(priority <= MIG_PRI_MAX) when it registers the "
                        "section (migration/savevm.c, savevm_state_handler_insert)"))
        if d.priority and not u.takes_effect:
            why = f"only inside '{u.inside}'" if u.inside else "nor used inside any other"
            out.append((d.file, line, f"priority {d.priority} on VMSD '{d.name}' cannot take "
                        f"effect: it is never registered as a section of its own ({why})"))
    for c in scanned.claims:
        if c.target_level is None or c.level not in values:
            continue
        mine, theirs = values[c.level], values[c.target_level]
        wrong = mine <= theirs if c.relation == "before" else mine >= theirs
        if wrong:
            out.append((scanned.enum.file, c.line, f"{c.level} ({mine}) says it must happen "
                        f"{c.relation} {c.target} but {c.target_level} is {theirs}: numerically "
                        "higher priorities load earlier"))
    return [f"{f}:{ln}: {msg}" for f, ln, msg in sorted(out)]


# --------------------------------------------------------------------------- TOML


def _q(s: str) -> str:
    """A TOML basic string."""
    esc = s.replace("\\", "\\\\").replace('"', '\\"')
    esc = "".join(c if c >= " " or c == "\t" else f"\\u{ord(c):04x}" for c in esc)
    return f'"{esc}"'


def release_model(scanned: ScannedRelease, *, machines: str | None = None) -> dict[str, object]:
    """The release model as a dict in the ``models/releases/<R>.toml`` shape.

    ``machines`` names the ``models/machines/<M>`` folder to borrow layouts from (a scan
    cannot capture them); the default is the scanned release itself.

    Examples
    --------
    >>> from pathlib import Path
    >>> from ordering.sources.qemu_tree import scan_tree
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> model = release_model(scan_tree(tree))
    >>> model["release"], [p["name"] for p in model["priority"]]  # type: ignore[index]
    ('7.2', ['MIG_PRI_DEFAULT', 'MIG_PRI_IOMMU', 'MIG_PRI_VIRTIO_MEM', 'MIG_PRI_MAX'])
    """
    rel = scanned.release
    major, minor = (int(x) for x in rel.split(".")[:2])
    source = scanned.package or f"scanned source tree, VERSION {scanned.version}"
    features: dict[str, object] = {}
    for key, (value, src) in scanned.features.items():
        features[key] = value
        features[f"{key}_source"] = src
    vmsd: list[dict[str, object]] = []
    for u in scanned.priority_users:
        d = u.vmsd
        vmsd.append({
            "name": d.name,
            "symbol": d.symbol,
            "file": d.file,
            "priority": d.priority,
            "registration": u.registration,
            "how": u.how,
            "inside": u.inside,
            "source": f"scanned: {d.file}:{d.line}: {d.symbol}",
        })
    for h in scanned.handlers:
        if not h.literal:
            continue
        vmsd.append({
            "name": h.idstr,
            "symbol": h.ops,
            "file": h.file,
            "priority": "",
            "registration": "handler",
            "how": f"register_savevm_live at {h.file}:{h.line}",
            "inside": "",
            "source": f"scanned: {h.file}:{h.line}: register_savevm_live",
        })
    unmig = [{
        "name": x.vmsd.name,
        "symbol": x.vmsd.symbol,
        "file": x.vmsd.file,
        "device": x.devices[0] if x.devices else "",
        "source": f"scanned: {x.vmsd.file}:{x.vmsd.line}: {x.vmsd.symbol}",
    } for x in scanned.unmigratable]
    return {
        "release": rel,
        "version": [major, minor],
        "source": source,
        "machines": machines or rel,
        "machines_source": (
            "inferred: a source scan does not capture machine layouts"
            + (f"; borrowed from {machines}" if machines and machines != rel else "")
        ),
        "features": features,
        "priority": [{
            "name": lv.name,
            "value": lv.value,
            "comment": lv.comment,
            "source": f"{HEADER}:{lv.line}: MigrationPriority",
        } for lv in scanned.enum.levels],
        "vmsd": vmsd,
        "unmigratable": unmig,
    }


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _q(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def to_release_toml(scanned: ScannedRelease, *, machines: str | None = None) -> str:
    """The release model as TOML text, in the ``models/releases/<R>.toml`` schema.

    Parameters
    ----------
    scanned : ScannedRelease
        A result of :func:`~ordering.sources.qemu_tree.scan_tree`.
    machines : str, optional
        The ``models/machines/<M>`` folder to name (default: the scanned release).

    Returns
    -------
    str
        TOML that ``tomllib`` reads back into :func:`release_model`'s dict.

    Examples
    --------
    >>> import tomllib
    >>> from pathlib import Path
    >>> from ordering.sources.qemu_tree import scan_tree
    >>> tree = Path(__file__).parents[2] / "tests/fixtures/qemu-trees/basic"
    >>> scanned = scan_tree(tree)
    >>> tomllib.loads(to_release_toml(scanned)) == release_model(scanned)
    True
    """
    model = release_model(scanned, machines=machines)
    lines = [f"# Generated by migorder scan from {scanned.package or scanned.root}",
             f"# QEMU VERSION {scanned.version}", ""]
    tables: list[tuple[str, object]] = []
    for key, v in model.items():
        if isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict)):
            tables.append((key, v))
        else:
            lines.append(f"{key} = {_value(v)}")
    for key, v in tables:
        if isinstance(v, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{k} = {_value(x)}" for k, x in v.items()]
        else:
            assert isinstance(v, list)
            for row in v:
                lines += ["", f"[[{key}]]"]
                lines += [f"{k} = {_value(x)}" for k, x in row.items()]
    return "\n".join(lines) + "\n"
