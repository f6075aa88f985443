"""Draw a :class:`~ordering.render.scene.Scene` with matplotlib (Agg / SVG), deterministically.

No pyplot and no global state: each picture gets its own ``Figure`` and canvas, matplotlib's
settings are scoped with ``rc_context``, SVG ids come from a fixed ``svg.hashsalt`` and no
file carries a date. One data unit is one point, so the layout's sizes are the printed sizes.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any, cast

from ordering.render._text import FONT
from ordering.render.scene import Box, Scene

RC: dict[str, Any] = {
    "svg.hashsalt": "migorder",
    "svg.fonttype": "none",
    "font.family": "monospace",
    "font.monospace": [FONT],
    "path.simplify": False,
    "text.hinting": "none",
    "text.antialiased": True,
}
DPI = 110


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return folder.is_dir() and os.access(folder, os.W_OK)


def quiet_config_dir() -> None:
    """Give matplotlib a private ``MPLCONFIGDIR`` when its own folders (``~/.config`` and
    ``~/.cache``, or the XDG ones) cannot be written, as with an unwritable ``HOME``:
    matplotlib would otherwise print a warning on stderr. Call before importing it."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    try:
        home: Path | None = Path.home()
    except RuntimeError:  # no HOME and no passwd entry
        home = None
    for var, default in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        base = os.environ.get(var) or (str(home / default) if home else "")
        if not base or not _writable(Path(base) / "matplotlib"):
            break
    else:
        return
    private = Path(tempfile.gettempdir()) / f"migorder-matplotlib-{os.getuid()}"
    try:
        private.mkdir(mode=0o700, exist_ok=True)
        ours = private.stat().st_uid == os.getuid() and _writable(private)
    except OSError:
        ours = False
    os.environ["MPLCONFIGDIR"] = str(private) if ours else tempfile.mkdtemp(prefix="migorder-matplotlib-")


quiet_config_dir()


def figure(scene: Scene) -> Any:
    """A matplotlib ``Figure`` showing ``scene`` (call inside :func:`settings`)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, PathPatch, Rectangle
    from matplotlib.path import Path as MplPath

    fig = Figure(figsize=(scene.width / 72.0, scene.height / 72.0), dpi=DPI)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, scene.width)
    ax.set_ylim(0, scene.height)
    ax.set_axis_off()
    for r in scene.rects:
        b = r.box
        ax.add_patch(Rectangle((b.x, b.y), b.w, b.h, facecolor=r.face, edgecolor=r.edge,
                               linewidth=r.lw, linestyle="--" if r.dashed else "-", zorder=r.z))
    for c in scene.curves:
        codes = [MplPath.MOVETO, MplPath.LINETO] if len(c.points) == 2 else [
            MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3]
        path = MplPath(list(c.points), codes)
        if c.halo:
            ax.add_patch(PathPatch(path, facecolor="none", edgecolor=c.halo, linewidth=5.0,
                                   alpha=0.3, zorder=c.z - 1, capstyle="round"))
        ax.add_patch(FancyArrowPatch(
            path=path, arrowstyle="-|>" if c.arrow else "-", mutation_scale=7.0,
            color=c.color, linewidth=c.lw, linestyle="--" if c.dashed else "-", zorder=c.z))
    for lb in scene.labels:
        bbox = None
        if lb.background:
            bbox = {"facecolor": lb.background, "edgecolor": "none", "pad": 0.6, "alpha": 0.9}
        ax.text(lb.x, lb.y, lb.text, fontsize=lb.size, color=lb.color, ha=lb.ha, va=lb.va,
                fontweight="bold" if lb.bold else "normal", rotation=lb.rotation,
                linespacing=1.25 / 1.2, bbox=bbox, zorder=lb.z, multialignment="left"
                if lb.ha == "left" else "center")
    return fig


def settings() -> Any:
    """The scoped matplotlib settings every picture is drawn under."""
    import matplotlib

    return matplotlib.rc_context(cast(Any, RC))


def render(scene: Scene, fmt: str) -> bytes:
    """``scene`` as PNG or SVG bytes; the same scene always gives the same bytes.

    >>> from ordering.render.scene import Label, Scene
    >>> png = render(Scene(100, 40, (), (), (Label(50, 20, "apic ×4", 8),)), "png")
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.BytesIO()
    with settings():
        fig = figure(scene)
        if fmt == "png":
            FigureCanvasAgg(fig)
            fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": "migorder"})
        elif fmt == "svg":
            FigureCanvasSVG(fig)
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "migorder"})
        else:
            raise ValueError(f"matplotlib renders png or svg, not {fmt!r}")
    return buf.getvalue()


def text_boxes(scene: Scene) -> list[tuple[str, Box]]:
    """Every label's extent as the Agg renderer draws it (display pixels): for overlap tests."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with settings():
        fig = figure(scene)
        canvas: Any = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        out: list[tuple[str, Box]] = []
        for t in fig.axes[0].texts:
            e = t.get_window_extent(renderer)
            out.append((t.get_text(), Box(e.x0, e.y0, e.width, e.height)))
    return out
