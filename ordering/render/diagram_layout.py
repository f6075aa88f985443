"""Where the dependency diagram's boxes, arrows and key go (pure, deterministic).

Rows are priority bands (highest level at the top), columns are phases. Inside a cell, nodes
are packed left to right in registration order and wrap into rows; arrows are arcs whose bend
is chosen to cross the fewest other boxes; rule tags sit on the first free spot along their
arrow. Nothing here measures text with a renderer: labels are monospaced.
"""

from __future__ import annotations

from dataclasses import dataclass

from ordering.model.section import Phase
from ordering.render._text import (
    CYCLE_COLOR,
    VERDICT_COLORS,
    text_height,
    text_width,
    wrap,
)
from ordering.render.diagram import Diagram, Edge, Node
from ordering.render.scene import (
    Box,
    Curve,
    Label,
    Point,
    Rect,
    Scene,
    arc_control,
    bezier,
    sub_bezier,
)

NODE_SIZE = 7.0
TAG_SIZE = 6.0
KEY_SIZE = 7.0
WRAP = 22
PAD = 3.0
GAP_X = 10.0
GAP_Y = 16.0
BAND_PAD = 9.0
MARGIN = 12.0
KIND_COLORS: dict[str, str] = {
    "viommu": "#fff3b0",
    "pci-bridge": "#d9f0d3",
    "apic": "#dbe9f6",
    "vfio": "#e8dff5",
    "virtio-mem": "#f9d6d5",
    "gicv3": "#d7f2f5",
    "its": "#eadfd0",
    "vfio-container": "#f3e0ee",
    "pci": "#fde2c8",
    "other": "#e2e2e2",
}
"""One fill per device kind, the same in every picture (``pci``: other PCI devices)."""
SPARE_COLORS = ("#cfe8e0", "#f6e6c4", "#e0e4f6", "#f1dcdc", "#dcecc8", "#ece0d0")
"""Fills for kinds of a user's own (by a stable hash of the name)."""
TIE_NOTE = "ties: registration →"
"""Under a band's name when sections share a band and phase: left to right is the order."""
TIE_SIZE = 6.0
MAX_CELL = {Phase.SETUP: 260.0, Phase.ITERATE: 160.0, Phase.COMPLETE: 560.0}


@dataclass(frozen=True)
class Placed:
    """A node with its wrapped label and its box."""

    node: Node
    text: str
    box: Box


def kind_colors(kinds: set[str]) -> dict[str, str]:
    """The fill of each kind: fixed for migorder's kinds, so a kind looks the same in every
    picture whatever else is in it; a kind of a user's own gets a spare by a stable hash.

    >>> kind_colors({"apic", "other", "viommu"}) == {"apic": "#dbe9f6", "other": "#e2e2e2",
    ...                                              "viommu": "#fff3b0"}
    True
    >>> kind_colors({"vfio"})["vfio"] == kind_colors({"vfio", "apic", "its"})["vfio"]
    True
    """
    import zlib

    return {
        kind: KIND_COLORS.get(kind) or SPARE_COLORS[zlib.crc32(kind.encode()) % len(SPARE_COLORS)]
        for kind in sorted(kinds)
    }


def legend_items(kinds: set[str]) -> list[tuple[str, str]]:
    """``(kind, fill)`` for a legend: migorder's kinds first in a fixed order, ``other`` last.

    >>> legend_items({"other", "vfio", "apic"})
    [('apic', '#dbe9f6'), ('vfio', '#e8dff5'), ('other', '#e2e2e2')]
    """
    colors = kind_colors(kinds)
    order = [k for k in KIND_COLORS if k in kinds and k != "other"]
    order += sorted(k for k in kinds if k not in KIND_COLORS)
    order += ["other"] if "other" in kinds else []
    return [(k, colors[k]) for k in order]


def _size(text: str) -> tuple[float, float]:
    return text_width(text, NODE_SIZE) + 2 * PAD, text_height(text, NODE_SIZE) + 2 * PAD


def _pack(items: list[tuple[Node, str]], width: float) -> tuple[list[tuple[Node, str, float, float]], float]:
    """Rows of nodes within ``width``: (node, text, x, y-from-top) and the cell's height."""
    out: list[tuple[Node, str, float, float]] = []
    x = y = row_h = 0.0
    for node, text in items:
        w, h = _size(text)
        if x > 0 and x + w > width:
            x, y, row_h = 0.0, y + row_h + GAP_Y, 0.0
        out.append((node, text, x, y))
        x += w + GAP_X
        row_h = max(row_h, h)
    return out, (y + row_h if items else 0.0)


