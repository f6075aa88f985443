"""explore's engines answer the same question: what one engine PROVES over a space, another must
not refute over the same space, and a counterexample names what it needs (a machine type kept
from an older release, a step)."""

from __future__ import annotations

import pytest

from ordering.engines import graph, smt_space
from ordering.explore import explore
from ordering.order_space import order_space
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.space import Outcome

K = load_knowledge()
RELEASES = list(K.releases.values())

# aarch64 virt with an ITS and a VFIO device behind a root port, unversioned -machine: on 11.1
# it may run virt-10.0 (created there and kept), where hw_compat_10_0 turns
# x-migration-load-config-after-iter off and multifd's vfio_load_bufs_thread loads the config
# unordered against the ITS.
ARM = (
    "-nodefaults -machine virt,gic-version=3,its=on -smp 2 -device pcie-root-port,id=rp0,chassis=1"
    " -device vfio-pci,host=0000:01:00.0,id=nic0,bus=rp0"
)


@pytest.mark.parametrize("bound", [0, 1])
def test_explicit_covers_every_machine_type_it_claims_whatever_the_bound(bound: int) -> None:
    """The space lists virt-11.1 ... virt-7.2; the explicit engine said PROVED at --bound 0
    having tried virt-11.1 only (a machine type counted as a move)."""
    space = order_space(K.release("11.1"), K.release("11.1"), parse_command_line(ARM),
                        releases=RELEASES, hotplug_bound=bound, multifd=True)
    assert "virt-10.0" in space.describe()
    r = explore(space, [K.rule("its-before-msi-devices")])
    (v,) = [v for v in r.verdicts if v.subject == "its-before-msi-devices"]
    assert v.outcome is Outcome.COUNTEREXAMPLE, v.reason
    assert "-machine virt-10.0" in v.steps[0], v.steps
    assert graph.graph_engine(space, K.rule("its-before-msi-devices")).outcome is Outcome.COUNTEREXAMPLE


@pytest.mark.parametrize("engine", [graph.graph_engine, smt_space.smt_engine])
def test_a_counterexample_on_an_older_machine_type_names_it(engine: object) -> None:
    """graph and smt found the counterexample on virt-10.0 and said 'QEMU's default order
    breaks it (no step needed)': the VM as given (virt-11.1) does not break it."""
    space = order_space(K.release("11.1"), K.release("11.1"), parse_command_line(ARM),
                        releases=RELEASES, hotplug_bound=0, multifd=True)
    v = engine(space, K.rule("its-before-msi-devices"))  # type: ignore[operator]
    assert v.outcome is Outcome.COUNTEREXAMPLE
    assert not any("default order breaks it" in s for s in v.steps), v.steps
    assert any("-machine virt-" in s and "virt-11.1" not in s for s in v.steps), v.steps


def test_the_vm_as_given_needs_no_machine_step() -> None:
    """Pinned to virt-10.0, the default order itself breaks it: no machine step is named."""
    space = order_space(K.release("11.1"), K.release("11.1"), parse_command_line(ARM.replace("virt,", "virt-10.0,")),
                        releases=RELEASES, hotplug_bound=0, multifd=True)
    v = graph.graph_engine(space, K.rule("its-before-msi-devices"))
    assert v.outcome is Outcome.COUNTEREXAMPLE
    assert v.steps == ("QEMU's default order breaks it (no step needed)",)
