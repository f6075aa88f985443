"""z3's ``unknown`` is reported UNKNOWN (exit 1), never PROVED.

z3 answers these small problems (two sections, a handful of integer constraints) at once and
cannot be made to time out on them, so the solver's ``check`` is patched to answer
``z3.unknown`` the way it does when ``prove --timeout`` runs out. Before the fix, ``prove``
tested only ``== sat`` and counted such an answer as a proof.
"""

from __future__ import annotations

import json

import pytest
import z3

from ordering.cli import main
from ordering.smt import prove
from ordering.sources.models import load_knowledge


@pytest.fixture
def z3_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(z3.Solver, "check", lambda self, *a: z3.unknown)
    monkeypatch.setattr(z3.Solver, "reason_unknown", lambda self: "timeout")


def test_a_proved_rule_is_proved_when_z3_answers() -> None:
    k = load_knowledge()
    assert prove(k.release("10.2"), k.rule("apic-before-vfio")).outcome == "proved"


@pytest.mark.usefixtures("z3_gives_up")
def test_unknown_is_never_proved() -> None:
    k = load_knowledge()
    p = prove(k.release("10.2"), k.rule("apic-before-vfio"))
    assert (p.outcome, p.proved, p.unknown) == ("unknown", False, "timeout")
    assert "UNKNOWN: z3 gave no answer (timeout)" in p.describe()


@pytest.mark.usefixtures("z3_gives_up")
def test_prove_cli_exits_1_on_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "apic-before-vfio", "--qemu", "10.2"]) == 1
    assert "UNKNOWN" in capsys.readouterr().out
    assert main(["prove", "apic-before-vfio", "--qemu", "10.2", "--json"]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["result"], row["unknown"]) == ("unknown", "timeout")
