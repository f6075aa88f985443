"""One progress bar for the long-running commands (``explore``, ``fleet``): rich, on stderr,
refreshed by hand. rich is imported only when a bar is really shown."""

from __future__ import annotations

from typing import Any


def progress_bar(name: str, unit: str, *extra: str, transient: bool) -> Any:
    """A started-later ``rich.progress.Progress``: ``NAME [bar] done/total UNIT [extra] time``.

    ``extra`` are column templates over the task's fields (``"({task.fields[waiting]} ...)"``).
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn(name), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
        *(TextColumn(e) for e in extra), TimeElapsedColumn(),
        console=Console(stderr=True), auto_refresh=False, transient=transient,
    )
