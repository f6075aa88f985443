"""The notebooks: each ``notebooks/NN-*.py`` runs without an error (nbclient, MPLBACKEND=Agg),
and its committed ``.ipynb`` is not stale (same cells as the ``.py``; rebuild with
``make notebooks``)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# Folders of the machine a notebook was built on; built so that this file does not match itself.
MACHINE_PATH = re.compile("(?<![\\w.])/" + "(?:work|root|tmp|home/[^/\\s]+)" + "/")


def _build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["notebook_build"] = module
    spec.loader.exec_module(module)
    return module


BUILD = _build()
SOURCES: list[Path] = BUILD.sources()


def test_there_are_six_notebooks() -> None:
    names = [p.name[:2] for p in SOURCES]
    assert names == ["01", "02", "03", "04", "05", "06"]


def _cells(nb: Any) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_is_not_stale(py: Path) -> None:
    import nbformat

    ipynb = py.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} is missing: run `make notebooks`"
    committed = nbformat.read(ipynb, as_version=4)  # type: ignore[no-untyped-call]
    assert _cells(committed) == _cells(BUILD.to_notebook(py)), (
        f"{ipynb.name} is stale against {py.name}: run `make notebooks`")
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{ipynb.name} was not executed: run `make notebooks`"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{ipynb.name} was committed with an error output"
    found = MACHINE_PATH.search(ipynb.read_text(encoding="utf-8"))
    assert found is None, f"{ipynb.name} shows a path of the machine it was built on: {found.group(0)}"


@pytest.mark.slow
@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs(py: Path) -> None:
    nb = BUILD.execute(BUILD.to_notebook(py))
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
