"""Baseline against proposed: what a MIG_PRI change fixes and breaks.

:func:`compare` takes two releases (the base and the patched one) and judges both the same
way: every rule's universal verdict (:func:`ordering.space.universal`, over every VM) and its
verdict on each scenario (``check``'s words), the sections each scenario loads elsewhere, the
enum before and after (renumbering is harmless: a priority never travels on the wire), the
enum's comment claims and priorities that cannot take effect, and both cross-version
directions. Pure core: no file or process I/O, no printing (:mod:`ordering.verify_report`
formats).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ordering.check import check
from ordering.claims import check_claims
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.model.vm import Vm
from ordering.space import Outcome, SpaceVerdict, universal
from ordering.verdict import Verdict, worst

__all__ = ["Comparison", "Moved", "RuleChange", "compare", "universal_word"]

_SEVERITY = {"not-live": 0, "guaranteed": 1, "tie-fragile": 2, "violated": 3, "unknown": 4}


def universal_word(v: SpaceVerdict) -> str:
    """A universal verdict in ``check``'s words: proved is ``guaranteed``, a counterexample
    that only a registration tie allows is ``tie-fragile``, any other ``violated``; vacuous
    is ``not-live``; z3's unknown stays ``unknown``."""
    if v.outcome is Outcome.PROVED:
        return Verdict.GUARANTEED.value
    if v.outcome is Outcome.VACUOUS:
        return Verdict.NOT_LIVE.value
    if v.outcome is Outcome.UNKNOWN:
        return "unknown"
    return Verdict.TIE_FRAGILE.value if v.reason.startswith("tie at") else Verdict.VIOLATED.value


@dataclass(frozen=True)
class RuleChange:
    """One rule in one scope (``universal`` or a scenario), before and after."""

    rule: str
    scope: str
    before: str
    after: str
    evidence_before: str
    evidence_after: str

    @property
    def delta(self) -> int:
        """Negative when better, positive when worse (by ``check``'s severity)."""
        return _SEVERITY[self.after] - _SEVERITY[self.before]


@dataclass(frozen=True)
class Moved:
    """A section whose priority changed, and so loads at another position, in one scenario
    (the sections it overtakes shift with it and are not listed)."""

    scenario: str
    section: str
    before: int
    after: int
    priority_before: str
    priority_after: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """Everything ``migorder verify`` reports, with its evidence."""

    base: Release
    after: Release
    enum_before: tuple[tuple[str, int, str], ...]
    enum_after: tuple[tuple[str, int, str], ...]
    renumbered: tuple[tuple[str, int, int], ...]
    aliases: tuple[tuple[str, ...], ...]
    rules: tuple[RuleChange, ...]
    moved: tuple[Moved, ...]
    lint: tuple[str, ...]
    cross_version: tuple[str, ...]
    early_changes: tuple[str, ...]

    @property
    def better(self) -> bool:
        """Some rule improves somewhere."""
        return any(r.delta < 0 for r in self.rules)

    @property
    def worse(self) -> bool:
        """Some rule gets worse somewhere."""
        return any(r.delta > 0 for r in self.rules)

    @property
    def unknown(self) -> bool:
        """Some verdict is z3's unknown."""
        return any("unknown" in (r.before, r.after) for r in self.rules)


def _enum(release: Release) -> tuple[tuple[str, int, str], ...]:
    return tuple((lv.name, lv.value, lv.comment) for lv in release.scheme.levels)


def _aliases(base: Release, after: Release) -> tuple[tuple[str, ...], ...]:
    by_value: dict[int, list[str]] = {}
    for lv in after.scheme.levels:
        by_value.setdefault(lv.value, []).append(lv.name)
    return tuple(tuple(names) for names in by_value.values() if len(names) > 1)


def _lint(base: Release, after: Release, k: Knowledge) -> list[str]:
    out: list[str] = []
    for name, fact in after.vmsds.items():
        old = base.vmsds.get(name)
        if fact.priority and not fact.orders_stream and (old is None or old.priority != fact.priority):
            out.append(
                f"{fact.file}: .priority = {fact.priority} on VMSD '{name}' cannot take effect: it is "
                f"only nested inside '{fact.inside or '?'}', whose own priority orders the stream"
            )
    before = {(c.claim.level.name, c.claim.relation, c.claim.target_text): c for c in check_claims(base, k.rules)}
    after_claims = check_claims(after, k.rules)
    kept = {(c.claim.level.name, c.claim.relation, c.claim.target_text) for c in after_claims}
    for key, c in before.items():
        if key not in kept:
            out.append(f"claim gone: {c.claim.level.name} \"Must happen {c.claim.relation} {c.claim.target_text}\" "
                       "is no longer in the enum's comments")
    for c in after_claims:
        key = (c.claim.level.name, c.claim.relation, c.claim.target_text)
        prev = before.get(key)
        state = "holds" if c.holds and c.effective else "holds numerically only" if c.holds else "is false"
        if prev is None:
            out.append(f"new claim: {c.claim.level.name} \"Must happen {c.claim.relation} "
                       f"{c.claim.target_text}\" {state}: {c.note}")
        elif (prev.holds, prev.effective) != (c.holds, c.effective):
            was = "held" if prev.holds and prev.effective else "held numerically only" if prev.holds else "was false"
            out.append(f"claim {c.claim.level.name} \"Must happen {c.claim.relation} {c.claim.target_text}\" "
                       f"{was}, now {state}: {c.note}")
    return out


