"""The enum's own comments ("Must happen before PCI devices") read as claims and checked.

A claim holds numerically when the level's value is above (before) or below (after) its
target's. It is *effective* only when some VMSD at that level is registered as a section of
its own: a priority on a nested VMSD never orders the stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ordering.model.priority import DEFAULT, PriorityLevel
from ordering.model.release import Release
from ordering.model.rule import Rule

_CLAIM = re.compile(r"must happen (?P<rel>before|after) (?P<target>.+?)\s*\.?\s*$", re.IGNORECASE)


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


def _target(text: str, release: Release) -> PriorityLevel | None:
    t = text.lower()
    if "pci device" in t or t in ("default", "default priority"):
        return release.scheme.level(DEFAULT)
    words = re.findall(r"[a-z0-9_]+", t)
    for lvl in release.scheme.usable:
        if lvl.short.lower() in words:
            return lvl
    for lvl in release.scheme.usable:
        # "the ITS" names MIG_PRI_GICV3_ITS
        if any(w and lvl.short.lower().endswith("_" + w) for w in words):
            return lvl
    return None


def parse_claims(release: Release) -> list[Claim]:
    """Every "Must happen before/after ..." comment of the release's enum.

    >>> from ordering.sources.models import load_knowledge
    >>> [(c.level.short, c.relation, c.target.short if c.target else None)
    ...  for c in parse_claims(load_knowledge().release("7.2"))][:2]
    [('IOMMU', 'before', 'DEFAULT'), ('PCI_BUS', 'before', 'IOMMU')]
    """
    out: list[Claim] = []
    for lvl in release.scheme.levels:
        m = _CLAIM.search(lvl.comment)
        if m:
            out.append(Claim(lvl, m.group("rel").lower(), m.group("target"), _target(m.group("target"), release)))
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
