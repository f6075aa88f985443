"""The load order as a timeline: time runs down, one lane per ``MIG_PRI`` level (pure).

:func:`build_timeline` turns a :class:`~ordering.order.LoadOrder` into bars (runs of
same-type sections folded into one bar with a count, including repeating patterns such as
``cpu_common + cpu ×256``) and failure marks; :func:`layout_timeline` places them. Marks come
from the simulator's trace when there is one, else from the violated rules of a check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ordering.check import CheckResult
from ordering.model.priority import PriorityLevel
from ordering.model.section import LoadStep, Phase, Section
from ordering.order import LoadOrder
from ordering.render._text import VERDICT_COLORS, text_height, text_width, wrap
from ordering.render._text import base_name as _base
from ordering.render.diagram_layout import _legend_rows, kind_colors, legend_items
from ordering.render.scene import Box, Curve, Label, Rect, Scene


@dataclass(frozen=True)
class Bar:
    """One row: a load step, or a run of ``count`` repeats of a pattern of steps."""

    label: str
    phase: Phase
    level: PriorityLevel
    type: str
    kind: str
    count: int
    first_step: int
    last_step: int


@dataclass(frozen=True)
class Mark:
    """A failure or a rule at bar ``at``; ``needs`` is the bar of what must load first.

    ``kind`` is ``failure`` (the simulator saw it), ``violated`` or ``tie-fragile`` (a rule's
    verdict from ``check``: loaded too late, or first only by registration order).
    """

    tag: str
    at: int
    needs: int | None
    text: str
    kind: str = "failure"

    @property
    def color(self) -> str:
        """Red for a failure or a violated rule, orange for a tie-fragile one."""
        return VERDICT_COLORS["tie-fragile" if self.kind == "tie-fragile" else "violated"]

    @property
    def sign(self) -> str:
        """``✗`` for a failure or a violation, ``≈`` for a tie."""
        return "≈" if self.kind == "tie-fragile" else "✗"


@dataclass(frozen=True)
class Timeline:
    """Everything the timeline shows."""

    title: str
    levels: tuple[PriorityLevel, ...]
    bars: tuple[Bar, ...]
    marks: tuple[Mark, ...]
    note: str
    """Where the marks come from (simulator, or rule violations when it is missing)."""


def _key(step: LoadStep) -> tuple[str, str, int, str, str]:
    s = step.section
    return (step.phase.value, step.type.value, s.priority.value, s.kind, _base(s.idstr))


def fold(steps: Sequence[LoadStep], *, group_at: int = 3, max_period: int = 4) -> list[Bar]:
    """Bars for ``steps``: a pattern of up to ``max_period`` step types repeated ``group_at``
    or more times becomes one bar.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order import derive
    >>> k = load_knowledge()
    >>> order = derive(k.release("11.1"), parse_command_line("-machine q35 -smp 64"))
    >>> [b.label for b in fold(order.steps) if b.count > 1]
    ['apic ×64', 'cpu_common + cpu ×63']
    """
    keys = [_key(s) for s in steps]
    bars: list[Bar] = []
    i = 0
    while i < len(steps):
        best_p, best_reps = 1, 1
        for p in range(1, max_period + 1):
            reps = 1
            while keys[i + reps * p: i + (reps + 1) * p] == keys[i: i + p]:
                reps += 1
            if reps >= group_at and reps * p > best_p * best_reps:
                best_p, best_reps = p, reps
        if best_reps < group_at:
            best_p, best_reps = 1, 1
        first = steps[i]
        if best_reps == 1:
            label = first.section.label
        else:
            names = list(dict.fromkeys(k[4] for k in keys[i: i + best_p]))
            label = f"{' + '.join(names)} ×{best_reps}"
        last = i + best_p * best_reps - 1
        bars.append(Bar(label, first.phase, first.section.priority, first.type.value,
                        first.section.kind, best_reps, i, last))
        i = last + 1
    return bars


def _bar_of(bars: Sequence[Bar], step: int) -> int:
    for n, b in enumerate(bars):
        if b.first_step <= step <= b.last_step:
            return n
    raise IndexError(step)


def _section_step(order: LoadOrder) -> dict[int, int]:
    return order.position()


def _find(order: LoadOrder, what: object) -> int | None:
    """The step index of a failure's section, given as a Section, a LoadStep or a label."""
    pos = _section_step(order)
    if isinstance(what, LoadStep):
        what = what.section
    if isinstance(what, Section):
        return pos.get(what.section_id)
    if isinstance(what, str):
        for i, step in enumerate(order.steps):
            if what in (step.section.label, step.section.idstr):
                return i
    if isinstance(what, (list, tuple)) and what:
        found = [f for f in (_find(order, w) for w in what) if f is not None]
        return max(found) if found else None
    return None