def layout_diagram(d: Diagram) -> Scene:
    """The diagram as a :class:`~ordering.render.scene.Scene`.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> from ordering.check import check
    >>> from ordering.render.diagram import build_diagram
    >>> from ordering.render.scene import label_overlaps
    >>> k = load_knowledge()
    >>> s = layout_diagram(build_diagram(check(k, k.release("7.2"),
    ...                                        read_scenario(k.scenarios["default"]))))
    >>> label_overlaps(s.labels)
    []
    """
    texts = {n.id: "\n".join(wrap(n.label, WRAP)) for n in d.nodes}
    cells: dict[tuple[int, Phase], list[tuple[Node, str]]] = {}
    # Registration order within a cell: it is what decides the load order between sections of
    # one band and phase (the tie), so the boxes stand in it, left to right.
    for n in sorted(d.nodes, key=lambda n: n.first_section):
        cells.setdefault((n.level.value, n.phase), []).append((n, texts[n.id]))
    tied = {lvl for (lvl, _), items in cells.items() if len(items) > 1}

    # Column widths: wide enough for the widest node, up to MAX_CELL for a crowded cell.
    col_w: dict[Phase, float] = {}
    for ph in d.phases:
        inside = [items for (_, p), items in cells.items() if p == ph]
        widest = max((_size(t)[0] for items in inside for _, t in items), default=0.0)
        fullest = max((sum(_size(t)[0] + GAP_X for _, t in items) - GAP_X for items in inside),
                      default=0.0)
        col_w[ph] = max(widest, min(fullest, MAX_CELL[ph]), text_width(ph.value, 8.5) + 8, 60.0)

    band_label = {lvl.value: f"{lvl.short} ({lvl.value})" for lvl in d.levels}
    label_w = max([*(text_width(t, 7.5) for t in band_label.values()),
                   text_width(TIE_NOTE, TIE_SIZE)]) + 2 * BAND_PAD
    col_x: dict[Phase, float] = {}
    x = MARGIN + label_w
    for ph in d.phases:
        col_x[ph] = x + BAND_PAD
        x += col_w[ph] + 2 * BAND_PAD
    content_w = x

    packed: dict[tuple[int, Phase], tuple[list[tuple[Node, str, float, float]], float]] = {
        key: _pack(items, col_w[key[1]]) for key, items in cells.items()
    }
    band_h: dict[int, float] = {}
    for lvl in d.levels:
        hs = [packed[(lvl.value, ph)][1] for ph in d.phases if (lvl.value, ph) in packed]
        head_h = text_height(band_label[lvl.value], 7.5) + (
            text_height(TIE_NOTE, TIE_SIZE) + 2 if lvl.value in tied else 0.0)
        band_h[lvl.value] = max([*hs, head_h]) + (2 * BAND_PAD if hs else 6.0)

    title_h = 16.0
    header_h = 16.0
    top = title_h + header_h + MARGIN
    bands_h = sum(band_h.values())

    # The key: verdict legend, one line per rule, cycles. Wrapped to the picture's width.
    key_w = max(content_w, 640.0)
    chars = int((key_w - 2 * MARGIN - 30) / (0.602 * KEY_SIZE))
    key_lines: list[tuple[str, str, bool]] = []  # text, colour, bold
    for r in d.rules:
        head = f"{r.tag:<3} {r.rule_id}: {r.verdict.value}" + (f" by {r.by}" if r.by else "")
        if r.instances > 1:
            head += f" ({r.instances} instances, worst shown)"
        for i, line in enumerate(wrap(f"{head} — {r.evidence}", chars)):
            key_lines.append(((" " * 4 if i else "") + line, VERDICT_COLORS[r.verdict.value],
                              False))
    for c in d.cycles:
        for i, line in enumerate(wrap(f"cycle: {c}", chars)):
            key_lines.append(((" " * 4 if i else "") + line, CYCLE_COLOR, True))
    line_h = text_height("x", KEY_SIZE)
    kinds_legend = legend_items({n.kind for n in d.nodes})
    legend_rows = _legend_rows(kinds_legend, key_w - 2 * MARGIN)
    key_h = 22.0 + 12.0 * len(legend_rows) + len(key_lines) * line_h + MARGIN
    height = top + bands_h + key_h
    width = key_w

    def y_of(from_top: float) -> float:
        return height - from_top

    rects: list[Rect] = []
    labels: list[Label] = [
        Label(MARGIN, y_of(MARGIN), d.title, 9.0, ha="left", va="top", bold=True),
    ]
    for ph in d.phases:
        labels.append(Label(col_x[ph] + col_w[ph] / 2, y_of(title_h + MARGIN + header_h / 2),
                            ph.value, 8.5, color="#333333", ha="center", va="center",
                            bold=True))
    colors = kind_colors({n.kind for n in d.nodes})
    placed: dict[str, Placed] = {}
    y = top
    for i, lvl in enumerate(d.levels):
        h = band_h[lvl.value]
        shade = "#f4f6f8" if i % 2 == 0 else "#ffffff"
        rects.append(Rect(Box(MARGIN, y_of(y + h), content_w - MARGIN, h), shade, z=0))
        label_top = y + min(BAND_PAD, h / 2 - 3.0)
        labels.append(Label(MARGIN + BAND_PAD, y_of(label_top),
                            band_label[lvl.value], 7.5, color="#444444", ha="left", va="top", bold=True))
        if lvl.value in tied:
            labels.append(Label(MARGIN + BAND_PAD, y_of(label_top + text_height("x", 7.5) + 1),
                                TIE_NOTE, TIE_SIZE, color="#666666", ha="left", va="top"))
        for ph in d.phases:
            for node, text, nx_, ny in packed.get((lvl.value, ph), ([], 0.0))[0]:
                w, bh = _size(text)
                box = Box(col_x[ph] + nx_, y_of(y + BAND_PAD + ny + bh), w, bh)
                placed[node.id] = Placed(node, text, box)
        y += h
    for ph in d.phases[1:]:
        xs = col_x[ph] - BAND_PAD
        rects.append(Rect(Box(xs - 0.4, y_of(top + bands_h), 0.8, bands_h), "#b0b7bf", z=0))

    for p in placed.values():
        # Boxes above the arrows (z 4 > 3): an arrow that must pass a row of bystanders goes
        # under them, and every label stays readable; arrows end at their boxes' edges.
        edge = CYCLE_COLOR if p.node.in_cycle else "#5f6b76"
        rects.append(Rect(p.box, colors[p.node.kind], edge, 1.6 if p.node.in_cycle else 0.6,
                          z=4))
        labels.append(Label(*p.box.center, p.text, NODE_SIZE, z=6))

    curves, tags = _route(d.edges, placed, [lb.box for lb in labels])
    labels.extend(tags)

    # Key.
    ky = top + bands_h + 12.0
    lx = MARGIN
    for verdict, color in VERDICT_COLORS.items():
        curves.append(Curve(((lx, y_of(ky)), (lx + 22, y_of(ky))), color, 1.6, arrow=True))
        labels.append(Label(lx + 26, y_of(ky), verdict, KEY_SIZE, ha="left", va="center"))
        lx += 26 + text_width(verdict, KEY_SIZE) + 16
    rects.append(Rect(Box(lx, y_of(ky) - 4, 14, 8), "#ffffff", CYCLE_COLOR, 1.6, z=2))
    labels.append(Label(lx + 18, y_of(ky), "in a cycle", KEY_SIZE, ha="left", va="center"))
    ky += 12.0
    for row in legend_rows:
        lx = MARGIN
        for kind, fill in row:
            rects.append(Rect(Box(lx, y_of(ky) - 4, 14, 8), fill, "#5f6b76", 0.6, z=2))
            labels.append(Label(lx + 18, y_of(ky), kind, KEY_SIZE, ha="left", va="center"))
            lx += 18 + text_width(kind, KEY_SIZE) + 14
        ky += 12.0
    for text, color, bold in key_lines:
        labels.append(Label(MARGIN, y_of(ky), text, KEY_SIZE, color=color, ha="left", va="top",
                            bold=bold))
        ky += line_h
    return Scene(width, height, tuple(rects), tuple(curves), tuple(labels), d.title)


