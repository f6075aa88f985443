"""``migorder explore``'s output: one outcome per rule and per simulator failure class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ordering.space import OrderSpace, Outcome, SpaceVerdict

_ORDER = {Outcome.COUNTEREXAMPLE: 0, Outcome.UNKNOWN: 1, Outcome.PROVED: 2, Outcome.VACUOUS: 3}


def explore_text(space: OrderSpace, verdicts: Sequence[SpaceVerdict], seconds: float) -> str:
    """Counterexamples first (steps, the order as a diff from QEMU's default, the trace), then
    unknowns, proofs and vacuous rules, one line each.

    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> space = OrderSpace(k.release("10.2"), k.release("10.2"))
    >>> v = SpaceVerdict("r", Outcome.PROVED, "explicit", "the space", "3 orders, no a after b")
    >>> print(explore_text(space, [v], 0.5))
    migorder explore: every VM of QEMU 10.2, any registration order
    explicit engine, 0.5 s: 0 counterexample(s), 0 unknown
    <BLANKLINE>
    PROVED r: 3 orders, no a after b
    """
    engines = ", ".join(sorted({v.engine for v in verdicts})) or "no"
    bad = sum(1 for v in verdicts if v.outcome is Outcome.COUNTEREXAMPLE)
    unknown = sum(1 for v in verdicts if v.outcome is Outcome.UNKNOWN)
    lines = [
        f"migorder explore: {space.describe()}",
        f"{engines} engine, {seconds:.1f} s: {bad} counterexample(s), {unknown} unknown",
        "",
    ]
    for v in sorted(verdicts, key=lambda v: _ORDER[v.outcome]):
        lines.append(f"{v.outcome.value.upper()} {v.subject}: {v.reason}")
        if v.outcome is Outcome.UNKNOWN:
            lines.append(f"  covered: {v.space}")
        if v.outcome is not Outcome.COUNTEREXAMPLE:
            continue
        lines.append("  steps:")
        lines += [f"    {i}. {s}" for i, s in enumerate(v.steps, 1)]
        if v.order:
            lines.append("  order (diff from QEMU's default order):")
            lines += [f"    {o}" for o in v.order]
        if v.trace:
            lines.append("  simulator:")
            lines += [f"    {t}" for t in v.trace]
        if v.provenance:
            lines.append(f"  source: {'; '.join(v.provenance)}")
    return "\n".join(lines)


def explore_dict(space: OrderSpace, verdicts: Sequence[SpaceVerdict], seconds: float) -> dict[str, Any]:
    """JSON-ready: the space, then ``results: [{rule, outcome, engine, space, steps, order,
    trace, ...}]``."""
    return {
        "space": space.describe(),
        "source_release": space.source.name,
        "destination_release": space.destination.name,
        "chain": [r.name for r in space.chain],
        "seconds": round(seconds, 3),
        "results": [
            {
                "rule": v.subject,
                "outcome": v.outcome.value,
                "engine": v.engine,
                "space": v.space,
                "reason": v.reason,
                "steps": list(v.steps),
                "order": list(v.order),
                "trace": list(v.trace),
                "covered": v.covered,
                "provenance": list(v.provenance),
            }
            for v in verdicts
        ],
    }
