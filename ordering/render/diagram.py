"""The dependency diagram's content: bands, grouped nodes, rule arrows, cycles (pure).

A :class:`Diagram` says *what* to draw for one :class:`~ordering.check.CheckResult`; the
layout (:mod:`ordering.render.layout`) says where, and the renderers (matplotlib, DOT,
ASCII) only draw. Nodes sit in a band per ``MIG_PRI`` level of the release (highest first)
and a column per phase; sections of one device type in one cell are grouped into one node
with a count (``apic ×4096``) once there are ``group_at`` of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ordering.check import CheckResult
from ordering.model.priority import PriorityLevel
from ordering.model.section import Phase, Section
from ordering.render._text import base_name
from ordering.verdict import Placement, Verdict, placements

PHASES: tuple[Phase, ...] = (Phase.SETUP, Phase.ITERATE, Phase.COMPLETE)


@dataclass(frozen=True)
class Node:
    """One box: a section, or ``count`` sections of one device type in one band and phase."""

    id: str
    label: str
    kind: str
    phase: Phase
    level: PriorityLevel
    count: int
    first_section: int
    """The lowest section_id in the node: orders nodes within a cell (registration order)."""
    in_cycle: bool = False


@dataclass(frozen=True)
class Edge:
    """An arrow ``source → target`` (node ids): some rule wants source loaded first."""

    source: str
    target: str
    verdict: Verdict
    by: str
    tags: tuple[str, ...]
    """Rule tags (``R1``) of the rules behind the arrow."""
    pairs: int
    """How many (first, then) section pairs the arrow stands for."""
    in_cycle: bool = False


@dataclass(frozen=True)
class RuleLine:
    """A rule as the diagram's key lists it: its tag, worst verdict and one line of evidence."""

    tag: str
    rule_id: str
    verdict: Verdict
    by: str
    instances: int
    evidence: str


