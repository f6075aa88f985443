"""Synthesize a priority assignment under which every rule is guaranteed, with z3's Optimize.

Every section either side of a rule may have in a release (:func:`ordering.smt.candidates`)
gets an integer priority. A rule holds for every VM when, for each pair of a ``first`` and a
``then`` section, the first loads in an earlier phase, or in the same phase at a higher
priority (a tie leaves it to registration order, which a ``-device`` reorder or a hot-plug
moves). Phases are fixed; handlers (``register_savevm_live``) and VMSDs nested in another
section cannot carry a priority of their own and stay where they are.

Existing levels sit at ``SCALE * index``; a value between two of them is a new level there.
The optimizer changes the fewest VMSDs first, then uses the fewest new levels. When no
assignment exists, the conflicting pair constraints (z3's unsat core) are given as a cycle.

Pure core: no file or process I/O, no printing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import z3

from ordering.model.priority import UNINITIALIZED
from ordering.model.release import Registration, Release
from ordering.model.rule import Rule
from ordering.smt import Candidate, candidates

__all__ = ["Assignment", "Synthesis", "synthesize"]

SCALE = 100


@dataclass(frozen=True)
class Need:
    """One pair constraint: ``first`` must load before ``then`` (for ``rule``)."""

    rule: str
    first: str
    then: str
    by: str
    """``phase`` (already guaranteed by phase), ``phase-wrong`` (the phase forbids it),
    ``priority`` (a priority order is needed)."""


@dataclass(frozen=True)
class Assignment:
    """One VMSD's priority in the solution."""

    vmsd: str
    before: str
    after: str
    """A level name, or ``NEW@A/B`` for a new level between existing A (below) and B (above)."""
    file: str
    symbol: str
    rules: tuple[str, ...]
    existing_options: tuple[str, ...] = ()
    """Every existing level this VMSD could take instead, the rest held fixed."""
    new_positions: tuple[str, ...] = ()
    """Every gap ``A < new < B`` a new level for this VMSD could sit in, the rest held fixed."""


@dataclass(frozen=True)
class Synthesis:
    """z3's answer for a release and a rule base."""

    release: str
    satisfiable: bool
    needs: tuple[Need, ...]
    changes: tuple[Assignment, ...]
    new_levels: tuple[str, ...]
    cycle: tuple[Need, ...]
    fixed: tuple[str, ...]
    """VMSDs that cannot carry a priority (handlers, nested) and why."""
    vacuous: tuple[str, ...] = ()
    """Rules left out: QEMU refuses every VM of the release where they are live."""
    notes: tuple[tuple[str, str], ...] = ()
    """(VMSD, when it exists) for candidates that exist only under a condition."""

    @property
    def already(self) -> bool:
        """Every rule is already guaranteed: nothing to change."""
        return self.satisfiable and not self.changes


def _movable(release: Release, vmsd: str) -> str:
    fact = release.vmsds.get(vmsd)
    if fact is not None and fact.registration is Registration.HANDLER:
        return "a register_savevm_live handler: no VMSD, always DEFAULT"
    return ""


def _needs(release: Release, rules: Sequence[Rule]) -> tuple[list[Need], dict[str, Candidate]]:
    needs: list[Need] = []
    cands: dict[str, Candidate] = {}
    for rule in rules:
        if rule_is_vacuous(release, rule):
            continue
        firsts, thens = candidates(release, rule.first), candidates(release, rule.then)
        for f in firsts:
            for t in thens:
                if f.vmsd == t.vmsd:
                    continue
                cands.setdefault(f.vmsd, f)
                cands.setdefault(t.vmsd, t)
                if f.phase != t.phase:
                    by = "phase" if f.phase.rank < t.phase.rank else "phase-wrong"
                else:
                    by = "priority"
                need = Need(rule.id, f.vmsd, t.vmsd, by)
                if need not in needs:
                    needs.append(need)
    return needs, cands


def rule_is_vacuous(release: Release, rule: Rule) -> bool:
    """QEMU refuses every VM of ``release`` where ``rule`` is live (or none has both sides):
    no priority needs to serve it (:func:`ordering.space.universal` says VACUOUS)."""
    from ordering.space import Outcome, universal

    return universal(release, rule).outcome is Outcome.VACUOUS


def _cycle(core: list[Need]) -> tuple[Need, ...]:
    import networkx as nx

    wrong = [n for n in core if n.by == "phase-wrong"]
    if wrong:
        return tuple(wrong[:1])
    g = nx.DiGraph()
    for n in core:
        g.add_edge(n.first, n.then, need=n)
    try:
        edges = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return tuple(core)
    return tuple(g.edges[a, b]["need"] for a, b in edges)


