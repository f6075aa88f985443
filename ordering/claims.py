"""The enum's own comments ("Must happen before PCI devices") read as claims and checked.

A claim holds numerically when the level's value is above (before) or below (after) its
target's. It is *effective* only when some VMSD at that level is registered as a section of
its own: a priority on a nested VMSD never orders the stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ordering.model.priority import PriorityLevel
from ordering.model.release import Release
from ordering.model.rule import Rule

_CLAIM = re.compile(
    r"\bmust\s+(?:happen|be\s+(?:loaded|restored|migrated)|load)\s+(before|after)\s+(.+?)\s*\.?\s*$",
    re.IGNORECASE,
)


def read_claim(comment: str) -> tuple[str, str] | None:
    """``("before", "PCI devices")`` for a "Must happen before PCI devices" comment.

    >>> read_claim("Must happen before the ITS")
    ('before', 'the ITS')
    >>> read_claim("An uninitialized priority field maps to MIG_PRI_DEFAULT") is None
    True
    """
    m = _CLAIM.search(comment)
    return (m.group(1).lower(), m.group(2)) if m else None


def claim_target(target: str, names: Sequence[str]) -> str | None:
    """The level a claim's target names, among the enum's ``names``.

    "PCI devices" (any "... devices") means DEFAULT, where ordinary devices load; "the ITS"
    is the level ending in ``_ITS``.

    >>> names = ("MIG_PRI_DEFAULT", "MIG_PRI_IOMMU", "MIG_PRI_GICV3_ITS", "MIG_PRI_GICV3")
    >>> claim_target("PCI devices", names), claim_target("IOMMU", names), claim_target("the ITS", names)
    ('MIG_PRI_DEFAULT', 'MIG_PRI_IOMMU', 'MIG_PRI_GICV3_ITS')
    """
    words = re.sub(r"^(?:the|all|any)\s+", "", target.strip().rstrip("."), flags=re.IGNORECASE)
    key = re.sub(r"\W+", "_", words).strip("_").upper()
    if not key:
        return None
    if key in ("DEVICES", "DEFAULT") or key.endswith("_DEVICES"):
        return "MIG_PRI_DEFAULT" if "MIG_PRI_DEFAULT" in names else None
    if f"MIG_PRI_{key}" in names:
        return f"MIG_PRI_{key}"
    ends = [n for n in names if n.endswith(f"_{key}")]
    return ends[0] if len(ends) == 1 else None


@dataclass(frozen=True)
class Claim:
    """``level`` must load ``relation`` ``target`` according to the header comment."""

    level: PriorityLevel
    relation: str
    target_text: str
    target: PriorityLevel | None


@dataclass(frozen=True)
class ClaimCheck:
    """A claim checked against the enum values, the registrations and the rules."""

    claim: Claim
    holds: bool
    effective: bool
    sections: tuple[str, ...]
    """VMSDs at this level that order the stream."""
    nested: tuple[str, ...]
    """VMSDs at this level whose priority cannot take effect (and what they sit inside)."""
    rules: tuple[str, ...]
    """Rules whose first side is a kind with a VMSD at this level."""
    note: str


def parse_claims(release: Release) -> list[Claim]:
    """Every "Must happen before/after ..." comment of the release's enum.

    >>> from ordering.sources.models import load_knowledge
    >>> [(c.level.short, c.relation, c.target.short if c.target else None)
    ...  for c in parse_claims(load_knowledge().release("7.2"))][:2]
    [('IOMMU', 'before', 'DEFAULT'), ('PCI_BUS', 'before', 'IOMMU')]
    """
    names = tuple(lvl.name for lvl in release.scheme.levels)
    out: list[Claim] = []
    for lvl in release.scheme.levels:
        claim = read_claim(lvl.comment)
        if claim is not None:
            relation, text = claim
            target = claim_target(text, names)
            out.append(Claim(lvl, relation, text, release.scheme.level(target) if target else None))
    return out


def check_claims(release: Release, rules: Iterable[Rule]) -> list[ClaimCheck]:
    """Check every claim of the release's enum."""
    rules = list(rules)
    out: list[ClaimCheck] = []
    for claim in parse_claims(release):
        at_level = [f for f in release.vmsds.values() if f.priority == claim.level.name]
        sections = tuple(f.name for f in at_level if f.orders_stream)
        nested = tuple(f"{f.name} (inside {f.inside or '?'})" for f in at_level if not f.orders_stream)
        level_vmsds = {f.name for f in at_level}
        def side(rule: Rule, relation: str = claim.relation) -> str:
            return rule.first if relation == "before" else rule.then

        backing = tuple(
            r.id
            for r in rules
            if ((k := release.kinds.get(side(r))) is not None and level_vmsds & set(k.vmsds))
            or (side(r) == "virtio-mem-bitmap" and level_vmsds & {"virtio-mem-device", "virtio-mem-device-early"})
        )
        if claim.target is None:
            holds = False
            note = f"cannot tell which level {claim.target_text!r} means"
        elif claim.relation == "before":
            holds = claim.level.value > claim.target.value
            note = f"{claim.level.name} ({claim.level.value}) {'>' if holds else '<='} {claim.target.name} ({claim.target.value})"
        else:
            holds = claim.level.value < claim.target.value
            note = f"{claim.level.name} ({claim.level.value}) {'<' if holds else '>='} {claim.target.name} ({claim.target.value})"
        effective = bool(sections)
        if not effective and nested:
            note += "; no VMSD at this level is a section of its own, so the claim never orders the stream"
        elif not effective:
            note += "; no VMSD uses this level in this release"
        if not backing:
            note += "; no bundled rule backs it"
        out.append(ClaimCheck(claim, holds, effective, sections, nested, backing, note))
    return out