@dataclass(frozen=True)
class Diagram:
    """Everything the dependency diagram shows, ready for a layout."""

    title: str
    levels: tuple[PriorityLevel, ...]
    """The release's usable MIG_PRI levels, highest first: one band each."""
    phases: tuple[Phase, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    rules: tuple[RuleLine, ...]
    cycles: tuple[str, ...]
    """Each cycle (section and kind level) in words."""

    def node(self, node_id: str) -> Node:
        """The node with id ``node_id``."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


def pair_verdict(first: Placement, then: Placement) -> tuple[Verdict, str]:
    """How one (first, then) pair of an instance fares, for colouring its own arrow.

    The check judges an instance by its worst first; a diagram that groups sections draws
    the other firsts too, each by where it loads: late is violated, a tie in phase and
    priority is tie-fragile, else guaranteed by the phase or the priority.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order import derive
    >>> k = load_knowledge()
    >>> where = placements(derive(k.release("11.1"), parse_command_line("-machine q35 -smp 2")))
    >>> apic0, apic1 = (p for p in where.values() if p.section.kind == "apic")
    >>> pair_verdict(apic0, apic1)
    (<Verdict.TIE_FRAGILE: 'tie-fragile'>, 'registration')
    """
    if first.phase != then.phase:
        by = "phase"
    elif first.section.priority.value != then.section.priority.value:
        by = "priority"
    else:
        by = "registration"
    if first.position > then.position:
        return Verdict.VIOLATED, by
    return (Verdict.TIE_FRAGILE if by == "registration" else Verdict.GUARANTEED), by


def _group_key(p: Placement) -> tuple[int, int, str, str]:
    s = p.section
    return (PHASES.index(p.phase), -s.priority.value, s.kind, base_name(s.idstr))


def build_diagram(result: CheckResult, *, group_at: int = 3, title: str = "") -> Diagram:
    """The diagram of ``result``: one node per section, or per group of ``group_at`` or more
    sections of one type in one band and phase.

    Parameters
    ----------
    result
        A check of one VM on one release.
    group_at
        The group size from which sections of one type are drawn as one node with a count.
    title
        The picture's title (default: VM name, release and machine type).

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> from ordering.check import check
    >>> k = load_knowledge()
    >>> d = build_diagram(check(k, k.release("11.1"), read_scenario(k.scenarios["default"])))
    >>> [n.label for n in d.nodes if n.kind == "apic"]
    ['apic ×4']
    >>> [lvl.short for lvl in d.levels][:3]
    ['GICV3', 'GICV3_ITS', 'APIC']
    """
    release = result.release
    where = placements(result.order)
    groups: dict[tuple[int, int, str, str], list[Placement]] = defaultdict(list)
    for p in sorted(where.values(), key=lambda p: p.section.section_id):
        groups[_group_key(p)].append(p)

    node_of: dict[int, str] = {}
    raw: list[tuple[tuple[int, int, int], str, Section, int, Phase]] = []
    for key, members in groups.items():
        if len(members) >= group_at:
            first = members[0]
            label = f"{key[3]} ×{len(members)}"
            raw.append(((key[0], key[1], first.section.section_id), label, first.section,
                        len(members), first.phase))
            for m in members:
                node_of[m.section.section_id] = f"s{first.section.section_id}"
        else:
            for m in members:
                raw.append(((key[0], key[1], m.section.section_id), m.section.label, m.section,
                            1, m.phase))
                node_of[m.section.section_id] = f"s{m.section.section_id}"

    # Rule tags in rules.toml order; arrows aggregated per (node, node).
    tags = {rule.id: f"R{i + 1}" for i, rule in enumerate(dict.fromkeys(
        v.rule for v in result.verdicts))}
    agg: dict[tuple[str, str], list[tuple[Verdict, str, str]]] = defaultdict(list)
    for v in result.verdicts:
        if v.instance is None:
            continue
        then = where.get(v.instance.then.section_id)
        if then is None:
            continue
        for f in v.instance.firsts:
            pf = where.get(f.section_id)
            if pf is None:
                continue
            if v.evidence is not None and v.evidence.first.section.section_id == f.section_id:
                verdict, by = v.verdict, v.by  # the engine's own word on the decisive pair
            else:
                verdict, by = pair_verdict(pf, then)
            agg[node_of[f.section_id], node_of[then.section.section_id]].append(
                (verdict, by, tags[v.rule.id]))

    cycle_pairs: set[tuple[str, str]] = set()
    cycle_text: list[str] = []
    by_label = {p.section.label: p.section.section_id for p in where.values()}
    for c in result.section_cycles:
        cycle_text.append(c.describe())
        for e in c.edges:
            if e.before in by_label and e.after in by_label:
                cycle_pairs.add((node_of[by_label[e.before]], node_of[by_label[e.after]]))
    cycle_text.extend(f"kinds: {c.describe()}" for c in result.kind_cycles)
    cycle_nodes = {n for pair in cycle_pairs for n in pair}

    nodes = tuple(
        Node(f"s{s.section_id}", label, s.kind, phase, s.priority, count, s.section_id,
             f"s{s.section_id}" in cycle_nodes)
        for _, label, s, count, phase in sorted(raw, key=lambda r: r[0])
    )
    edges: list[Edge] = []
    def edge_order(kv: tuple[tuple[str, str], list[tuple[Verdict, str, str]]]) -> tuple[int, ...]:
        (src, dst), found = kv
        return (min(int(t[2][1:]) for t in found), int(src[1:]), int(dst[1:]))

    for (src, dst), found in sorted(agg.items(), key=edge_order):
        worst_v, worst_by, _ = max(found, key=lambda t: (t[0].severity, t[1]))
        edge_tags = tuple(sorted({t for _, _, t in found}, key=lambda t: int(t[1:])))
        edges.append(Edge(src, dst, worst_v, worst_by, edge_tags, len(found),
                          (src, dst) in cycle_pairs))

    rule_lines: list[RuleLine] = []
    for rule_id, tag in tags.items():
        vs = [v for v in result.verdicts if v.rule.id == rule_id]
        worst_rv = max(vs, key=lambda v: v.verdict.severity)
        live = [v for v in vs if v.instance is not None]
        if worst_rv.evidence is None:
            evidence = f"no {worst_rv.rule.first} → {worst_rv.rule.then} pair in this VM"
        else:
            evidence = worst_rv.evidence.describe()
        rule_lines.append(RuleLine(tag, rule_id, worst_rv.verdict, worst_rv.by, len(live),
                                   evidence))

    levels = tuple(sorted(release.scheme.usable, key=lambda lvl: -lvl.value))
    vm = result.vm
    default_title = (f"{vm.name}: load-order dependencies on QEMU {release.name} "
                     f"({result.order.machine_type})")
    return Diagram(title or default_title, levels, PHASES, nodes, tuple(edges),
                   tuple(rule_lines), tuple(cycle_text))
