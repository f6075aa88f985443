"""Every registration order of a tiny space, tried one by one: the reference engine.

It walks every linear extension of the stage forests (:func:`networkx.all_topological_sorts`)
and every choice of at most ``bound`` devices to unplug and replug last, sorts each by QEMU's
key and checks every live instance. Exponential: for spaces of a handful of sections, where
the graph and z3 engines are held to its answers.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations, permutations

import networkx as nx

from ordering.engines.graph import Witness, combine, verdict_of
from ordering.engines.slots import SpaceModel, space_models
from ordering.model.rule import Rule
from ordering.space import OrderSpace, Outcome, SpaceVerdict

MAX_ORDERS = 200_000
"""Past this many registration orders the enumeration stops: UNKNOWN."""


class _Exhausted(Exception):
    """The enumeration reached its limit."""


def registration_dag(model: SpaceModel) -> nx.DiGraph:
    """The must-register-before graph: forest edges, and every stage before the next."""
    g = nx.DiGraph()
    g.add_nodes_from(range(len(model.slots)))
    for i, s in enumerate(model.slots):
        if s.parent >= 0:
            g.add_edge(s.parent, i)
        for j, t in enumerate(model.slots):
            if s.stage < t.stage:
                g.add_edge(i, j)
    return g


def _descendants(model: SpaceModel, owner: str) -> set[int]:
    """Sections behind ``owner``'s device in its stage forest (other owners): unplugged with it."""
    out: set[int] = set()
    for i, s in enumerate(model.slots):
        node = s.parent
        while node >= 0:
            p = model.slots[node]
            if p.owner == owner and s.owner != owner:
                out.add(i)
                break
            if node in out:
                out.add(i)
                break
            node = p.parent
    return out


def find_witness(model: SpaceModel, *, limit: int = MAX_ORDERS) -> tuple[Witness | None, int]:
    """A violating (first, then) pair over every order of ``model``, and how many orders
    were tried (:class:`_Exhausted` past ``limit``).

    >>> from ordering.engines.slots import Slot, Instance
    >>> from ordering.model.section import Phase
    >>> a = Slot("apic", "apic", "cpu0", Phase.COMPLETE, 2, "MIG_PRI_DEFAULT", 1, -1)
    >>> v = a._replace(label="vfio", owner="nic0")
    >>> w, tried = find_witness(SpaceModel((a, v), (Instance((0,), 1),), 0, ""))
    >>> (w.first, w.then, tried >= 1)
    (0, 1, True)
    """
    slots = model.slots
    g = registration_dag(model)
    mobile = sorted({s.owner for s in slots if s.mobile})
    tried = 0
    for k in range(min(model.bound, len(mobile)) + 1):
        for moved in combinations(mobile, k):
            gone: set[int] = set()
            for o in moved:
                gone |= _descendants(model, o)
            last = [[i for i, s in enumerate(slots) if s.owner == o and i not in gone] for o in moved]
            for base in nx.all_topological_sorts(g):
                stay = [i for i in base if i not in gone and slots[i].owner not in moved]
                for perm in permutations(last):
                    tried += 1
                    if tried > limit:
                        raise _Exhausted(tried)
                    reg = stay + [i for group in perm for i in group]
                    w = _check(model, reg, moved)
                    if w is not None:
                        return w, tried
    return None, tried


def _check(model: SpaceModel, reg: list[int], moved: tuple[str, ...]) -> Witness | None:
    slots = model.slots
    pos = {i: n for n, i in enumerate(reg)}
    loads = {i: (*slots[i].key, pos[i]) for i in reg}
    for inst in model.instances:
        t = inst.then
        if t not in loads:
            continue
        for f in inst.firsts:
            if f == t or f not in loads:
                continue
            if slots[t].threaded:
                return Witness(f, t, "concurrency")
            if loads[f] > loads[t]:
                fs, ts = slots[f], slots[t]
                by = "phase" if fs.phase != ts.phase else "priority" if fs.priority != ts.priority else "registration"
                return Witness(f, t, by, moved=fs.owner in moved and by == "registration")
    return None


def brute_engine(space: OrderSpace, rule: Rule, *, bound: int | None = None, limit: int = MAX_ORDERS) -> SpaceVerdict:
    """Every order of a small ``space``, one at a time (UNKNOWN past ``limit`` orders)."""
    if bound is not None:
        space = replace(space, hotplug_bound=bound)
    out = []
    for model in space_models(space, rule):
        try:
            w, tried = find_witness(model, limit=limit)
        except _Exhausted:
            out.append(
                SpaceVerdict(
                    rule.id, Outcome.UNKNOWN, "brute", model.space,
                    f"stopped after {limit} registration orders",
                    provenance=rule.provenance, covered={"orders": limit},
                )
            )
            continue
        out.append(verdict_of(model, rule, w, tried, "brute"))
    return combine(space, out)
