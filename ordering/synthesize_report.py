"""Format ``migorder synthesize``: the answer, the change as a patch, the reviewers' questions."""

from __future__ import annotations

import re
from typing import Any

from ordering.model.release import Release
from ordering.synthesize import Assignment, Synthesis

__all__ = ["level_name", "model_patch", "synthesis_dict", "synthesis_text"]

HEADER = "include/migration/vmstate.h"


def level_name(s: Synthesis, new: str) -> str:
    """The ``MIG_PRI_*`` name for a new level: after the VMSDs placed on it (``MIG_PRI_APIC``).

    >>> from ordering.synthesize import Synthesis, Assignment
    >>> s = Synthesis("10.1", True, (), (Assignment("apic", "MIG_PRI_DEFAULT", "NEW@A/B", "", "", ()),), ("NEW@A/B",), (), ())
    >>> level_name(s, "NEW@A/B")
    'MIG_PRI_APIC'
    """
    users = [a.vmsd for a in s.changes if a.after == new]
    stem = re.sub(r"\W+", "_", users[0]).strip("_").upper() if len(users) == 1 else "NEW"
    return f"MIG_PRI_{stem or 'NEW'}"


def _target(s: Synthesis, a: Assignment) -> str:
    return level_name(s, a.after) if a.after.startswith("NEW@") else a.after


def model_patch(s: Synthesis, release: Release) -> str:
    """The change as a unified diff whose context is rebuilt from the release model (line
    numbers are not the tree's: give ``--qemu-tree`` for a diff that applies)."""
    out: list[str] = []
    levels = [lv.name for lv in release.scheme.levels]
    if s.new_levels:
        out += [f"--- a/{HEADER}", f"+++ b/{HEADER}"]
        for new in s.new_levels:
            below, above = new.removeprefix("NEW@").split("/")
            i = levels.index(below)
            out.append(f"@@ -{i + 1},2 +{i + 1},3 @@ typedef enum {{")
            out.append(f"     {below},")
            out.append(f"+    {level_name(s, new)},")
            out.append(f"     {above},")
    for a in s.changes:
        if not a.symbol:
            continue
        out += [f"--- a/{a.file}", f"+++ b/{a.file}", "@@ -1,2 +1,3 @@",
                f" static const VMStateDescription {a.symbol} = {{", f'     .name = "{a.vmsd}",']
        old = release.vmsds.get(a.vmsd)
        if old is not None and old.priority:
            out[-3] = "@@ -1,3 +1,3 @@"
            out.append(f"-    .priority = {old.priority},")
        out.append(f"+    .priority = {_target(s, a)},")
    return "\n".join(out) + "\n" if out else ""


def _groups(s: Synthesis, release: Release) -> list[str]:
    out: list[str] = []
    serving: dict[str, set[str]] = {}
    for n in s.needs:
        if n.by == "priority":
            serving.setdefault(n.first, set()).add(n.rule)
            serving.setdefault(n.then, set()).add(n.rule)
    for a in s.changes:
        for lvl in a.existing_options:
            there = sorted(v for v, f in release.vmsds.items() if f.priority == lvl and f.orders_stream)
            rules = sorted(set().union(*(serving.get(v, set()) for v in there)) | set(a.rules))
            if there:
                out.append(f"{a.vmsd} at {lvl} beside {', '.join(there)}: one level serves {', '.join(rules)}")
    return out


def synthesis_text(s: Synthesis, release: Release, patch: str, round_trip: str) -> str:
    """The report."""
    lines = [f"migorder synthesize on QEMU {s.release}: {len(s.needs)} section-pair constraints"]
    lines += [f"Assumes {a}" for a in release.assumes]
    if s.vacuous:
        lines.append(f"Left out (QEMU refuses every VM where they are live): {', '.join(s.vacuous)}")
    for f in s.fixed:
        lines.append(f"Fixed: {f}")
    if not s.satisfiable:
        lines.append("(a) NO ASSIGNMENT: no priorities guarantee every rule; the conflicting rules form a cycle:")
        notes = dict(s.notes)
        for n in s.cycle:
            why = " (the phase forbids it)" if n.by == "phase-wrong" else ""
            cond = "; ".join(f"{v} {notes[v]}" for v in (n.first, n.then) if v in notes)
            lines.append(f"  {n.first} must load before {n.then} [{n.rule}]{why}" + (f" ({cond})" if cond else ""))
        lines.append("UNSATISFIABLE")
        return "\n".join(lines)
    if s.already:
        lines.append("(a) yes: every rule is already guaranteed (by priority or phase) for every VM; nothing to change")
        lines.append("NO CHANGE NEEDED")
        return "\n".join(lines)
    lines.append("(a) yes: an assignment exists under which every rule is guaranteed for every VM")
    lines.append(f"(b) the smallest change: {len(s.changes)} VMSD(s), {len(s.new_levels)} new level(s)")
    for a in s.changes:
        where = f" ({a.file}: {a.symbol})" if a.symbol else (
            " (not among the release's VMSD facts: found by .name in the tree with --qemu-tree)")
        lines.append(f"  {a.vmsd}: {a.before} -> {_target(s, a)}{where}; serves {', '.join(a.rules)}")
        if a.new_positions:
            lines.append(f"      a new level would work at: {'; '.join(a.new_positions)}")
    lines.append("(c) reuse an existing level instead of a new one (an alias: it ties with what is there,")
    lines.append("    registration order decides between them):")
    for a in s.changes:
        opts = ", ".join(a.existing_options) or "none (a new level is needed)"
        lines.append(f"  {a.vmsd}: {opts}")
    groups = _groups(s, release)
    if groups:
        lines.append("    groupings that serve several rules at once:")
        lines += [f"  {g}" for g in groups]
    if patch:
        lines.append("The change as a patch:")
        lines += ["  " + ln for ln in patch.rstrip("\n").split("\n")]
    lines.append(f"Round trip through `migorder verify`: {round_trip}")
    return "\n".join(lines)


def synthesis_dict(s: Synthesis, patch: str, round_trip: str) -> dict[str, Any]:
    """``migorder synthesize --json``."""
    return {
        "release": s.release,
        "satisfiable": s.satisfiable,
        "already": s.already,
        "vacuous": list(s.vacuous),
        "fixed": list(s.fixed),
        "cycle": [{"rule": n.rule, "first": n.first, "then": n.then, "by": n.by} for n in s.cycle],
        "changes": [
            {"vmsd": a.vmsd, "before": a.before, "after": _target(s, a), "file": a.file or None,
             "symbol": a.symbol or None, "rules": list(a.rules), "existing_levels": list(a.existing_options),
             "new_level_positions": list(a.new_positions)}
            for a in s.changes
        ],
        "new_levels": [level_name(s, n) for n in s.new_levels],
        "patch": patch or None,
        "round_trip": round_trip or None,
    }
