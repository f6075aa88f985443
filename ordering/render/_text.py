"""Text metrics and label wrapping shared by every picture (pure; no matplotlib).

Every label is set in DejaVu Sans Mono, whose advance width is a fixed 0.602 em, so the
layout knows each label's size without asking a renderer and stays deterministic.
"""

from __future__ import annotations

FONT = "DejaVu Sans Mono"
CHAR_EM = 0.602
"""Advance width of one DejaVu Sans Mono glyph, in em."""
LINE_EM = 1.25
"""Line pitch, in em."""

VERDICT_COLORS: dict[str, str] = {
    "guaranteed": "#2b8a3e",
    "tie-fragile": "#e8890c",
    "violated": "#d62728",
    "not-live": "#9e9e9e",
}
"""Arrow and cell colours per verdict (colour-blind tolerable: green, orange, red, grey)."""

VERDICT_MARKS: dict[str, str] = {
    "guaranteed": "ok",
    "tie-fragile": "TIE",
    "violated": "BAD",
    "not-live": "--",
}
"""Short ASCII marks for the text renderings."""

CYCLE_COLOR = "#7b2cbf"


def text_width(text: str, size: float) -> float:
    """Width in points of the widest line of ``text`` at font ``size``.

    >>> text_width("apic", 10.0)
    24.08
    """
    return round(max((len(line) for line in text.split("\n")), default=0) * CHAR_EM * size, 6)


def text_height(text: str, size: float) -> float:
    """Height in points of ``text`` (its number of lines times the line pitch).

    >>> text_height("a\\nb", 8.0)
    20.0
    """
    return (text.count("\n") + 1) * LINE_EM * size


_BREAK_AFTER = "/:-_.,) "


def wrap(text: str, width: int) -> list[str]:
    """Split ``text`` into lines of at most ``width`` characters, breaking after ``/ : - _``.

    Identifiers (QEMU idstrs) have no spaces, so the break points are their separators; a
    piece with none is cut hard.

    >>> wrap("0000:00:03.0:00.0/virtio-mem-device-early", 18)
    ['0000:00:03.0:00.0/', 'virtio-mem-device-', 'early']
    >>> wrap("apic ×4096", 20)
    ['apic ×4096']
    """
    if width < 1:
        raise ValueError("width must be positive")
    lines: list[str] = []
    rest = text
    while len(rest) > width:
        cut = max((i + 1 for i, c in enumerate(rest[:width]) if c in _BREAK_AFTER), default=0)
        if cut < width // 3:
            cut = width
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not lines:
        lines.append(rest)
    return lines


def base_name(idstr: str) -> str:
    """An idstr without its qdev path: what sections of one device type share.

    >>> base_name("0000:00:01.0:00.0/vfio")
    'vfio'
    >>> base_name("apic")
    'apic'
    """
    return idstr.rsplit("/", 1)[-1]


def ascii_only(text: str) -> str:
    """``text`` with the few non-ASCII signs the pictures use spelled in ASCII.

    >>> ascii_only("apic ×4096 → vfio")
    'apic x4096 -> vfio'
    """
    out = text.replace("×", "x").replace("✗", "x").replace("≈", "~").replace("→", "->").replace("…", "...").replace("—", "-")
    return out.encode("ascii", "replace").decode("ascii")
