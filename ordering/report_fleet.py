"""Formatting only: a fleet's findings as a grouped summary, per-VM lines and JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ordering.fleet import FindingKind, FleetVm, Group

_HEADINGS = {
    FindingKind.NOT_UNDERSTOOD: "NOT UNDERSTOOD",
    FindingKind.REFUSAL: "REFUSAL",
    FindingKind.BLOCKER: "BLOCKER",
    FindingKind.VIOLATED: "VIOLATED",
    FindingKind.TIE_FRAGILE: "TIE-FRAGILE",
}


def summary_lines(
    groups: Sequence[Group], *, vms: int, shapes: int, with_findings: int, notes: Iterable[str] = ()
) -> list[str]:
    """The summary: one header, the notes (where releases came from), then each group with
    its count, a few VM names and one line of why."""
    lines = [
        f"migorder fleet: {vms} VM(s), {shapes} distinct shape(s) checked; "
        f"{with_findings} VM(s) with findings, {vms - with_findings} clean"
    ]
    lines.extend(f"  {n}" for n in notes)
    if not groups:
        lines.append("no findings")
        return lines
    for g in groups:
        more = " ..." if g.count > len(g.examples) else ""
        direction = f" [{g.direction}]" if g.direction else ""
        side = f" (decided by the {g.side})" if g.side and g.side != "both" else (" (both sides)" if g.side else "")
        lines.append("")
        lines.append(f"{_HEADINGS[g.kind]}{direction} {g.group}: {g.count} VM(s){side}")
        lines.append(f"    e.g. {', '.join(g.examples)}{more}")
        lines.append(f"    why: {g.why}")
    return lines


def vm_lines(vms: Iterable[FleetVm]) -> Iterator[str]:
    """One block per VM with findings: its name, where it was read, each finding's line."""
    for vm in vms:
        if not vm.findings:
            continue
        shape = f", shape {vm.shape}" if vm.shape else ""
        yield f"{vm.name} ({vm.where}{shape}):"
        for f in vm.findings:
            direction = f"[{f.direction}] " if f.direction else ""
            yield f"  {direction}{f.detail}"


def vm_dict(vm: FleetVm) -> dict[str, Any]:
    """One VM as ``--json-lines`` writes it."""
    return {
        "vm": vm.name,
        "source": vm.where,
        "shape": vm.shape or None,
        "from": vm.source or None,
        "to": vm.destination,
        "exit": vm.exit_code,
        "findings": [
            {
                "kind": f.kind.value,
                "group": f.group,
                "direction": f.direction or None,
                "decided_by": f.side or None,
                "detail": f.detail,
            }
            for f in vm.findings
        ],
    }


def vm_json_line(vm: FleetVm) -> str:
    """``--json-lines``: one compact JSON object."""
    return json.dumps(vm_dict(vm), ensure_ascii=False, separators=(",", ":"))


def group_json_line(g: Group) -> str:
    """``--json-lines --summary-only``: one group as one JSON object."""
    return json.dumps(
        {
            "kind": g.kind.value,
            "group": g.group,
            "direction": g.direction or None,
            "decided_by": g.side or None,
            "count": g.count,
            "examples": list(g.examples),
            "why": g.why,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