def synthesize(release: Release, rules: Sequence[Rule], *, timeout_ms: int = 30_000) -> Synthesis:
    """The smallest priority change that guarantees every rule on every VM of ``release``.

    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> s = synthesize(k.release("10.1"), [k.rule("apic-before-vfio")])
    >>> [(a.vmsd, a.before) for a in s.changes], s.new_levels
    ([('apic', 'MIG_PRI_DEFAULT')], ())
    >>> synthesize(k.release("10.2"), k.rules).already
    True
    """
    levels = list(release.scheme.levels)
    names = [lv.name for lv in levels]
    index = {lv.name: i for i, lv in enumerate(levels)}
    top = index["MIG_PRI_MAX"] * SCALE
    zero = index[UNINITIALIZED] * SCALE if UNINITIALIZED in index else None
    needs, cands = _needs(release, rules)
    vacuous = tuple(r.id for r in rules if rule_is_vacuous(release, r))
    notes = tuple((v, c.note) for v, c in cands.items() if c.note)
    fixed: dict[str, str] = {v: why for v in cands if (why := _movable(release, v))}
    current = {v: index[c.priority.name] * SCALE for v, c in cands.items()}
    var = {v: z3.Int(f"p[{v}]") for v in cands}

    def base_constraints(s: z3.Solver | z3.Optimize) -> None:
        for v, x in var.items():
            if v in fixed:
                s.add(x == current[v])
            else:
                s.add(x >= 0, x < top)  # from the lowest level up to, not at, MIG_PRI_MAX
                if zero is not None:  # 10.1+: save_state_priority maps 0 (UNINITIALIZED) to DEFAULT
                    s.add(x != zero)

    # (a) any answer at all: tracked constraints give an unsat core.
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    base_constraints(solver)
    tracked: dict[str, Need] = {}
    for i, n in enumerate(needs):
        if n.by == "phase":
            continue
        label = f"need{i}"
        tracked[label] = n
        expr = z3.BoolVal(False) if n.by == "phase-wrong" else var[n.first] > var[n.then]
        solver.assert_and_track(expr, z3.Bool(label))
    if solver.check() != z3.sat:
        core = [tracked[str(b)] for b in solver.unsat_core() if str(b) in tracked]
        return Synthesis(release.name, False, tuple(needs), (), (), _cycle(core),
                         tuple(f"{v}: {w}" for v, w in fixed.items()), vacuous, notes)

    # (b) fewest VMSDs changed, then fewest new levels.
    opt = z3.Optimize()
    opt.set("timeout", timeout_ms)
    base_constraints(opt)
    for n in needs:
        if n.by == "priority":
            opt.add(var[n.first] > var[n.then])
    movable = [v for v in var if v not in fixed]
    changed = [z3.If(var[v] != current[v], 1, 0) for v in movable]
    is_new = {v: var[v] % SCALE != 0 for v in movable}
    firsts = []
    for i, v in enumerate(movable):
        distinct = z3.And([var[u] != var[v] for u in movable[:i]]) if i else z3.BoolVal(True)
        firsts.append(z3.If(z3.And(is_new[v], distinct), 1, 0))
    opt.minimize(z3.Sum(changed) if changed else z3.IntVal(0))
    opt.minimize(z3.Sum(firsts) if firsts else z3.IntVal(0))
    # Then the smallest moves (deterministic: the nearest level that works).
    dist = [z3.If(var[v] >= current[v], var[v] - current[v], current[v] - var[v]) for v in movable]
    opt.minimize(z3.Sum(dist) if dist else z3.IntVal(0))
    if opt.check() != z3.sat:  # pragma: no cover - (a) said sat
        return Synthesis(release.name, False, tuple(needs), (), (), (), ())
    model = opt.model()
    value = {v: model.eval(x).as_long() for v, x in var.items()}

    def level_name(x: int) -> str:
        if x % SCALE == 0:
            return names[x // SCALE]
        return f"NEW@{names[x // SCALE]}/{names[x // SCALE + 1]}"

    def works(v: str, x: int) -> bool:
        for n in needs:
            if n.by != "priority" or v not in (n.first, n.then):
                continue
            a = x if n.first == v else value[n.first]
            b = x if n.then == v else value[n.then]
            if not a > b:
                return False
        return True

    serving: dict[str, set[str]] = {}
    for n in needs:
        if n.by == "priority":
            serving.setdefault(n.first, set()).add(n.rule)
            serving.setdefault(n.then, set()).add(n.rule)
    changes: list[Assignment] = []
    for v in movable:
        if value[v] == current[v]:
            continue
        fact = release.vmsds.get(v)
        existing = tuple(names[i] for i in range(1, index["MIG_PRI_MAX"]) if works(v, i * SCALE))
        gaps = tuple(f"{names[i]} < new < {names[i + 1]}" for i in range(index["MIG_PRI_MAX"])
                     if works(v, i * SCALE + SCALE // 2))
        changes.append(Assignment(
            v, cands[v].priority.name, level_name(value[v]), fact.file if fact else "", fact.symbol if fact else "",
            tuple(sorted(serving.get(v, ()))), existing, gaps))
    new_levels = tuple(sorted({a.after for a in changes if a.after.startswith("NEW@")}))
    return Synthesis(release.name, True, tuple(needs), tuple(changes), new_levels, (),
                     tuple(f"{v}: {w}" for v, w in fixed.items()), vacuous, notes)
