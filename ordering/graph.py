"""Dependency graphs over kinds and over concrete sections, and their cycles.

Nodes are kinds (``viommu``) or sections (``iommu-intel``, ``apic#3``); an edge ``u → v``
means "u must load before v" and carries the ids of the rules that make it. A cycle means
the rules cannot all hold in any order; :func:`cycles` names every edge of each, as
``systemd-analyze verify`` does for ordering cycles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ordering.conditions import RuleInstance
from ordering.model.rule import Rule

if TYPE_CHECKING:  # networkx takes ~70 ms to import: only the commands that build a graph pay
    import networkx as nx


@dataclass(frozen=True)
class CycleEdge:
    """One edge of a cycle: ``before`` must load before ``after`` because of ``rules``."""

    before: str
    after: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Cycle:
    """A cycle of must-load-before edges: no load order satisfies all of them."""

    edges: tuple[CycleEdge, ...]

    def describe(self) -> str:
        """``a → b (rule) → c (rule) → a (rule)``."""
        parts = [self.edges[0].before]
        for e in self.edges:
            parts.append(f"{e.after} ({', '.join(e.rules)})")
        return " → ".join(parts)


def kind_graph(rules: Iterable[Rule]) -> nx.DiGraph:
    """The graph over selectors: an edge ``first → then`` per rule (rule ids on ``rules``).

    >>> from ordering.sources.models import load_knowledge
    >>> g = kind_graph(load_knowledge().rules)
    >>> g.has_edge("pci-bridge", "viommu")
    True
    """
    import networkx as nx

    g = nx.DiGraph()
    for rule in rules:
        if g.has_edge(rule.first, rule.then):
            g.edges[rule.first, rule.then]["rules"].append(rule.id)
        else:
            g.add_edge(rule.first, rule.then, rules=[rule.id])
    return g


def section_graph(instances: Iterable[RuleInstance]) -> nx.DiGraph:
    """The graph over concrete sections (labels) from live rule instances.

    Only sections that are both a ``first`` and a ``then`` of some instance are kept: no other
    section can lie on a cycle, and the graph exists to find cycles. Instances that share one
    tuple of firsts share one hub node (4096 APICs × 64 VFIO devices would make 4160 edges,
    not 262144). Hubs are ``("hub", n)`` tuples and vanish again in :func:`cycles`.
    """
    import networkx as nx

    g = nx.DiGraph()
    hubs: dict[tuple[str | int, ...], tuple[str, int]] = {}
    instances = list(instances)
    # Only a section that must load both before something and after something can lie on a
    # cycle: keep the edges between such sections (a 100k-section VM keeps a handful).
    befores: set[int] = set()
    seen: set[int] = set()
    for inst in instances:
        if id(inst.firsts) not in seen:  # instances share their tuple of firsts: read it once
            seen.add(id(inst.firsts))
            befores.update(f.section_id for f in inst.firsts)
    instances = [inst for inst in instances if inst.then.section_id in befores]
    both = befores & {inst.then.section_id for inst in instances}
    if not both:
        return g  # no section must load both before and after something: no cycle
    for inst in instances:
        if inst.then.section_id not in both:
            continue
        firsts = tuple(f for f in inst.firsts if f.section_id in both)
        if not firsts:
            continue
        if len(firsts) != len(inst.firsts):
            inst = RuleInstance(inst.rule, firsts, inst.then, inst.because)
        then = inst.then.label
        if len(inst.firsts) == 1:
            _add(g, inst.firsts[0].label, then, inst.rule.id)
            continue
        key: tuple[str | int, ...] = (inst.rule.id, *(f.section_id for f in inst.firsts))
        hub = hubs.get(key)
        if hub is None:
            hub = ("hub", len(hubs))
            hubs[key] = hub
            for first in inst.firsts:
                _add(g, first.label, hub, inst.rule.id)
        _add(g, hub, then, inst.rule.id)
    return g


def _add(g: nx.DiGraph, u: object, v: object, rule: str) -> None:
    if g.has_edge(u, v):
        if rule not in g.edges[u, v]["rules"]:
            g.edges[u, v]["rules"].append(rule)
    else:
        g.add_edge(u, v, rules=[rule])


def cycles(g: nx.DiGraph, *, limit: int = 50) -> list[Cycle]:
    """Every elementary cycle of ``g`` (up to ``limit``), each with all its edges named.

    Only strongly connected components are searched, so a large acyclic graph costs one
    linear pass.

    >>> import networkx as nx
    >>> g = nx.DiGraph()
    >>> g.add_edge("viommu", "pci-bridge", rules=["mine"])
    >>> g.add_edge("pci-bridge", "viommu", rules=["pci-bus-before-viommu"])
    >>> [c.describe() for c in cycles(g)]
    ['pci-bridge → viommu (pci-bus-before-viommu) → pci-bridge (mine)']
    """
    import networkx as nx

    found: list[Cycle] = []
    for component in nx.strongly_connected_components(g):
        if len(component) == 1:
            node = next(iter(component))
            if not g.has_edge(node, node):
                continue
        sub = g.subgraph(component)
        for nodes in nx.simple_cycles(sub):
            found.append(_cycle(g, nodes))
            if len(found) >= limit:
                return found
    found.sort(key=lambda c: c.describe())
    return found


def _cycle(g: nx.DiGraph, nodes: list[object]) -> Cycle:
    real = [n for n in nodes if not (isinstance(n, tuple) and n and n[0] == "hub")]
    # Rotate so the cycle starts at its smallest real node: stable output.
    start = nodes.index(min(real, key=str)) if real else 0
    ring = nodes[start:] + nodes[:start]
    edges: list[CycleEdge] = []
    pending_rules: list[str] = []
    before = ring[0]
    for i, node in enumerate(ring):
        nxt = ring[(i + 1) % len(ring)]
        pending_rules.extend(r for r in g.edges[node, nxt]["rules"] if r not in pending_rules)
        if isinstance(nxt, tuple) and nxt and nxt[0] == "hub":
            continue
        edges.append(CycleEdge(str(before), str(nxt), tuple(pending_rules)))
        pending_rules = []
        before = nxt
    return Cycle(tuple(edges))