def _scenario_rules(k: Knowledge, base: Release, after: Release, name: str, vm: Vm) -> tuple[list[RuleChange], list[Moved]]:
    rb, ra = check(k, base, vm), check(k, after, vm)
    changes: list[RuleChange] = []
    touches: dict[str, set[str]] = {}
    for v in (*rb.verdicts, *ra.verdicts):
        if v.first is not None and v.then is not None:
            for p in (v.first, v.then):
                touches.setdefault(p.section.label, set()).add(v.rule.id)
    for rule in k.rules:
        vb = [v for v in rb.verdicts if v.rule.id == rule.id]
        va = [v for v in ra.verdicts if v.rule.id == rule.id]
        wb, wa = worst(vb), worst(va)

        def ev(vs: Sequence[object], w: Verdict) -> str:
            for v in vs:
                if getattr(v, "verdict", None) is w and getattr(v, "evidence", None) is not None:
                    return str(v.evidence.describe())  # type: ignore[attr-defined]
            return ""

        changes.append(RuleChange(rule.id, name, wb.value, wa.value, ev(vb, wb), ev(va, wa)))
    pos_b = {s.section.label: (i, s.section.priority.name) for i, s in enumerate(rb.order.full)}
    pos_a = {s.section.label: (i, s.section.priority.name) for i, s in enumerate(ra.order.full)}
    moved = [
        Moved(name, label, pos_b[label][0], pos_a[label][0], pos_b[label][1], pos_a[label][1],
              tuple(sorted(touches.get(label, ()))))
        for label in pos_a
        if label in pos_b and pos_b[label][0] != pos_a[label][0] and pos_b[label][1] != pos_a[label][1]
    ]
    return changes, moved


def compare(
    k: Knowledge,
    base: Release,
    after: Release,
    scenarios: Sequence[tuple[str, Vm]],
    *,
    timeout_ms: int | None = None,
) -> Comparison:
    """Judge ``base`` and ``after`` alike and say what changed.

    >>> from dataclasses import replace
    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> c = compare(k, k.release("10.1"), k.release("10.2"), [])
    >>> [(r.before, r.after) for r in c.rules if r.rule == "apic-before-vfio"]
    [('tie-fragile', 'guaranteed')]
    """
    rules: list[RuleChange] = []
    univ_after: dict[str, SpaceVerdict] = {}
    univ_before: dict[str, SpaceVerdict] = {}
    for rule in k.rules:
        vb, va = universal(base, rule, timeout_ms=timeout_ms), universal(after, rule, timeout_ms=timeout_ms)
        univ_before[rule.id], univ_after[rule.id] = vb, va
        rules.append(RuleChange(rule.id, "universal", universal_word(vb), universal_word(va), vb.reason, va.reason))
    moved: list[Moved] = []
    for name, vm in scenarios:
        ch, mv = _scenario_rules(k, base, after, name, vm)
        rules.extend(ch)
        moved.extend(mv)
    renumbered = tuple(
        (lv.name, base.scheme.level(lv.name).value, lv.value)
        for lv in after.scheme.levels
        if base.scheme.has(lv.name) and base.scheme.level(lv.name).value != lv.value
    )
    cross: list[str] = []
    for rule in k.rules:
        b, a = universal_word(univ_before[rule.id]), universal_word(univ_after[rule.id])
        if a == b:
            continue
        cross.append(
            f"{rule.id}: patched source -> unpatched destination: {a} (the patched source's order; "
            f"the destination loads in stream order); unpatched source -> patched destination: {b} "
            f"(still: {univ_before[rule.id].reason})"
        )
    early = tuple(
        f"VMSD '{n}': {base.vmsds[n].registration.value} -> {f.registration.value}"
        for n, f in after.vmsds.items()
        if n in base.vmsds and base.vmsds[n].registration != f.registration
    )
    for e in early:
        cross.append(f"{e}: the stream itself changes (a section moves between phases); an unpatched "
                     "destination must accept it where the patched source sends it")
    return Comparison(
        base=base,
        after=after,
        enum_before=_enum(base),
        enum_after=_enum(after),
        renumbered=renumbered,
        aliases=_aliases(base, after),
        rules=tuple(rules),
        moved=tuple(moved),
        lint=tuple(_lint(base, after, k)),
        cross_version=tuple(cross),
        early_changes=early,
    )


def summary(c: Comparison | None, unjudged: bool) -> str:
    """BETTER, NO CHANGE, WORSE or UNJUDGED (unjudged hunks or z3 unknowns come first, then
    any rule that gets worse anywhere).

    >>> summary(None, True)
    'UNJUDGED'
    """
    if c is None or unjudged or c.unknown:
        return "UNJUDGED"
    if c.worse:
        return "WORSE"
    return "BETTER" if c.better else "NO CHANGE"
