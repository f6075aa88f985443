"""The dependency diagram as Graphviz DOT text: one cluster per band, one per phase inside.

Bands are stacked top to bottom (highest ``MIG_PRI`` first) by invisible edges between
one anchor per band; arrows carry the verdict colour and rule tags; cycle members get a
purple pen.
"""

from __future__ import annotations

from itertools import pairwise

from ordering.render._text import CYCLE_COLOR, VERDICT_COLORS
from ordering.render.diagram import Diagram
from ordering.render.diagram_layout import kind_colors


def quote(text: str) -> str:
    """A DOT double-quoted string.

    >>> quote('a "b" \\\\ c')
    '"a \\\\"b\\\\" \\\\\\\\ c"'
    """
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(d: Diagram) -> str:
    """``d`` as a DOT digraph.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> from ordering.check import check
    >>> from ordering.render.diagram import build_diagram
    >>> k = load_knowledge()
    >>> text = to_dot(build_diagram(check(k, k.release("11.1"),
    ...                                   read_scenario(k.scenarios["default"]))))
    >>> text.splitlines()[0]
    'digraph migorder {'
    """
    colors = kind_colors({n.kind for n in d.nodes})
    out = [
        "digraph migorder {",
        f"  graph [label={quote(d.title)}, labelloc=t, fontname=\"DejaVu Sans Mono\", "
        "newrank=true, rankdir=TB, nodesep=0.15, ranksep=0.35];",
        '  node [shape=box, style="filled", fontname="DejaVu Sans Mono", fontsize=9];',
        '  edge [fontname="DejaVu Sans Mono", fontsize=8];',
    ]
    anchors: list[str] = []
    for i, lvl in enumerate(d.levels):
        anchor = f"band_{i}"
        anchors.append(anchor)
        shade = "#f4f6f8" if i % 2 == 0 else "#ffffff"
        out.append(f"  subgraph cluster_{anchor} {{")
        out.append(f"    label={quote(f'{lvl.short} ({lvl.value})')}; labeljust=l; "
                   f"style=filled; fillcolor={quote(shade)}; color={quote('#b0b7bf')};")
        out.append(f"    {anchor} [label=\"\", shape=point, style=invis, width=0];")
        for ph in d.phases:
            members = [n for n in d.nodes if n.level.value == lvl.value and n.phase == ph]
            if not members:
                continue
            out.append(f"    subgraph cluster_{anchor}_{ph.value} {{")
            out.append(f"      label={quote(ph.value)}; style=dashed; color={quote('#8a939b')};")
            for n in members:
                pen = f", color={quote(CYCLE_COLOR)}, penwidth=2" if n.in_cycle else ""
                out.append(f"      {n.id} [label={quote(n.label)}, "
                           f"fillcolor={quote(colors[n.kind])}{pen}];")
            out.append("    }")
        out.append("  }")
    for a, b in pairwise(anchors):
        out.append(f"  {a} -> {b} [style=invis];")
    for e in d.edges:
        label = ",".join(e.tags) + (f" ×{e.pairs}" if e.pairs > 1 else "")
        attrs = [f"color={quote(VERDICT_COLORS[e.verdict.value])}", f"label={quote(label)}",
                 f"fontcolor={quote(VERDICT_COLORS[e.verdict.value])}",
                 f"tooltip={quote(f'{e.verdict.value} by {e.by}')}"]
        if e.verdict.value == "tie-fragile":
            attrs.append("style=dashed")
        if e.in_cycle:
            attrs.append("penwidth=2.5")
        out.append(f"  {e.source} -> {e.target} [{', '.join(attrs)}];")
    key = [f"{r.tag} {r.rule_id}: {r.verdict.value}" + (f" by {r.by}" if r.by else "")
           for r in d.rules]
    key += [f"cycle: {c}" for c in d.cycles]
    out.append(f"  key [shape=plaintext, style=\"\", label={quote(chr(10).join(key))}];")
    if anchors:
        out.append(f"  {anchors[-1]} -> key [style=invis];")
    out.append("}")
    return "\n".join(out) + "\n"
