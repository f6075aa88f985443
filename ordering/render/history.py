"""Every rule's verdict across the bundled QEMU releases: a heat map (model and layout, pure).

Each rule is judged on a fixed reference VM of its family: the default scenario for x86
rules, an ARM virt VM with GICv3, ITS and a virtio PCI device for aarch64 rules. A cell holds
the rule's worst verdict on that release and what decided it (phase, priority, registration).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from ordering.check import CheckResult, check
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.model.rule import Rule
from ordering.model.vm import Vm
from ordering.render._text import VERDICT_COLORS, text_height, text_width, wrap
from ordering.render.scene import Box, Label, Rect, Scene
from ordering.verdict import Verdict, worst


@dataclass(frozen=True)
class Cell:
    """One rule on one release."""

    verdict: Verdict
    by: str
    blocked: bool = False
    """QEMU refuses to migrate the reference VM on this release (the verdict is about the order
    it would have)."""


@dataclass(frozen=True)
class History:
    """Rows (rule id, reference VM name), columns (release names), cells[row][column]."""

    title: str
    rows: tuple[tuple[str, str], ...]
    releases: tuple[str, ...]
    cells: tuple[tuple[Cell, ...], ...]
    note: str = ""
    """What the reference VMs assume (shown under the table)."""


def build_history(
    k: Knowledge, reference: Callable[[Knowledge, Rule, Release], Vm], note: str = ""
) -> History:
    """Judge every rule on every bundled release, on ``reference(k, rule, release)``.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> k = load_knowledge()
    >>> h = build_history(k, lambda k, r, rel: read_scenario(k.scenarios["default"]))
    >>> h.releases[0], len(h.rows) == len(k.rules)
    ('7.2', True)
    """
    releases = tuple(sorted(k.releases, key=lambda n: (k.releases[n].version, n)))
    cache: dict[tuple[object, ...], CheckResult] = {}
    rows: list[tuple[str, str]] = []
    cells: list[tuple[Cell, ...]] = []
    for rule in k.rules:
        row: list[Cell] = []
        vm_name = ""
        for name in releases:
            vm = reference(k, rule, k.release(name))
            vm_name = vm_name or vm.name
            key = (vm.name, tuple(tuple(sorted(d.props.items())) for d in vm.devices), name)
            result = cache.get(key)
            if result is None:
                result = check(k, k.release(name), vm)
                cache[key] = result
            verdicts = [v for v in result.verdicts if v.rule.id == rule.id]
            w = worst(verdicts)
            by = next((v.by for v in verdicts if v.verdict is w and v.by), "")
            row.append(Cell(w, by, any(not b.conditional for b in result.blockers)))
        rows.append((rule.id, vm_name))
        cells.append(tuple(row))
    return History("Rule verdicts across bundled QEMU releases (source side decides)",
                   tuple(rows), releases, tuple(cells), note)


SIZE = 7.0
MARGIN = 12.0
CELL_W = 84.0
CELL_H = 26.0


def layout_history(h: History) -> Scene:
    """Rules as rows, releases as columns, each cell coloured by its verdict.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> from ordering.render.scene import label_overlaps
    >>> k = load_knowledge()
    >>> s = layout_history(build_history(k, lambda k, r, rel: read_scenario(k.scenarios["default"])))
    >>> label_overlaps(s.labels)
    []
    """
    row_text = [f"{rule}\n  on {vm}" for rule, vm in h.rows]
    label_w = max((text_width(t, SIZE) for t in row_text), default=0.0) + 10
    grid_x = MARGIN + label_w
    title_h, head_h = 18.0, 16.0
    grid_w = CELL_W * len(h.releases)
    blocked = ["*: QEMU blocks that VM's migration"] if any(c.blocked for row in h.cells for c in row) else []
    parts = ["cell: verdict / what decides it (phase, priority, registration); grey: not live in the reference VM",
             *blocked, *([f"({h.note})"] if h.note else [])]
    wrap_at = max(60, int((grid_x + grid_w) / max(text_width("x", SIZE), 1.0)))
    legend = "\n".join(line for part in parts for line in textwrap.wrap(part, wrap_at))
    legend_lines = legend.count("\n") + 1
    width = max(grid_x + grid_w + MARGIN, max(text_width(line, SIZE) for line in legend.splitlines()) + 2 * MARGIN,
                text_width(h.title, 9.0) + 2 * MARGIN)
    grid_h = CELL_H * len(h.rows)
    height = MARGIN + title_h + head_h + grid_h + 10 + text_height("x", SIZE) * legend_lines * 1.3 + MARGIN
    top = height - MARGIN - title_h - head_h
    rects: list[Rect] = []
    labels = [Label(MARGIN, height - MARGIN, h.title, 9.0, ha="left", va="top", bold=True)]
    for j, rel in enumerate(h.releases):
        labels.append(Label(grid_x + CELL_W * (j + 0.5), top + head_h / 2, f"QEMU {rel}", 8.0,
                            bold=True))
    for i, text in enumerate(row_text):
        y = top - CELL_H * (i + 1)
        labels.append(Label(MARGIN, y + CELL_H / 2, text, SIZE, ha="left"))
        for j, cell in enumerate(h.cells[i]):
            x = grid_x + CELL_W * j
            color = VERDICT_COLORS[cell.verdict.value]
            rects.append(Rect(Box(x + 1, y + 1, CELL_W - 2, CELL_H - 2), color, z=1))
            text = cell.verdict.value + (f"\nby {cell.by}" if cell.by else "") + (
                " *" if cell.blocked else ""
            )
            labels.append(Label(x + CELL_W / 2, y + CELL_H / 2, "\n".join(
                line for part in text.split("\n") for line in wrap(part, 18)), SIZE,
                color="#ffffff", bold=cell.verdict is not Verdict.NOT_LIVE))
    labels.append(Label(MARGIN, top - grid_h - 8, legend, SIZE, color="#444444", ha="left",
                        va="top"))
    return Scene(width, height, tuple(rects), (), tuple(labels), h.title)


def history_ascii(h: History) -> str:
    """The heat map as an ASCII table (at most 80 columns for up to 5 releases).

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> k = load_knowledge()
    >>> text = history_ascii(build_history(k, lambda k, r, rel: read_scenario(k.scenarios["default"])))
    >>> max(len(line) for line in text.splitlines()) <= 80
    True
    """
    marks = {"guaranteed": "ok", "tie-fragile": "TIE", "violated": "BAD", "not-live": "--"}
    by = {"phase": "ph", "priority": "pri", "registration": "reg", "": ""}
    rule_w = min(max(len(r) for r, _ in h.rows), 80 - 4 - 9 * len(h.releases))
    lines = [h.title, ""]
    lines.append(" " * (rule_w + 2) + "".join(f"{r:>9}" for r in h.releases))
    for (rule, _vm), row in zip(h.rows, h.cells, strict=True):
        cells = "".join(
            f"{(marks[c.verdict.value] + ' ' + by.get(c.by, c.by) + ('*' if c.blocked else '')).strip():>9}"
            for c in row
        )
        if len(rule) <= rule_w:
            lines.append(f"  {rule:<{rule_w}}{cells}")
        else:  # a rule id is never cut: it gets a line of its own
            lines.extend([f"  {rule}", f"  {'':<{rule_w}}{cells}"])
    lines.append("")
    vms = sorted({vm for _, vm in h.rows})
    lines.append("  reference VMs: " + ", ".join(vms))
    lines.append("  ok guaranteed, TIE tie-fragile, BAD violated, -- not live;")
    lines.append("  by: ph phase, pri priority, reg registration order")
    if any(c.blocked for row in h.cells for c in row):
        lines.append("  *: QEMU refuses to migrate that reference VM (a migration blocker)")
    if h.note:
        lines.extend(textwrap.wrap(f"({h.note})", 78, initial_indent="  ", subsequent_indent="   ",
                                   break_long_words=False, break_on_hyphens=False))
    return "\n".join(lines) + "\n"
