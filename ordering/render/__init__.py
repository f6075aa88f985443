"""Pictures: the dependency diagram, the load timeline, the release history.

Each picture is built in three pure steps — content (``build_*``), layout (``layout_*`` to a
:class:`~ordering.render.scene.Scene`) — and then drawn: PNG/SVG with matplotlib
(:mod:`ordering.render.mpl`), DOT text (:mod:`ordering.render.dot`) or ASCII
(:mod:`ordering.render.ascii`). Rendering the same input twice gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from ordering.errors import UsageError
from ordering.render.diagram import Diagram, build_diagram
from ordering.render.diagram_layout import layout_diagram
from ordering.render.history import History, build_history, history_ascii, layout_history
from ordering.render.timeline import Timeline, build_timeline, layout_timeline

__all__ = [
    "FORMATS",
    "Diagram",
    "History",
    "Timeline",
    "build_diagram",
    "build_history",
    "build_timeline",
    "format_for",
    "render_diagram",
    "render_history",
    "render_timeline",
]

FORMATS = ("png", "svg", "dot", "ascii")


def format_for(fmt: str | None, output: Path | None, allowed: tuple[str, ...] = FORMATS) -> str:
    """The format asked for, else the one ``output``'s suffix names, else ``ascii``.

    >>> format_for(None, Path("deps.svg"))
    'svg'
    >>> format_for(None, None)
    'ascii'
    >>> format_for("png", Path("x.svg"))
    Traceback (most recent call last):
    ordering.errors.UsageError: --format png with -o x.svg: the suffix says svg; give a file name that matches the format, or leave --format out
    """
    if output is not None:
        suffix = output.suffix.lower().lstrip(".")
        named = {"txt": "ascii", "gv": "dot"}.get(suffix, suffix)
        if fmt is not None and named in FORMATS and named != fmt:
            raise UsageError(f"--format {fmt} with -o {output}: the suffix says {named}; "
                             "give a file name that matches the format, or leave --format out")
        fmt = fmt or named
        if fmt not in allowed:
            raise UsageError(f"{output}: cannot tell the format from the suffix "
                             f"'{output.suffix}'; use one of {', '.join(allowed)} or --format")
    fmt = fmt or "ascii"
    if fmt not in allowed:
        raise UsageError(f"format {fmt!r} is not one of {', '.join(allowed)}")
    return fmt


def render_diagram(d: Diagram, fmt: str) -> bytes:
    """The diagram in ``fmt`` (png, svg, dot, ascii) as bytes."""
    if fmt == "dot":
        from ordering.render.dot import to_dot

        return to_dot(d).encode()
    if fmt == "ascii":
        from ordering.render.ascii import diagram_ascii

        return diagram_ascii(d).encode()
    from ordering.render.mpl import render

    return render(layout_diagram(d), fmt)


def render_timeline(t: Timeline, fmt: str) -> bytes:
    """The timeline in ``fmt`` (png, svg, ascii) as bytes."""
    if fmt == "ascii":
        from ordering.render.ascii import timeline_ascii

        return timeline_ascii(t).encode()
    from ordering.render.mpl import render

    return render(layout_timeline(t), fmt)


def render_history(h: History, fmt: str) -> bytes:
    """The history heat map in ``fmt`` (png, svg, ascii) as bytes."""
    if fmt == "ascii":
        return history_ascii(h).encode()
    from ordering.render.mpl import render

    return render(layout_history(h), fmt)
