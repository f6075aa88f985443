"""Build the notebooks: each jupytext percent ``NN-*.py`` becomes ``NN-*.ipynb`` with outputs.

    .venv/bin/python notebooks/build.py            # every notebook (what `make notebooks` runs)
    .venv/bin/python notebooks/build.py 01-tour.py # one

The ``.py`` is the source of truth; the ``.ipynb`` is committed with its outputs (pictures
included) so it renders on GitHub. Cells run in ``notebooks/`` with ``MPLBACKEND=Agg``; the
outputs carry no timings or kernel ids, so a rebuild changes the file only when the notebook
changed. ``tests/test_notebooks.py`` runs every notebook and fails when a committed
``.ipynb`` is stale against its ``.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TIMEOUT = 300


def sources() -> list[Path]:
    """The notebook sources, in order (``01-tour.py`` ...)."""
    return sorted(p for p in HERE.glob("[0-9][0-9]-*.py"))


def to_notebook(py: Path) -> Any:
    """The notebook of ``py`` (no outputs), with a python3 kernel."""
    import jupytext

    nb = jupytext.read(py)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i:02d}"  # stable ids: a rebuild changes the file only when content does
    return nb


def execute(nb: Any) -> Any:
    """Run ``nb`` in ``notebooks/`` (an error in a cell raises); return it with outputs."""
    import tempfile

    from nbclient import NotebookClient

    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        # hypothesis keeps its cache out of notebooks/ (the kernel runs there)
        "HYPOTHESIS_STORAGE_DIRECTORY": os.path.join(tempfile.gettempdir(), "migorder-notebooks-hypothesis"),
    }
    client = NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(HERE)}})
    client.execute(env=env)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = _coalesced(cell.outputs)
    nb.metadata.pop("widgets", None)
    lang = nb.metadata.get("language_info", {})
    nb.metadata["language_info"] = {"name": lang.get("name", "python")}
    return nb


def _coalesced(outputs: list[Any]) -> list[Any]:
    """Adjacent stream outputs of one name merged: how the kernel chunks them varies by run."""
    out: list[Any] = []
    for o in outputs:
        if (o.get("output_type") == "stream" and out and out[-1].get("output_type") == "stream"
                and out[-1].get("name") == o.get("name")):
            out[-1]["text"] += o["text"]
        else:
            out.append(o)
    return out


def build(py: Path) -> Path:
    """Run ``py``'s notebook and write ``.ipynb`` beside it."""
    import nbformat

    nb = execute(to_notebook(py))
    out = py.with_suffix(".ipynb")
    nbformat.write(nb, out)
    return out


def main(argv: list[str]) -> int:
    chosen = [HERE / a for a in argv] if argv else sources()
    for py in chosen:
        print(f"building {py.name} ...", flush=True)
        print(f"  wrote {build(py).relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
