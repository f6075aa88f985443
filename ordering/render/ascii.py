"""Plain-ASCII renderings that fit an 80-column mail: the diagram, the timeline, the history.

Only ASCII characters (``x4096``, ``->``), no line longer than :data:`WIDTH`.
"""

from __future__ import annotations

from ordering.render._text import VERDICT_MARKS, ascii_only
from ordering.render.diagram import Diagram
from ordering.render.timeline import Timeline

WIDTH = 78


def _words(text: str, width: int) -> list[str]:
    """``text`` wrapped at spaces only: an identifier (``0000:00:01.0:00.0/vfio``) is never
    split, even when it is longer than ``width`` (it then stands on a line of its own).

    >>> _words("0000:00:03.0:00.0/virtio-mem-device-early loads first", 20)
    ['0000:00:03.0:00.0/virtio-mem-device-early', 'loads first']
    """
    import textwrap

    return textwrap.wrap(text, max(width, 1), break_long_words=False, break_on_hyphens=False) or [""]


def _fill(head: str, items: list[str], width: int = WIDTH) -> list[str]:
    """``head`` then ``items`` joined by two spaces, wrapped with a hanging indent at spaces
    only (identifiers stay whole).

    >>> _fill("IOMMU (3)  ", ["iommu-intel", "apic x4"], 30)
    ['IOMMU (3)  iommu-intel', '           apic x4']
    """
    lines: list[str] = []
    cur = head
    indent = " " * len(head)
    for item in items:
        for piece in _words(item, width - len(indent)):
            sep = "" if cur in (head, indent) else "  "
            if len(cur) + len(sep) + len(piece) > width and cur not in (head, indent):
                lines.append(cur.rstrip())
                cur = indent
                sep = ""
            cur += sep + piece
    lines.append(cur.rstrip())
    return lines


def diagram_ascii(d: Diagram) -> str:
    """``d`` as text: one paragraph per phase, one line group per band, then the arrows.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> from ordering.check import check
    >>> from ordering.render.diagram import build_diagram
    >>> k = load_knowledge()
    >>> text = diagram_ascii(build_diagram(check(k, k.release("11.1"),
    ...                                          read_scenario(k.scenarios["default"]))))
    >>> max(len(line) for line in text.splitlines()) <= 80
    True
    """
    lines: list[str] = []
    lines.extend(_words(ascii_only(d.title), WIDTH))
    lines.append("=" * min(WIDTH, max(len(line) for line in lines)))
    names = {n.id: ascii_only(n.label) for n in d.nodes}
    head_w = max(len(f"{lvl.short} ({lvl.value})") for lvl in d.levels) + 2
    for ph in d.phases:
        members = [n for n in d.nodes if n.phase == ph]
        if not members:
            continue
        lines.append("")
        lines.append(f"[{ph.value} phase]  (MIG_PRI bands, high to low; [*] in a cycle)")
        for lvl in d.levels:
            band = [names[n.id] + (" [*]" if n.in_cycle else "") for n in members
                    if n.level.value == lvl.value]
            if not band and ph.value != "complete":
                continue
            head = f"  {lvl.short} ({lvl.value})".ljust(head_w + 2)
            lines.extend(_fill(head, band or ["."]))
    lines.append("")
    lines.append("Must load before (first -> then):")
    for e in d.edges:
        mark = VERDICT_MARKS[e.verdict.value]
        tag = ",".join(e.tags) + (f" x{e.pairs}" if e.pairs > 1 else "")
        cyc = " [cycle]" if e.in_cycle else ""
        text = (f"{names[e.source]} -> {names[e.target]}  {e.verdict.value} by {e.by}{cyc}")
        lines.extend(_fill(f"  {mark:<3} {tag:<8} ", [text]))
    lines.append("")
    lines.append("Rules:")
    for r in d.rules:
        verdict = r.verdict.value + (f" by {r.by}" if r.by else "")
        lines.extend(_fill(f"  {r.tag:<3} ", [f"{r.rule_id}: {verdict}",
                                              ascii_only(f"- {r.evidence}")]))
    for c in d.cycles:
        lines.extend(_fill("  CYCLE ", [ascii_only(c)]))
    lines.append("")
    lines.append("  ok = guaranteed, TIE = tie-fragile (registration order decides),")
    lines.append("  BAD = violated, -- = not live in this VM")
    return "\n".join(lines) + "\n"


def timeline_ascii(t: Timeline) -> str:
    """The timeline as text: one row per bar, its phase, lane and type, marks and links.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> from ordering.check import check
    >>> from ordering.render.timeline import build_timeline
    >>> k = load_knowledge()
    >>> r = check(k, k.release("11.1"), read_scenario(k.scenarios["default"]))
    >>> text = timeline_ascii(build_timeline(r.order, result=r))
    >>> max(len(line) for line in text.splitlines()) <= 80
    True
    """
    lines = list(_words(ascii_only(t.title), WIDTH))
    lines.append("=" * min(WIDTH, max(len(line) for line in lines)))
    marks: dict[int, list[str]] = {}
    for m in t.marks:
        marks.setdefault(m.at, []).append(f"<-{m.tag}")
        if m.needs is not None:
            marks.setdefault(m.needs, []).append(f"{m.tag}->")
    pri_w = max(len(lvl.short) for lvl in t.levels)
    lines.append(f"  {'#':>4}  {'phase':<8} {'priority':<{pri_w}}  {'type':<5}  section")
    for i, b in enumerate(t.bars):
        tail = ("  " + " ".join(marks[i])) if i in marks else ""
        head = f"  {i:>4}  {b.phase.value:<8} {b.level.short:<{pri_w}}  {b.type:<5}  "
        lines.extend(_fill(head, [ascii_only(b.label) + tail]))
    if t.note or t.marks:
        lines.append("")
    for line in _words(ascii_only(t.note), WIDTH - 2) if t.note else []:
        lines.append("  " + line)
    for m in t.marks:
        lines.extend(_fill(f"  {m.tag:<4}", [ascii_only(m.text)]))
    return "\n".join(lines) + "\n"