def _legend_rows(items: list[tuple[str, str]], width: float) -> list[list[tuple[str, str]]]:
    """The kind legend's swatches, wrapped into rows within ``width`` (a "fill:" head first)."""
    rows: list[list[tuple[str, str]]] = [[]]
    x = 0.0
    for kind, fill in items:
        w = 18 + text_width(kind, KEY_SIZE) + 14
        if rows[-1] and x + w > width:
            rows.append([])
            x = 0.0
        rows[-1].append((kind, fill))
        x += w
    return rows if items else []


_RADS = (0.0, 0.18, -0.18, 0.32, -0.32, 0.5, -0.5)


def _hits(p0: Point, c: Point, p1: Point, boxes: list[Box]) -> int:
    n = 0
    for b in boxes:
        if any(b.contains(bezier(p0, c, p1, i / 24), 3.0) for i in range(2, 23)):
            n += 1
    return n


def _exit(p0: Point, c: Point, p1: Point, box: Box, forward: bool) -> float:
    """The parameter where the curve leaves ``box`` (from the start, or from the end)."""
    steps = 200
    rng = range(steps + 1) if forward else range(steps, -1, -1)
    for i in rng:
        if not box.contains(bezier(p0, c, p1, i / steps), 1.5):
            return i / steps
    return 0.5