def marks_from_trace(order: LoadOrder, bars: Sequence[Bar], trace: Any) -> list[Mark]:
    """Marks for a simulator trace's failures (``class``, ``message``, ``section``, ``needs``)."""
    out: list[Mark] = []
    for f in getattr(trace, "failures", ()):
        at = _find(order, getattr(f, "section", None))
        if at is None:
            continue
        needs_step = _find(order, getattr(f, "needs", None))
        cls = getattr(f, "cls", None) or getattr(f, "klass", None) or getattr(f, "kind", "")
        text = f"{cls}: {getattr(f, 'message', '')}" if cls else str(getattr(f, "message", f))
        out.append(Mark(f"F{len(out) + 1}", _bar_of(bars, at),
                        None if needs_step is None else _bar_of(bars, needs_step), text))
    return out


def marks_from_check(result: CheckResult, bars: Sequence[Bar],
                     verdicts: tuple[str, ...] = ("violated", "tie-fragile")) -> list[Mark]:
    """Marks for every violated (``V1``) and tie-fragile (``T1``) rule instance: at its
    ``then``, linked to its worst first."""
    pos = _section_step(result.order)
    out: list[Mark] = []
    seen: set[tuple[int, int, str]] = set()
    counts = {"violated": 0, "tie-fragile": 0}
    for wanted in verdicts:
        for v in result.verdicts:
            if v.verdict.value != wanted or v.evidence is None:
                continue
            ev = v.evidence
            at = _bar_of(bars, pos[ev.then.section.section_id])
            needs = _bar_of(bars, pos[ev.first.section.section_id])
            if (at, needs, v.rule.id) in seen:
                continue
            seen.add((at, needs, v.rule.id))
            counts[wanted] += 1
            tag = f"{'V' if wanted == 'violated' else 'T'}{counts[wanted]}"
            out.append(Mark(tag, at, needs,
                            f"{v.rule.id} {wanted}: {ev.first.section.label} must load before "
                            f"{ev.then.section.label} ({ev.describe()})", wanted))
    return out


def build_timeline(order: LoadOrder, *, result: CheckResult | None = None, trace: object = None,
                   group_at: int = 3, title: str = "") -> Timeline:
    """The timeline of ``order``: the simulator's failures from ``trace``, and the violated and
    tie-fragile rules from ``result``, each marked at its section and linked to what must load
    first."""
    bars = fold(order.steps, group_at=group_at)
    marks: list[Mark] = []
    if trace is not None:
        marks += marks_from_trace(order, bars, trace)
    if result is not None:
        marks += marks_from_check(result, bars)
    kinds = {m.kind for m in marks}
    notes = [text for kind, text in (
        ("failure", "✗ F: a failure the simulator saw when replaying this order"),
        ("violated", "✗ V: a rule violated (loaded too late)"),
        ("tie-fragile", "≈ T: a rule that holds only by registration order"),
    ) if kind in kinds]
    if notes:
        note = "; ".join(notes) + "; arrow: what must load first"
    elif trace is not None or result is not None:
        judged = " and ".join(w for w, given in (("the simulator", trace is not None),
                                                 ("every rule", result is not None)) if given)
        note = f"no marks: {judged} found nothing wrong in this order"
    else:
        note = ""
    levels = tuple(sorted(order.release.scheme.usable, key=lambda lvl: -lvl.value))
    default_title = (f"{order.vm.name}: load order on a QEMU {order.release.name} source "
                     f"({order.machine_type}, {len(order.steps)} sections)")
    return Timeline(title or default_title, levels, tuple(bars), tuple(marks), note)


ROW = 11.0
SIZE = 7.0
LANE = 13.0
MARGIN = 12.0
PHASE_W = 56.0
LINK_STEP = 7.0


