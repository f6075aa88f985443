"""JSON as migorder prints it; apart from :mod:`ordering.report` so that a command printing
JSON need not import the checker."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_text"]


def json_text(data: Any, *, depth: int = 2) -> str:
    """JSON indented for its first ``depth`` levels, one line per item below them.

    A 100k-section check has 170k rule entries: one line each keeps the output readable
    with ``grep`` and ``jq`` and lets the C encoder write them (``indent=`` alone would put
    every field on its own line and fall back to the pure-Python encoder, 3× slower).

    >>> print(json_text({"release": "10.0", "rules": [{"rule": "a", "verdict": "violated"}]}))
    {
      "release": "10.0",
      "rules": [
        {"rule": "a", "verdict": "violated"}
      ]
    }
    """
    return _json_lines(data, depth, 0)


def _json_lines(data: Any, depth: int, level: int) -> str:
    if depth <= 0 or not isinstance(data, (dict, list)) or not data:
        return json.dumps(data)
    inner = "  " * (level + 1)
    if isinstance(data, dict):
        parts = [f"{json.dumps(str(k))}: {_json_lines(v, depth - 1, level + 1)}" for k, v in data.items()]
        opening, closing = "{", "}"
    else:
        parts = [_json_lines(item, depth - 1, level + 1) for item in data]
        opening, closing = "[", "]"
    return f"{opening}\n{inner}" + f",\n{inner}".join(parts) + f"\n{'  ' * level}{closing}"