def _samples(q: tuple[Point, ...], n: int = 48) -> list[Point]:
    if len(q) == 2:
        return [(q[0][0] + (q[1][0] - q[0][0]) * i / n, q[0][1] + (q[1][1] - q[0][1]) * i / n)
                for i in range(n + 1)]
    return [bezier(q[0], q[1], q[2], i / n) for i in range(n + 1)]


def _route(edges: tuple[Edge, ...], placed: dict[str, Placed],
           taken: list[Box]) -> tuple[list[Curve], list[Label]]:
    curves: list[Curve] = []
    pairs = {(e.source, e.target) for e in edges}
    for e in edges:
        a, b = placed[e.source].box, placed[e.target].box
        p0, p1 = a.center, b.center
        others = [p.box for k, p in placed.items() if k not in (e.source, e.target)]
        rads = [r for r in _RADS if r != 0.0] if (e.target, e.source) in pairs else list(_RADS)
        if abs(p0[1] - p1[1]) < 1.0 and e.source != e.target:
            # Same row: leave and enter through the tops, arcing over the row.
            p0, p1 = (p0[0], a.y + a.h), (p1[0], b.y + b.h)
            up = -1.0 if p1[0] > p0[0] else 1.0
            rads = [up * 0.45, up * 0.3, -up * 0.45]
        if e.source == e.target:
            p0, p1 = (a.x + a.w * 0.3, a.y + a.h), (a.x + a.w * 0.7, a.y + a.h)
            rads = [1.2]
        best = min(rads, key=lambda r: (_hits(p0, arc_control(p0, p1, r), p1, others), abs(r)))
        c = arc_control(p0, p1, best)
        t0 = _exit(p0, c, p1, a, True) if e.source != e.target else 0.0
        t1 = _exit(p0, c, p1, b, False) if e.source != e.target else 1.0
        q = sub_bezier(p0, c, p1, t0, max(t1, t0 + 0.01))
        color = VERDICT_COLORS[e.verdict.value]
        curves.append(Curve(q, color, 1.4 if e.in_cycle else 1.1, arrow=True,
                            dashed=e.verdict.value == "tie-fragile",
                            halo=CYCLE_COLOR if e.in_cycle else None))
    # Tags once every arrow is drawn: each on a spot along its own arrow that no box, label,
    # other tag or other arrow touches (the least crowded spot when none is free).
    samples = [_samples(c.points) for c in curves]
    boxes = [p.box for p in placed.values()]
    tags: list[Label] = []
    for n, e in enumerate(edges):
        pts = _samples(curves[n].points, 100)
        color = VERDICT_COLORS[e.verdict.value]
        tag = ",".join(e.tags) + (f" ×{e.pairs}" if e.pairs > 1 else "")
        w, h = text_width(tag, TAG_SIZE) + 2, text_height(tag, TAG_SIZE)
        cands: list[Box] = []
        for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.15, 0.85):
            px, py = pts[round(t * 100)]
            for dx, dy in ((0, 0), (0, h), (0, -h), (w * 0.6, 0), (-w * 0.6, 0), (0, 2 * h),
                           (0, -2 * h), (w, h), (-w, h), (w, -h), (-w, -h), (0, 3 * h), (0, -3 * h)):
                cands.append(Box(px + dx - w / 2, py + dy - h / 2, w, h))

        def conflicts(cand: Box, n: int = n) -> int:
            hit = sum(cand.overlaps(o, 1.0) for o in [*boxes, *taken, *(t.box for t in tags)])
            hit += sum(any(cand.contains(p, 1.0) for p in pts)
                       for m, pts in enumerate(samples) if m != n)
            return hit

        spot = min(cands, key=conflicts)
        tags.append(Label(*spot.center, tag, TAG_SIZE, color=color, background="#ffffff",
                          bold=True, z=7))
    return curves, tags
