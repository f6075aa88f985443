"""A picture as plain shapes in points (y up): what the layouts produce and the drawers draw.

Keeping the layout's output this plain lets tests check geometry (no two labels overlap)
without a renderer, and keeps matplotlib confined to :mod:`ordering.render.mpl`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ordering.render._text import text_height, text_width

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle: lower-left corner, width, height (points)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def center(self) -> Point:
        """The middle of the box."""
        return (self.x + self.w / 2, self.y + self.h / 2)

    def contains(self, p: Point, margin: float = 0.0) -> bool:
        """Whether ``p`` lies inside the box grown by ``margin``.

        >>> Box(0, 0, 10, 10).contains((5, 5))
        True
        """
        return (self.x - margin <= p[0] <= self.x + self.w + margin
                and self.y - margin <= p[1] <= self.y + self.h + margin)

    def overlaps(self, other: Box, gap: float = 0.0) -> bool:
        """Whether the boxes share area (closer than ``gap``); touching edges do not count.

        >>> Box(0, 0, 10, 10).overlaps(Box(10, 0, 5, 5))
        False
        >>> Box(0, 0, 10, 10).overlaps(Box(9, 9, 5, 5))
        True
        """
        return (self.x < other.x + other.w + gap and other.x < self.x + self.w + gap
                and self.y < other.y + other.h + gap and other.y < self.y + self.h + gap)


@dataclass(frozen=True)
class Rect:
    """A filled rectangle (node box, band strip, heat-map cell)."""

    box: Box
    face: str
    edge: str = "none"
    lw: float = 0.0
    dashed: bool = False
    z: int = 1


@dataclass(frozen=True)
class Label:
    """Text anchored at ``(x, y)``; ``ha``/``va`` as in matplotlib."""

    x: float
    y: float
    text: str
    size: float
    color: str = "#000000"
    ha: str = "center"
    va: str = "center"
    bold: bool = False
    rotation: int = 0
    background: str | None = None
    z: int = 5

    @property
    def box(self) -> Box:
        """The estimated extent of the text (monospaced metrics)."""
        w, h = text_width(self.text, self.size), text_height(self.text, self.size)
        if self.rotation in (90, 270):
            w, h = h, w
        x = {"left": self.x, "center": self.x - w / 2, "right": self.x - w}[self.ha]
        y = {"bottom": self.y, "baseline": self.y, "center": self.y - h / 2,
             "center_baseline": self.y - h / 2, "top": self.y - h}[self.va]
        return Box(x, y, w, h)


@dataclass(frozen=True)
class Curve:
    """A straight (2 points) or quadratic Bézier (3 points: start, control, end) line."""

    points: tuple[Point, ...]
    color: str
    lw: float = 1.0
    arrow: bool = True
    dashed: bool = False
    halo: str | None = None
    """A wide translucent stroke under the line (cycle highlight)."""
    z: int = 3


@dataclass(frozen=True)
class Scene:
    """A whole picture: its size in points and its shapes, drawn rects → curves → labels."""

    width: float
    height: float
    rects: tuple[Rect, ...]
    curves: tuple[Curve, ...]
    labels: tuple[Label, ...]
    title: str = ""


def bezier(p0: Point, c: Point, p1: Point, t: float) -> Point:
    """The quadratic Bézier through ``p0``, control ``c``, ``p1`` at parameter ``t``.

    >>> bezier((0, 0), (1, 1), (2, 0), 0.5)
    (1.0, 0.5)
    """
    a, b, d = (1 - t) ** 2, 2 * (1 - t) * t, t * t
    return (a * p0[0] + b * c[0] + d * p1[0], a * p0[1] + b * c[1] + d * p1[1])


def sub_bezier(p0: Point, c: Point, p1: Point, t0: float, t1: float) -> tuple[Point, Point, Point]:
    """The piece of a quadratic Bézier between ``t0`` and ``t1``, as a Bézier of its own.

    >>> sub_bezier((0, 0), (1, 1), (2, 0), 0.0, 1.0)
    ((0.0, 0.0), (1.0, 1.0), (2.0, 0.0))
    """
    def blossom(u: float, v: float) -> Point:
        a, b, d = (1 - u) * (1 - v), (1 - u) * v + u * (1 - v), u * v
        return (a * p0[0] + b * c[0] + d * p1[0], a * p0[1] + b * c[1] + d * p1[1])

    return blossom(t0, t0), blossom(t0, t1), blossom(t1, t1)


def arc_control(p0: Point, p1: Point, rad: float) -> Point:
    """The control point of an arc bending by ``rad`` (matplotlib's ``arc3`` convention).

    >>> arc_control((0, 0), (10, 0), 0.0)
    (5.0, 0.0)
    """
    mx, my = (p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    return (mx + rad * dy, my - rad * dx)


def label_overlaps(labels: Sequence[Label], gap: float = 0.0) -> list[tuple[int, int]]:
    """Index pairs of labels whose estimated extents overlap.

    >>> a = Label(0, 0, "apic", 8, ha="left", va="bottom")
    >>> label_overlaps([a, Label(100, 0, "vfio", 8)])
    []
    """
    boxes = [lb.box for lb in labels]
    order = sorted(range(len(boxes)), key=lambda i: boxes[i].x)
    out: list[tuple[int, int]] = []
    for n, i in enumerate(order):
        for j in order[n + 1:]:
            if boxes[j].x >= boxes[i].x + boxes[i].w + gap:
                break
            if boxes[i].overlaps(boxes[j], gap):
                out.append((min(i, j), max(i, j)))
    return sorted(out)


def free_spot(candidates: Iterable[Box], taken: Sequence[Box], gap: float = 1.0) -> Box | None:
    """The first candidate box that overlaps none of ``taken``.

    >>> free_spot([Box(0, 0, 5, 5), Box(20, 0, 5, 5)], [Box(0, 0, 10, 10)])
    Box(x=20, y=0, w=5, h=5)
    """
    for cand in candidates:
        if not any(cand.overlaps(t, gap) for t in taken):
            return cand
    return None
