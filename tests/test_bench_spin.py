"""The SPIN benchmark's model family: the Promela text and migorder's space say the same thing.

Both answer PROVED on the family and COUNTEREXAMPLE once the device leaves its port (the rule
then rests on nothing). SPIN itself runs only where it is installed (Debian package ``spin``;
CI does not need it). No timings are asserted.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ordering.engines import brute, graph, smt_space
from ordering.sources.models import load_knowledge

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "explore_vs_spin.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("explore_vs_spin", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["explore_vs_spin"] = module
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
RULE = load_knowledge().rule("pci-bus-before-dma-devices")


@pytest.mark.parametrize("broken", [False, True])
def test_family_engines_agree(broken: bool) -> None:
    model = BENCH.family_model(8, broken=broken)
    w_graph, _ = graph.find_witness(model)
    w_brute, _ = brute.find_witness(model)
    assert (w_graph is None) == (w_brute is None) == (not broken)
    assert smt_space.decide(model, RULE).outcome.value == ("counterexample" if broken else "proved")


def test_promela_has_one_alternative_per_section() -> None:
    text = BENCH.promela(12)
    assert text.count("-> loaded[") + text.count("-> assert(") == 12
    assert "assert(!guard || loaded[0])" in text
    assert "loaded[1]" in text.split("assert")[0].splitlines()[-1]  # the device waits for its port


@pytest.mark.parametrize("broken", [False, True])
def test_spin_agrees(broken: bool) -> None:
    if shutil.which("spin") is None or shutil.which("gcc") is None:
        pytest.skip("SPIN is not installed (Debian package spin); the benchmark says how")
    row = BENCH.run_spin(8, 60.0, 256, broken=broken)
    assert row["spin_outcome"] == ("counterexample" if broken else "proved")
