"""Formatting only: a migration between two releases (``--from R --to R``) as text and JSON."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ordering.order import LoadOrder
from ordering.report import check_dict, check_text, order_dict, order_text
from ordering.upgrade import Crossing, Side
from ordering.verdict import Verdict


def _dest_not_live(c: Crossing) -> list[int]:
    return [
        i
        for i, (v, side) in enumerate(zip(c.result.verdicts, c.sides, strict=True))
        if side is Side.DESTINATION and v.verdict is Verdict.NOT_LIVE
    ]


def destination_lines(c: Crossing) -> list[str]:
    """What the destination decides: whether it starts the VM, the sections it refuses, the
    rules not live there, its own blockers."""
    src, dst = c.source.name, c.destination.name
    lines = ["", f"DESTINATION QEMU {dst} (the source {src} decided the order above):"]
    lines.extend(f"  note: {n}" for n in c.notes)
    if c.refused_command_line:
        lines.append(f"  REFUSES the VM: QEMU {dst} does not start it: {c.refused_command_line}")
        lines.append("  (nothing below was checked on the destination)")
        return lines
    if c.refusals:
        lines.append(f"  REFUSES {len(c.refusals)} section(s) the source sends (decided by the destination):")
        lines.extend(f"    {r.label}: {r.message}" for r in c.refusals)
    else:
        lines.append("  knows every section the source sends (by idstr and instance_id, as find_se looks them up)")
    lines.append(f"  version_id windows: {c.versions}")
    dest_only = _dest_not_live(c)
    if dest_only:
        lines.append(f"  not live on {dst} (decided by the destination: the rule's sections are not registered there):")
        for i in dest_only:
            v = c.result.verdicts[i]
            lines.append(f"    {v.rule.id}: {v.first_label} → {v.then_label}")
    blockers = [b for b in c.blockers if b.side is Side.DESTINATION and not b.blocker.conditional]
    if blockers:
        lines.append(f"  BLOCKERS on {dst}: once there, QEMU {dst} refuses to migrate the VM on (decided by the destination):")
        lines.extend(f"    {b.blocker.device}: {b.blocker.message}" for b in blockers)
    both = [b for b in c.blockers if b.side is Side.BOTH and not b.blocker.conditional]
    if both:
        lines.append(f"  the blockers above hold on {dst} too")
    judged = sum(1 for v, s in zip(c.result.verdicts, c.sides, strict=True) if s is Side.SOURCE)
    lines.append(
        f"  the {judged} rule verdict(s) above were decided by the source's order (phase, priority, "
        f"registration on {src}) and are live on {dst}"
    )
    return lines


def crossing_text(c: Crossing, *, verbose: bool = False) -> str:
    """``migorder check --from R --to R``: the check, then what the destination decides."""
    if c.same_release:
        return check_text(c.result, verbose=verbose)
    drop = set(_dest_not_live(c))
    kept = tuple(v for i, v in enumerate(c.result.verdicts) if i not in drop)
    body = check_text(replace(c.result, verdicts=kept), verbose=verbose).split("\n")
    body[0] = body[0].replace(
        f"from a QEMU {c.source.name} source",
        f"from a QEMU {c.source.name} source to a QEMU {c.destination.name} destination",
    )
    return "\n".join(body + destination_lines(c))


def destination_dict(c: Crossing) -> dict[str, Any]:
    """The destination's part as JSON-ready data."""
    return {
        "release": c.destination.name,
        "refused_command_line": c.refused_command_line or None,
        "refused_sections": [
            {"section": r.label, "idstr": r.idstr, "instance_id": r.instance_id, "message": r.message, "decided_by": "destination"}
            for r in c.refusals
        ],
        "version_ids": c.versions,
        "notes": list(c.notes),
        "blockers": [
            {
                "device": b.blocker.device,
                "message": b.blocker.message,
                "source": b.blocker.source,
                "conditional": b.blocker.conditional or None,
                "decided_by": b.side.value,
            }
            for b in c.blockers
        ],
    }


def crossing_dict(c: Crossing) -> dict[str, Any]:
    """``migorder check --from R --to R --json``: ``check --json`` plus ``from``, ``to``, each
    rule's ``decided_by`` and the ``destination`` part."""
    data = check_dict(c.result)
    if c.same_release:
        return data
    data["exit_code"] = c.exit_code
    for entry, side in zip(data["rules"], c.sides, strict=True):
        entry["decided_by"] = side.value
    return {"from": c.source.name, "to": c.destination.name, **data, "destination": destination_dict(c)}


def order_crossing_text(order: LoadOrder, c: Crossing | None) -> str:
    """``migorder order --from R --to R``: the source's order, then the destination's refusals."""
    text = order_text(order)
    if c is None or c.same_release:
        return text
    lines = [text, f"Destination QEMU {c.destination.name}:"]
    if c.refused_command_line:
        lines.append(f"  refuses the VM: {c.refused_command_line}")
    elif c.refusals:
        lines.extend(f"  refuses {r.label}: {r.message}" for r in c.refusals)
    else:
        lines.append("  knows every section of this order")
    lines.append(f"  version_id windows: {c.versions}")
    return "\n".join(lines)


def order_crossing_dict(order: LoadOrder, c: Crossing | None) -> dict[str, Any]:
    """``migorder order --from R --to R --json``."""
    data = order_dict(order)
    if c is None or c.same_release:
        return data
    return {"from": c.source.name, "to": c.destination.name, **data, "destination": destination_dict(c)}