def layout_timeline(t: Timeline) -> Scene:
    """Place the timeline: phases down the left, lanes, then type and label columns.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> from ordering.check import check
    >>> from ordering.render.scene import label_overlaps
    >>> k = load_knowledge()
    >>> r = check(k, k.release("7.2"), read_scenario(k.scenarios["default"]))
    >>> s = layout_timeline(build_timeline(r.order, result=r))
    >>> label_overlaps(s.labels)
    []
    """
    depth = _link_depths(t.marks)
    link_w = 10.0 + LINK_STEP * (max(depth.values(), default=-1) + 1)
    lanes_x = MARGIN + PHASE_W + link_w
    lane_of = {lvl.value: i for i, lvl in enumerate(t.levels)}
    type_x = lanes_x + LANE * len(t.levels) + 6
    label_x = type_x + text_width("START", SIZE) + 8
    header_h = max(text_width(lvl.short, SIZE) for lvl in t.levels) + 10
    marks_at: dict[int, list[Mark]] = {}
    for m in t.marks:
        marks_at.setdefault(m.at, []).append(m)
    row_text = [b.label + ("  " + " ".join(f"{m.sign} {m.tag}" for m in marks_at.get(i, []))
                           if i in marks_at else "") for i, b in enumerate(t.bars)]
    labels_w = max((text_width(x, SIZE) for x in row_text), default=0.0)
    content_w = label_x + labels_w + MARGIN
    width = max(content_w, 560.0)
    chars = int((width - 2 * MARGIN) / (0.602 * SIZE))
    key: list[tuple[str, str]] = [(line, "#333333") for line in wrap(t.note, chars)] if t.note else []
    for m in t.marks:
        for j, line in enumerate(wrap(f"{m.tag}  {m.text}", chars)):
            key.append((("    " if j else "") + line, m.color))
    legend = legend_items({b.kind for b in t.bars})
    legend_rows = _legend_rows(legend, width - 2 * MARGIN)
    title_h = 18.0
    top = MARGIN + title_h + header_h
    rows_h = ROW * len(t.bars)
    height = top + rows_h + 14 + 12.0 * len(legend_rows) + text_height("x", SIZE) * len(key) + MARGIN

    def y_row(i: int) -> float:  # centre of row i
        return height - (top + ROW * i + ROW / 2)

    rects: list[Rect] = []
    curves: list[Curve] = []
    labels = [Label(MARGIN, height - MARGIN, t.title, 9.0, ha="left", va="top", bold=True)]
    for i, lvl in enumerate(t.levels):
        x = lanes_x + LANE * i
        labels.append(Label(x + LANE / 2, height - top + 4, lvl.short, SIZE, color="#444444",
                            ha="center", va="bottom", rotation=90))
        rects.append(Rect(Box(x, height - top - rows_h, LANE, rows_h),
                          "#f1f3f5" if i % 2 == 0 else "#fafbfc", z=0))
    # Phase blocks.
    start = 0
    shade = 0
    for i in range(1, len(t.bars) + 1):
        if i == len(t.bars) or t.bars[i].phase != t.bars[start].phase:
            y0 = height - top - ROW * i
            rects.append(Rect(Box(MARGIN, y0, PHASE_W - 4, ROW * (i - start)),
                              ("#e3ecf7", "#efe6f7", "#e6f2e6")[shade % 3], z=0))
            labels.append(Label(MARGIN + 3, height - top - ROW * start - 2,
                                t.bars[start].phase.value, SIZE, ha="left", va="top", bold=True))
            rects.append(Rect(Box(MARGIN, y0 - 0.3, width - 2 * MARGIN, 0.6), "#9aa5b1", z=1))
            start, shade = i, shade + 1
    colors = kind_colors({b.kind for b in t.bars})
    for i, b in enumerate(t.bars):
        x = lanes_x + LANE * lane_of[b.level.value]
        h = ROW - 3 if b.count == 1 else ROW - 1
        rects.append(Rect(Box(x + 1.5, y_row(i) - h / 2, LANE - 3, h), colors[b.kind],
                          "#5f6b76", 1.2 if b.count > 1 else 0.5, z=2))
        labels.append(Label(type_x, y_row(i), b.type, SIZE, color="#666666", ha="left"))
        row_color = "#000000"
        if i in marks_at:
            row_color = min((m.color for m in marks_at[i]), key=lambda c: c != VERDICT_COLORS["violated"])
        labels.append(Label(label_x, y_row(i), row_text[i], SIZE, ha="left",
                            color=row_color, bold=i in marks_at))
    for m in t.marks:
        if m.needs is None or m.needs == m.at:
            continue
        x = lanes_x - 3
        xd = x - 6 - LINK_STEP * depth[m.tag]
        ya, yb = y_row(m.at), y_row(m.needs)
        dashed = m.kind == "tie-fragile"
        curves.append(Curve(((x, ya), (xd, ya)), m.color, 1.0, arrow=False, dashed=dashed, z=4))
        curves.append(Curve(((xd, ya), (xd, yb)), m.color, 1.0, arrow=False, dashed=dashed, z=4))
        curves.append(Curve(((xd, yb), (x, yb)), m.color, 1.0, arrow=True, dashed=dashed, z=4))
    y = height - top - rows_h - 10
    for row in legend_rows:
        lx = MARGIN
        for kind, fill in row:
            rects.append(Rect(Box(lx, y - 9, LANE - 3, 8), fill, "#5f6b76", 0.5, z=2))
            labels.append(Label(lx + LANE + 1, y - 5, kind, SIZE, ha="left", va="center"))
            lx += LANE + 1 + text_width(kind, SIZE) + 14
        y -= 12.0
    for text, color in key:
        labels.append(Label(MARGIN, y, text, SIZE, color=color, ha="left", va="top"))
        y -= text_height("x", SIZE)
    return Scene(width, height, tuple(rects), tuple(curves), tuple(labels), t.title)


def _link_depths(marks: Iterable[Mark]) -> dict[str, int]:
    """Nest the links so no two overlapping spans share a column (shorter spans inside)."""
    spans = sorted(((min(m.at, m.needs), max(m.at, m.needs), m.tag) for m in marks
                    if m.needs is not None and m.needs != m.at), key=lambda s: (s[1] - s[0], s))
    placed: list[tuple[int, int, int]] = []
    out: dict[str, int] = {}
    for lo, hi, tag in spans:
        d = 0
        while any(pd == d and not (hi < plo or lo > phi) for plo, phi, pd in placed):
            d += 1
        placed.append((lo, hi, d))
        out[tag] = d
    return out
