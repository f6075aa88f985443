"""Format ``migorder verify``: text, a qemu-devel reply body (mail), JSON."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from ordering.sources.patch import Patch
from ordering.sources.patch_apply import Unjudged
from ordering.verify import Comparison, RuleChange

__all__ = ["VerifyResult", "verify_dict", "verify_text"]


@dataclass(frozen=True)
class VerifyResult:
    """One verification: the base, the patches, what was read and the comparison."""

    base: str
    how: str
    """``model`` (hunks read against the bundled model) or ``tree`` (applied and scanned)."""
    patches: tuple[Patch, ...]
    skipped: tuple[str, ...]
    changes: tuple[str, ...]
    unjudged: tuple[Unjudged, ...]
    ignored: tuple[str, ...]
    comparison: Comparison | None
    summary: str
    assumes: tuple[str, ...] = ()
    label: str = ""
    """For a step of ``--git``: which commit (or ``the whole range``)."""


def verify_dict(r: VerifyResult) -> dict[str, Any]:
    """``migorder verify --json``."""
    c = r.comparison
    return {
        "base": r.base,
        "label": r.label or None,
        "how": r.how,
        "patches": [
            {"commit": p.commit or None, "subject": p.subject, "source": p.source, "message_id": p.message_id or None}
            for p in r.patches
        ],
        "skipped": list(r.skipped),
        "changes": list(r.changes),
        "enum": {
            "before": [{"name": n, "value": v, "comment": cm} for n, v, cm in c.enum_before] if c else [],
            "after": [{"name": n, "value": v, "comment": cm} for n, v, cm in c.enum_after] if c else [],
            "renumbered": [{"name": n, "before": b, "after": a} for n, b, a in c.renumbered] if c else [],
            "aliases": [list(a) for a in c.aliases] if c else [],
        },
        "rules": [
            {"rule": x.rule, "scope": x.scope, "before": x.before, "after": x.after,
             "evidence_before": x.evidence_before, "evidence_after": x.evidence_after}
            for x in (c.rules if c else ())
        ],
        "moved": [
            {"scenario": m.scenario, "section": m.section, "from": m.before, "to": m.after,
             "priority_before": m.priority_before, "priority_after": m.priority_after, "rules": list(m.rules)}
            for m in (c.moved if c else ())
        ],
        "lint": list(c.lint) if c else [],
        "cross_version": list(c.cross_version) if c else [],
        "unjudged": [{"where": u.where, "patch": u.patch, "what": u.what} for u in r.unjudged],
        "ignored": list(r.ignored),
        "assumes": list(r.assumes),
        "summary": r.summary,
    }


def _arrow(x: RuleChange) -> str:
    return f"{x.before} -> {x.after}" if x.before != x.after else f"{x.before} (no change)"


def _why(r: VerifyResult) -> str:
    c = r.comparison
    if r.unjudged:
        return f"{len(r.unjudged)} place(s) touch ordering in a way migorder cannot read without the tree"
    if c is None:
        return ""
    if c.unknown:
        return "z3 gave no answer for some rule"
    worse = [x for x in c.rules if x.delta > 0]
    better = [x for x in c.rules if x.delta < 0]
    if worse:
        return "; ".join(f"{x.rule} ({x.scope}) {x.before} -> {x.after}" for x in worse[:3])
    if better:
        return "; ".join(f"{x.rule} ({x.scope}) {x.before} -> {x.after}" for x in better[:3])
    if c.lint:
        return "no rule changes; see the notes (a priority that cannot take effect, a claim)"
    return "no rule's verdict changes anywhere"


def _sections(r: VerifyResult, width: int) -> list[str]:
    c = r.comparison
    w = textwrap.TextWrapper(width=width, subsequent_indent="    ", break_on_hyphens=False)
    out: list[str] = []

    def para(text: str, indent: str = "  ") -> None:
        w.initial_indent = indent
        w.subsequent_indent = " " * (len(indent) - len(indent.lstrip()) + 4)
        out.extend(w.wrap(text))

    for p in r.patches:
        para(p.label, "  patch: ")
    if r.skipped:
        para("; ".join(r.skipped), "  skipped (cover letter / no diff): ")
    if r.changes:
        para("What the patches change:", "")
        for ch in r.changes:
            para(ch)
    if r.unjudged:
        para("UNJUDGED (give --tree QEMU_SRC to judge these):", "")
        for u in r.unjudged:
            para(f"{u.where}: {u.what} [{u.patch}]")
    if r.ignored:
        para(f"{len(r.ignored)} hunk(s) unrelated to ordering ignored: {', '.join(r.ignored[:6])}"
             + (" ..." if len(r.ignored) > 6 else ""), "")
    if c is None:
        return out
    if c.enum_before != c.enum_after:
        para("Enum before -> after (a priority is never on the wire):", "")
        names = [n for n, _, _ in c.enum_after] + [n for n, _, _ in c.enum_before if n not in {a for a, _, _ in c.enum_after}]
        before = {n: v for n, v, _ in c.enum_before}
        after = {n: v for n, v, _ in c.enum_after}
        for n in reversed(names):
            b = str(before[n]) if n in before else "-"
            a = str(after[n]) if n in after else "-"
            mark = "new" if n not in before else "removed" if n not in after else (
                "renumbered (harmless)" if before[n] != after[n] else "")
            out.append(f"  {n:<24} {b:>3} -> {a:<3} {mark}".rstrip())
        for group in c.aliases:
            para(f"alias: {' = '.join(group)} share value {after[group[0]]}: sections at these levels "
                 "tie and load in registration order", "  ")
    para("Rules, universal (every VM of the release, any registration order):", "")
    for x in c.rules:
        if x.scope != "universal":
            continue
        para(f"{x.rule}: {_arrow(x)}")
        if x.before != x.after:
            para(f"before: {x.evidence_before}", "      ")
            para(f"after:  {x.evidence_after}", "      ")
    scopes = sorted({x.scope for x in c.rules if x.scope != "universal"})
    for s in scopes:
        changed = [x for x in c.rules if x.scope == s and x.before != x.after]
        same = [x for x in c.rules if x.scope == s and x.before == x.after and x.before != "not-live"]
        para(f"Scenario {s}: {len(changed)} rule(s) change, {len(same)} live rule(s) unchanged", "")
        for x in changed:
            para(f"{x.rule}: {_arrow(x)}")
            if x.evidence_after:
                para(x.evidence_after, "      ")
        mv = [m for m in c.moved if m.scenario == s]
        for m in mv[:8]:
            rules = f" (rules: {', '.join(m.rules)})" if m.rules else ""
            para(f"moves {m.section}: position {m.before} -> {m.after}, {m.priority_before} -> "
                 f"{m.priority_after}{rules}", "    ")
        if len(mv) > 8:
            out.append(f"    ... and {len(mv) - 8} more sections move")
    if c.lint:
        para("Notes (priorities that cannot take effect, enum-comment claims):", "")
        for ln in c.lint:
            para(ln)
    para("Cross-version (the source's order decides; a fix helps only where the source is patched):", "")
    if c.cross_version:
        for ln in c.cross_version:
            para(ln)
    else:
        para("no rule's universal verdict differs between the two, in either direction")
    return out


def verify_text(r: VerifyResult, *, mail: bool = False) -> str:
    """The report; ``mail``: plain text at most 72 columns, for a qemu-devel reply."""
    width = 72 if mail else 100
    head = f"migorder verify on QEMU {r.base} ({'patched tree scanned' if r.how == 'tree' else 'bundled model'})"
    if r.label:
        head += f": {r.label}"
    lines = textwrap.wrap(head, width, break_on_hyphens=False)
    for a in r.assumes:
        lines.extend(textwrap.wrap(f"Assumes {a}", width, subsequent_indent="  ", break_on_hyphens=False))
    lines.extend(_sections(r, width))
    lines.extend(textwrap.wrap(f"{r.summary}: {_why(r)}", width, subsequent_indent="  ", break_on_hyphens=False))
    if mail:
        lines = [ln[:72] for ln in lines]
    return "\n".join(lines)
